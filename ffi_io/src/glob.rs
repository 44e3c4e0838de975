//! Shell-style path patterns (the `glob` crate): `*`, `?`, `[a-z]`, `[!x]`, `**`.

use crate::common::{io_err, path_text};
use ffi_sdk::prelude::*;
use std::io;
use std::path::PathBuf;

/// The directory a pattern starts reading at: its components before the
/// first one holding a pattern character (the whole path when there is none).
pub fn literal_base(pattern: &str) -> PathBuf {
    match pattern.find(['*', '?', '[']) {
        None => PathBuf::from(pattern),
        Some(i) => match pattern[..i].rfind('/') {
            Some(0) => PathBuf::from("/"),
            Some(j) => PathBuf::from(&pattern[..j]),
            None => PathBuf::from("."),
        },
    }
}

/// Paths matching a pattern, in the glob crate's order (each directory's entries sorted by name, so
/// deterministic). Capabilities: fs.read is checked on the literal directory the pattern starts from (`/srv/*/x`
/// → `/srv`): denied there, the call fails with CapabilityDenied. Matches whose canonical path fs.read does not
/// allow (reached through a symlink, say) are filtered out: the caller gets only what it could read, as with
/// unveil, and one stray link does not make a permitted pattern fail.
///
/// # Options
/// - case_sensitive (bool, default true): case sensitive
/// - literal_separator (bool, default false): `*` may match `/`
/// - literal_leading_dot (bool, default false): `*` matches hidden names too
/// - skip_errors (bool, default false): an unreadable directory is an Error; entries that vanish meanwhile are always skipped
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: for a malformed pattern (details.position, 0-based character index)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_glob(pattern: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["case_sensitive", "literal_separator", "literal_leading_dot", "skip_errors"])?;
    let mo = ::glob::MatchOptions {
        case_sensitive: opts.bool("case_sensitive")?.unwrap_or(true),
        require_literal_separator: opts.bool("literal_separator")?.unwrap_or(false),
        require_literal_leading_dot: opts.bool("literal_leading_dot")?.unwrap_or(false),
    };
    let skip_errors = opts.bool("skip_errors")?.unwrap_or(false);
    let _ = paths::validate(FN, pattern)?;
    let paths = ::glob::glob_with(pattern, mo).map_err(|e| {
        Error::new(Code::Parse, FN, format!("invalid pattern: {} at position {}", e.msg, e.pos), ffi_sdk::error::quote(pattern))
            .with("position", e.pos)
            .with("column", e.pos + 1)
    })?;
    cap::check_path(FN, "fs.read", &literal_base(pattern))?;
    let out = Value::array(0);
    for m in paths {
        // Between matches: the thread's deadline / cancel token (docs/DEADLINES.md).
        ffi_sdk::deadline::check(FN)?;
        match m {
            Ok(p) => {
                if cap::permitted(FN, "fs.read", &p) {
                    out.push(Value::text(path_text(FN, &p)?));
                }
            }
            Err(e) => {
                if e.error().kind() == io::ErrorKind::NotFound || skip_errors {
                    continue;
                }
                return Err(io_err(FN, e.path().display(), e.error()));
            }
        }
    }
    Ok(out)
}
