//! Playing a scenario up to the power cut: the operations on the store and what the
//! model records of each, the legacy import included.

use std::collections::BTreeSet;

use session_vault::{BackendKind, Durability, ManualClock, Session, SessionPatch, StoreError};
use session_vault_guest::testing::power_cut::{PowerCut, Rng};
use session_vault_guest::{Erase, LegacyStore, Sessions};

use crate::cases::{doc, express_doc};
use crate::front::T0;

use super::{CutStore, Kind, Known, LEGACY_SECRET, Played, STORE, Script, open, secret};

/// Where most sessions expire: far past every step of a scenario.
pub(super) const FAR: u64 = T0 + 30 * 86_400_000;

/// Plays `script` from `seed`, the power going off after `cut_after` changes.
pub(super) fn play(
    seed: u64,
    backend: BackendKind,
    durability: Durability,
    script: Script<'_>,
    cut_after: Option<u64>,
) -> Result<Played, String> {
    let disk = PowerCut::new();
    seed_legacy(&disk);
    session_vault_guest::create_dirs(&disk.dir(""), STORE).map_err(|e| e.to_string())?;
    let mut now = T0;
    let mut known = Known {
        key: 1,
        ..Known::default()
    };
    let clock = ManualClock::new(now);
    let mut current = backend;
    // Odd seeds erase removed sessions at once: every removal compacts.
    let erase = if seed % 2 == 1 {
        Erase::Immediate
    } else {
        Erase::Deferred
    };
    let mut store =
        open(&disk, Some(backend), durability, 1, &clock, erase).map_err(|e| e.to_string())?;
    let setup = disk.changes();
    if let Some(changes) = cut_after {
        disk.power_off_after(changes);
    }
    let mut retired = BTreeSet::new();
    let mut rng = Rng(seed);
    let mut in_flight = None;
    let mut maybe: Vec<(String, Option<Session>, Option<Session>)> = Vec::new();
    let mut next_key = 2u8;
    let mut imported = false;
    let steps = match script {
        Script::Random => 40,
        Script::Fixed(kinds) => kinds.len() as u64,
    };
    for step in 0..steps {
        if disk.is_off() {
            break;
        }
        let ids: Vec<String> = known.sessions.keys().cloned().collect();
        let pick = |rng: &mut Rng| ids.get(rng.below(ids.len() as u64) as usize).cloned();
        let drawn = rng.below(100);
        let kind = match script {
            Script::Fixed(kinds) => kinds.get(step as usize).copied().unwrap_or(Kind::Cleanup),
            Script::Random => match drawn {
                0..=21 => Kind::Create,
                22..=27 => Kind::Set,
                28..=40 => Kind::Update,
                41..=49 => Kind::Touch,
                50..=55 => Kind::TouchUntil,
                56..=65 => Kind::Delete,
                66..=71 => Kind::Cleanup,
                72..=75 => Kind::RevokeUser,
                76..=77 => Kind::Clear,
                78..=81 => Kind::AddKey,
                82..=85 => Kind::Rekey,
                86..=88 => Kind::Retire,
                89..=92 => Kind::Migrate,
                _ => Kind::Import,
            },
        };
        in_flight = Some(kind);
        maybe.clear();
        let result: Result<(), StoreError> = match kind {
            Kind::Create => {
                let id = format!("s{step}-{}", rng.below(1000));
                let user = format!("u{}", rng.below(3));
                // Most far in the future, so that nothing resurrected hides behind expiry.
                let expires = match rng.below(4) {
                    0 => now + 1_000 * (5 + rng.below(60)),
                    _ => FAR,
                };
                let session: Session =
                    serde_json::from_value(doc(&id, &user, expires)).map_err(|e| e.to_string())?;
                maybe.push((id.clone(), None, Some(session.clone())));
                store
                    .create(&session)
                    .map(|()| known.set(&id, Some(session)))
            }
            Kind::Set => {
                // A free-form session, over a stored id half the time.
                let id = match pick(&mut rng).filter(|_| rng.below(2) == 0) {
                    Some(id) => id,
                    None => format!("f{step}-{}", rng.below(1000)),
                };
                let session =
                    Session::from_value(express_doc(&id, FAR)).map_err(|e| e.to_string())?;
                maybe.push((
                    id.clone(),
                    known.sessions.get(&id).cloned(),
                    Some(session.clone()),
                ));
                store.set(&session).map(|()| known.set(&id, Some(session)))
            }
            Kind::TouchUntil => {
                // Only far-off sessions are rolled further off: a stamp lost to the cut
                // then leaves them live, as `settled` compares them.
                let Some(id) = pick(&mut rng) else { continue };
                let Some(before) = known.sessions.get(&id).filter(|s| s.expires_at() >= FAR) else {
                    continue;
                };
                let before = Some(before.clone());
                let mut after = before.clone();
                if let Some(after) = &mut after {
                    after.set_expires_at(FAR + 86_400_000);
                }
                maybe.push((id.clone(), before, after));
                store.touch(&id, Some(FAR + 86_400_000)).map(|found| {
                    if let Some(found) = found {
                        known.set(&id, Some(found));
                    }
                })
            }
            Kind::Update | Kind::Touch | Kind::Delete => {
                let Some(id) = pick(&mut rng) else { continue };
                let before = known.sessions.get(&id).cloned();
                match kind {
                    // The patch names a `userContext` member: a free-form session (no
                    // user) would refuse it.
                    Kind::Update if before.as_ref().is_some_and(|s| s.user().is_none()) => {
                        continue;
                    }
                    Kind::Update => {
                        let name = format!("name-{step}");
                        let patch: SessionPatch = serde_json::from_value(
                            serde_json::json!({"userContext": {"name": name}}),
                        )
                        .map_err(|e| e.to_string())?;
                        let after = (before.clone())
                            .map(|s| patch.clone().apply(s))
                            .transpose()
                            .map_err(|e| e.to_string())?;
                        maybe.push((id.clone(), before, after));
                        store
                            .update(&id, patch)
                            .map(|stored| known.set(&id, Some(stored)))
                    }
                    Kind::Touch => {
                        maybe.push((id.clone(), before.clone(), before));
                        store.touch(&id, None).map(|found| {
                            if let Some(found) = found {
                                known.set(&id, Some(found));
                            }
                        })
                    }
                    _ => {
                        maybe.push((id.clone(), before, None));
                        store.delete(&id).map(|_| known.set(&id, None))
                    }
                }
            }
            Kind::Cleanup => {
                now += 10_000;
                clock.set(now);
                let expired: Vec<String> = (known.sessions.iter())
                    .filter(|(_, s)| s.expires_at() <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &expired {
                    maybe.push((id.clone(), known.sessions.get(id).cloned(), None));
                }
                store.cleanup().map(|_| {
                    for id in &expired {
                        known.set(id, None);
                    }
                })
            }
            Kind::RevokeUser | Kind::Clear => {
                let user = format!("u{}", rng.below(3));
                let gone: Vec<String> = (known.sessions.iter())
                    .filter(|(_, s)| kind == Kind::Clear || s.user() == Some(user.as_str()))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &gone {
                    maybe.push((id.clone(), known.sessions.get(id).cloned(), None));
                }
                let result = match kind {
                    Kind::Clear => store.clear().map(drop),
                    _ => store.revoke_user(&user).map(drop),
                };
                result.map(|()| {
                    for id in &gone {
                        known.set(id, None);
                    }
                })
            }
            Kind::AddKey => {
                let key = next_key;
                next_key += 1;
                let previous = known.key;
                // Until it is acknowledged, either secret may be the current one.
                known.old_keys.push(key);
                store.add_key(&secret(key)).map(|_| {
                    known.old_keys.retain(|k| *k != key);
                    known.old_keys.push(previous);
                    known.key = key;
                })
            }
            Kind::Rekey => store.rekey(usize::MAX).map(drop),
            // One segment at a time: a cut between steps leaves a pass half done.
            Kind::Compact => store.compact(1).map(drop),
            Kind::Retire => {
                let current = store
                    .keys()
                    .expect("a directory store's keys")
                    .into_iter()
                    .find(|k| k.current)
                    .map(|k| k.id);
                let retirable = store
                    .keys()
                    .expect("a directory store's keys")
                    .into_iter()
                    .find(|k| Some(k.id) != current && !k.retired && k.sessions == 0);
                match retirable {
                    Some(key) => store.retire_key(key.id).map(|()| {
                        retired.insert(key.id);
                    }),
                    None => continue,
                }
            }
            Kind::Migrate => {
                let to = match current {
                    BackendKind::Log => BackendKind::Files,
                    _ => BackendKind::Log,
                };
                store.migrate(to).map(|_| current = to)
            }
            Kind::Import => {
                if imported {
                    continue;
                }
                imported = true;
                import(&disk, &mut store, &mut known, &mut maybe)
            }
        };
        match result {
            Ok(()) => {
                in_flight = None;
                maybe.clear();
            }
            Err(_) if disk.is_off() => break,
            Err(StoreError::NotFound | StoreError::AlreadyExists) => {
                in_flight = None;
                maybe.clear();
            }
            Err(other) => return Err(format!("step {step} {kind:?}: {other}")),
        }
    }
    drop(store);
    Ok(Played {
        disk,
        durability,
        known,
        in_flight,
        maybe,
        now,
        backend: current,
        retired,
        setup,
    })
}

/// Copies the original store's real files onto the disk, synced.
fn seed_legacy(disk: &PowerCut) {
    let root = disk.dir("");
    session_vault_guest::create_dirs(&root, "legacy").unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/legacy-ts/store");
    for entry in std::fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        let name = format!("legacy/{}", entry.file_name().to_string_lossy());
        use session_vault_guest::Dir;
        root.write_new(&name, &std::fs::read(entry.path()).unwrap(), true)
            .unwrap();
    }
    use session_vault_guest::Dir;
    root.sync("legacy").unwrap();
}

fn import(
    disk: &PowerCut,
    store: &mut CutStore,
    known: &mut Known,
    maybe: &mut Vec<(String, Option<Session>, Option<Session>)>,
) -> Result<(), StoreError> {
    thread_local! {
        // scrypt once per thread, not once per run.
        static KEY: session_vault_guest::testing::crypto::Key =
            session_vault_guest::testing::legacy_key(LEGACY_SECRET).unwrap();
    }
    let key = KEY.with(Clone::clone);
    let legacy = LegacyStore::with_key(disk.dir("legacy"), key)?;
    let files = legacy.files()?;
    let expected: Vec<Session> = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/legacy-ts/expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let now = store.now();
    let live: Vec<&Session> = expected.iter().filter(|s| s.expires_at() > now).collect();
    for session in &live {
        maybe.push((session.id().to_owned(), None, Some((*session).clone())));
    }
    let report = legacy.import_into(store, &files)?;
    for session in live {
        if report.imported.iter().any(|id| id == session.id()) {
            known.set(session.id(), Some(session.clone()));
        }
    }
    Ok(())
}
