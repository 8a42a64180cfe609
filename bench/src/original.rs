//! The original TypeScript `FileSessionStore`, measured by its own benchmark driver
//! (`../shared/reference/original/bench`, built by `scripts/bench`) in the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The secret the driver's stores use (the original needs no particular one).
const SECRET: &str = "an-example-secret-of-at-least-32-characters!";

/// A built driver: `<dir>/dist/driver.js`, run with `node`.
#[derive(Debug, Clone)]
pub struct Original {
    driver: PathBuf,
}

/// What the driver measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// ops/s of `create`, `get`, `update`, `delete`.
    pub ops: BTreeMap<String, f64>,
    /// Milliseconds to reopen the store (its index rebuild).
    pub open_ms: f64,
}

impl Original {
    /// The driver built in `dir`.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let driver = dir.join("dist/driver.js");
        anyhow::ensure!(
            driver.is_file(),
            "{} is missing: build the driver first (scripts/bench does)",
            driver.display()
        );
        Ok(Original { driver })
    }

    /// Runs `driver bench` on `n` sessions in `work`.
    pub fn bench(&self, work: &Path, n: usize) -> anyhow::Result<Figures> {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let output = Command::new("node")
            .arg(&self.driver)
            .arg("bench")
            .arg(work)
            .arg(SECRET)
            .arg(n.to_string())
            .output()
            .context("running the original store's driver with node")?;
        anyhow::ensure!(
            output.status.success(),
            "the original store's driver failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let figures = parse(&String::from_utf8_lossy(&output.stdout));
        let _ = std::fs::remove_dir_all(work);
        figures
    }
}

/// Parses `create\t2400 ops/s` and `open\t24500.0 ms for N sessions` lines.
fn parse(stdout: &str) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    for line in stdout.lines() {
        let Some((label, rest)) = line.split_once('\t') else {
            continue;
        };
        let value = rest.split_whitespace().next().unwrap_or_default();
        let value: f64 = value
            .parse()
            .with_context(|| format!("the driver printed {line:?}"))?;
        if label == "open" {
            figures.open_ms = value;
        } else {
            figures.ops.insert(label.to_owned(), value);
        }
    }
    anyhow::ensure!(!figures.ops.is_empty(), "the driver printed no figures");
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_output_parses() {
        let figures =
            parse("create\t2400 ops/s\nget\t4000 ops/s\nopen\t24500.5 ms for 100000 sessions\n")
                .unwrap();
        assert_eq!(figures.ops.get("get"), Some(&4000.0));
        assert_eq!(figures.open_ms, 24500.5);
        assert!(parse("nonsense").is_err());
    }
}
