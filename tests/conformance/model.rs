//! The model test: random operation sequences, reopening included, checked step by step
//! against a plain in-memory model of the documented semantics.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cases::{doc, express_doc};
use crate::front::{Front, Setup, T0};
use session_vault::Durability;

/// A small deterministic generator (SplitMix64), so a failing seed replays exactly: the
/// one the power-cut disk draws its fates from.
pub use session_vault_guest::testing::power_cut::Rng;

/// Picks one of `items`.
trait Pick {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str;
}

impl Pick for Rng {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const IDS: &[&str] = &["s0", "s1", "s2", "s3", "s4", "s5"];
/// Ids that `set` stores free-form (express-session shaped) documents under.
const FREE_IDS: &[&str] = &["f0", "f1", "f2"];
/// Both.
const ALL_IDS: &[&str] = &["s0", "s1", "s2", "s3", "s4", "s5", "f0", "f1", "f2"];
const USERS: &[&str] = &["u0", "u1", "u2"];

/// What the store should hold: every stored document, expired or not, until removed.
#[derive(Default)]
struct Model {
    docs: BTreeMap<String, Value>,
    /// Ids removed before their expiry, with it: `set` refuses them until then (where the
    /// store remembers removals between the front's operations).
    removed: BTreeMap<String, u64>,
    remembers: bool,
}

impl Model {
    /// Records that `doc` was removed at `now`.
    fn removed(&mut self, doc: &Value, now: u64) {
        if self.remembers && now < expires(doc) {
            let id = doc["sessionId"].as_str().expect("an id").to_owned();
            self.removed.insert(id, expires(doc));
        }
    }
}

fn expires(doc: &Value) -> u64 {
    doc["expiresAt"].as_u64().expect("expiresAt")
}

impl Model {
    fn live(&self, id: &str, now: u64) -> Option<&Value> {
        self.docs.get(id).filter(|d| now < expires(d))
    }

