//! The bindings of the key-value imports alone, generated here so that this module
//! needs nothing of the crate's world bindings: those reuse these (the crate's `bindings`
//! maps the four interfaces onto them), and the dependency goes one way.
// bindgen! emits `unsafe` blocks around typed function handles it has checked itself.
#![allow(unsafe_code, missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package session-vault:host;

        world keyvalue-imports {
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;
            import session-vault:store/indexes@0.3.0;
        }
    ",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::keyvalue::handles::Bucket,
        "wasi:keyvalue/atomics.cas": crate::keyvalue::handles::Cas,
    },
});

pub use self::session_vault::store::indexes;
pub use self::wasi::keyvalue::{atomics, batch, store};
