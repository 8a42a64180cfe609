//! The conformance suite: every case in `cases` runs against the Rust API (the component
//! in wasmtime), the CLI binary and the native core, each in a fresh temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod bad_input;
mod cases;
mod concurrency;
mod crash;
mod crash_load;
mod erasure;
mod faults;
mod front;
mod keys;
mod legacy;
mod log_cases;
mod metadata;
mod model;
mod power_cut;
mod rollback;

suite!(api, crate::front::Api, files);
suite!(cli, crate::front::Cli, files);
suite!(native, crate::front::Native, files);
suite!(api_log, crate::front::Api, log);
suite!(cli_log, crate::front::Cli, log);
suite!(native_log, crate::front::Native, log);
