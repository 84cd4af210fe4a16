//! End-to-end tests of the `tierforge` binary in temp folders.

mod bench_cli;
mod profile_cli;
mod qa_cli;
mod redteam;
mod runtime_cli;
mod tiers_cli;
mod train_cli;
mod util;
