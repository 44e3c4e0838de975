//! Directory operations under the names Simple's standard library calls
//! (`sffi/io.spl`, `sffi/fs.spl`); they share `dir.rs` / `glob.rs` and report
//! their own names in errors.

use crate::common::{renamed, target};
use ffi_sdk::beneath::{self, Follow};
use ffi_sdk::prelude::*;
use std::io;

/// True when `path` is a directory (symlinks followed); false when nothing
/// is there or it is another kind. Error for other failures.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_dir_exists(path: &str) -> RtResult<bool> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    match t.stat() {
        Ok(st) => Ok(beneath::is(&st, libc::S_IFDIR)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(t.err(&e)),
    }
}

/// Simple's `rt_dir_delete`: removes an empty directory (rt_dir_remove; a
/// tree is rt_dir_remove_all). Error NotFound, or Io (ENOTEMPTY) when not empty.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_delete(path: &str) -> RtResult<()> {
    renamed(FN, "rt_dir_remove", crate::dir::__rt_dir_remove(path))
}

/// Simple's name for rt_glob with default options.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_dir_glob(pattern: &str) -> RtResult<Value> {
    renamed(FN, "rt_glob", crate::glob::__rt_glob(pattern, Opts::new(FN, Value::NIL)))
}

/// Simple's name for rt_dir_list: entry names, sorted bytewise.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_file_list_dir(path: &str) -> RtResult<Value> {
    renamed(FN, "rt_dir_list", crate::dir::__rt_dir_list(path))
}

/// Every regular file under `path` (rt_dir_walk order: depth first, sorted,
/// symlinks not followed) whose name ends in extension `ext` (`"rs"` or
/// `".rs"`; "" keeps every file). Paths start with `path` as given.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_list_dir_recursive(path: &str, ext: &str) -> RtResult<Value> {
    let opts = Value::dict().set("files_only", Value::from_raw(ffi_sdk::abi::TRUE));
    let all = renamed(FN, "rt_dir_walk", crate::dir::__rt_dir_walk(path, Opts::new(FN, opts)))?;
    let ext = ext.strip_prefix('.').unwrap_or(ext);
    if ext.is_empty() {
        return Ok(all);
    }
    let out = Value::array(0);
    for p in all.items() {
        let keep = p
            .as_text()
            .and_then(|t| std::path::Path::new(t).extension().map(|e| e.as_encoded_bytes() == ext.as_bytes()))
            .unwrap_or(false);
        if keep {
            out.push(p);
        }
    }
    Ok(out)
}

/// fsyncs a directory so entries created, renamed or removed in it reach the disk. Needs fs.write.
///
/// # Errors
/// - InvalidArgument: it is not a directory
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_dir_sync(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    let f = t.open(libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(|e| t.err(&e))?;
    f.sync_all().map_err(|e| t.err(&e))
}
