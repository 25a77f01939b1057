//! `cairn-testkit`: the set-up that the integration tests of several Cairn crates share.
//!
//! The backup, restore and CLI tests all start a simulated tenant, point a Graph client at
//! it, read its manifest, mutate it, make a repository and catalog in a temporary directory
//! and run the binary in a home of its own. Written once here, a change to any of these (a
//! new simulator endpoint, a different retry policy, one more variable to isolate) is made in
//! one place instead of drifting apart in each crate's copy.
//!
//! Only ever a `[dev-dependencies]` entry. It depends on no engine (`cairn-backup`,
//! `cairn-restore`), so that the engines' own tests can use it; tests build engines from
//! the pieces here.

mod home;
pub mod pst;
mod tenant;
mod workspace;

pub use home::{Home, ok, stderr, stdout};
pub use tenant::{ManifestEntry, SimApp, SimTenant, fast_retry};
pub use workspace::{Workspace, WorkspaceBuilder};
