//! File names for recordings.

use chrono::{DateTime, Utc};

use crate::RecordingError;

/// Extension of every recording file.
pub const RECORDING_EXTENSION: &str = "h5";

/// Builds the file name (not a path) of a recording.
///
/// The result is `<base>[_<timestamp>][_<index>].h5`, for example `rat7.h5`,
/// `rat7_0003.h5`, `rat7_2026-11-21T10-15-30Z.h5` or
/// `rat7_2026-11-21T10-15-30Z_0003.h5`.
///
/// * The timestamp is UTC with `-` instead of `:` so the name is valid on every file
///   system (and on SMB shares labs copy recordings to), and comes before the index
///   so a directory listing sorts by session first and by file within a session next.
/// * The index is zero-padded to four digits so names sort correctly in plain
///   lexical order up to 9999 files; larger indices simply get more digits.
/// * A trailing `.h5` on `base_name` is dropped rather than doubled.
///
/// The base name must be a single non-empty file-name component: path separators,
/// NUL, `.` and `..` are rejected, because the daemon joins the result onto its
/// recording directory and must never be steered outside it.
pub fn recording_file_name(
    base_name: &str,
    index: Option<u32>,
    timestamp: Option<DateTime<Utc>>,
) -> Result<String, RecordingError> {
    let reject = |reason| RecordingError::InvalidBaseName { name: base_name.to_owned(), reason };
    if base_name.contains(['/', '\\']) {
        return Err(reject("must not contain path separators"));
    }
    if base_name.contains('\0') {
        return Err(reject("must not contain NUL characters"));
    }
    let stem = strip_extension(base_name);
    if stem.trim().is_empty() {
        return Err(reject("must not be empty"));
    }
    if stem == "." || stem == ".." {
        return Err(reject("must not be '.' or '..'"));
    }

    let mut name = stem.to_owned();
    if let Some(ts) = timestamp {
        name.push('_');
        name.push_str(&ts.format("%Y-%m-%dT%H-%M-%SZ").to_string());
    }
    if let Some(i) = index {
        name.push_str(&format!("_{i:04}"));
    }
    name.push('.');
    name.push_str(RECORDING_EXTENSION);
    Ok(name)
}

fn strip_extension(base: &str) -> &str {
    // ".h5" is ASCII, so if the lower-cased name ends with it the original's last
    // three bytes are exactly that suffix and slicing stays on a char boundary.
    let suffix = ".h5";
    if base.to_ascii_lowercase().ends_with(suffix) {
        &base[..base.len() - suffix.len()]
    } else {
        base
    }
}
