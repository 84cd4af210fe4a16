//! End-to-end tests of the `tierforge` binary in temp folders.

mod train_cli;
mod util;
