//! End-to-end contract tests of the simulator over HTTP.

mod conversations;
mod endpoints;
mod forms;
mod harness;
mod permissions;
mod sdk;
mod walk;
