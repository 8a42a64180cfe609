//! The session document: its model, update's patch and merge rules, and the id rule.

pub mod id;
pub mod model;
pub mod patch;
