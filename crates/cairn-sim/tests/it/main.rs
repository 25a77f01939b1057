//! End-to-end contract tests of the simulator over HTTP.

mod conversations;
mod endpoints;
mod forms;
mod harness;
mod mailbox_api;
mod permissions;
mod ransomware;
mod sdk;
mod signin;
mod teams;
mod walk;
