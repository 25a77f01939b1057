//! End-to-end contract tests of the simulator over HTTP.
