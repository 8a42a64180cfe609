//! The Redis commands behind a bucket, on full keys (`{prefix}:name`): one place for
//! the protocol, used by the component's imports and by the native [`RedisBucket`].
//!
//! [`RedisBucket`]: super::RedisBucket

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};
use session_vault_guest::bucket::{Change, Entry, LedgerPage, Member};
use session_vault_guest::bucket::{FENCE, LEDGER};

use super::server::Server;

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// The bucket script (`host/redis/bucket.lua`): every request of the protocol, the one
/// definition the npm package loads too. Its header documents each operation.
pub const BUCKET_SCRIPT: &str = include_str!("../../redis/bucket.lua");

static BUCKET: LazyLock<Script> = LazyLock::new(|| Script::new(BUCKET_SCRIPT));

/// An invocation of the bucket script for operation `op`.
fn request(op: &str) -> ScriptInvocation<'static> {
    let mut invocation = BUCKET.prepare_invoke();
    invocation.arg(op);
    invocation
}

/// A failed request, described with the server's address and cause.
pub type Failure = String;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The change was applied.
    Applied,
    /// The key changed since it was read: nothing was applied.
    Changed,
    /// The bucket is fenced (its store moves or moved out): nothing was applied.
    Fenced,
}

impl Server {
    /// The value of `key`.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let mut invocation = request("get");
        invocation.key(key);
        self.run(|c| invocation.invoke(c))
    }

    /// The values of `keys`, in order, in one round trip.
    pub fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = request("get-many");
        invocation.key(keys);
        let values: Vec<Option<Vec<u8>>> = self.run(|c| invocation.invoke(c))?;
        if values.len() != keys.len() {
            return Err(format!(
                "a get of {} keys answered {} values",
                keys.len(),
                values.len()
            ));
        }
        Ok(values)
    }

    /// Sets `key` to `value`, with no expiry.
    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Failure> {
        let mut invocation = request("set");
        invocation.key(key).arg(value);
        self.run(|c| invocation.invoke(c))
    }

    /// Sets every key to its value in one round trip.
    pub fn set_many(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<(), Failure> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut invocation = request("set-many");
        for (key, value) in pairs {
            invocation.key(key).arg(value.as_slice());
        }
        self.run(|c| invocation.invoke(c))
    }

    /// Removes `keys`; absent ones are not an error.
    pub fn delete_many(&mut self, keys: &[String]) -> Result<(), Failure> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut invocation = request("delete-many");
        invocation.key(keys);
        self.run(|c| invocation.invoke::<i64>(c)).map(drop)
    }

    /// Whether `key` holds a value.
    pub fn exists(&mut self, key: &str) -> Result<bool, Failure> {
        let mut invocation = request("exists");
        invocation.key(key);
        self.run(|c| invocation.invoke(c))
    }

    /// Adds `delta` to the integer in `key`.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64, Failure> {
        let mut invocation = request("increment");
        invocation.key(key).arg(delta);
        self.run(|c| invocation.invoke(c))
    }

    /// One `SCAN` step over the keys starting with `prefix`: the keys with the prefix
    /// taken off, and the next cursor (`None` when the scan is complete). Cursors are
    /// strings, as `wasi:keyvalue` passes them: the decimal `SCAN` cursor; any other text
    /// (one this host did not give) is refused without a round trip.
    pub fn scan(
        &mut self,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), Failure> {
        let cursor = match cursor {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| format!("the cursor {text:?} is not one this host gave"))?,
        };
        // `prefix` is `{name}:` with name in [A-Za-z0-9_.:-]: no glob character.
        let pattern = format!("{prefix}*");
        let mut invocation = request("scan");
        invocation
            .key(format!("{prefix}{FENCE}"))
            .arg(cursor)
            .arg(&pattern)
            .arg(SCAN_COUNT);
        let (next, keys): (u64, Vec<Vec<u8>>) = self.run(|c| invocation.invoke(c))?;
        // A key that is not UTF-8 is none of the store's: skipped, like any foreign key.
        let keys = keys
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect();
        Ok((keys, (next != 0).then(|| next.to_string())))
    }

    /// Up to `limit` frames of the ledger of the bucket `prefix` after stream id `after`.
    pub fn ledger(&mut self, prefix: &str, after: &str, limit: u32) -> Result<LedgerPage, Failure> {
        let mut invocation = request("ledger");
        invocation
            .key(format!("{prefix}{LEDGER}"))
            .arg(after)
            .arg(limit);
        let reply: Vec<Vec<u8>> = self.run(|c| invocation.invoke(c))?;
        ledger_page(reply)
    }

    /// The value of `key` and the ledger page of [`Server::ledger`], in one atomic step.
    pub fn read(
        &mut self,
        prefix: &str,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Option<Vec<u8>>, LedgerPage), Failure> {
        let mut invocation = request("read");
        invocation
            .key(key)
            .key(format!("{prefix}{LEDGER}"))
            .arg(after)
            .arg(limit);
        let mut reply: Vec<Option<Vec<u8>>> = self.run(|c| invocation.invoke(c))?;
        if reply.is_empty() {
            return Err("a read answered nothing".into());
        }
        let value = reply.remove(0);
        let rest: Option<Vec<Vec<u8>>> = reply.into_iter().collect();
        let rest = rest.ok_or("a read answered nil for a frame")?;
        Ok((value, ledger_page(rest)?))
    }

    /// Takes the frames of the ledger of bucket `prefix` before stream id `before` out.
    pub fn trim_ledger(&mut self, prefix: &str, before: &str) -> Result<(), Failure> {
        let mut invocation = request("trim-ledger");
        invocation.key(format!("{prefix}{LEDGER}")).arg(before);
        self.run(|c| invocation.invoke::<i64>(c)).map(drop)
    }

    /// Applies `change` to `key` (whose index names are under `prefix`) if it still holds
    /// `read` and the bucket is not fenced.
    pub fn commit(
        &mut self,
        prefix: &str,
        key: &str,
        read: Option<&[u8]>,
        change: &Change,
    ) -> Result<Commit, Failure> {
        let mut invocation = request("commit");
        invocation.key(key);
        match read {
            Some(read) => invocation.arg("1").arg(read),
            None => invocation.arg("0").arg(""),
        };
        match &change.value {
            Some(value) => invocation.arg("set").arg(value.as_slice()),
            None => invocation.arg("del").arg(""),
        };
        match change.expires_at {
            Some(at) => invocation.arg(at),
            None => invocation.arg(""),
        };
        invocation.arg(change.add.len());
        for entry in &change.add {
            invocation.key(format!("{prefix}{}", entry.index));
            invocation.arg(&entry.member).arg(entry.score);
        }
        invocation.arg(change.remove.len());
        for member in &change.remove {
            invocation.key(format!("{prefix}{}", member.index));
            invocation.arg(&member.member);
        }
        match &change.frame {
            Some(frame) => invocation.arg(frame.as_slice()),
            None => invocation.arg(""),
        };
        invocation.key(format!("{prefix}{LEDGER}"));
        invocation.key(format!("{prefix}{FENCE}"));
        let outcome: i64 = self.run(|c| invocation.invoke(c))?;
        Ok(match outcome {
            1 => Commit::Applied,
            2 => Commit::Fenced,
            _ => Commit::Changed,
        })
    }

    /// Adds index members (indexes under `prefix`), or sets their scores.
    pub fn add(&mut self, prefix: &str, entries: &[Entry]) -> Result<(), Failure> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut invocation = request("add");
        for entry in entries {
            invocation
                .key(format!("{prefix}{}", entry.index))
                .arg(&entry.member)
                .arg(entry.score);
        }
        self.run(|c| invocation.invoke::<i64>(c)).map(drop)
    }

    /// Removes index members (indexes under `prefix`).
    pub fn remove(&mut self, prefix: &str, members: &[Member]) -> Result<(), Failure> {
        if members.is_empty() {
            return Ok(());
        }
        let mut invocation = request("remove");
        for member in members {
            invocation
                .key(format!("{prefix}{}", member.index))
                .arg(&member.member);
        }
        self.run(|c| invocation.invoke::<i64>(c)).map(drop)
    }

    /// Up to `limit` members of index `key` scored `min..=max`, lowest first.
    pub fn range(
        &mut self,
        key: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, Failure> {
        let mut invocation = request("range");
        invocation.key(key).arg(min).arg(max).arg(limit);
        let members: Vec<Vec<u8>> = self.run(|c| invocation.invoke(c))?;
        self.utf8_members(key, members)
    }

    /// Up to `limit` members of index `key` greater than `after` in byte order (from the
    /// first if `after` is empty): ZRANGE BYLEX, the order of an index scored all 0.
    pub fn members_after(
        &mut self,
        key: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, Failure> {
        let mut invocation = request("members-after");
        invocation.key(key).arg(after).arg(limit);
        let members: Vec<Vec<u8>> = self.run(|c| invocation.invoke(c))?;
        self.utf8_members(key, members)
    }

    /// The members of index `key` that are UTF-8; the others are removed from it.
    fn utf8_members(&mut self, key: &str, members: Vec<Vec<u8>>) -> Result<Vec<String>, Failure> {
        let (ids, junk): (Vec<_>, Vec<_>) = members
            .into_iter()
            .map(String::from_utf8)
            .partition(Result::is_ok);
        if !junk.is_empty() {
            // No session id is anything but UTF-8: such a member was planted. Dropped, so
            // it cannot stall a cleanup that pages through the index.
            let junk: Vec<Vec<u8>> = junk
                .into_iter()
                .filter_map(|m| m.err())
                .map(|e| e.into_bytes())
                .collect();
            let mut invocation = request("remove");
            for member in &junk {
                invocation.key(key).arg(member.as_slice());
            }
            self.run(|c| invocation.invoke::<i64>(c))?;
        }
        Ok(ids.into_iter().filter_map(Result::ok).collect())
    }

    /// How many members of index `key` are scored `min..=max`.
    pub fn count(&mut self, key: &str, min: u64, max: u64) -> Result<u64, Failure> {
        let mut invocation = request("count");
        invocation.key(key).arg(min).arg(max);
        self.run(|c| invocation.invoke(c))
    }
}

/// A ledger page from the script's reply: the last stream id, the highest one taken
/// out, the highest one given, the frames. Stream ids must be text.
fn ledger_page(mut reply: Vec<Vec<u8>>) -> Result<LedgerPage, Failure> {
    const HEAD: usize = 3;
    if reply.len() < HEAD {
        return Err("a ledger read answered a reply of the wrong shape".into());
    }
    let frames = reply.split_off(HEAD);
    let mut ids = reply.into_iter().map(|id| {
        String::from_utf8(id)
            .map_err(|_| Failure::from("the server answered a stream id that is not text"))
    });
    let (Some(last), Some(max_deleted), Some(last_generated)) =
        (ids.next(), ids.next(), ids.next())
    else {
        return Err("a ledger read answered a reply of the wrong shape".into());
    };
    Ok(LedgerPage {
        frames,
        last: last?,
        max_deleted: max_deleted?,
        last_generated: last_generated?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_knows_every_operation_this_host_sends() {
        for op in [
            "get",
            "get-many",
            "set",
            "set-many",
            "delete-many",
            "exists",
            "increment",
            "scan",
            "commit",
            "add",
            "remove",
            "range",
            "members-after",
            "count",
            "ledger",
            "read",
            "trim-ledger",
        ] {
            assert!(
                BUCKET_SCRIPT.contains(&format!("op == '{op}'")),
                "bucket.lua has no {op}"
            );
        }
    }
}
