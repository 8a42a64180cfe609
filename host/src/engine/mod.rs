//! The component in wasmtime: the embedded build, compiled (or loaded from
//! [`compiled`]'s cache) and linked to WASI once per process, and the [`Host`] state
//! each vault's wasmtime store runs it against.

mod compiled;

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::SessionVaultKeyvaluePre as SessionVaultPre;
use crate::error::Error;
use crate::keyvalue::{self, KeyvalueCtx, KeyvalueView, Server};

/// The component built from `guest/` by this crate's build script: imports only WASI.
pub static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/session-vault.wasm"));

/// The key-value component (the `session-vault-keyvalue` world): also imports
/// `wasi:keyvalue` and `indexes`, for the `redis` backend.
pub static KEYVALUE_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/session-vault-keyvalue.wasm"));

/// Which embedded component to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// [`COMPONENT`].
    Plain,
    /// [`KEYVALUE_COMPONENT`].
    Keyvalue,
}

/// Linear memory the component may grow to by default: scrypt needs 32 MiB at the
/// default cost, a 16 MiB session a few copies of itself.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// The embedded component, compiled (or loaded from `cache`) and linked once per process.
pub fn embedded(cache: Option<&Path>, variant: Variant) -> Result<SessionVaultPre<Host>, Error> {
    static PLAIN: Mutex<Option<SessionVaultPre<Host>>> = Mutex::new(None);
    static KEYVALUE: Mutex<Option<SessionVaultPre<Host>>> = Mutex::new(None);
    let (slot, bytes) = match variant {
        Variant::Plain => (&PLAIN, COMPONENT),
        Variant::Keyvalue => (&KEYVALUE, KEYVALUE_COMPONENT),
    };
    let mut linked = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pre) = linked.as_ref() {
        return Ok(pre.clone());
    }
    let engine = engine()?;
    let component = match cache {
        Some(dir) => compiled::load(&engine, bytes, dir),
        None => Component::new(&engine, bytes),
    }
    .map_err(Error::Component)?;
    let pre = link(&engine, &component)?;
    *linked = Some(pre.clone());
    Ok(pre)
}

/// The component in the file at `path`, compiled and linked for this vault alone.
pub fn from_file(path: &Path) -> Result<SessionVaultPre<Host>, Error> {
    let engine = engine()?;
    let component = Component::from_file(&engine, path).map_err(Error::Component)?;
    link(&engine, &component)
}

/// The engine components are compiled for. With `SESSION_VAULT_PROFILE=perfmap` in the
/// environment, wasmtime writes `/tmp/perf-<pid>.map`, so that `perf report` names the
/// component's functions (scripts/profile).
fn engine() -> Result<Engine, Error> {
    let mut config = wasmtime::Config::new();
    if std::env::var_os("SESSION_VAULT_PROFILE").is_some_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(Error::Component)
}

fn link(engine: &Engine, component: &Component) -> Result<SessionVaultPre<Host>, Error> {
    let mut linker = Linker::<Host>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(Error::Component)?;
    keyvalue::add_to_linker(&mut linker, |host| {
        KeyvalueView::new(&mut host.keyvalue, &mut host.table)
    })
    .map_err(Error::Component)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(Error::Component)?;
    SessionVaultPre::new(pre).map_err(Error::Component)
}

/// A wasmtime store on `engine` whose component sees `wasi` (and `keyvalue`, if any,
/// behind its `wasi:keyvalue` imports) and may grow its linear memory to
/// `memory_limit` bytes.
pub fn store(
    engine: &Engine,
    wasi: WasiCtx,
    keyvalue: Option<Server>,
    memory_limit: usize,
) -> Store<Host> {
    let host = Host {
        wasi,
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new().memory_size(memory_limit).build(),
        keyvalue: KeyvalueCtx::new(keyvalue),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    store
}

/// The state the component's imports run against: WASI's, the key-value imports' (which
/// they reach through a [`KeyvalueView`] of it), and the resource table where both keep
/// the guest's handles.
pub struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// The server behind `wasi:keyvalue`, if any.
    keyvalue: KeyvalueCtx,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
