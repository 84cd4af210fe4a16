//! The runtime's integration tests: bundles written to temp folders with fake weights.

mod accuracy;
mod bundle;
mod cache;
mod common;
mod engine;
mod fallback;
mod launch;
mod real_bundle;
mod select;
