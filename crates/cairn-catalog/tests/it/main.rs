//! The catalog's integration tests: one binary. `contract` holds the behaviour every
//! catalog store must have and runs it against each; `postgres` what only the shared
//! store has (URLs, migrations, redaction).

mod contract;
mod postgres;
mod stores;
