//! Integration tests for cairn-fxics.

mod build;
mod malformed;
mod mime;
mod spec_vectors;
mod streams;
