//! Loading the component into wasmtime.

pub mod compiled;
