//! The test Redis server: where a `redis` setup's store lives, and raw access to it.

/// Where a `redis` setup's store lives: a server and a prefix no other setup uses.
#[derive(Debug, Clone)]
pub struct RedisStore {
    /// `redis://127.0.0.1:PORT/0`.
    pub url: String,
    /// The store's bucket, unique to the setup.
    pub prefix: String,
}

/// A raw connection to the test server at `url`, as anyone with access to it has.
pub fn raw_connection(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(std::time::Duration::from_secs(2))
        .unwrap()
}

impl RedisStore {
    fn connection(&self) -> redis::Connection {
        raw_connection(&self.url)
    }

    /// The value of `name` in the store's bucket.
    pub fn value(&self, name: &str) -> Option<Vec<u8>> {
        let key = format!("{{{}}}:{name}", self.prefix);
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .unwrap()
    }

    /// Every key of the store's bucket but its indexes (`x`, `i`, `u:…`), prefix removed, sorted.
    pub fn names(&self) -> Vec<String> {
        let prefix = format!("{{{}}}:", self.prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut self.connection())
            .unwrap();
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|n| *n != "x" && *n != "i" && !n.starts_with("u:"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

/// The test server `scripts/test` started (`SESSION_VAULT_TEST_REDIS_URL`), if any.
/// Without one a redis case prints a notice and passes, except under CI, where it fails.
pub fn redis_url() -> Option<String> {
    match std::env::var("SESSION_VAULT_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs SESSION_VAULT_TEST_REDIS_URL: run the tests through scripts/test"
            );
            eprintln!("!! no SESSION_VAULT_TEST_REDIS_URL (scripts/test starts one): skipped");
            None
        }
    }
}

/// A prefix no other store of this test run uses.
pub fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
