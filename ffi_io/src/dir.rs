//! Directories: create, list, walk, remove.

use crate::common::{checked, checked_nofollow, io_err, path_text};
use ffi_sdk::prelude::*;
use std::fs;
use std::io;

/// Creates one directory. Error NotFound when the parent is missing,
/// AlreadyExists when the path exists (whatever it is).
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_create(path: &str) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    fs::create_dir(p).map_err(|e| io_err(FN, path, &e))
}

/// Creates a directory and every missing parent; nothing to do when it
/// exists as a directory. Error InvalidArgument when it (or a parent) is a
/// file.
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_create_all(path: &str) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    match fs::create_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut err = io_err(FN, path, &e);
            if e.kind() == io::ErrorKind::AlreadyExists {
                err = Error::invalid(FN, "exists and is not a directory", path).with("path", path);
            }
            Err(err)
        }
    }
}

/// Names of the entries of a directory (not `.`/`..`), sorted bytewise.
/// Error InvalidArgument for a file, Parse for a name that is not UTF-8.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_dir_list(path: &str) -> RtResult<Value> {
    let p = checked(FN, "fs.read", path)?;
    let rd = fs::read_dir(p).map_err(|e| io_err(FN, path, &e))?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| io_err(FN, path, &e))?;
        match ent.file_name().into_string() {
            Ok(s) => names.push(s),
            Err(n) => {
                let lossy = n.to_string_lossy().into_owned();
                return Err(Error::new(Code::Parse, FN, "an entry name is not UTF-8", &lossy).with("path", path));
            }
        }
    }
    names.sort_unstable();
    let out = Value::array(names.len());
    for n in &names {
        out.push(Value::text(n));
    }
    Ok(out)
}

/// Every path under a directory (the root itself excluded), depth first,
/// entries of each directory sorted bytewise by name, so the order is
/// deterministic. Paths start with `path` as given. Symlinks are listed but
/// not followed unless `follow_links` (then dangling links are skipped). A
/// directory or entry that disappears during the walk is skipped. Options: `follow_links` (bool, default false; loops are
/// Error Io), `max_depth` (int, 1 = only the entries of `path`),
/// `files_only` (bool: leave directories out), `skip_errors` (bool: skip
/// unreadable directories instead of failing).
/// Capabilities: fs.read is checked on the root (Error CapabilityDenied).
/// With `follow_links`, a link whose target lies outside what fs.read allows
/// is filtered out: neither listed nor entered (like unveil, the caller
/// sees only what it may read; one stray link does not make a permitted
/// tree unwalkable). Without it nothing outside the root is ever read.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_dir_walk(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["follow_links", "max_depth", "files_only", "skip_errors"])?;
    let follow = opts.bool("follow_links")?.unwrap_or(false);
    let max_depth = opts.int_in("max_depth", 1, i64::from(u32::MAX))?;
    let files_only = opts.bool("files_only")?.unwrap_or(false);
    let skip_errors = opts.bool("skip_errors")?.unwrap_or(false);
    let p = checked(FN, "fs.read", path)?;
    let root = fs::metadata(p).map_err(|e| io_err(FN, path, &e))?;
    if !root.is_dir() {
        return Err(Error::invalid(FN, "not a directory", path).with("path", path));
    }
    let mut w = walkdir::WalkDir::new(p).min_depth(1).follow_links(follow).sort_by_file_name();
    if let Some(d) = max_depth {
        w = w.max_depth(d as usize);
    }
    let filter = follow && !ffi_sdk::cap::allow_all();
    let it = w.into_iter().filter_entry(|e| !(filter && e.path_is_symlink() && !cap::permitted(FN, "fs.read", e.path())));
    let out = Value::array(0);
    for ent in it {
        let ent = match ent {
            Ok(e) => e,
            Err(e) => {
                let vanished = e.io_error().is_some_and(|x| x.kind() == io::ErrorKind::NotFound);
                if vanished || skip_errors {
                    continue;
                }
                let at = e.path().map_or_else(|| path.to_string(), |q| q.display().to_string());
                let msg = if e.loop_ancestor().is_some() { "symlink loop".to_string() } else { e.to_string() };
                let mut err = Error::new(Code::Io, FN, msg, &at).with("path", at.as_str());
                if let Some(io) = e.io_error() {
                    err = io_err(FN, &at, io);
                }
                return Err(err);
            }
        };
        if files_only && ent.file_type().is_dir() {
            continue;
        }
        out.push(Value::text(path_text(FN, ent.path())?));
    }
    Ok(out)
}

/// Removes an empty directory. Error InvalidArgument for a file, Io
/// (ENOTEMPTY) when it is not empty (use rt_dir_remove_all).
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_remove(path: &str) -> RtResult<()> {
    let p = checked_nofollow(FN, "fs.write", path)?;
    fs::remove_dir(p).map_err(|e| io_err(FN, path, &e))
}

/// Removes a directory and everything in it. Symlinks inside are removed,
/// never followed. Error InvalidArgument for a file, NotFound when missing.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_dir_remove_all(path: &str) -> RtResult<()> {
    let p = checked_nofollow(FN, "fs.write", path)?;
    let m = fs::symlink_metadata(p).map_err(|e| io_err(FN, path, &e))?;
    if !m.is_dir() {
        let what = if m.file_type().is_symlink() { "is a symlink, not a directory (use rt_file_delete)" } else { "not a directory" };
        return Err(Error::invalid(FN, what, path).with("path", path));
    }
    fs::remove_dir_all(p).map_err(|e| io_err(FN, path, &e))
}
