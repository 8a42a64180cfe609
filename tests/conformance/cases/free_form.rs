//! Free-form sessions (any JSON object with `sessionId` and `expiresAt`, read back as
//! exactly the JSON written) and `set` (create or replace).

use serde_json::{Value, json};

use super::{MINUTE, doc, open, reopen};
use crate::front::{Front, Setup, T0};

/// What express-session stores for a logged-in user (its `cookie`, the app's members),
/// with the `sessionId` and `expiresAt` an adapter adds.
pub fn express_doc(id: &str, expires_at: u64) -> Value {
    json!({
        "cookie": {
            "originalMaxAge": 86_400_000, "expires": "2030-01-02T00:00:00.000Z",
            "secure": false, "httpOnly": true, "domain": null, "path": "/", "sameSite": "lax"
        },
        "passport": {"user": "zoë-ü@example.org"},
        "cart": [{"sku": "A-1", "qty": 2, "price": 19.99}, {"sku": "B-2", "qty": 1, "price": 0.1}],
        "flash": {},
        "sessionId": id,
        "expiresAt": expires_at
    })
}

/// A tower-sessions record as an adapter would store it: data members as they are.
pub fn tower_doc(id: &str, expires_at: u64) -> Value {
    json!({
        "sessionId": id,
        "expiresAt": expires_at,
        "data": {"counter": 9_007_199_254_740_992u64, "negative": -42, "ratio": 0.333_333_333_333_333_3,
                 "emoji": "😀 \u{2028} \" \\ \u{0007}", "nothing": null, "list": [[], {}, [[1]]]}
    })
}

pub fn free_form_sessions_read_back_exactly<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let express = express_doc("exp-1", T0 + 60 * MINUTE);
    let tower = tower_doc("tow-1", T0 + 60 * MINUTE);
    front.create(&express).unwrap();
    front.set(&tower).unwrap();
    let minimal = json!({"expiresAt": T0 + MINUTE, "sessionId": "min-1"});
    front.create(&minimal).unwrap();
    for (id, expected) in [("exp-1", &express), ("tow-1", &tower), ("min-1", &minimal)] {
        let found = front.get(id).unwrap().expect(id);
        assert_eq!(&found, expected, "{id}");
        assert_eq!(
            found.to_string(),
            expected.to_string(),
            "{id}: same members in the same order"
        );
    }
    assert_eq!(front.count().unwrap(), 3, "sessions without a user count");
    assert_eq!(front.list("exp-1").unwrap(), Vec::<Value>::new());
    // A touch of a session without `security` records nothing in its document.
    assert_eq!(front.touch("exp-1").unwrap(), Some(express.clone()));
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("exp-1").unwrap(), Some(express.clone()));
    assert_eq!(
        front.get("tow-1").unwrap().unwrap().to_string(),
        tower.to_string()
    );
    // They expire and are cleaned up like any other.
    setup.clock.set(T0 + 2 * MINUTE);
    assert_eq!(front.get("min-1").unwrap(), None);
    setup.clock.set(T0 + 61 * MINUTE);
    assert_eq!(front.cleanup().unwrap(), 2);
    assert_eq!(front.count().unwrap(), 0);
}

/// `set-if-unchanged`, the compare-and-set a read-merge-write needs: it stores only over
/// the session exactly as it was read, so a write in between is never lost: the second
/// writer reads again, merges, and retries.
pub fn set_if_unchanged_stores_only_over_what_was_read<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.set(&express_doc("s1", T0 + 60 * MINUTE)).unwrap();
    let read = front.get("s1").unwrap().unwrap();
    let mut mine = read.clone();
    mine["session"]["mine"] = json!(1);
    // Another request saves first.
    let mut theirs = read.clone();
    theirs["session"]["theirs"] = json!(2);
    assert_eq!(front.set_if_unchanged(&theirs, &read), Ok(true));
    assert_eq!(front.set_if_unchanged(&mine, &read), Ok(false));
    assert_eq!(
        front.get("s1").unwrap(),
        Some(theirs.clone()),
        "not overwritten"
    );
    // Read again, merged, retried: both changes kept.
    let again = front.get("s1").unwrap().unwrap();
    let mut merged = again.clone();
    merged["session"]["mine"] = json!(1);
    assert_eq!(front.set_if_unchanged(&merged, &again), Ok(true));
    assert_eq!(front.get("s1").unwrap(), Some(merged.clone()));
    // A touch that moves the expiry is a change too.
    front.touch_until("s1", T0 + 90 * MINUTE).unwrap();
    assert_eq!(front.set_if_unchanged(&merged, &merged), Ok(false));
    // Absent, expired and removed sessions are never set by it.
    let absent = express_doc("s9", T0 + 60 * MINUTE);
    assert_eq!(front.set_if_unchanged(&absent, &absent), Ok(false));
    assert_eq!(front.get("s9").unwrap(), None);
    let current = front.get("s1").unwrap().unwrap();
    assert!(front.delete("s1").unwrap());
    assert_eq!(front.set_if_unchanged(&current, &current), Ok(false));
    assert_eq!(front.get("s1").unwrap(), None);
    front.set(&express_doc("s2", T0 + MINUTE)).unwrap();
    let short = front.get("s2").unwrap().unwrap();
    setup.clock.set(T0 + 2 * MINUTE);
    assert_eq!(front.set_if_unchanged(&short, &short), Ok(false));
    // Bad input is refused as `set` refuses it.
    let mut big = express_doc("s3", T0 + 60 * MINUTE);
    front.set(&big).unwrap();
    let stored = big.clone();
    big["blob"] = json!("x".repeat(70_000));
    assert_eq!(
        front.set_if_unchanged(&big, &stored),
        Err("too-large".into())
    );
    assert_eq!(front.get("s3").unwrap(), Some(stored));
}

