//! The WIT bindings, generated here and used only inside this crate: the key-value
//! world, whose imports are a superset of the default one's, so one linker runs both
//! components. The key-value imports themselves are [`crate::keyvalue`]'s bindings,
//! mapped in so that both name the same types.
// bindgen! emits `unsafe` blocks around typed function handles it has checked itself.
#![allow(unsafe_code, missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "session-vault-keyvalue",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue": crate::keyvalue::bindings::wasi::keyvalue,
        "session-vault:store/indexes": crate::keyvalue::bindings::session_vault::store::indexes,
    },
});

pub use exports::session_vault::store::sessions as wit;
