//! The Rust API front: `session_vault::Vault`, the component in wasmtime.

use std::path::{Path, PathBuf};

use serde_json::Value;
use session_vault::{BackendKind, Secret, SessionPatch, Vault, VaultOptions};

use super::*;

/// The Rust API: `session_vault::Vault`, the component in wasmtime.
pub struct Api {
    vault: Option<Vault>,
    options: VaultOptions,
    dir: PathBuf,
    secret: Secret,
}

impl Api {
    fn vault(&mut self) -> &mut Vault {
        self.vault.as_mut().expect("the vault is open")
    }
}

fn api_fail(error: session_vault::Error) -> Fail {
    match error.store() {
        Some(store) => store.kind().to_owned(),
        None => panic!("the component failed: {error}"),
    }
}

impl Front for Api {
    const LOCKS: bool = true;
    const REOPENS: bool = false;
    const PRIVATE_FILES: bool = false;

    fn open(setup: &Setup) -> Result<Self, Fail> {
        let mut options = VaultOptions::new()
            .clock(setup.clock.clone())
            .durability(setup.durability)
            .backend(setup.backend)
            .erase(setup.erase);
        if let Some(max) = setup.max_session_bytes {
            options = options.max_session_bytes(max);
        }
        if let Some(ms) = setup.max_lifetime {
            options = options.max_lifetime(std::time::Duration::from_millis(ms));
        }
        if let Some(ms) = setup.idle_timeout {
            options = options.idle_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some(redis) = &setup.redis {
            options = options.redis(&redis.url).prefix(&redis.prefix);
        }
        if let Some(server) = &setup.server {
            options = options.redis_server(&server.url).prefix(&server.prefix);
        }
        let vault = options
            .open(&setup.dir, setup.secret.secret())
            .map_err(api_fail)?;
        Ok(Api {
            vault: Some(vault),
            options,
            dir: setup.dir.clone(),
            secret: setup.secret.secret(),
        })
    }

    fn create_text(&mut self, text: &str) -> Result<(), Fail> {
        let session = parse_session(text)?;
        self.vault().create(&session).map_err(api_fail)
    }

    fn set_text(&mut self, text: &str) -> Result<(), Fail> {
        let session = parse_session(text)?;
        self.vault().set(&session).map_err(api_fail)
    }

    fn set_if_unchanged(&mut self, doc: &Value, expected: &Value) -> Result<bool, Fail> {
        let session = parse_session(&doc.to_string())?;
        (self.vault())
            .set_if_unchanged(&session, &expected.to_string())
            .map_err(api_fail)
    }

    fn get(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        Ok(self.vault().get(id).map_err(api_fail)?.as_ref().map(value))
    }

    fn touch_until(&mut self, id: &str, expires_at: u64) -> Result<Option<Value>, Fail> {
        let session = (self.vault())
            .touch_until(id, Some(expires_at))
            .map_err(api_fail)?;
        Ok(session.as_ref().map(value))
    }

    fn touch(&mut self, id: &str) -> Result<Option<Value>, Fail> {
        Ok(self
            .vault()
            .touch(id)
            .map_err(api_fail)?
            .as_ref()
            .map(value))
    }

    fn update_text(&mut self, id: &str, patch: &str) -> Result<Value, Fail> {
        let patch: SessionPatch = parse(patch)?;
        Ok(value(&self.vault().update(id, &patch).map_err(api_fail)?))
    }

    fn delete(&mut self, id: &str) -> Result<bool, Fail> {
        self.vault().delete(id).map_err(api_fail)
    }

    fn cleanup(&mut self) -> Result<u64, Fail> {
        self.vault().cleanup().map_err(api_fail)
    }

    fn page_ids(&mut self, after: Option<&str>, limit: u32) -> Result<IdsPage, Fail> {
        let page = self.vault().list_ids(after, limit).map_err(api_fail)?;
        Ok((page.ids, page.next))
    }

    fn page(&mut self, after: Option<&str>, limit: u32) -> Result<Page, Fail> {
        let page = self.vault().list(after, limit).map_err(api_fail)?;
        Ok((page.sessions.iter().map(value).collect(), page.next))
    }

    fn list(&mut self, user: &str) -> Result<Vec<Value>, Fail> {
        Ok(self
            .vault()
            .user_sessions(user)
            .map_err(api_fail)?
            .iter()
            .map(value)
            .collect())
    }

    fn count(&mut self) -> Result<u64, Fail> {
        self.vault().count().map_err(api_fail)
    }

    fn clear(&mut self) -> Result<u64, Fail> {
        self.vault().clear().map_err(api_fail)
    }

    fn revoke_user(&mut self, user: &str) -> Result<u64, Fail> {
        self.vault().revoke_user(user).map_err(api_fail)
    }

    fn check(&mut self) -> Result<Value, Fail> {
        Ok(
            serde_json::to_value(self.vault().check().map_err(api_fail)?)
                .expect("a report serializes"),
        )
    }

    fn add_key(&mut self, secret: &TestSecret) -> Result<u32, Fail> {
        let id = self.vault().add_key(&secret.secret()).map_err(api_fail)?;
        let keys = self.vault().keys().map_err(api_fail)?;
        if keys.iter().any(|k| k.id == id && k.current) {
            self.secret = secret.secret();
        }
        Ok(id)
    }

    fn keys(&mut self) -> Result<Value, Fail> {
        Ok(serde_json::to_value(self.vault().keys().map_err(api_fail)?).expect("keys serialize"))
    }

    fn rekey(&mut self) -> Result<u64, Fail> {
        self.vault().rekey(|_, _| {}).map_err(api_fail)
    }

    fn retire_key(&mut self, id: u32) -> Result<(), Fail> {
        self.vault().retire_key(id).map_err(api_fail)
    }

    fn compact(&mut self) -> Result<u64, Fail> {
        self.vault().compact(|_, _| {}).map_err(api_fail)
    }

    fn hold_syncs(&mut self) -> Result<(), Fail> {
        self.vault().hold_syncs().map_err(api_fail)
    }

    fn flush(&mut self) -> Result<(), Fail> {
        self.vault().flush().map_err(api_fail)
    }

    fn migrate(&mut self, to: BackendKind) -> Result<u64, Fail> {
        self.vault().migrate(to).map_err(api_fail)
    }

    fn import_legacy(&mut self, from: &Path, secret: &str) -> Result<Imported, Fail> {
        // The legacy directory is preopened when the vault opens: reopen with it.
        drop(self.vault.take());
        let options = self.options.clone().legacy_source(from);
        self.vault = Some(
            options
                .open(&self.dir, self.secret.clone())
                .map_err(api_fail)?,
        );
        let mut calls = Vec::new();
        let report = self
            .vault()
            .import_legacy(secret, |done, total| calls.push((done, total)))
            .map_err(api_fail)?;
        let files = calls.last().map_or(0, |&(_, total)| total);
        assert_eq!(calls.first(), Some(&(0, files)), "progress starts at zero");
        assert_eq!(
            calls.last(),
            Some(&(files, files)),
            "progress ends at the total"
        );
        Ok(report.into())
    }
}
