//! Stores written by the 0.1.0 release (`tests/fixtures/v3-store`: `files`, `log` and a
//! dump of a `redis` bucket) read exactly as before free-form sessions, and take the new
//! calls.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use super::{ids, open, reopen};
use crate::front::{Front, Setup, TestSecret, raw_connection};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/v3-store");
/// The clock the fixture was written at.
const WRITTEN: u64 = 1_893_456_000_000;

/// Session `i` of the fixture of `backend`, as its README says it was created.
fn written(backend: &str, i: u64) -> Value {
    json!({
        "sessionId": format!("v3-{backend}-{i}"), "sessionToken": format!("tok-{i}"),
        "userContext": {"userId": format!("user-{}", i % 2), "name": format!("Zoë {i}")},
        "tokenMetadata": {"accessToken": format!("at-{i}"), "expiresAt": 4_102_444_800_000u64,
                          "scopes": ["openid"]},
        "security": {"ipAddress": "127.0.0.1", "userAgent": "fixture", "createdAt": WRITTEN,
                     "lastAccessedAt": WRITTEN, "accessCount": u64::from(i == 1)},
        "expiresAt": 4_102_444_800_000u64, "createdAt": WRITTEN,
        "plan": {"tier": "pro", "seats": [1, 2.5, null]}
    })
}

/// Puts the fixture of `setup`'s backend where its store is: the directory copied, or the
/// bucket's dump loaded under the setup's own prefix.
fn install(setup: &mut Setup) {
    setup.secret = TestSecret::Raw([0x11; 32]);
    setup.clock.set(WRITTEN);
    let Some(redis) = &setup.redis else {
        let from = Path::new(FIXTURE).join(setup.backend.name());
        std::fs::create_dir_all(setup.dir.parent().unwrap()).unwrap();
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(&from)
            .arg(&setup.dir)
            .status()
            .unwrap();
        assert!(status.success());
        return;
    };
    let dump: Value =
        serde_json::from_slice(&std::fs::read(Path::new(FIXTURE).join("redis.json")).unwrap())
            .unwrap();
    let mut connection = raw_connection(&redis.url);
    for (name, entry) in dump.as_object().unwrap() {
        let key = format!("{{{}}}:{name}", redis.prefix);
        if let Some(text) = entry["string"].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap();
            redis::cmd("SET")
                .arg(&key)
                .arg(bytes)
                .query::<()>(&mut connection)
                .unwrap();
        }
        for member in entry["zset"].as_array().into_iter().flatten() {
            redis::cmd("ZADD")
                .arg(&key)
                .arg(member[1].as_u64().unwrap())
                .arg(member[0].as_str().unwrap())
                .query::<()>(&mut connection)
                .unwrap();
        }
        for member in entry["set"].as_array().into_iter().flatten() {
            redis::cmd("SADD")
                .arg(&key)
                .arg(member.as_str().unwrap())
                .query::<()>(&mut connection)
                .unwrap();
        }
        if let Some(at) = entry["expires_at_ms"].as_u64() {
            redis::cmd("PEXPIREAT")
                .arg(&key)
                .arg(at)
                .query::<()>(&mut connection)
                .unwrap();
        }
    }
}

pub fn stores_written_by_0_1_read_exactly_as_before<F: Front>() {
    let mut setup = Setup::new();
    install(&mut setup);
    let backend = setup.backend.name();
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 3);
    for i in 1..=3 {
        let id = format!("v3-{backend}-{i}");
        assert_eq!(front.get(&id).unwrap(), Some(written(backend, i)), "{id}");
    }
    assert_eq!(
        ids(&front.list("user-1").unwrap()),
        vec![format!("v3-{backend}-1"), format!("v3-{backend}-3")]
    );
    // The old sessions take the new calls, and a new free-form one lives beside them.
    let touched = front.touch(&format!("v3-{backend}-1")).unwrap().unwrap();
    assert_eq!(touched["security"]["accessCount"], 2);
    let mut replaced = written(backend, 2);
    replaced["plan"] = json!("free");
    front.set(&replaced).unwrap();
    let free = json!({"sessionId": "fresh", "expiresAt": WRITTEN + 60_000, "cookie": {}});
    front.set(&free).unwrap();
    let mut front = reopen(front, &setup);
    assert_eq!(
        front.get(&format!("v3-{backend}-2")).unwrap(),
        Some(replaced)
    );
    assert_eq!(front.get("fresh").unwrap(), Some(free));
    assert_eq!(
        front.get(&format!("v3-{backend}-3")).unwrap(),
        Some(written(backend, 3))
    );
    assert_eq!(front.count().unwrap(), 4);
    let (ids, next) = front.page_ids(None, 10).unwrap();
    assert_eq!(next, None);
    let mut expected: Vec<String> = (1..=3).map(|i| format!("v3-{backend}-{i}")).collect();
    expected.insert(0, "fresh".into());
    assert_eq!(
        ids, expected,
        "a bucket from before the id index is indexed at open"
    );
    assert_eq!(front.check().unwrap()["live"], 4);
}

pub fn stores_written_by_0_1_take_a_maximum_lifetime<F: Front>() {
    let mut setup = Setup::new();
    install(&mut setup);
    // Their summaries (log) say nothing of where a session began: the sessions do.
    setup.max_lifetime = Some(60 * 60_000);
    setup.clock.set(WRITTEN + 60 * 60_000 - 1);
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 3);
    setup.clock.set(WRITTEN + 60 * 60_000);
    let mut front = reopen(front, &setup);
    assert_eq!(
        front
            .get(&format!("v3-{}-2", setup.backend.name()))
            .unwrap(),
        None
    );
    if setup.redis.is_some() {
        // A bucket's expiry index (what count and cleanup read) holds the expiries its
        // sessions were written with: check re-scores it under the cap.
        front.check().unwrap();
    }
    assert_eq!(front.count().unwrap(), 0, "capped from their createdAt");
    assert_eq!(
        front
            .get(&format!("v3-{}-1", setup.backend.name()))
            .unwrap(),
        None
    );
}
