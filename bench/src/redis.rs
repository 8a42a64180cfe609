//! The `redis` backend's benchmark floor: the raw Redis round trips each operation needs
//! (a read, then a write of a session-sized value and its index entries), with no crypto
//! and no compare-and-swap.

use std::collections::HashMap;

use anyhow::Context;
use session_vault::{Clock, ManualClock, RedisConfig, Session, SessionPatch};

use super::operations::Target;

/// How long a benchmark call may wait for the server.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the benchmark connects to the server at `url`.
pub fn config(url: &str) -> RedisConfig {
    RedisConfig {
        url: url.to_owned(),
        timeout: TIMEOUT,
    }
}

/// A raw connection to the benchmark's server.
fn connect(url: &str) -> anyhow::Result<redis::Connection> {
    redis::Client::open(url)
        .with_context(|| format!("the redis url {url}"))?
        .get_connection_with_timeout(TIMEOUT)
        .with_context(|| format!("connecting to {url}"))
}

/// Removes every key of bucket `prefix` (the benchmark's throwaway stores).
pub fn discard(url: &str, prefix: &str) -> anyhow::Result<()> {
    let mut connection = connect(url)?;
    // SCAN, not KEYS: the server may be serving others.
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{prefix}}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut connection)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).query::<()>(&mut connection)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// (c) the round trips each operation needs, on plain JSON: `GET` then `SET` with the
/// expiry and the two index entries in one `MULTI` (create, update, touch), `GET`
/// (get), `GET` then `DEL` and `ZREM`s (delete), `ZRANGE` then `MGET` (user sessions),
/// `ZRANGEBYSCORE` then the deletes (cleanup).
pub struct Floor {
    connection: redis::Connection,
    prefix: String,
    clock: ManualClock,
    /// id → (user, JSON length), so the floor writes values of the session's size.
    sessions: HashMap<String, (String, usize)>,
}

impl Floor {
    pub fn open(url: &str, prefix: &str, clock: &ManualClock) -> anyhow::Result<Self> {
        Ok(Floor {
            connection: connect(url)?,
            prefix: format!("{{{prefix}}}:"),
            clock: clock.clone(),
            sessions: HashMap::new(),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// One read then one atomic write of a value of `len` bytes with its index entries.
    fn write(&mut self, id: &str, user: &str, len: usize, expires: u64) -> anyhow::Result<()> {
        let key = self.key(&format!("s:{id}"));
        let _: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut self.connection)?;
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(vec![b'x'; len])
            .arg("PXAT")
            .arg(expires)
            .ignore()
            .cmd("ZADD")
            .arg(self.key("x"))
            .arg(expires)
            .arg(id)
            .ignore()
            .cmd("ZADD")
            .arg(self.key(&format!("u:{user}")))
            .arg(0)
            .arg(id)
            .ignore()
            .query::<()>(&mut self.connection)?;
        Ok(())
    }

    fn existing(&self, id: &str) -> anyhow::Result<(String, usize)> {
        self.sessions
            .get(id)
            .cloned()
            .context("a benchmark session is missing")
    }

    fn remove(&mut self, id: &str) -> anyhow::Result<()> {
        let (user, _) = self.existing(id)?;
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.key(&format!("s:{id}")))
            .ignore()
            .cmd("ZREM")
            .arg(self.key("x"))
            .arg(id)
            .ignore()
            .cmd("ZREM")
            .arg(self.key(&format!("u:{user}")))
            .arg(id)
            .ignore()
            .query::<()>(&mut self.connection)?;
        self.sessions.remove(id);
        Ok(())
    }
}

impl Target for Floor {
    fn create(&mut self, session: &Session) -> anyhow::Result<()> {
        let len = serde_json::to_vec(session)?.len();
        let user = session.user().unwrap_or_default().to_owned();
        self.write(session.id(), &user, len, session.expires_at())?;
        self.sessions.insert(session.id().to_owned(), (user, len));
        Ok(())
    }
    fn get(&mut self, id: &str) -> anyhow::Result<()> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(&format!("s:{id}")))
            .query(&mut self.connection)?;
        value.context("a benchmark session is missing")?;
        Ok(())
    }
    fn update(&mut self, id: &str, _patch: &SessionPatch) -> anyhow::Result<()> {
        let (user, len) = self.existing(id)?;
        let expires = self.clock.now() + 86_400_000;
        self.write(id, &user, len, expires)
    }
    fn touch(&mut self, id: &str) -> anyhow::Result<()> {
        self.update(id, &SessionPatch::default())
    }
    fn delete(&mut self, id: &str) -> anyhow::Result<()> {
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(&format!("s:{id}")))
            .query(&mut self.connection)?;
        self.remove(id)
    }
    fn user_sessions(&mut self, user: &str) -> anyhow::Result<usize> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key(&format!("u:{user}")))
            .arg(0)
            .arg(-1)
            .query(&mut self.connection)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(&format!("s:{id}"))).collect();
        let values: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(keys).query(&mut self.connection)?;
        Ok(values.iter().flatten().count())
    }
    fn cleanup(&mut self) -> anyhow::Result<u64> {
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.key("x"))
            .arg(0)
            .arg(self.clock.now())
            .query(&mut self.connection)?;
        for id in &due {
            self.remove(id)?;
        }
        Ok(due.len() as u64)
    }
    fn close(&mut self) {}
    fn reopen(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}
