//! `session-vault`: the command line of the session store. See `--help`.

mod cli;

use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use session_vault::{ManualClock, Session, SessionPatch, StoreError, Vault, VaultOptions};

use cli::args::{Args, BackendArg, Command, KeyAction, StoreCommand};
use cli::exit::{self, Usage};

/// The largest document read from stdin; the store's own limit is at most 16 MiB.
const STDIN_LIMIT: u64 = 16 * 1024 * 1024 + 1;

fn main() -> ExitCode {
    // Everything this process creates (the store's files, written through the
    // component's WASI calls, which cannot set a mode) is private: 0600 files, 0700
    // directories.
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file mode creation mask; it cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::umask(0o077);
    }
    let args = Args::parse();
    let outcome = run(&args);
    cli::peak::report();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let (code, kind) = exit::classify(&error);
            // One line, whatever the error chain holds.
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("session-vault: error[{kind}]: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<u8> {
    let command = match &args.command {
        Command::Demo => {
            cli::demo::run(args)?;
            return Ok(exit::OK);
        }
        Command::Store(command) => command,
    };
    if let StoreCommand::Clear { yes: false } = command {
        return Err(Usage("clear removes every session; confirm with --yes".into()).into());
    }
    if let (
        StoreCommand::Migrate {
            to: BackendArg::Files | BackendArg::Log,
        },
        Some(_),
    ) = (command, &args.redis)
    {
        // A redis store moves out to --dir, created (0700) if missing.
        let dir = args.dir.as_ref().ok_or_else(|| {
            Usage("migrate --to files|log of a redis store moves it into --dir DIR: give it".into())
        })?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    if let StoreCommand::Migrate {
        to: BackendArg::Redis,
    } = command
        && (args.redis.is_none() || args.dir.is_none())
    {
        return Err(Usage(
            "migrate --to redis moves the store in --dir DIR into the server of --redis URL \
             (or SESSION_VAULT_REDIS_URL): give both"
                .into(),
        )
        .into());
    }
    let dir = args.dir();
    let secret = cli::secret::load(args.secret_file.as_deref())?;
    let mut options = options(args)?;
    if let StoreCommand::ImportLegacy { from, .. } = command {
        if !from.is_dir() {
            return Err(Usage(format!("--from {}: not a directory", from.display())).into());
        }
        options = options.legacy_source(from);
    }
    // A store in a server is named by its prefix, never by a directory it is not in.
    let opening = match (&args.redis, command) {
        (
            Some(_),
            StoreCommand::Migrate {
                to: BackendArg::Redis,
            },
        )
        | (None, _) => {
            format!("opening the store in {}", dir.display())
        }
        (Some(_), _) => format!(
            "opening the redis store {:?}",
            args.prefix
                .as_deref()
                .unwrap_or(session_vault::DEFAULT_PREFIX)
        ),
    };
    let mut vault = options.open(&dir, secret).context(opening)?;
    execute(&mut vault, command)
}

fn execute(vault: &mut Vault, command: &StoreCommand) -> anyhow::Result<u8> {
    match command {
        StoreCommand::Create => {
            let session = read_session()?;
            vault.create(&session)?;
            print(&serde_json::json!({ "sessionId": session.id() }))
        }
        StoreCommand::Set { if_unchanged } => {
            let session = read_session()?;
            if let Some(path) = if_unchanged {
                let expected = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the expected session from {}", path.display())
                })?;
                // `get` prints the document and a newline.
                let expected = expected.strip_suffix('\n').unwrap_or(&expected);
                if !vault.set_if_unchanged(&session, expected)? {
                    return Err(anyhow::Error::new(StoreError::NotFound).context(format!(
                        "session {:?} changed since it was read, or is absent or expired: \
                         nothing stored",
                        session.id()
                    )));
                }
            } else {
                vault.set(&session)?;
            }
            print(&serde_json::json!({ "sessionId": session.id() }))
        }
        StoreCommand::Get { id } => print_found(id, vault.get(id)?),
        StoreCommand::Touch { id, expires_at } => {
            print_found(id, vault.touch_until(id, *expires_at)?)
        }
        StoreCommand::Update { id } => {
            let patch: SessionPatch = read_stdin("a session patch")?;
            let session = vault
                .update(id, &patch)
                .with_context(|| format!("updating session {id:?}"))?;
            print(&session)
        }
        StoreCommand::Delete { id } => print(&serde_json::json!({ "deleted": vault.delete(id)? })),
        StoreCommand::Cleanup => print(&serde_json::json!({ "removed": vault.cleanup()? })),
        StoreCommand::List {
            user: Some(user), ..
        } => print(&vault.user_sessions(user)?),
        StoreCommand::List {
            user: None,
            limit,
            after,
            ids,
        } => {
            if *ids {
                let page = vault.list_ids(after.as_deref(), *limit)?;
                print(&serde_json::json!({ "ids": page.ids, "next": page.next }))
            } else {
                let page = vault.list(after.as_deref(), *limit)?;
                print(&serde_json::json!({ "sessions": page.sessions, "next": page.next }))
            }
        }
        StoreCommand::Count => print(&serde_json::json!({ "count": vault.count()? })),
        StoreCommand::Clear { .. } => print(&serde_json::json!({ "removed": vault.clear()? })),
        StoreCommand::RevokeUser { user } => {
            print(&serde_json::json!({ "removed": vault.revoke_user(user)? }))
        }
        StoreCommand::Check => print(&vault.check()?),
        StoreCommand::Compact => {
            let reclaimed = vault.compact(cli::progress::reporter("compacting segments", 1))?;
            print(&serde_json::json!({ "reclaimed": reclaimed }))
        }
        StoreCommand::Key { action } => match action {
            KeyAction::Add { new_secret_file } => {
                let secret = cli::secret::load_new(new_secret_file.as_deref())?;
                let id = vault.add_key(&secret).context("adding a key")?;
                let keys = vault.keys()?;
                let current = keys.iter().any(|k| k.id == id && k.current);
                print(&serde_json::json!({ "keyId": id, "current": current, "keys": keys }))
            }
            KeyAction::List => print(&vault.keys()?),
            KeyAction::Retire { id } => {
                vault
                    .retire_key(*id)
                    .with_context(|| format!("retiring key {id}"))?;
                print(&serde_json::json!({ "retired": id, "keys": vault.keys()? }))
            }
        },
        StoreCommand::Rekey => {
            let rekeyed = vault.rekey(cli::progress::reporter("re-encrypting sessions", 1))?;
            print(&serde_json::json!({ "rekeyed": rekeyed, "keys": vault.keys()? }))
        }
        StoreCommand::Migrate { to } => {
            let to: session_vault::BackendKind = (*to).into();
            let migrated = vault.migrate(to)?;
            print(&serde_json::json!({ "migrated": migrated, "backend": to.name() }))
        }
        StoreCommand::ImportLegacy {
            from,
            legacy_secret_file,
        } => return import_legacy(vault, from, legacy_secret_file.as_deref()),
    }?;
    Ok(exit::OK)
}