pub fn set_creates_or_replaces_whole<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let first = doc("s1", "alice", T0 + 60 * MINUTE);
    front.set(&first).unwrap();
    assert_eq!(front.get("s1").unwrap(), Some(first.clone()));
    assert_eq!(front.list("alice").unwrap(), vec![first.clone()]);
    // Replaced whole: nothing of the first document is merged in, and the user index
    // follows the new document.
    let second = doc("s1", "bob", T0 + 30 * MINUTE);
    front.set(&second).unwrap();
    assert_eq!(front.get("s1").unwrap(), Some(second.clone()));
    assert_eq!(front.list("alice").unwrap(), Vec::<Value>::new());
    assert_eq!(front.list("bob").unwrap(), vec![second.clone()]);
    let free = express_doc("s1", T0 + 10 * MINUTE);
    front.set(&free).unwrap();
    assert_eq!(front.get("s1").unwrap(), Some(free.clone()));
    assert_eq!(front.list("bob").unwrap(), Vec::<Value>::new());
    assert_eq!(front.count().unwrap(), 1);
    // `create` still refuses a live id; `set` does not.
    assert_eq!(front.create(&first), Err("already-exists".into()));
    front.set(&first).unwrap();
    assert_eq!(front.revoke_user("alice").unwrap(), 1);
    // Over an expired session, `set` stores the new one.
    front.set(&express_doc("s2", T0 + MINUTE)).unwrap();
    setup.clock.set(T0 + 2 * MINUTE);
    assert_eq!(front.get("s2").unwrap(), None);
    let again = express_doc("s2", T0 + 60 * MINUTE);
    front.set(&again).unwrap();
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("s2").unwrap(), Some(again));
    assert_eq!(front.count().unwrap(), 1);
    // Too large or malformed: nothing changes.
    let mut big = express_doc("s2", T0 + 60 * MINUTE);
    big["blob"] = json!("x".repeat(70_000));
    assert_eq!(front.set(&big), Err("too-large".into()));
    assert_eq!(
        front.get("s2").unwrap(),
        Some(express_doc("s2", T0 + 60 * MINUTE))
    );
}

pub fn update_merges_into_free_form_sessions<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&express_doc("e1", T0 + 60 * MINUTE)).unwrap();
    let updated = front
        .update("e1", &json!({"cart": [], "expiresAt": T0 + 90 * MINUTE}))
        .unwrap();
    let mut expected = express_doc("e1", T0 + 90 * MINUTE);
    expected["cart"] = json!([]);
    assert_eq!(updated, expected);
    assert_eq!(
        updated.to_string(),
        expected.to_string(),
        "replaced in place"
    );
    // A nested original object the session lacks is created from the patch, which must
    // then give its required members.
    assert_eq!(
        front.update("e1", &json!({"userContext": {"email": "a@b.c"}})),
        Err("invalid-input".into())
    );
    let owned = front
        .update("e1", &json!({"userContext": {"userId": "zoë"}}))
        .unwrap();
    assert_eq!(owned["userContext"], json!({"userId": "zoë"}));
    assert_eq!(front.list("zoë").unwrap(), vec![owned]);
    assert_eq!(front.get("e1").unwrap().unwrap()["cart"], json!([]));
}

