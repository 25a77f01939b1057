//! Alerts (being written).
