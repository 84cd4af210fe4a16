//! Examples crate (binaries under src/bin).