    fn user_live(&self, user: &str, now: u64) -> Vec<Value> {
        let mut docs: Vec<Value> = self
            .docs
            .values()
            .filter(|d| d["userContext"]["userId"] == user && now < expires(d))
            .cloned()
            .collect();
        docs.sort_by_key(|d| {
            (
                d["createdAt"].as_u64(),
                d["sessionId"].as_str().map(String::from),
            )
        });
        docs
    }
}

/// The original's merge: top-level members replace; the three nested objects merge,
/// where `null` removes an (optional) member.
fn merge(mut doc: Value, patch: &Value) -> Value {
    for (key, value) in patch.as_object().expect("patch is an object") {
        if ["userContext", "tokenMetadata", "security"].contains(&key.as_str()) {
            let target = doc[key].as_object_mut().expect("nested object");
            for (k, v) in value.as_object().expect("nested patch") {
                if v.is_null() {
                    target.remove(k);
                } else {
                    target.insert(k.clone(), v.clone());
                }
            }
        } else {
            doc[key] = value.clone();
        }
    }
    doc
}

fn random_patch(rng: &mut Rng, now: u64) -> Value {
    match rng.below(6) {
        0 => json!({"sessionToken": format!("t{}", rng.bits())}),
        1 => {
            json!({"userContext": {"userId": rng.pick(USERS), "name": format!("n{}", rng.below(9))}})
        }
        2 => json!({"security": {"lastAccessedAt": now, "accessCount": rng.below(100)}}),
        3 => json!({"userContext": {"email": null}, "tokenMetadata": {"refreshToken": null}}),
        4 => json!({"expiresAt": now + rng.below(4_000), "extraTop": {"v": rng.below(5)}}),
        _ => {
            json!({"tokenMetadata": {"scopes": ["a", "b"], "accessToken": "x"}, "security": {"risk": 1}})
        }
    }
}

/// One random sequence per seed; `steps` operations each.
pub fn model_random_operations_with_reopen<F: Front>() {
    let (seeds, steps) = if F::REOPENS { (1, 60) } else { (4, 250) };
    for seed in 0..seeds {
        run(seed, steps, Durability::Durable, F::open);
    }
}

/// The same, with `relaxed` durability: only what reaches the disk changes, not what the
/// store answers.
pub fn model_random_operations_relaxed<F: Front>() {
    let (seeds, steps) = if F::REOPENS { (1, 60) } else { (2, 250) };
    for seed in 100..100 + seeds {
        run(seed, steps, Durability::Relaxed, F::open);
    }
}

fn run<F: Front>(
    seed: u64,
    steps: usize,
    durability: Durability,
    open: fn(&Setup) -> Result<F, String>,
) {
    let mut setup = Setup::new();
    setup.durability = durability;
    let mut rng = Rng(seed);
    let mut model = Model {
        remembers: setup.redis.is_some() || !F::REOPENS,
        ..Model::default()
    };
    let mut front = Some(open(&setup).expect("open"));
    for step in 0..steps {
        let now = session_vault::Clock::now(&setup.clock);
        let store = front.as_mut().expect("the store is open");
        let context = format!("seed {seed} step {step}");
        match rng.below(15) {
            0 | 1 => {
                let id = rng.pick(IDS);
                let mut d = doc(id, rng.pick(USERS), now + 1 + rng.below(5_000));
                d["createdAt"] = json!(T0 + rng.below(50));
                let expected = if model.live(id, now).is_some() {
                    Err("already-exists".to_owned())
                } else {
                    model.docs.insert(id.to_owned(), d.clone());
                    model.removed.remove(id);
                    Ok(())
                };
                assert_eq!(store.create(&d), expected, "{context}: create {id}");
            }
            2 | 3 => {
                let id = rng.pick(ALL_IDS);
                let expected = model.live(id, now).cloned();
                if expected.is_none() {
                    model.docs.remove(id);
                }
                assert_eq!(store.get(id), Ok(expected), "{context}: get {id}");
            }
            4 | 5 => {
                // Only original-shaped ids: the patches below assume their members.
                let id = rng.pick(IDS);
                let patch = random_patch(&mut rng, now);
                let expected = match model.live(id, now).cloned() {
                    Some(d) => {
                        let merged = merge(d, &patch);
                        model.docs.insert(id.to_owned(), merged.clone());
                        Ok(merged)
                    }
                    None => {
                        model.docs.remove(id);
                        Err("not-found".to_owned())
                    }
                };
                assert_eq!(
                    store.update(id, &patch),
                    expected,
                    "{context}: update {id} {patch}"
                );
            }
            6 => {
                let id = rng.pick(ALL_IDS);
                let removed = model.docs.remove(id);
                if let Some(d) = &removed {
                    model.removed(d, now);
                }
                assert_eq!(
                    store.delete(id),
                    Ok(removed.is_some()),
                    "{context}: delete {id}"
                );
            }
            7 => {
                let user = rng.pick(USERS);
                assert_eq!(
                    store.list(user),
                    Ok(model.user_live(user, now)),
                    "{context}: list {user}"
                );
                let live = model.docs.values().filter(|d| now < expires(d)).count() as u64;
                assert_eq!(store.count(), Ok(live), "{context}: count");
            }
            8 => {
                let expired: Vec<String> = model
                    .docs
                    .iter()
                    .filter(|(_, d)| now >= expires(d))
                    .map(|(id, _)| id.clone())
                    .collect();
                expired.iter().for_each(|id| {
                    model.docs.remove(id);
                });
                assert_eq!(
                    store.cleanup(),
                    Ok(expired.len() as u64),
                    "{context}: cleanup"
                );
            }
            9 => {
                let user = rng.pick(USERS);
                let live = model.user_live(user, now).len() as u64;
                let gone: Vec<Value> = (model.docs.values())
                    .filter(|d| d["userContext"]["userId"] == user)
                    .cloned()
                    .collect();
                gone.iter().for_each(|d| model.removed(d, now));
                model.docs.retain(|_, d| d["userContext"]["userId"] != user);
                assert_eq!(
                    store.revoke_user(user),
                    Ok(live),
                    "{context}: revoke {user}"
                );
            }
            10 => setup.clock.advance(rng.below(1_500)),
            11 => {
                let id = rng.pick(ALL_IDS);
                let expected = match model.docs.get_mut(id).filter(|d| now < expires(d)) {
                    Some(d) => {
                        // A free-form session records no access.
                        if let Some(count) = d["security"]["accessCount"].as_u64() {
                            d["security"]["lastAccessedAt"] = json!(now);
                            d["security"]["accessCount"] = json!(count + 1);
                        }
                        Some(d.clone())
                    }
                    None => {
                        model.docs.remove(id);
                        None
                    }
                };
                assert_eq!(store.touch(id), Ok(expected), "{context}: touch {id}");
            }
            13 => {
                let (id, d) = if rng.below(2) == 0 {
                    let id = rng.pick(FREE_IDS);
                    (id, express_doc(id, now + 1 + rng.below(5_000)))
                } else {
                    let id = rng.pick(IDS);
                    (id, doc(id, rng.pick(USERS), now + 1 + rng.below(5_000)))
                };
                let expected = match model.removed.get(id) {
                    Some(until) if now < *until => Err("removed".to_owned()),
                    _ => {
                        model.removed.remove(id);
                        model.docs.insert(id.to_owned(), d.clone());
                        Ok(())
                    }
                };
                assert_eq!(store.set(&d), expected, "{context}: set {id}");
            }
            14 => {
                let limit = 1 + rng.below(4) as u32;
                let mut listed = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let (ids, next) = store
                        .page_ids(after.as_deref(), limit)
                        .unwrap_or_else(|e| panic!("{context}: list-ids: {e}"));
                    listed.extend(ids);
                    match next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                let live: Vec<String> = (model.docs.iter())
                    .filter(|(_, d)| now < expires(d))
                    .map(|(id, _)| id.clone())
                    .collect();
                assert_eq!(listed, live, "{context}: list-ids by {limit}");
            }
            _ => {
                if rng.below(8) == 0 {
                    let stored = model.docs.len() as u64;
                    let gone: Vec<Value> = model.docs.values().cloned().collect();
                    gone.iter().for_each(|d| model.removed(d, now));
                    model.docs.clear();
                    assert_eq!(store.clear(), Ok(stored), "{context}: clear");
                } else {
                    drop(front.take());
                    front = Some(open(&setup).expect("reopen"));
                    // A directory store remembers removals while it is open.
                    if setup.redis.is_none() {
                        model.removed.clear();
                    }
                }
            }
        }
    }
    let store = front.as_mut().expect("the store is open");
    let report = store.check().expect("check");
    assert_eq!(report["quarantined"], 0, "seed {seed}: nothing was damaged");
}
