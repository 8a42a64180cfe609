//! The component in wasmtime: the embedded build, compiled (or loaded from
//! [`compiled`]'s cache) and linked to WASI once per process, and the [`Host`] state
//! each vault's wasmtime store runs it against.

mod compiled;

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::SessionVaultPre;
use crate::error::Error;

/// The component built from `guest/` by this crate's build script.
pub static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/session-vault.wasm"));

/// Linear memory the component may grow to by default: scrypt needs 32 MiB at the
/// default cost, a 16 MiB session a few copies of itself.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// The embedded component, compiled (or loaded from `cache`) and linked once per process.
pub fn embedded(cache: Option<&Path>) -> Result<SessionVaultPre<Host>, Error> {
    static LINKED: Mutex<Option<SessionVaultPre<Host>>> = Mutex::new(None);
    let mut linked = LINKED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pre) = linked.as_ref() {
        return Ok(pre.clone());
    }
    let engine = Engine::default();
    let component = match cache {
        Some(dir) => compiled::load(&engine, COMPONENT, dir),
        None => Component::new(&engine, COMPONENT),
    }
    .map_err(Error::Component)?;
    let pre = link(&engine, &component)?;
    *linked = Some(pre.clone());
    Ok(pre)
}

/// The component in the file at `path`, compiled and linked for this vault alone.
pub fn from_file(path: &Path) -> Result<SessionVaultPre<Host>, Error> {
    let engine = Engine::default();
    let component = Component::from_file(&engine, path).map_err(Error::Component)?;
    link(&engine, &component)
}

fn link(engine: &Engine, component: &Component) -> Result<SessionVaultPre<Host>, Error> {
    let mut linker = Linker::<Host>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(Error::Component)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(Error::Component)?;
    SessionVaultPre::new(pre).map_err(Error::Component)
}

/// A wasmtime store on `engine` whose component sees `wasi` and may grow its linear
/// memory to `memory_limit` bytes.
pub fn store(engine: &Engine, wasi: WasiCtx, memory_limit: usize) -> Store<Host> {
    let host = Host {
        wasi,
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new().memory_size(memory_limit).build(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    store
}

/// The state the component's WASI imports run against.
pub struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
