//! Individual endpoint contracts.
