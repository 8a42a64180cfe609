//! The benchmark's results as Markdown tables (`session-vault-bench --markdown FILE`), which
//! `scripts/bench` splices into docs/PERFORMANCE.md: the figures there are generated.

use std::fmt::Write as _;
use std::time::Duration;

use session_vault::{BackendKind, Durability};

use super::{OPS, Results, Stats, original::Figures};

/// One table: every operation of one store size, backend and durability mode.
pub(super) fn markdown(
    n: usize,
    backend: BackendKind,
    durability: Durability,
    [comp, native, floor]: [&Results; 3],
    original: Option<&Figures>,
) -> String {
    let mode = match durability {
        _ if backend == BackendKind::Redis => "durable (the server's `appendfsync always`)",
        Durability::Durable => "durable",
        _ => "relaxed",
    };
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "\n#### `{}`, {mode}, {} sessions\n",
        backend.name(),
        thousands(n as f64)
    );
    out.push_str(
        "| op | (a) component ops/s | p50 µs | (b) native ops/s | (c) floor ops/s | (a)/(b) | \
         (a)/(c) | original ops/s | (a) ÷ original |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for op in OPS {
        let stats = |r: &Results| r.ops.get(op).copied().unwrap_or_default();
        let (a, b, c) = (stats(comp), stats(native), stats(floor));
        let orig = original.and_then(|o| o.ops.get(super::original_op(op)).copied());
        let p50 = if a.p50_us == 0 {
            "–".to_owned()
        } else {
            a.p50_us.to_string()
        };
        let _ = writeln!(
            out,
            "| {op} | {} | {p50} | {} | {} | {} | {} | {} | {} |",
            thousands(a.ops_per_s),
            thousands(b.ops_per_s),
            thousands(c.ops_per_s),
            ratio(b, a),
            ratio(c, a),
            orig.map_or("–".into(), thousands),
            orig.map_or("–".into(), |o| format!("{:.1}×", a.ops_per_s / o)),
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let _ = writeln!(
        out,
        "| cold open | {:.1} ms | | {:.1} ms | {:.1} ms | {:.2} | {:.2} | {} | {} |",
        ms(comp.cold_open),
        ms(native.cold_open),
        ms(floor.cold_open),
        ms(comp.cold_open) / ms(native.cold_open),
        ms(comp.cold_open) / ms(floor.cold_open),
        original.map_or("–".into(), |o| format!("{:.0} ms", o.open_ms)),
        original.map_or("–".into(), |o| format!(
            "{:.1}×",
            o.open_ms / ms(comp.cold_open)
        )),
    );
    if let Some(kib) = comp.peak_rss_kib {
        let _ = writeln!(
            out,
            "\nPeak RSS of a one-shot `session-vault count` of the store: {:.1} MiB.",
            kib as f64 / 1024.0
        );
    }
    if let Some((elapsed, kib)) = comp.compact {
        let _ = writeln!(
            out,
            "One-shot `compact` after the deletes: {:.0} ms, peak RSS {}.",
            ms(elapsed),
            kib.map_or("–".into(), |kib| format!(
                "{:.1} MiB",
                kib as f64 / 1024.0
            ))
        );
    }
    out
}

/// Time per operation of `slow` over `fast`'s: how many times slower `slow` is.
fn ratio(fast: Stats, slow: Stats) -> String {
    if slow.ops_per_s > 0.0 {
        format!("{:.2}", fast.ops_per_s / slow.ops_per_s)
    } else {
        "–".into()
    }
}

/// `value` rounded, with thousands separated by commas.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn a_table_has_a_row_per_operation_and_the_cold_open() {
        let mut results = Results::default();
        for op in OPS {
            results.ops.insert(
                op,
                Stats {
                    ops_per_s: 2_000.0,
                    p50_us: 400,
                    p99_us: 900,
                },
            );
        }
        results.cold_open = Duration::from_millis(12);
        let table = markdown(
            1_000,
            BackendKind::Log,
            Durability::Relaxed,
            [&results, &results, &results],
            None,
        );
        assert!(table.contains("#### `log`, relaxed, 1,000 sessions"));
        assert!(
            table.contains("| get (hot) | 2,000 | 400 | 2,000 | 2,000 | 1.00 | 1.00 | – | – |")
        );
        assert!(table.contains("| cold open | 12.0 ms |"));
        assert_eq!(
            table.lines().filter(|l| l.starts_with("| ")).count(),
            OPS.len() + 2
        );
    }
}
