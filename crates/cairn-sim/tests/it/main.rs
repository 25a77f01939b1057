//! End-to-end contract tests of the simulator over HTTP.

mod conversations;
mod endpoints;
mod harness;
mod walk;