/// Every page of `list-ids` from the start: the ids in order, each page at most `limit`.
fn all_ids<F: Front>(front: &mut F, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = front.page_ids(after.as_deref(), limit).unwrap();
        assert!(page.len() <= limit as usize);
        ids.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

pub fn list_pages_through_every_live_session_once<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let mut live = Vec::new();
    for i in 0..23 {
        let id = format!("p{i:02}");
        let expires_at = if i % 5 == 4 {
            T0 + MINUTE
        } else {
            live.push(id.clone());
            T0 + 60 * MINUTE
        };
        match i % 2 {
            0 => front.create(&express_doc(&id, expires_at)).unwrap(),
            _ => front.set(&doc(&id, "u", expires_at)).unwrap(),
        }
    }
    setup.clock.set(T0 + 2 * MINUTE);
    assert_eq!(all_ids(&mut front, 7), live, "live ones only, in id order");
    assert_eq!(all_ids(&mut front, 1000), live);
    // Pages of sessions hold what `get` returns, in the same order.
    let (first, next) = front.page(None, 3).unwrap();
    assert_eq!(next.as_deref(), Some("p02"));
    for session in &first {
        let id = session["sessionId"].as_str().unwrap();
        assert_eq!(front.get(id).unwrap().as_ref(), Some(session));
    }
    let (last, next) = front.page(Some("p21"), 10).unwrap();
    assert_eq!((last.len(), next), (1, None));
    assert_eq!(front.page_ids(Some("p22"), 10).unwrap(), (vec![], None));
    assert_eq!(front.page_ids(Some("zzz"), 10).unwrap(), (vec![], None));
    // A cursor survives writes between pages: what was live throughout is listed exactly
    // once; nothing is listed twice.
    let (page, next) = front.page_ids(None, 5).unwrap();
    let mut seen = page;
    front.delete("p20").unwrap();
    front.set(&express_doc("p00a", T0 + 60 * MINUTE)).unwrap();
    front.set(&express_doc("p15z", T0 + 60 * MINUTE)).unwrap();
    front.set(&express_doc("p07", T0 + 90 * MINUTE)).unwrap();
    front.update("p11", &json!({"cart": [1]})).unwrap();
    let mut after = next;
    while let Some(cursor) = after {
        let (page, next) = front.page_ids(Some(&cursor), 5).unwrap();
        seen.extend(page);
        after = next;
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order, no id twice");
    for id in live.iter().filter(|id| *id != "p20") {
        assert!(seen.contains(id), "{id} was live throughout");
    }
    assert!(
        seen.contains(&"p15z".to_owned()),
        "created after the cursor"
    );
    assert!(
        !seen.contains(&"p00a".to_owned()),
        "created before the cursor"
    );
    // Bad requests.
    for limit in [0, 1001] {
        assert_eq!(front.page_ids(None, limit), Err("invalid-input".into()));
        assert_eq!(
            front.page(None, limit).map(drop),
            Err("invalid-input".into())
        );
    }
    assert_eq!(front.page_ids(Some("../x"), 5), Err("invalid-id".into()));
    assert_eq!(front.page(Some(""), 5).map(drop), Err("invalid-id".into()));
    let mut front = reopen(front, &setup);
    assert_eq!(all_ids(&mut front, 4).len(), live.len() + 1);
}

pub fn touch_rolls_the_expiry_on_every_path<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&express_doc("r1", T0 + 10 * MINUTE)).unwrap();
    front.create(&doc("r2", "alice", T0 + 10 * MINUTE)).unwrap();
    let stored = |setup: &Setup| match setup.backend {
        session_vault::BackendKind::Files => std::fs::read(setup.path("r1.svs")).ok(),
        _ => None,
    };
    let before = stored(&setup);
    let mut rolled = express_doc("r1", T0 + 60 * MINUTE);
    assert_eq!(
        front.touch_until("r1", T0 + 60 * MINUTE).unwrap(),
        Some(rolled.clone())
    );
    assert_eq!(stored(&setup), before, "the session file is not rewritten");
    // With `security`, the access is recorded too.
    let touched = front.touch_until("r2", T0 + 45 * MINUTE).unwrap().unwrap();
    assert_eq!(touched["expiresAt"], T0 + 45 * MINUTE);
    assert_eq!(touched["security"]["accessCount"], 2);
    setup.clock.set(T0 + 20 * MINUTE);
    assert_eq!(front.get("r1").unwrap(), Some(rolled.clone()));
    assert_eq!(front.count().unwrap(), 2);
    assert_eq!(front.page_ids(None, 10).unwrap().0, ["r1", "r2"]);
    assert_eq!(front.list("alice").unwrap(), vec![touched.clone()]);
    assert_eq!(front.cleanup().unwrap(), 0);
    let mut front = reopen(front, &setup);
    assert_eq!(
        front.get("r1").unwrap(),
        Some(rolled.clone()),
        "after reopen"
    );
    assert_eq!(front.count().unwrap(), 2);
    if let Some(redis) = &setup.redis {
        let key = format!("{{{}}}:s:r1", redis.prefix);
        let ttl: u64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query(&mut crate::front::raw_connection(&redis.url))
            .unwrap();
        assert_eq!(ttl, T0 + 60 * MINUTE, "the record's TTL follows the expiry");
    }
    // A later full write keeps the rolled expiry it read.
    let updated = front.update("r1", &json!({"cart": []})).unwrap();
    assert_eq!(updated["expiresAt"], T0 + 60 * MINUTE);
    rolled["cart"] = json!([]);
    // Moved into the past, the session is gone from then on; an absent id stays absent.
    assert_eq!(front.touch_until("r2", T0).unwrap().map(|_| ()), Some(()));
    assert_eq!(front.get("r2").unwrap(), None);
    assert_eq!(front.touch_until("nobody", T0 + 99 * MINUTE).unwrap(), None);
    assert_eq!(front.get("nobody").unwrap(), None);
    setup.clock.set(T0 + 59 * MINUTE);
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("r1").unwrap(), Some(rolled));
    setup.clock.set(T0 + 60 * MINUTE);
    assert_eq!(front.count().unwrap(), 0);
    assert_eq!(front.get("r1").unwrap(), None);
}

