//! The WIT bindings, generated here and used only inside this crate: the key-value
//! world, whose imports are a superset of the default one's, so one linker runs both
//! components.
// bindgen! emits `unsafe` blocks around typed function handles it has checked itself.
#![allow(unsafe_code, missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "session-vault-keyvalue",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::keyvalue::handles::Bucket,
        "wasi:keyvalue/atomics.cas": crate::keyvalue::handles::Cas,
    },
});

pub use self::session_vault::store::indexes;
pub use self::wasi::keyvalue::{atomics, batch, store};
pub use exports::session_vault::store::sessions as wit;
