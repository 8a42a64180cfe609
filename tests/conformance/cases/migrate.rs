//! The case of migrating between the two directory backends and back.

use serde_json::json;

use crate::front::{Front, Setup, T0};

use super::{MINUTE, doc, ids, open, while_closed};

pub fn migrate_moves_every_session_there_and_back<F: Front>() {
    use session_vault::BackendKind;
    let mut setup = Setup::new();
    let (home, away) = match setup.backend {
        BackendKind::Files => (BackendKind::Files, BackendKind::Log),
        _ => (BackendKind::Log, BackendKind::Files),
    };
    let mut front: F = open(&setup);
    for (i, user) in ["u1", "u1", "u2", "u2", "u2"].iter().enumerate() {
        front
            .create(&doc(&format!("s{i}"), user, T0 + 60 * MINUTE))
            .unwrap();
    }
    setup.clock.set(T0 + MINUTE);
    front.touch("s1").unwrap().expect("s1 is live");
    assert!(front.delete("s4").unwrap());
    let before: Vec<_> = (0..4)
        .map(|i| front.get(&format!("s{i}")).unwrap())
        .collect();
    let layout = |setup: &Setup, backend: BackendKind| {
        let names = setup.names();
        let files = names
            .iter()
            .any(|n| n.ends_with(".svs") || n.ends_with(".sva"));
        let log = names.iter().any(|n| n == "log");
        assert_eq!(
            (files, log),
            (backend == BackendKind::Files, backend == BackendKind::Log),
            "{names:?}"
        );
    };
    for to in [away, home] {
        assert_eq!(front.migrate(to), Ok(4), "to {}", to.name());
        assert_eq!(front.migrate(to), Ok(0), "already {}", to.name());
        setup.backend = to;
        front = while_closed(front, &setup, || {});
        layout(&setup, to);
        let after: Vec<_> = (0..4)
            .map(|i| front.get(&format!("s{i}")).unwrap())
            .collect();
        assert_eq!(after, before, "in {}", to.name());
        assert_eq!(ids(&front.list("u2").unwrap()), vec!["s2", "s3"]);
        let report = front.check().unwrap();
        assert_eq!(
            (&report["live"], &report["quarantined"], &report["foreign"]),
            (&json!(4), &json!(0), &json!(0))
        );
    }
}
