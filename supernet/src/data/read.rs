//! Reading a user's data file safely: only regular files (a FIFO or a device would block or
//! never end), and never more bytes than a caller's bound.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest data file (or decompressed IDX stream) we read: 2 GiB.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 31;

/// Opens `path` for reading after checking that it is a regular file (following links), and
/// returns it with its size.
///
/// # Errors
/// A missing file, a folder, a FIFO, a device or a socket (named).
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::data(
            path,
            "not a regular file (a folder, FIFO, device or socket); pass a data file",
        ));
    }
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok((f, meta.len()))
}

/// Reads a whole regular file of at most `max` bytes.
///
/// # Errors
/// See [`open_regular`]; a file larger than `max` (named, with both sizes).
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let (f, len) = open_regular(path)?;
    if len > max {
        return Err(Error::data(
            path,
            format!("{len} bytes is larger than the {max} bytes this file may hold"),
        ));
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > max {
        return Err(Error::data(
            path,
            format!("grew beyond {max} bytes while being read"),
        ));
    }
    Ok(out)
}

/// Reads a small text file (at most `max` bytes, UTF-8).
///
/// # Errors
/// See [`read_bounded`]; text that is not UTF-8.
pub fn read_text_bounded(path: &Path, max: u64) -> Result<String> {
    String::from_utf8(read_bounded(path, max)?)
        .map_err(|_| Error::data(path, "not UTF-8 text; save it as UTF-8"))
}
