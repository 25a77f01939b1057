//! Integration tests: write PSTs and read them back with independent readers.

mod external;
mod fixture;
mod outlook_pst;
mod scale;
mod structure;
