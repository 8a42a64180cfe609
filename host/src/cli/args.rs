//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
The secret comes from SESSION_VAULT_SECRET or --secret-file PATH, never from an argument:
a passphrase of at least 32 characters, or `hex:` and 64 hex digits for a raw 256-bit key.

Output is JSON on stdout, in the original store's camelCase shape. Errors are one line
on stderr: `session-vault: error[<case>]: <what happened>`.

Exit codes:
  0  success
  1  not found (get or update of an absent or expired session; set of a removed one)
  2  usage or invalid input (bad id, document, patch, size, secret, flag)
  3  wrong key (the secret does not open this store)
  4  any other store error (locked, corrupted, missing key, I/O, component failure)

SESSION_VAULT_NOW=<ms since the epoch> fixes the clock the store sees (for tests and for
reproducing expiry).

The compiled component is cached in SESSION_VAULT_CACHE_DIR, else $XDG_CACHE_HOME/session-vault,
else ~/.cache/session-vault, so a command does not compile it again; SESSION_VAULT_CACHE_DIR=
(empty) turns the cache off.";

/// `--durability`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Synced before each command returns.
    Durable,
    /// Not synced.
    Relaxed,
}

/// `--erase`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EraseArg {
    /// At the next compaction (cleanup, compact, or enough dead records).
    Deferred,
    /// Before delete, revoke-user, clear or cleanup returns.
    Immediate,
}

impl From<EraseArg> for session_vault::Erase {
    fn from(arg: EraseArg) -> Self {
        match arg {
            EraseArg::Deferred => session_vault::Erase::Deferred,
            EraseArg::Immediate => session_vault::Erase::Immediate,
        }
    }
}

/// `--backend`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// One file per session.
    Files,
    /// Records appended to segment files.
    Log,
    /// Sealed records in a Redis server shared by many hosts (needs --redis).
    Redis,
}

impl From<BackendArg> for session_vault::BackendKind {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Files => session_vault::BackendKind::Files,
            BackendArg::Log => session_vault::BackendKind::Log,
            BackendArg::Redis => session_vault::BackendKind::Redis,
        }
    }
}

impl From<DurabilityArg> for session_vault::Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Durable => session_vault::Durability::Durable,
            DurabilityArg::Relaxed => session_vault::Durability::Relaxed,
        }
    }
}

/// An encrypted, file-backed session store (a WASI component run by wasmtime).
#[derive(Debug, Parser)]
#[command(name = "session-vault", version, after_help = AFTER_HELP)]
pub struct Args {
    /// The store directory (created with mode 0700 if missing).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Read the secret from this file (one trailing newline is ignored).
    #[arg(long, global = true, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Refuse sessions whose JSON exceeds this many bytes (default 65536).
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_session_bytes: Option<u32>,
    /// Expire sessions not accessed for this many milliseconds (default: no idle timeout).
    #[arg(long, global = true, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Expire every session this many milliseconds after its createdAt (or first write),
    /// whatever its expiresAt says; no touch moves it past (default: no cap).
    #[arg(long, global = true, value_name = "MS")]
    pub max_lifetime_ms: Option<u64>,
    /// Keep up to this many bytes of recently used sessions decrypted in memory
    /// (default 8388608; 0 turns the cache off).
    #[arg(long, global = true, value_name = "BYTES")]
    pub cache_bytes: Option<u64>,
    /// Wait up to this many milliseconds for another process holding the store to let go
    /// (default 100); past it the command fails with `locked` (exit 4).
    #[arg(long, global = true, value_name = "MS", visible_alias = "lock-timeout")]
    pub lock_timeout_ms: Option<u64>,
    /// `durable` syncs every session write and removal before it returns; `relaxed` does
    /// not (faster; a power loss can lose or empty recent writes). (Default: durable.)
    #[arg(long, global = true, value_name = "MODE")]
    pub durability: Option<DurabilityArg>,
    /// Where a new store keeps its sessions: `log` (appended records, the default) or
    /// `files` (one file per session). An existing store keeps what it was created with.
    #[arg(long, global = true, value_name = "BACKEND")]
    pub backend: Option<BackendArg>,
    /// When the records of removed sessions leave the disk: `deferred` (the default: at
    /// the next compaction) or `immediate` (the log is compacted before delete,
    /// revoke-user, clear or cleanup returns).
    #[arg(long, global = true, value_name = "WHEN")]
    pub erase: Option<EraseArg>,
    /// Keep the store in this Redis (or Valkey) server, shared by every host that opens
    /// it: `redis://[user:password@]HOST:PORT/DB`. No directory lock is taken; `--dir`
    /// is then only the other end of a `migrate`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SESSION_VAULT_REDIS_URL"
    )]
    pub redis: Option<String>,
    /// With --redis, the prefix of the store's keys (default `session-vault`): 1 to 64
    /// characters of [A-Za-z0-9_.:-], one store per prefix; a trailing colon is the
    /// separator, as in connect-redis's `sess:` (`sess:` and `sess` are one store, keys
    /// `{sess}:…`).
    #[arg(
        long,
        global = true,
        value_name = "PREFIX",
        env = "SESSION_VAULT_REDIS_PREFIX"
    )]
    pub prefix: Option<String>,
    /// With --redis, how long connecting and each request may take (default 2000); past
    /// it the command fails with `unavailable` (exit 4).
    #[arg(long, global = true, value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk through the store's features on a throwaway store.
    Demo,
    /// An operation on the store in --dir.
    #[command(flatten)]
    Store(StoreCommand),
}

