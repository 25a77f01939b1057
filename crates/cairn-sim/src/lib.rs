//! `cairn-sim`: a simulator of a whole Microsoft 365 tenant that speaks Microsoft Graph v1.0.
//!
//! It exists so that Cairn can be demonstrated, tested and sized without a Microsoft tenant:
//! the backup code talks to it exactly as it talks to graph.microsoft.com, only the base URLs
//! and credentials differ. The tenant is generated lazily from a seed; only changes made
//! after generation (mutations, restores) are stored.

pub mod admin;
pub mod auth;
pub mod config;
pub mod content;
pub mod fxics;
pub mod graph;
pub mod keys;
pub mod mailbox_api;
pub mod mime;
pub mod mime_headers;
pub mod model;
pub mod odata;
pub mod oidc;
pub mod paging;
pub mod permissions;
pub mod plan;
pub mod seeded;
pub mod server;
pub mod sim;
pub mod state;
pub mod teams;
pub mod tenant;
pub mod throttle;
pub mod todo;
pub mod uploads;
pub mod wire;

pub use config::{SimApp, SimConfig, ThrottleLimits, ThrottleMode};
pub use oidc::user_password;
pub use server::SimServer;
pub use tenant::TenantSpec;
