//! The runs of many cuts: random campaigns over seeds, and every cut point of a fixed
//! scenario.

use std::collections::BTreeMap;

use session_vault::{BackendKind, Durability};
use session_vault_guest::testing::power_cut::{Fate, Model, Rng};

use super::play::play;
use super::{Explored, Kind, Script};

struct Outcome {
    /// The kind of the operation the power went off in, if any.
    in_flight: Option<Kind>,
}

/// Plays `script` and checks one cut under `model` (fates drawn from `seed`).
fn run(
    seed: u64,
    backend: BackendKind,
    durability: Durability,
    model: Model,
    cut_after: Option<u64>,
) -> Result<Outcome, String> {
    let played = play(seed, backend, durability, Script::Random, cut_after)?;
    let after = played.disk.cut(model, seed ^ 0x5eed);
    played.check(&after)?;
    Ok(Outcome {
        in_flight: played.in_flight,
    })
}

/// How many changes a run makes with the power on (its changes do not depend on the
/// random bytes it seals with, so every run of a seed makes the same ones).
fn count_changes(seed: u64, backend: BackendKind, durability: Durability) -> u64 {
    let played = play(seed, backend, durability, Script::Random, None)
        .unwrap_or_else(|e| panic!("seed {seed}, {backend:?}, {durability:?}, no cut: {e}"));
    played.disk.changes() - played.setup
}

/// `cuts` random cuts for each backend × durability × model; panics with the seed of
/// the first failure. Returns how many cuts saw each kind of operation in flight.
pub(super) fn campaign(seeds: std::ops::Range<u64>, cuts_per_seed: u64) -> BTreeMap<String, u64> {
    // Seeds split over the cores; each thread has disks of its own.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let seeds: Vec<u64> = seeds.clone().filter(|s| s % threads == t).collect();
            std::thread::spawn(move || campaign_of(&seeds, cuts_per_seed))
        })
        .collect();
    let mut seen = BTreeMap::new();
    for handle in handles {
        let part = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        for (label, n) in part {
            *seen.entry(label).or_insert(0) += n;
        }
    }
    seen
}

fn campaign_of(seeds: &[u64], cuts_per_seed: u64) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for backend in [BackendKind::Log, BackendKind::Files] {
        for durability in [Durability::Durable, Durability::Relaxed] {
            for model in [Model::Posix, Model::Ordered] {
                for &seed in seeds {
                    let total = count_changes(seed, backend, durability);
                    let mut rng = Rng(seed.wrapping_mul(31));
                    for _ in 0..cuts_per_seed {
                        let cut = 1 + rng.below(total.max(1));
                        let outcome = run(seed, backend, durability, model, Some(cut))
                            .unwrap_or_else(|e| {
                                panic!(
                                    "seed {seed}, {backend:?}, {durability:?}, {model:?}, cut after \
                                     {cut} of {total} changes: {e}"
                                )
                            });
                        let label = match outcome.in_flight {
                            Some(kind) => format!("{model:?} {kind:?}"),
                            None => format!("{model:?} between operations"),
                        };
                        *seen.entry(label).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    seen
}

/// Every cut point of `script`; at each, every keep/drop choice of the pending operations
/// when there are at most `max_pending`, else `samples` drawn choices (tears included).
pub(super) fn exhaustive(
    seed: u64,
    script: &[Kind],
    backend: BackendKind,
    durability: Durability,
    max_pending: usize,
    samples: u64,
) -> Explored {
    let label = |cut: u64| format!("seed {seed}, {backend:?}, {durability:?}, cut after {cut}");
    let whole = (play(seed, backend, durability, Script::Fixed(script), None))
        .unwrap_or_else(|e| panic!("{}: {e}", label(0)));
    let total = whole.disk.changes() - whole.setup;
    let mut explored = Explored::default();
    for cut in 1..=total {
        let played = play(seed, backend, durability, Script::Fixed(script), Some(cut))
            .unwrap_or_else(|e| panic!("{}: {e}", label(cut)));
        let pending = played.disk.pending().len();
        explored.cut_points += 1;
        let mut try_fates = |fates: &[Fate], what: &str| {
            explored.cuts += 1;
            played
                .check(&played.disk.cut_with(fates))
                .unwrap_or_else(|e| panic!("{}, {what} {fates:?}: {e}", label(cut)));
        };
        if pending <= max_pending {
            for mask in 0u64..(1 << pending) {
                let fates: Vec<Fate> = (0..pending)
                    .map(|i| match mask >> i & 1 {
                        1 => Fate::Kept,
                        _ => Fate::Dropped,
                    })
                    .collect();
                try_fates(&fates, "choice");
            }
            explored.every_choice += 1;
        } else {
            let mut rng = Rng(cut);
            for _ in 0..samples {
                let fates: Vec<Fate> = (0..pending)
                    .map(|_| match rng.below(3) {
                        0 => Fate::Kept,
                        1 => Fate::Dropped,
                        _ => Fate::Torn(rng.bits()),
                    })
                    .collect();
                try_fates(&fates, "sample");
            }
        }
    }
    explored
}
