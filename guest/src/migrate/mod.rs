//! Moving a store between backends.

pub mod bucket;

#[cfg(test)]
mod tests;
