//! Paths as text. Everything here is lexical (no disk access) except
//! rt_path_exists, and rt_path_absolute, which reads the working directory.
//! Every path argument must be non-empty and free of NUL (InvalidArgument).

use crate::common::{io_err, target};
use ffi_sdk::beneath::Follow;
use ffi_sdk::prelude::*;

fn text_of(p: &std::ffi::OsStr) -> String {
    // Inputs are text, so every piece of them is UTF-8.
    p.to_string_lossy().into_owned()
}

/// The final component of a path (`/a/b.txt` → `b.txt`, `a/b/` → `b`);
/// nil when there is none (`/`, or a path ending in `..`).
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_basename(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.file_name().map(text_of))
}

/// The path without its final component (`/a/b` → `/a`, `b` → ``, `/a` →
/// `/`); nil when there is none (`/`).
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_dirname(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.parent().map(|d| text_of(d.as_os_str())))
}

/// Joins two paths with one separator; an absolute `part` replaces `base`
/// (`Path::join`): `a` + `b/c` → `a/b/c`, `a` + `/x` → `/x`.
///
/// # Errors
/// - InvalidArgument: a path is empty or contains a NUL byte
///
/// # Example
/// rt_path_join("a", "b/c") -> "a/b/c"
#[rt_fn(tier = "verified")]
pub fn rt_path_join(base: &str, part: &str) -> RtResult<String> {
    let b = paths::validate(FN, base)?;
    let p = paths::validate(FN, part)?;
    Ok(text_of(b.join(p).as_os_str()))
}

/// True when something exists at `path` (symlinks followed: a dangling link
/// is false). Error for failures other than "not there" (e.g. permission).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_path_exists(path: &str) -> RtResult<bool> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    match t.stat() {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(t.err(&e)),
    }
}

/// The extension of the final component without the dot (`a/b.tar.gz` →
/// `gz`); nil when there is none (`a/b`, `a/.bashrc`); `a/b.` gives "".
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_extension(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.extension().map(text_of))
}

/// The final component without its extension (`a/b.tar.gz` → `b.tar`,
/// `a/.bashrc` → `.bashrc`); nil when there is no final component.
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_stem(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.file_stem().map(text_of))
}

/// The path made absolute against the working directory, without touching
/// the disk otherwise: symlinks and `..` are kept (std::path::absolute; use
/// rt_path_normalize to fold `..`). A relative path needs fs.read on the
/// working directory (it reveals its name).
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_path_absolute(path: &str) -> RtResult<String> {
    let p = paths::validate(FN, path)?;
    if p.is_relative() {
        let cwd = std::env::current_dir().map_err(|e| io_err(FN, "current directory", &e))?;
        ffi_sdk::cap::check_path(FN, "fs.read", &cwd)?;
    }
    let a = std::path::absolute(p).map_err(|e| io_err(FN, path, &e))?;
    Ok(text_of(a.as_os_str()))
}

/// Lexical normalization of `p` (see rt_path_normalize).
pub fn normalize(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if abs => {}
                _ => parts.push(".."),
            },
            x => parts.push(x),
        }
    }
    let body = parts.join("/");
    if abs {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

/// Normalizes a path without touching the disk: drops `.` components,
/// repeated and trailing separators, folds `dir/..`, drops `..` above `/`,
/// keeps leading `..` of a relative path; `a/..` → `.`. Lexical: when `dir`
/// is a symlink the operating system may resolve `dir/..` elsewhere.
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_normalize(path: &str) -> RtResult<String> {
    let _ = paths::validate(FN, path)?;
    Ok(normalize(path))
}

/// Simple's name for rt_path_dirname: the path without its final component;
/// nil when there is none (`/`).
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_parent(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.parent().map(|d| text_of(d.as_os_str())))
}

/// Simple's name for rt_path_basename: the final component; nil when there is none.
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_filename(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.file_name().map(text_of))
}

/// Simple's name for rt_path_extension: the extension without the dot; nil when there is none.
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
#[rt_fn(tier = "verified")]
pub fn rt_path_ext(path: &str) -> RtResult<Option<String>> {
    let p = paths::validate(FN, path)?;
    Ok(p.extension().map(text_of))
}

/// The path separator of this platform: "/".
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_path_separator() -> &'static str {
    std::path::MAIN_SEPARATOR_STR
}

/// The canonical absolute path (realpath: every symlink and `..` resolved). Needs fs.read on the canonical path,
/// and on the working directory for a relative path.
///
/// # Errors
/// - InvalidArgument: path is empty; path contains a NUL byte
/// - NotFound: the path (or a component) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: path is not UTF-8
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_canonicalize(path: &str) -> RtResult<String> {
    let p = paths::validate(FN, path)?;
    if p.is_relative() {
        let cwd = std::env::current_dir().map_err(|e| io_err(FN, "current directory", &e))?;
        ffi_sdk::cap::check_path(FN, "fs.read", &cwd)?;
    }
    let c = std::fs::canonicalize(p).map_err(|e| io_err(FN, path, &e))?;
    ffi_sdk::cap::check_path(FN, "fs.read", &c)?;
    Ok(crate::common::path_text(FN, &c)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::normalize;
    #[test]
    fn lexical() {
        for (i, o) in [
            ("a/b/../c", "a/c"),
            ("/../x", "/x"),
            ("../../a", "../../a"),
            ("a/..", "."),
            ("a/../..", ".."),
            ("//a//b/./", "/a/b"),
            ("/", "/"),
            (".", "."),
            ("./a/./b/", "a/b"),
        ] {
            assert_eq!(normalize(i), o, "{i}");
        }
    }
}
