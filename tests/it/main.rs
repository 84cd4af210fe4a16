//! End-to-end tests of the `tierforge` binary in temp folders.

mod profile_cli;
mod train_cli;
mod util;
