//! `cairn-app`: Cairn's operations — back up, browse, find, export, restore, forget,
//! check — as one library the command line and the server are both front ends of.
//!
//! An operation takes plain settings and a [`Workspace`], returns typed, serialisable
//! values and never prints: long work reports through progress traits the caller
//! implements (the command line draws bars, the server turns them into task progress and
//! metrics). Errors carry their class ([`error::classify`]): the user's mistake, a
//! transient failure, or an internal one.

pub mod error;
pub mod local;
pub mod workspace;

pub use error::{Class, Classified, UserError, classify};
pub use workspace::Workspace;

pub mod backup;
pub mod browse;
pub mod detect;
pub mod distribute;
pub mod erase;
pub mod export;
pub mod holds;
pub mod maintenance;
pub mod permissions;
pub mod preview;
mod pst;
pub mod restore;
pub mod retention;
mod teams_export;
pub mod worker;
