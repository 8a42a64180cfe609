//! Moving a store, and finishing a move a crash cut short: between a directory's two
//! backends ([`backends`]: `files` ↔ `log`), and between a directory and a key-value
//! bucket ([`bucket`]: into `redis` and back out). Every move is safe to interrupt and to
//! run again.

pub mod backends;
pub mod bucket;

#[cfg(test)]
mod tests;