/// The commands that operate on the store in `--dir`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Store a new session: its JSON document is read from stdin.
    Create,
    /// Store a session whether or not its id is live (create or replace, one atomic
    /// step): its JSON document is read from stdin; prints `{"sessionId":ID}`.
    Set {
        /// Store it only if the live session of its id is, as stored now, exactly the
        /// document in this file (as `get` printed it); exit 1, nothing stored, if it
        /// changed since or is absent or expired (a compare-and-set: read, merge, retry).
        #[arg(long, value_name = "FILE")]
        if_unchanged: Option<std::path::PathBuf>,
    },
    /// Print a session's JSON document (exit 1 if absent or expired).
    Get {
        /// The session id.
        id: String,
    },
    /// Record an access (lastAccessedAt = now, accessCount + 1) and print the session
    /// (exit 1 if absent or expired).
    Touch {
        /// The session id.
        id: String,
        /// Also move the session's `expiresAt` to this time (ms since the epoch): a rolling
        /// expiry, written as cheaply as the access itself.
        #[arg(long, value_name = "MS")]
        expires_at: Option<u64>,
    },
    /// Merge a patch read from stdin into a session and print the result.
    Update {
        /// The session id.
        id: String,
    },
    /// Remove a session (succeeds if it is already gone).
    Delete {
        /// The session id.
        id: String,
    },
    /// Remove every expired session.
    Cleanup,
    /// Print the live sessions of a user as a JSON array (`--user`); without it, one page
    /// of every live session in id order, as `{"sessions":[...],"next":CURSOR}` (`next` is
    /// null on the last page; pass it as `--after` for the next).
    List {
        /// The user id: print all of this user's sessions, oldest first.
        #[arg(long, conflicts_with_all = ["limit", "after", "ids"])]
        user: Option<String>,
        /// The most sessions on the page (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after this cursor (the `next` of the page before).
        #[arg(long)]
        after: Option<String>,
        /// Print only the ids, as `{"ids":[...],"next":CURSOR}`: no session is read.
        #[arg(long)]
        ids: bool,
    },
    /// Print how many live sessions the store holds.
    Count,
    /// Remove every session.
    Clear {
        /// Confirm that every session is to be removed.
        #[arg(long)]
        yes: bool,
    },
    /// Remove every session of a user.
    RevokeUser {
        /// The user id.
        user: String,
    },
    /// Verify every session file, quarantine damaged ones and report (with the dead
    /// bytes and the oldest key still on disk).
    Check,
    /// Compact the log now: no record of a removed session or replaced version is left.
    /// Safe to interrupt; run again to finish.
    Compact,
    /// Manage the keyring: add a key, list keys, retire an old key.
    Key {
        /// What to do with the keyring.
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Re-encrypt every session still under an older key with the current key.
    ///
    /// Safe to interrupt at any point (even SIGKILL) and to run again.
    Rekey,
    /// Move every session to the other storage backend (safe to interrupt and run again);
    /// `--to redis` moves the store in --dir into the server of --redis (then every host
    /// opens it there; the directory keeps no session).
    Migrate {
        /// The backend to move to.
        #[arg(long, value_name = "BACKEND")]
        to: BackendArg,
    },
    /// Import a store written by the original TypeScript FileSessionStore.
    ///
    /// The legacy secret comes from SESSION_VAULT_LEGACY_SECRET or --legacy-secret-file.
    /// The legacy directory is opened read-only and never changed. Live sessions are
    /// imported; expired ones are skipped and counted; ids already in the store are left
    /// as they are; files that fail are listed with the reason (exit 4). A wrong legacy
    /// secret imports nothing (exit 3). Running it again imports nothing twice.
    ImportLegacy {
        /// The legacy store directory (files `<sessionId>.session`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Read the legacy secret from this file (one trailing newline is ignored).
        #[arg(long, value_name = "PATH")]
        legacy_secret_file: Option<PathBuf>,
    },
}

/// Keyring commands.
#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Add a key from a new secret (SESSION_VAULT_NEW_SECRET or --new-secret-file) and make
    /// it current; open the store with the new secret from then on. The secret of a retired
    /// key restores that key instead.
    Add {
        /// Read the new secret from this file (one trailing newline is ignored).
        #[arg(long, value_name = "PATH")]
        new_secret_file: Option<PathBuf>,
    },
    /// List the keys, with how many sessions each encrypts.
    List,
    /// Retire an old key; refused while any session still depends on it.
    Retire {
        /// The key id (see `key list`).
        id: u32,
    },
}

impl Args {
    /// The store directory, defaulting to `./.sessions`.
    pub fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./.sessions"))
    }
}
