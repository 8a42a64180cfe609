//! A one-line progress report on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

/// A `progress(done, total)` callback that redraws `label: done/total (n%)` on stderr,
/// when stderr is a terminal and `total` is at least `min_total`.
pub fn reporter(label: &'static str, min_total: u64) -> impl FnMut(u64, u64) {
    let show = std::io::stderr().is_terminal();
    move |done, total| {
        if show && total >= min_total.max(1) {
            eprint!("\r{label}: {done}/{total} ({}%)", done * 100 / total);
            if done == total {
                eprintln!();
            }
        }
    }
}
