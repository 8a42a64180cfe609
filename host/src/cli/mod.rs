//! The `session-vault` command line: arguments, the secret, exit codes, the demo.

pub mod args;
pub mod demo;
pub mod exit;
pub mod peak;
pub mod progress;
pub mod secret;
