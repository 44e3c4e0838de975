//! Directories: create, list, walk, remove. Every operation runs on
//! descriptors resolved by ffi_sdk::beneath: a walk or a removal never
//! leaves the tree it was given, whatever is swapped in meanwhile.

use crate::common::{io_err, target};
use ffi_sdk::beneath::{self, Follow};
use ffi_sdk::prelude::*;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Name of rt_dir_walk for the walker's messages.
const WALK: &str = "rt_dir_walk";

/// Creates one directory.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the parent is missing
/// - AlreadyExists: the path exists (whatever it is)
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_create(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::No)?;
    t.mkdir(0o777).map_err(|e| t.err(&e))
}

/// Creates a directory and every missing parent; nothing to do when it exists as a directory.
///
/// # Errors
/// - InvalidArgument: it (or a parent) is a file
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_create_all(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    match t.mkdir_all() {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut err = t.err(&e);
            if e.kind() == io::ErrorKind::AlreadyExists {
                err = Error::invalid(FN, "exists and is not a directory", path).with("path", path);
            }
            Err(err)
        }
    }
}

/// Names of the entries of a directory (not `.`/`..`), sorted bytewise.
///
/// # Errors
/// - NotFound: the directory does not exist
/// - InvalidArgument: the path names a file, not a directory
/// - PermissionDenied: the operating system refused to read it
/// - Parse: an entry's name is not UTF-8
/// - Io: any other failure (details.errno)
///
/// # Example
/// rt_dir_list("/tmp/demo") -> ["a.txt", "hello.txt", "sub"]
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_dir_list(path: &str) -> RtResult<Value> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let fd = t.open_dir().map_err(|e| t.err(&e))?;
    let mut names = Vec::new();
    for n in beneath::read_names(fd.as_raw_fd()).map_err(|e| t.err(&e))? {
        match n.into_string() {
            Ok(s) => names.push(s),
            Err(n) => {
                let lossy = n.into_cstring().into_bytes();
                let lossy = String::from_utf8_lossy(&lossy).into_owned();
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

/// Every path under a directory (the root itself excluded), depth first, entries of each directory sorted
/// bytewise by name, so the order is deterministic. Paths start with `path` as given. Symlinks are listed but not
/// followed unless `follow_links` (then dangling links are skipped). A directory or entry that disappears during
/// the walk is skipped. Capabilities: fs.read is checked on the root (Error CapabilityDenied). With
/// `follow_links`, a link whose target lies outside what fs.read allows is filtered out: neither listed nor
/// entered (like unveil, the caller sees only what it may read; one stray link does not make a permitted tree
/// unwalkable). Without it nothing outside the root is ever read.
///
/// # Options
/// - follow_links (bool, default false): bool, loops are Error Io
/// - max_depth (int >= 1): int, 1 = only the entries of `path`
/// - files_only (bool, default false): bool: leave directories out
/// - skip_errors (bool, default false): bool: skip unreadable directories instead of failing
///
/// # Errors
/// - InvalidArgument: not a directory; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_dir_walk(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["follow_links", "max_depth", "files_only", "skip_errors"])?;
    let follow = opts.bool("follow_links")?.unwrap_or(false);
    let max_depth = opts.int_in("max_depth", 1, i64::from(u32::MAX))?;
    let files_only = opts.bool("files_only")?.unwrap_or(false);
    let skip_errors = opts.bool("skip_errors")?.unwrap_or(false);
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    if !beneath::is(&st, libc::S_IFDIR) {
        return Err(Error::invalid(FN, "not a directory", path).with("path", path));
    }
    let fd = t.open_dir().map_err(|e| t.err(&e))?;
    let mut w = Walk {
        out: Value::array(0),
        follow,
        files_only,
        skip_errors,
        max_depth: max_depth.map_or(usize::MAX, |d| d as usize),
        ancestors: vec![(st.st_dev, st.st_ino)],
    };
    w.run(fd, path, t.canonical().map(Path::to_path_buf))?;
    Ok(w.out)
}

/// One directory being walked: its descriptor, its path as reported, the
/// names left (reversed, so `pop` yields them in order), its depth.
struct Frame {
    fd: OwnedFd,
    prefix: String,
    /// Its canonical path under a scoped fs.read (entries are checked on it).
    canon: Option<PathBuf>,
    left: Vec<(CString, u8)>,
    depth: usize,
}

/// A directory to descend into: its descriptor, its identity (loops), and,
/// for a followed link under a scoped fs.read, its canonical path.
type Sub = (OwnedFd, (u64, u64), Option<PathBuf>);

struct Walk {
    out: Value,
    follow: bool,
    files_only: bool,
    skip_errors: bool,
    max_depth: usize,
    ancestors: Vec<(u64, u64)>,
}

impl Walk {
    /// Depth-first over descriptors (iterative: deep trees do not grow the stack).
    fn run(&mut self, root: OwnedFd, path: &str, canon: Option<PathBuf>) -> RtResult<()> {
        let Some(first) = self.frame(root, path.to_string(), canon, 1, self.ancestors[0])? else { return Ok(()) };
        let mut stack = vec![first];
        while let Some(top) = stack.last_mut() {
            // Between entries: the thread's deadline / cancel token (docs/DEADLINES.md).
            ffi_sdk::deadline::check(WALK)?;
            let Some((name, dtype)) = top.left.pop() else {
                stack.pop();
                self.ancestors.pop();
                continue;
            };
            let depth = top.depth;
            let child = Path::new(&top.prefix).join(OsStr::from_bytes(name.to_bytes()));
            let child = crate::common::path_text(WALK, &child)?.to_string();
            // Under a scoped fs.read, what a deny scope covers is neither listed nor entered.
            let canon = top.canon.as_ref().map(|c| c.join(OsStr::from_bytes(name.to_bytes())));
            if canon.as_ref().is_some_and(|c| !cap::permits(WALK, "fs.read", &c.to_string_lossy())) {
                continue;
            }
            let Some((is_dir, sub)) = self.entry(top.fd.as_raw_fd(), &name, dtype, &child, depth)? else { continue };
            if !(self.files_only && is_dir) {
                self.out.push(Value::text(&child));
            }
            if let Some((fd, id, link_canon)) = sub {
                if self.follow && self.ancestors.contains(&id) {
                    if self.skip_errors {
                        continue;
                    }
                    return Err(Error::new(Code::Io, WALK, "symlink loop", &child).with("path", child.as_str()));
                }
                if let Some(f) = self.frame(fd, child, link_canon.or(canon), depth + 1, id)? {
                    stack.push(f);
                }
            }
        }
        Ok(())
    }

    fn frame(&mut self, fd: OwnedFd, prefix: String, canon: Option<PathBuf>, depth: usize, id: (u64, u64)) -> RtResult<Option<Frame>> {
        let mut left = match beneath::read_entries(fd.as_raw_fd()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound || self.skip_errors => return Ok(None),
            Err(e) => return Err(io_err(WALK, &prefix, &e)),
        };
        left.sort_unstable_by(|a, b| b.0.as_bytes().cmp(a.0.as_bytes()));
        if depth > 1 {
            self.ancestors.push(id);
        }
        Ok(Some(Frame { fd, prefix, canon, left, depth }))
    }

    /// What `name` in `dir` is: (is a directory, what to descend into when
    /// within max_depth); None to leave it out (vanished, dangling or
    /// unreadable link, a link fs.read does not allow).
    fn entry(&self, dir: i32, name: &CString, dtype: u8, child: &str, depth: usize) -> RtResult<Option<(bool, Option<Sub>)>> {
        // Vanished, or unreadable with skip_errors: Ok (leave out); else the Error.
        let skip = |e: io::Error| -> RtResult<()> {
            if e.kind() == io::ErrorKind::NotFound || self.skip_errors {
                Ok(())
            } else {
                Err(io_err(WALK, child, &e))
            }
        };
        // The kind from readdir (no stat per entry, as find and walkdir); stat when unknown.
        let kind = match dtype {
            libc::DT_DIR => libc::S_IFDIR,
            libc::DT_LNK => libc::S_IFLNK,
            libc::DT_UNKNOWN => match beneath::statat(dir, name, true) {
                Ok(st) => st.st_mode & libc::S_IFMT,
                Err(e) => return skip(e).map(|()| None),
            },
            _ => libc::S_IFREG,
        };
        let descend = depth < self.max_depth;
        if kind == libc::S_IFLNK && self.follow {
            // Resolved like any path the caller names: checked, walked without symlinks.
            let t = match beneath::resolve(WALK, "fs.read", child, Follow::Yes) {
                Ok(t) => t,
                Err(e) if e.code == Code::CapabilityDenied => return Ok(None),
                Err(e) => return Err(e),
            };
            let tst = match t.stat() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return skip(e).map(|()| None),
            };
            if !beneath::is(&tst, libc::S_IFDIR) {
                return Ok(Some((false, None)));
            }
            if !descend {
                return Ok(Some((true, None)));
            }
            return match t.open_dir() {
                Ok(fd) => Ok(Some((true, Some((fd, (tst.st_dev, tst.st_ino), t.canonical().map(Path::to_path_buf)))))),
                Err(e) => skip(e).map(|()| Some((true, None))),
            };
        }
        let is_dir = kind == libc::S_IFDIR;
        if !is_dir || !descend {
            return Ok(Some((is_dir, None)));
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        match beneath::openat(dir, name, flags, 0) {
            Ok(fd) => {
                // Identity matters only for loops, which only followed links make.
                let id = if self.follow {
                    match beneath::fstat(fd.as_raw_fd()) {
                        Ok(st) => (st.st_dev, st.st_ino),
                        Err(e) => return skip(e).map(|()| Some((true, None))),
                    }
                } else {
                    (0, 0)
                };
                Ok(Some((true, Some((fd, id, None)))))
            }
            // Swapped for a link meanwhile: listed as seen, not entered.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => Ok(Some((true, None))),
            Err(e) => skip(e).map(|()| Some((true, None))),
        }
    }
}

/// Removes an empty directory.
///
/// # Errors
/// - InvalidArgument: for a file, Io (ENOTEMPTY) when it is not empty (use rt_dir_remove_all)
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_dir_remove(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::No)?;
    t.rmdir().map_err(|e| t.err(&e))
}

/// Removes a directory and everything in it. Symlinks inside are removed, never followed.
///
/// # Errors
/// - InvalidArgument: for a file
/// - NotFound: missing
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_dir_remove_all(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::No)?;
    let st = t.lstat().map_err(|e| t.err(&e))?;
    if !beneath::is(&st, libc::S_IFDIR) {
        let what = if beneath::is(&st, libc::S_IFLNK) { "is a symlink, not a directory (use rt_file_delete)" } else { "not a directory" };
        return Err(Error::invalid(FN, what, path).with("path", path));
    }
    t.remove_all()
}
