//! The Redis commands behind a bucket, on full keys (`{prefix}:name`): one place for
//! the protocol, used by the component's imports and by the native [`RedisBucket`].
//!
//! [`RedisBucket`]: super::RedisBucket

use std::sync::LazyLock;

use redis::Script;
use session_vault_guest::bucket::FENCE;
use session_vault_guest::bucket::{Change, Entry, Member};

use super::server::Server;

/// Scores above this are kept as this: a Redis score is a double, exact up to 2^53.
const MAX_SCORE: u64 = 1 << 53;

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Compares KEYS[1] with what the handle read (ARGV[1] '1': the value ARGV[2]; '0':
/// absent), sets it (ARGV[3] 'set' to ARGV[4], with PXAT ARGV[5] unless empty) or
/// deletes it, then ZADDs ARGV[6] (member, score) pairs to KEYS[2..] (a new index, or
/// one expiring earlier, takes the TTL ARGV[5]) and ZREMs the count that follows from
/// the keys after. The last key is the bucket's fence: while it exists nothing is
/// applied and the script returns 2. Returns 1 if applied, 0 if the key changed (nothing
/// applied). Every
/// index is checked to be a sorted set before anything is written (Redis does not undo
/// a script that fails part way), so a failure applies nothing. Redis runs a script
/// alone, so no reader sees the record without its index entries. Needs Redis 7.0
/// (`PEXPIRETIME`).
const COMMIT: &str = r"
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return 2 end
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
local expires = ARGV[5]
local adds = tonumber(ARGV[6])
local removals = tonumber(ARGV[7 + 2 * adds])
-- Every check before the first write: Redis does not undo a script that fails part way.
local extend = {}
for i = 1, adds + removals do
  local kind = redis.call('TYPE', KEYS[i + 1])['ok']
  if kind ~= 'zset' and kind ~= 'none' then
    return redis.error_reply('index ' .. KEYS[i + 1] .. ' holds a ' .. kind)
  end
  if i <= adds and expires ~= '' then
    -- A new index takes this expiry; one with a later expiry keeps it; one with none
    -- (rebuilt by check) keeps none.
    local t = redis.call('PEXPIRETIME', KEYS[i + 1])
    extend[i] = (t == -2) or (t >= 0 and t < tonumber(expires))
  end
end
if ARGV[3] == 'set' then
  if expires ~= '' then
    redis.call('SET', KEYS[1], ARGV[4], 'PXAT', expires)
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
else
  redis.call('DEL', KEYS[1])
end
for i = 1, adds do
  redis.call('ZADD', KEYS[i + 1], ARGV[6 + 2 * i], ARGV[5 + 2 * i])
  if extend[i] then
    redis.call('PEXPIREAT', KEYS[i + 1], expires)
  end
end
for i = 1, removals do
  redis.call('ZREM', KEYS[adds + i + 1], ARGV[7 + 2 * adds + i])
end
return 1
";

static COMMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(COMMIT));

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

/// A score as `ZRANGEBYSCORE` takes it: past [`MAX_SCORE`] is `+inf`.
fn score_arg(score: u64) -> String {
    if score >= MAX_SCORE {
        "+inf".to_owned()
    } else {
        score.to_string()
    }
}

impl Server {
    /// The value of `key`.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        self.run(|c| redis::cmd("GET").arg(key).query(c))
    }

    /// The values of `keys`, in order, in one round trip.
    pub fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.run(|c| redis::cmd("MGET").arg(keys).query(c))?;
        if values.len() != keys.len() {
            return Err(format!(
                "MGET of {} keys answered {} values",
                keys.len(),
                values.len()
            ));
        }
        Ok(values)
    }

    /// Sets `key` to `value`, with no expiry.
    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Failure> {
        self.run(|c| redis::cmd("SET").arg(key).arg(value).query(c))
    }

    /// Sets every key to its value in one round trip.
    pub fn set_many(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<(), Failure> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("MSET");
        for (key, value) in pairs {
            command.arg(key).arg(value.as_slice());
        }
        self.run(|c| command.query(c))
    }

    /// Removes `keys`; absent ones are not an error.
    pub fn delete_many(&mut self, keys: &[String]) -> Result<(), Failure> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run(|c| redis::cmd("DEL").arg(keys).query(c))
    }

    /// Whether `key` holds a value.
    pub fn exists(&mut self, key: &str) -> Result<bool, Failure> {
        self.run(|c| redis::cmd("EXISTS").arg(key).query(c))
    }

    /// Adds `delta` to the integer in `key`.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64, Failure> {
        self.run(|c| redis::cmd("INCRBY").arg(key).arg(delta).query(c))
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
        let (next, keys): (u64, Vec<Vec<u8>>) = self.run(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(c)
        })?;
        // A key that is not UTF-8 is none of the store's: skipped, like any foreign key.
        let keys = keys
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect();
        Ok((keys, (next != 0).then(|| next.to_string())))
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
        let mut invocation = COMMIT_SCRIPT.prepare_invoke();
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
            Some(at) => invocation.arg(at.min(MAX_SCORE)),
            None => invocation.arg(""),
        };
        invocation.arg(change.add.len());
        for entry in &change.add {
            invocation.key(format!("{prefix}{}", entry.index));
            invocation
                .arg(&entry.member)
                .arg(entry.score.min(MAX_SCORE));
        }
        invocation.arg(change.remove.len());
        for member in &change.remove {
            invocation.key(format!("{prefix}{}", member.index));
            invocation.arg(&member.member);
        }
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
        let mut pipe = redis::pipe();
        for entry in entries {
            pipe.cmd("ZADD")
                .arg(format!("{prefix}{}", entry.index))
                .arg(entry.score.min(MAX_SCORE))
                .arg(&entry.member)
                .ignore();
        }
        self.run(|c| pipe.query(c))
    }

    /// Removes index members (indexes under `prefix`).
    pub fn remove(&mut self, prefix: &str, members: &[Member]) -> Result<(), Failure> {
        if members.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for member in members {
            pipe.cmd("ZREM")
                .arg(format!("{prefix}{}", member.index))
                .arg(&member.member)
                .ignore();
        }
        self.run(|c| pipe.query(c))
    }

    /// Up to `limit` members of index `key` scored `min..=max`, lowest first.
    pub fn range(
        &mut self,
        key: &str,
        min: u64,
        max: u64,
        limit: u32,
    ) -> Result<Vec<String>, Failure> {
        let members: Vec<Vec<u8>> = self.run(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg(score_arg(min))
                .arg(score_arg(max))
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query(c)
        })?;
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
        let start = if after.is_empty() {
            "-".to_owned()
        } else {
            format!("({after}")
        };
        let members: Vec<Vec<u8>> = self.run(|c| {
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(&start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query(c)
        })?;
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
            self.run(|c| redis::cmd("ZREM").arg(key).arg(&junk).query::<()>(c))?;
        }
        Ok(ids.into_iter().filter_map(Result::ok).collect())
    }

    /// How many members of index `key` are scored `min..=max`.
    pub fn count(&mut self, key: &str, min: u64, max: u64) -> Result<u64, Failure> {
        self.run(|c| {
            redis::cmd("ZCOUNT")
                .arg(key)
                .arg(score_arg(min))
                .arg(score_arg(max))
                .query(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_past_a_double_are_infinite() {
        assert_eq!(score_arg(5), "5");
        assert_eq!(score_arg(MAX_SCORE - 1), (MAX_SCORE - 1).to_string());
        assert_eq!(score_arg(u64::MAX), "+inf");
    }
}
