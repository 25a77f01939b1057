//! `cairn-graph`: the Microsoft Graph client every backup and restore goes through.
//!
//! Built to get the most out of Microsoft's throttling rather than fight it: requests are
//! paced to stay inside the published limits, `Retry-After` pauses everyone sharing a limit,
//! faults are retried with backoff, pages and deltas stream, content is never buffered whole.
//! It works the same against graph.microsoft.com and `cairn-sim`: only URLs and credentials
//! differ.

pub mod auth;
pub mod cert;
pub mod client;
pub mod error;
pub mod models;
pub mod pacer;
pub mod retry;
pub mod transport;

pub use auth::Credential;
pub use client::{DeltaEvent, GraphClient, GraphConfig, same_origin};
pub use error::GraphError;
pub use pacer::Limits;
pub use retry::RetryPolicy;
