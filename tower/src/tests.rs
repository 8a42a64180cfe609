//! The store through the real component, on a `log` directory store; the tower-sessions
//! contract as its own stores keep it.

use std::collections::HashMap;

use serde_json::json;
use session_vault::{ManualClock, Secret, VaultOptions};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{ExpiredDeletion, SessionStore};

use super::VaultStore;

const NOW_MS: u64 = 1_893_456_000_000;

fn at(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

async fn store(dir: &std::path::Path, clock: &ManualClock) -> VaultStore {
    let options = VaultOptions::new().clock(clock.clone());
    VaultStore::open(options, dir.to_owned(), Secret::RawKey(vec![7; 32]))
        .await
        .unwrap()
        .with_user_key("user")
}

fn record(user: &str, expires_ms: u64) -> Record {
    let mut data = HashMap::new();
    data.insert("user".to_owned(), json!(user));
    data.insert("count".to_owned(), json!(0));
    Record {
        id: Id::default(),
        data,
        expiry_date: at(expires_ms),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_round_trips_and_expires_by_the_vaults_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let store = store(dir.path(), &clock).await;
    let mut made = record("ada", NOW_MS + 60_000);
    store.create(&mut made).await.unwrap();
    let loaded = store.load(&made.id).await.unwrap().unwrap();
    assert_eq!(loaded, made);
    let mut changed = loaded.clone();
    changed.data.insert("count".into(), json!(1));
    store.save(&changed).await.unwrap();
    assert_eq!(store.load(&made.id).await.unwrap(), Some(changed));
    clock.set(NOW_MS + 60_000);
    assert_eq!(store.load(&made.id).await.unwrap(), None, "expired");
    store.delete_expired().await.unwrap();
    assert_eq!(store.load(&Id::default()).await.unwrap(), None, "absent");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_gives_a_new_id_when_the_id_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let store = store(dir.path(), &clock).await;
    let mut first = record("ada", NOW_MS + 60_000);
    store.create(&mut first).await.unwrap();
    let mut second = record("bob", NOW_MS + 60_000);
    second.id = first.id;
    store.create(&mut second).await.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        store.load(&first.id).await.unwrap().unwrap().data["user"],
        "ada"
    );
    assert_eq!(
        store.load(&second.id).await.unwrap().unwrap().data["user"],
        "bob"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_save_after_logout_does_not_bring_the_session_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let store = store(dir.path(), &clock).await;
    let mut made = record("ada", NOW_MS + 60_000);
    store.create(&mut made).await.unwrap();
    let in_flight = store.load(&made.id).await.unwrap().unwrap();
    store.delete(&made.id).await.unwrap();
    store.save(&in_flight).await.unwrap();
    assert_eq!(store.load(&made.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_user_ends_every_session_of_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let store = store(dir.path(), &clock).await;
    let mut ids = Vec::new();
    for user in ["ada", "ada", "bob"] {
        let mut made = record(user, NOW_MS + 60_000);
        store.create(&mut made).await.unwrap();
        ids.push(made.id);
    }
    assert_eq!(store.revoke_user("ada").await.unwrap(), 2);
    assert_eq!(store.load(&ids[0]).await.unwrap(), None);
    assert_eq!(store.load(&ids[1]).await.unwrap(), None);
    assert!(store.load(&ids[2]).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_request_leaves_the_write_whole_and_the_store_usable() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_MS);
    let store = store(dir.path(), &clock).await;
    let mut made = record("ada", NOW_MS + 60_000);
    store.create(&mut made).await.unwrap();
    let mut changed = made.clone();
    changed.data.insert("count".into(), json!(5));
    // The request is dropped once its save has started (a deadline of zero polls it
    // once): the save runs to its end on the blocking pool, and the next call waits for it.
    let _ = tokio::time::timeout(std::time::Duration::ZERO, store.save(&changed)).await;
    let loaded = store.load(&made.id).await.unwrap().unwrap();
    assert_eq!(loaded.data["count"], 5);
    let mut other = record("cy", NOW_MS + 60_000);
    store.create(&mut other).await.unwrap();
    assert!(store.load(&other.id).await.unwrap().is_some());
}
