//! Reopening the disk a cut left and holding it against the model.

use std::collections::{BTreeMap, BTreeSet};

use session_vault::{Durability, ManualClock, Session};
use session_vault_guest::testing::power_cut::PowerCut;
use session_vault_guest::{Erase, Sessions};

use super::{Kind, Known, Played, open};

/// The document without the fields `touch` writes to stamps, which are not synced (so a
/// cut may lose them): the access fields, and a rolled expiry (only far-off sessions are
/// rolled, further off, so it stays far off either way).
fn settled(session: &Session) -> Session {
    let mut session = session.clone();
    session.set_access(0, 0);
    if session.expires_at() > super::play::FAR {
        session.set_expires_at(super::play::FAR);
    }
    session
}

impl Played {
    /// Reopens `after` (a cut of this scenario's disk) and holds it against the model.
    pub(super) fn check(&self, after: &PowerCut) -> Result<(), String> {
        verify(
            after,
            self.durability,
            &self.known,
            self.in_flight,
            &self.maybe,
            self.now,
        )
        .and_then(|()| self.check_keys_and_backend(after))
        .map_err(|e| format!("{:?} in flight: {e}", self.in_flight))
    }

    /// The acknowledged key retirements and migration hold after the cut, and nothing
    /// sealed under a retired key is left in any file.
    fn check_keys_and_backend(&self, after: &PowerCut) -> Result<(), String> {
        let meta = after
            .files()
            .into_iter()
            .find(|(path, _)| path == "store/session-vault.json")
            .ok_or("no metadata")?;
        let meta: serde_json::Value =
            serde_json::from_slice(&meta.1).map_err(|e| format!("metadata: {e}"))?;
        if self.in_flight != Some(Kind::Migrate) && meta["backend"] != self.backend.name() {
            return Err(format!(
                "backend {} after an acknowledged move to {:?}",
                meta["backend"], self.backend
            ));
        }
        let files = after.files();
        for &key_id in &self.retired {
            let entry = (meta["keys"].as_array().into_iter().flatten())
                .find(|k| k["id"] == key_id)
                .ok_or(format!("key {key_id} is gone from the metadata"))?;
            if entry["retired"] != true {
                return Err(format!("the retirement of key {key_id} was lost"));
            }
            let key = session_vault_guest::testing::crypto::Key::from_raw(&[key_id as u8; 32])
                .map_err(|e| e.to_string())?;
            let ids: Vec<&str> = self.known.history.keys().map(String::as_str).collect();
            let found = crate::erasure::opened_in(files.clone(), &key, key_id, &ids);
            if !found.is_empty() {
                return Err(format!("records under retired key {key_id}: {found:?}"));
            }
        }
        Ok(())
    }
}

/// Reopens the cut disk and holds it against the model.
fn verify(
    disk: &PowerCut,
    durability: Durability,
    known: &Known,
    in_flight: Option<Kind>,
    maybe: &[(String, Option<Session>, Option<Session>)],
    now: u64,
) -> Result<(), String> {
    if std::env::var_os("POWER_CUT_DEBUG").is_some() {
        eprintln!("--- before reopen");
        for (path, data) in disk.files() {
            if path.ends_with(".json") {
                eprintln!("{path} {}", String::from_utf8_lossy(&data));
            } else if !path.starts_with("legacy") {
                eprintln!("{path} {}", data.len());
            }
        }
    }
    let keys: Vec<u8> = std::iter::once(known.key)
        .chain(match in_flight {
            Some(Kind::AddKey) => known.old_keys.last().copied(),
            _ => None,
        })
        .collect();
    let mut opened = None;
    let mut errors = Vec::new();
    for key in keys {
        match open(
            disk,
            None,
            durability,
            key,
            &ManualClock::new(now),
            Erase::Deferred,
        ) {
            Ok(store) => {
                opened = Some(store);
                break;
            }
            Err(e) => errors.push(format!("key {key}: {e}")),
        }
    }
    let mut store = opened.ok_or_else(|| format!("the store does not open: {errors:?}"))?;
    if std::env::var_os("POWER_CUT_DEBUG").is_some() {
        eprintln!("--- after reopen");
        for (path, data) in disk.files() {
            if path.ends_with(".json") {
                eprintln!("{path} {}", String::from_utf8_lossy(&data));
            } else if !path.starts_with("legacy") {
                eprintln!("{path} {}", data.len());
            }
        }
    }
    let in_doubt: BTreeMap<&str, (&Option<Session>, &Option<Session>)> = maybe
        .iter()
        .map(|(id, a, b)| (id.as_str(), (a, b)))
        .collect();
    let mut ids: BTreeSet<String> = known.history.keys().cloned().collect();
    ids.extend(maybe.iter().map(|(id, _, _)| id.clone()));
    let mut live = 0;
    for id in &ids {
        let found = store.get(id).map_err(|e| format!("get {id}: {e}"))?;
        let found = found.as_ref().map(settled);
        let acked = known.sessions.get(id).filter(|s| s.expires_at() > now);
        let mut allowed: Vec<Option<Session>> = Vec::new();
        match durability {
            Durability::Durable => allowed.push(acked.map(settled)),
            _ => {
                allowed.push(None);
                for version in known.history.get(id).into_iter().flatten() {
                    allowed.push(version.as_ref().map(settled));
                }
            }
        }
        if let Some((before, after)) = in_doubt.get(id.as_str()) {
            allowed.push(before.as_ref().map(settled));
            allowed.push(after.as_ref().map(settled));
        }
        let allowed: Vec<Option<Session>> = (allowed.into_iter())
            .map(|s| s.filter(|s| s.expires_at() > now))
            .collect();
        if !allowed.contains(&found) {
            return Err(format!(
                "session {id}: found {found:?}, expected one of {allowed:?}"
            ));
        }
        live += u64::from(found.is_some());
    }
    let count = store.count().expect("a directory store's count");
    if count != live {
        return Err(format!("count {count} but {live} sessions read back"));
    }
    let opened = store.opened().clone();
    let report = store.check().map_err(|e| format!("check: {e}"))?;
    // A session that fails to open at open or in `check` is acknowledged data damaged.
    // (Bytes of the log that hold no record, say an unsynced stamp torn before a later
    // append reached the disk, are copied to quarantine/ too; they were never acknowledged,
    // and every acknowledged session was read back above.)
    if durability == Durability::Durable
        && (!opened.newly_quarantined.is_empty() || !report.newly_quarantined.is_empty())
    {
        return Err(format!(
            "quarantined: at open {opened:?}, by check {report:?}"
        ));
    }
    drop(store);
    let temps: Vec<String> = (disk.files().into_iter())
        .map(|(path, _)| path)
        .filter(|path| path.ends_with(".tmp"))
        .collect();
    if !temps.is_empty() {
        return Err(format!("temporary files survived the reopen: {temps:?}"));
    }
    Ok(())
}
