//! Helpers shared by the ffi_io functions: error mapping, path checks,
//! capability filtering. Not exported.

use ffi_sdk::beneath::{Follow, Target};
use ffi_sdk::prelude::*;
use std::fmt::Display;
use std::io;
use std::path::Path;

/// `Error::io` with the path in `details.path`.
pub fn io_err(func: &'static str, path: impl Display, e: &io::Error) -> Error {
    let path = path.to_string();
    Error::io(func, &path, e).with("path", path)
}

/// Resolves `path` for one operation needing `cap` (ffi_sdk::beneath):
/// validated, checked on its canonical form, walked without symlinks when
/// the capability is scoped.
pub fn target(func: &'static str, cap_name: &'static str, path: &str, follow: Follow) -> RtResult<Target> {
    beneath::resolve(func, cap_name, path, follow)
}


/// A path as text; Error Parse when the operating system gave a non-UTF-8 name.
pub fn path_text<'a>(func: &'static str, p: &'a Path) -> RtResult<&'a str> {
    p.to_str().ok_or_else(|| {
        Error::new(Code::Parse, func, "path is not UTF-8", p.to_string_lossy()).with("path", p.to_string_lossy().into_owned())
    })
}


/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Renames the function an error from a shared implementation names (an
/// alias reports its own name: "rt_alias: ..." instead of "rt_original: ...").
pub fn renamed<T>(func: &'static str, from: &str, r: RtResult<T>) -> RtResult<T> {
    r.map_err(|mut e| {
        if let Some(rest) = e.message.strip_prefix(from) {
            e.message = format!("{func}{rest}");
        }
        e
    })
}