fn import_legacy(
    vault: &mut Vault,
    from: &std::path::Path,
    secret_file: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    let secret = cli::secret::load_legacy(secret_file)?;
    let mut report_progress = cli::progress::reporter("importing legacy sessions", 1000);
    let report = vault
        .import_legacy(&secret, |done, total| {
            report_progress(done as u64, total as u64);
        })
        .with_context(|| format!("importing the legacy store in {}", from.display()))?;
    print(&serde_json::json!({
        "imported": report.imported.len(),
        "expired": report.expired.len(),
        "alreadyPresent": report.already_present.len(),
        "failed": report.failed,
        "expiredIds": report.expired,
        "alreadyPresentIds": report.already_present,
    }))?;
    if report.failed.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "session-vault: error[corrupted]: {} legacy file(s) were not imported; see \"failed\" on stdout",
        report.failed.len()
    );
    Ok(exit::OTHER)
}

/// The store options from the flags, `SESSION_VAULT_NOW` and the cache directory.
pub fn options(args: &Args) -> anyhow::Result<VaultOptions> {
    let mut options = VaultOptions::new();
    if let Some(dir) = compiled_cache() {
        options = options.compiled_cache(dir);
    }
    if let Some(bytes) = args.max_session_bytes {
        options = options.max_session_bytes(bytes);
    }
    if let Some(durability) = args.durability {
        options = options.durability(durability.into());
    }
    if let Some(backend) = args.backend {
        options = options.backend(backend.into());
    }
    if let Some(erase) = args.erase {
        options = options.erase(erase.into());
    }
    if let Some(ms) = args.max_lifetime_ms {
        options = options.max_lifetime(std::time::Duration::from_millis(ms));
    }
    if let Some(ms) = args.idle_timeout_ms {
        options = options.idle_timeout(std::time::Duration::from_millis(ms));
    }
    if let Some(bytes) = args.cache_bytes {
        options = options.cache_bytes(bytes);
    }
    if let Some(ms) = args.lock_timeout_ms {
        options = options.lock_timeout(std::time::Duration::from_millis(ms));
    }
    if let Some(url) = &args.redis {
        // `migrate --to redis` opens the store in --dir, with the server it moves into.
        options = match &args.command {
            Command::Store(StoreCommand::Migrate {
                to: BackendArg::Redis,
            }) => options.redis_server(url),
            _ => options.redis(url),
        };
    }
    if let Some(prefix) = &args.prefix {
        options = options.prefix(prefix);
    }
    if let Some(ms) = args.redis_timeout_ms {
        options = options.redis_timeout(std::time::Duration::from_millis(ms));
    }
    if let Ok(now) = std::env::var("SESSION_VAULT_NOW") {
        let now: u64 = now.parse().map_err(|e| {
            Usage(format!(
                "SESSION_VAULT_NOW={now:?} is not milliseconds since the epoch: {e}"
            ))
        })?;
        options = options.clock(ManualClock::new(now));
    }
    Ok(options)
}