pub fn touch_bringing_the_expiry_forward_rewrites_the_session<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front.create(&express_doc("r1", T0 + 60 * MINUTE)).unwrap();
    let file = || match setup.backend {
        session_vault::BackendKind::Files => std::fs::read(setup.path("r1.svs")).ok(),
        _ => None,
    };
    let before = file();
    let shortened = front.touch_until("r1", T0 + 5 * MINUTE).unwrap().unwrap();
    assert_eq!(shortened["expiresAt"], T0 + 5 * MINUTE);
    if setup.backend == session_vault::BackendKind::Files {
        assert_ne!(file(), before, "written whole, durably, not into the stamp");
    }
    // Even with every stamp lost, the session does not outlive the shorter expiry.
    drop(front);
    if setup.backend == session_vault::BackendKind::Files {
        let _ = std::fs::remove_file(setup.path("r1.sva"));
    }
    setup.clock.set(T0 + 5 * MINUTE);
    let mut front: F = open(&setup);
    assert_eq!(front.get("r1").unwrap(), None);
}

/// Whether the store remembers removed ids between this front's operations: always in a
/// bucket (the marker is in the server); in a directory only while one process holds the
/// store open (the CLI opens it anew for every command).
fn remembers_removals<F: Front>(setup: &Setup) -> bool {
    setup.redis.is_some() || !F::REOPENS
}

