//! The WIT bindings, generated here and used only inside this crate.
// bindgen! emits `unsafe` blocks around typed function handles it has checked itself.
#![allow(unsafe_code, missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "session-vault",
});

pub use exports::session_vault::store::sessions as wit;
