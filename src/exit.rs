//! Exit codes of `tierforge`, one per outcome (documented in the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | error: a file, folder or input could not be used (the message names it and the fix) |
//! | 2 | bad command line (clap's usage errors, an unusable `--threads`) |
//! | 3 | `qa`: at least one phone failed its budgets |
//! | 4 | `select`: no variant fits the device (the smallest is reported) |
//! | 5 | `bundle verify`: the bundle is damaged (each bad file is named) |
//! | 6 | `bench infer --check`: the engine disagrees with the reference |

/// An error (the default for `Err`).
pub const ERROR: u8 = 1;
/// A bad command line (also what clap exits with on a usage error).
pub const BAD_ARGUMENT: u8 = 2;
/// `qa`: a phone failed.
pub const QA_FAILED: u8 = 3;
/// `select`: nothing fits.
pub const NOTHING_FITS: u8 = 4;
/// `bundle verify`: the bundle is damaged.
pub const BUNDLE_DAMAGED: u8 = 5;
/// `bench`: a check failed.
pub const CHECK_FAILED: u8 = 6;