pub fn a_removed_session_is_not_brought_back_by_set<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let refused = |remembers: bool| {
        if remembers {
            Err("removed".to_owned())
        } else {
            Ok(())
        }
    };
    let remembers = remembers_removals::<F>(&setup);
    front.create(&express_doc("s1", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("s2", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&doc("s3", "alice", T0 + 60 * MINUTE)).unwrap();
    front.create(&express_doc("s4", T0 + 60 * MINUTE)).unwrap();
    front.create(&express_doc("short", T0 + MINUTE)).unwrap();
    // A request in flight at the logout: its touch and set do not bring s1 back.
    assert!(front.delete("s1").unwrap());
    assert_eq!(front.touch_until("s1", T0 + 90 * MINUTE).unwrap(), None);
    assert_eq!(
        front.set(&express_doc("s1", T0 + 60 * MINUTE)),
        refused(remembers)
    );
    if remembers {
        assert_eq!(front.get("s1").unwrap(), None);
        assert!(!front.delete("s1").unwrap(), "a removed id holds nothing");
        assert_eq!(
            front.page_ids(None, 10).unwrap().0,
            ["s2", "s3", "s4", "short"]
        );
        assert_eq!(front.count().unwrap(), 4);
    }
    // revoke-user and clear remove as firmly.
    assert_eq!(front.revoke_user("alice").unwrap(), 2);
    assert_eq!(
        front.set(&doc("s2", "alice", T0 + 60 * MINUTE)),
        refused(remembers)
    );
    front.set(&express_doc("s5", T0 + 60 * MINUTE)).unwrap();
    assert!(front.clear().unwrap() >= 3);
    for id in ["s4", "s5"] {
        assert_eq!(
            front.set(&express_doc(id, T0 + 60 * MINUTE)),
            refused(remembers)
        );
    }
    // A brand-new id is stored as usual, and so is an explicit create.
    front.set(&express_doc("fresh", T0 + 60 * MINUTE)).unwrap();
    front.create(&express_doc("s3", T0 + 60 * MINUTE)).unwrap();
    assert!(front.get("s3").unwrap().is_some());
    let mut front = reopen(front, &setup);
    // Once the old expiry has passed, the id is free again; a short session is removed
    // only until its own expiry.
    setup.clock.set(T0 + 2 * MINUTE);
    front.set(&express_doc("short", T0 + 90 * MINUTE)).unwrap();
    setup.clock.set(T0 + 60 * MINUTE);
    let back = express_doc("s4", T0 + 120 * MINUTE);
    front.set(&back).unwrap();
    assert_eq!(front.get("s4").unwrap(), Some(back));
    assert!(front.get("short").unwrap().is_some());
}

pub fn a_maximum_lifetime_caps_every_path<F: Front>() {
    let mut setup = Setup::new();
    setup.max_lifetime = Some(30 * MINUTE);
    let mut front: F = open(&setup);
    // With a createdAt (T0), the cap counts from it; without, from the first write.
    let dated = doc("o1", "alice", T0 + 120 * MINUTE);
    front.create(&dated).unwrap();
    front.set(&express_doc("f1", T0 + 120 * MINUTE)).unwrap();
    setup.clock.set(T0 + 10 * MINUTE);
    // Replaced while live, it keeps its first write; no touch moves it past the cap.
    front.set(&express_doc("f1", T0 + 120 * MINUTE)).unwrap();
    let touched = front.touch_until("f1", T0 + 200 * MINUTE).unwrap().unwrap();
    assert_eq!(touched["expiresAt"], T0 + 30 * MINUTE);
    let touched = front.touch_until("o1", T0 + 200 * MINUTE).unwrap().unwrap();
    assert_eq!(touched["expiresAt"], T0 + 30 * MINUTE);
    if let Some(redis) = &setup.redis {
        let ttl: u64 = redis::cmd("PEXPIRETIME")
            .arg(format!("{{{}}}:s:o1", redis.prefix))
            .query(&mut crate::front::raw_connection(&redis.url))
            .unwrap();
        assert_eq!(ttl, T0 + 30 * MINUTE, "the TTL never passes the cap");
    }
    setup.clock.set(T0 + 30 * MINUTE - 1);
    let mut front = reopen(front, &setup);
    assert_eq!(front.count().unwrap(), 2);
    assert_eq!(front.page_ids(None, 10).unwrap().0, ["f1", "o1"]);
    setup.clock.set(T0 + 30 * MINUTE);
    assert_eq!(front.count().unwrap(), 0, "capped, whatever expiresAt said");
    assert_eq!(front.get("f1").unwrap(), None);
    assert_eq!(front.list("alice").unwrap(), Vec::<Value>::new());
    assert_eq!(front.page_ids(None, 10).unwrap().0, Vec::<String>::new());
    // After it lapsed, a set starts a new life.
    let again = express_doc("f1", T0 + 120 * MINUTE);
    front.set(&again).unwrap();
    setup.clock.set(T0 + 60 * MINUTE - 1);
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("f1").unwrap(), Some(again));
    setup.clock.set(T0 + 60 * MINUTE);
    assert_eq!(front.get("f1").unwrap(), None);
}

/// Group commit (issue 30): writes made under `hold-syncs` read back at once, are durable
/// after `flush`, and a flush with nothing held, or twice, is harmless. Every front and
/// backend (where nothing is held, both calls change nothing).
pub fn writes_under_a_hold_are_kept_once_flushed<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    front
        .create(&doc("kept", "alice", T0 + 60 * MINUTE))
        .unwrap();
    front.hold_syncs().unwrap();
    let replaced = express_doc("kept", T0 + 30 * MINUTE);
    front.set(&replaced).unwrap();
    front.create(&doc("new", "bob", T0 + 60 * MINUTE)).unwrap();
    front.delete("gone-before-it-came").unwrap();
    assert_eq!(
        front.get("kept").unwrap(),
        Some(replaced.clone()),
        "read back while held"
    );
    front.flush().unwrap();
    front.flush().unwrap();
    front.hold_syncs().unwrap();
    assert_eq!(front.revoke_user("bob").unwrap(), 1);
    front.flush().unwrap();
    let mut front = reopen(front, &setup);
    assert_eq!(front.get("kept").unwrap(), Some(replaced));
    assert_eq!(front.get("new").unwrap(), None);
    assert_eq!(front.count().unwrap(), 1);
}
