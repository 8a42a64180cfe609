//! `migrate --to redis`: a directory store moves into a bucket of the test server, on
//! every front and both directory backends.

use serde_json::json;
use session_vault::BackendKind;

use crate::cases::{doc, ids, open};
use crate::front::{Front, RedisStore, Setup, T0, redis_url, unique_prefix};

const MINUTE: u64 = 60_000;

/// Every live session moves with its touches and users, the expired one does not; the
/// directory keeps only metadata that names redis and refuses to open as a store; every
/// front then opens the bucket and finds the same answers; moving again moves nothing;
/// then the store moves back to its directory, and the bucket keeps only metadata naming
/// the directory backend and the fence, and refuses to open.
pub fn migrate_moves_a_store_into_redis_and_back<F: Front>() {
    let Some(url) = redis_url() else { return };
    let mut setup = Setup::new();
    let bucket = RedisStore {
        url,
        prefix: unique_prefix(),
    };
    setup.server = Some(bucket.clone());
    let mut front: F = open(&setup);
    front.create(&doc("a1", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("a2", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("b1", "bob", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("old", "bob", T0 + MINUTE)).unwrap();
    front.touch("b1").unwrap();
    front
        .update("a2", &json!({"userContext": {"name": "Moved"}}))
        .unwrap();
    setup.clock.set(T0 + 2 * MINUTE);

    assert_eq!(front.migrate(BackendKind::Redis), Ok(3));
    drop(front);
    assert_eq!(
        setup.names(),
        ["session-vault.json"],
        "only the metadata naming redis is left in the directory"
    );
    let meta: serde_json::Value = serde_json::from_slice(&setup.metadata()).unwrap();
    assert_eq!(meta["backend"], "redis");
    // Without the server the directory does not open as a store.
    let mut plain = setup_like(&setup);
    plain.dir = setup.dir.clone();
    assert_eq!(F::open(&plain).err(), Some("invalid-input".into()));

    // Every host opens the bucket and finds what the directory held.
    setup.server = None;
    setup.redis = Some(bucket);
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 3);
    assert_eq!(ids(&front.list("alice").unwrap()), ["a1", "a2"]);
    let a2 = front.get("a2").unwrap().unwrap();
    assert_eq!(a2["userContext"]["name"], "Moved");
    let b1 = front.get("b1").unwrap().unwrap();
    assert_eq!(b1["security"]["accessCount"], 2, "the touch moved with it");
    assert_eq!(front.get("old").unwrap(), None);
    assert_eq!(front.migrate(BackendKind::Redis), Ok(0));
    assert_eq!(
        front.create(&doc("a1", "eve", T0 + MINUTE)),
        Err("already-exists".into())
    );
    front.create(&doc("c1", "carol", T0 + 60 * MINUTE)).unwrap();

    // And back to the directory it came from.
    assert_eq!(front.migrate(setup.backend), Ok(4));
    drop(front);
    let redis = setup.redis.take().unwrap();
    assert_eq!(
        redis.names(),
        ["meta", "moving"],
        "the bucket keeps only metadata naming the directory backend and the fence"
    );
    let mut front: F = open(&setup);
    assert_eq!(front.count().unwrap(), 4);
    assert_eq!(ids(&front.list("alice").unwrap()), ["a1", "a2"]);
    let b1 = front.get("b1").unwrap().unwrap();
    assert_eq!(b1["security"]["accessCount"], 2);
    assert!(front.get("c1").unwrap().is_some());
    setup.redis = Some(redis);
    assert_eq!(F::open(&setup).err(), Some("invalid-input".into()));
}

/// A setup on the same clock and secret as `setup`, for opening its directory again.
fn setup_like(setup: &Setup) -> Setup {
    let mut like = Setup::new();
    like.secret = setup.secret.clone();
    like.clock = setup.clock.clone();
    like.backend = setup.backend;
    like
}
