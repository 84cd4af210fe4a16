//! The runtime's integration tests: bundles written to temp folders with fake weights.

mod bundle;
mod c_client;
mod cache;
mod common;
mod fallback;
mod ffi;
mod header;
mod jni;
mod launch;
mod select;
