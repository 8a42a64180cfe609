//! `session-vault demo`: a guided run through the store on a throwaway directory.

use std::path::PathBuf;

use anyhow::Context;
use session_vault::{ManualClock, Secret, Session, SessionPatch, StoreError, Vault};

use super::args::Args;

const HOUR: u64 = 60 * 60 * 1000;

/// Runs the demo in `--dir` if given (it must not hold a store yet), else in a fresh
/// temporary directory that is removed afterwards.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (temp_dir()?, true),
    };
    let outcome = walk(&dir);
    if temporary {
        // Best effort: the directory is under the system's temporary directory anyway.
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

fn walk(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    let now = session_vault::Clock::now(&session_vault::SystemClock);
    let clock = ManualClock::new(now);
    let options = session_vault::VaultOptions::new().clock(clock.clone());
    let mut vault = options
        .open(dir, Secret::RawKey(key.clone()))
        .with_context(|| format!("opening a demo store in {}", dir.display()))?;
    println!(
        "1. Opened a new store in {} with a random 256-bit key.",
        dir.display()
    );

    let alice = session("s-alice-laptop", "alice", now, now + 2 * HOUR);
    vault.create(&alice)?;
    vault.create(&session("s-alice-phone", "alice", now, now + 24 * HOUR))?;
    vault.create(&session("s-bob-1", "bob", now, now + 24 * HOUR))?;
    println!(
        "2. Created 3 sessions (2 for alice, 1 for bob); count = {}.",
        vault.count()?
    );

    let read = vault
        .get("s-alice-laptop")?
        .context("the session just created is missing")?;
    println!(
        "3. get s-alice-laptop returns the same document, extra fields included: {}",
        read == alice
    );
    println!("   {}", serde_json::to_string(&read)?);

    let patch: SessionPatch = serde_json::from_value(serde_json::json!({
        "userContext": {"name": "Alice Liddell"},
        "security": {"lastAccessedAt": now + 1000, "accessCount": 2}
    }))?;
    let updated = vault.update("s-alice-laptop", &patch)?.to_value();
    println!(
        "4. update merged field by field: name = {}, email kept = {}, accessCount = {}.",
        updated.pointer("/userContext/name").unwrap_or_default(),
        updated.pointer("/userContext/email").unwrap_or_default(),
        updated.pointer("/security/accessCount").unwrap_or_default()
    );

    let files = files_under(dir)?;
    let secrets = ["alice@example.org", "Alice Liddell", "demo-access-token"];
    let leaks =
        (files.iter()).any(|(_, bytes)| secrets.iter().any(|s| contains(bytes, s.as_bytes())));
    let listing: Vec<String> = (files.iter())
        .map(|(name, bytes)| format!("{name} ({} bytes)", bytes.len()))
        .collect();
    println!(
        "5. On disk: {}. Sessions are AES-256-GCM records (the updated document alone is {} \
         bytes of JSON); plaintext visible in any file: {leaks}.",
        listing.join(", "),
        serde_json::to_vec(&updated)?.len(),
    );

    clock.advance(3 * HOUR);
    println!(
        "6. Three hours later: s-alice-laptop is {}, alice has {} live session(s), count = {}.",
        if vault.get("s-alice-laptop")?.is_some() {
            "live"
        } else {
            "expired (get returns none)"
        },
        vault.user_sessions("alice")?.len(),
        vault.count()?
    );
    println!(
        "   cleanup removed {} expired session(s).",
        vault.cleanup()?
    );
    println!(
        "7. revoke-user bob removed {} session(s).",
        vault.revoke_user("bob")?
    );
    println!("8. check: {}", serde_json::to_string(&vault.check()?)?);
    drop(vault);

    let mut wrong = key;
    if let Some(first) = wrong.first_mut() {
        *first ^= 1;
    }
    match Vault::open(dir, Secret::RawKey(wrong)) {
        Err(error) if matches!(error.store(), Some(StoreError::WrongKey)) => {
            println!("9. Opening with a different key fails: {error}.");
        }
        Err(error) => return Err(error).context("opening with a different key"),
        Ok(_) => anyhow::bail!("a different key opened the demo store"),
    }
    println!("Done. Try the CLI: session-vault --help");
    Ok(())
}

fn session(id: &str, user: &str, now: u64, expires_at: u64) -> Session {
    let doc = serde_json::json!({
        "sessionId": id,
        "sessionToken": format!("token-{id}"),
        "userContext": {"userId": user, "email": format!("{user}@example.org"), "roles": ["member"],
                        "locale": "en-GB"},
        "tokenMetadata": {"accessToken": "demo-access-token", "refreshToken": "demo-refresh-token",
                          "expiresAt": now + HOUR, "scopes": ["openid", "profile"]},
        "security": {"ipAddress": "192.0.2.10", "userAgent": "demo/1.0", "createdAt": now,
                     "lastAccessedAt": now, "accessCount": 1},
        "expiresAt": expires_at,
        "createdAt": now,
        "mfa": {"method": "totp", "verifiedAt": now}
    });
    // The literal above has every required field with the right type.
    Session::from_value(doc).unwrap_or_else(|e| unreachable!("demo document: {e}"))
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).with_context(|| format!("listing {}", at.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", at.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                files.push((name, bytes));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A fresh, not yet created directory under the system's temporary directory.
fn temp_dir() -> anyhow::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    Ok(std::env::temp_dir().join(format!("session-vault-demo-{}", hex::encode(suffix))))
}
