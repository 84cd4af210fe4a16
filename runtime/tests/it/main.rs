//! The runtime's integration tests: bundles written to temp folders with fake weights.

mod bundle;
mod cache;
mod common;
mod fallback;
mod select;
