//! `cairn-server`: Cairn protecting a tenant by itself — jobs on a schedule with retention,
//! a history of every run, a REST API with roles, four-eyes approval for anything that
//! destroys backups, a tamper-evident audit log, alerts and metrics. A front end of
//! `cairn-app`, as the command line is: every operation is the same code.
//!
//! The server is `app(state) -> Router`, tested without a socket; `cairn serve` wraps it
//! in a listener and a scheduler.

pub mod alerts;
pub mod audit;
pub mod store;