/// Where the compiled component is cached: `SESSION_VAULT_CACHE_DIR` (empty: nowhere),
/// else the XDG cache directory. Relative paths are ignored, as XDG requires.
fn compiled_cache() -> Option<std::path::PathBuf> {
    let absolute = |dir: std::path::PathBuf| Some(dir).filter(|d| d.is_absolute());
    if let Some(dir) = std::env::var_os("SESSION_VAULT_CACHE_DIR") {
        return absolute(dir.into());
    }
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(base) if !base.is_empty() => absolute(std::path::PathBuf::from(base)),
        _ => absolute(std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache")),
    }
    .map(|base| base.join("session-vault"))
}

/// Prints a session, or fails with `not-found` naming the id.
fn print_found(id: &str, session: Option<Session>) -> anyhow::Result<()> {
    match session {
        Some(session) => print(&session),
        None => Err(anyhow::Error::new(StoreError::NotFound)
            .context(format!("session {id:?} is absent or expired"))),
    }
}

/// The session document on stdin, refused as the store refuses it (`invalid-id` for a
/// bad `sessionId`, `invalid-input` for the rest).
fn read_session() -> anyhow::Result<Session> {
    Ok(Session::parse(&read_stdin_bytes()?)?)
}

fn read_stdin<T: serde::de::DeserializeOwned>(what: &str) -> anyhow::Result<T> {
    serde_json::from_slice(&read_stdin_bytes()?)
        .map_err(|e| StoreError::InvalidInput(format!("stdin is not {what}: {e}")).into())
}

/// Everything on stdin, up to [`STDIN_LIMIT`] (`too-large` past it).
fn read_stdin_bytes() -> anyhow::Result<Vec<u8>> {
    let mut text = Vec::new();
    std::io::stdin()
        .take(STDIN_LIMIT)
        .read_to_end(&mut text)
        .context("reading stdin")?;
    if text.len() as u64 >= STDIN_LIMIT {
        return Err(StoreError::TooLarge(format!(
            "stdin holds more than {} bytes",
            STDIN_LIMIT - 1
        ))
        .into());
    }
    Ok(text)
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value).context("writing to stdout")?;
    writeln!(stdout).context("writing to stdout")?;
    Ok(())
}
