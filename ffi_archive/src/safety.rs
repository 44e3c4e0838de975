//! Safe extraction: every write stays inside the target directory, and no
//! symlink inside it (present before, or swapped in while extracting) can
//! redirect a write.
//!
//! The target is resolved once through `ffi_sdk::beneath` (fs.write checked
//! on its canonical form; created with its missing parents if absent) and
//! opened as a directory descriptor, the root. Everything below happens
//! relative to that descriptor, never by path:
//!
//! Rules (each refusal is an Error naming the entry, details.entry = its name):
//! - member names: no absolute paths, no `..` component (InvalidArgument);
//! - each parent component is opened from the root, one name at a time,
//!   with `O_PATH|O_DIRECTORY|O_NOFOLLOW`: missing ones are created with
//!   `mkdirat` (mode 0755), real directories are entered; a symlink is
//!   followed only by this walk itself, within the root: its target is read
//!   (`readlinkat`) and walked the same way, a `..` that would leave the
//!   root or an absolute target not under the target's canonical path is
//!   refused (InvalidArgument, "leading outside the target"), as are a
//!   dangling link and a link to a non-directory; more than 40 links in one
//!   walk is refused. A non-directory parent is AlreadyExists;
//! - the final component is never written through: an existing file or
//!   link there is removed first with `unlinkat` (option overwrite, default
//!   true; a directory in the way is AlreadyExists) and the file is created
//!   with `openat(parent, name, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW)`;
//! - symlink entries (`symlinkat`): the target must be relative and,
//!   resolved lexically from the link's directory (both as named in the
//!   archive and where that directory really is), stay inside the target
//!   (InvalidArgument);
//! - hard link entries (`linkat` between descriptors, never following):
//!   the target must be a regular file already inside the target, reached
//!   by the same walk (InvalidArgument / NotFound);
//! - device files and FIFOs are refused (Unsupported);
//! - modes keep only the permission bits (setuid, setgid, sticky dropped;
//!   `fchmod` on the open file, directories after their contents); owners
//!   are never changed; mtimes with `futimens` (option preserve_mtime);
//! - `max_size` (total bytes written, checked against each entry's declared
//!   size before anything is written) and `max_entries` (LimitExceeded).
//!
//! A file that fails half-way is removed. Unless the policy is allow-all,
//! every created directory and every entry's destination is checked
//! against `fs.write` on its real location: the target's canonical path
//! (under a scoped fs.write, the one the policy allowed and the root was
//! reached by) joined with the symlink-free components the walk took. Since the walk never lets
//! the kernel follow a link, that is where the write lands, so a deny
//! sub-scope inside the target holds.

use ffi_sdk::beneath::{self, Target};
use ffi_sdk::prelude::*;
use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Default `max_size`: 16 GiB written in total.
pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;
/// Default `max_entries`: one million.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
/// Symlinks one parent walk may follow.
const MAX_LINKS: usize = 40;

/// Splits a member name into its normal components (skipping `.` and empty ones).
pub fn member_components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("absolute path refused");
    }
    if name.contains(&0) {
        return Err("NUL byte in name refused");
    }
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("`..` in path refused"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Failure while extracting one entry: our refusal, or the archive stream failing.
pub enum ExError {
    Rt(Error),
    Read(io::Error),
}

impl From<Error> for ExError {
    fn from(e: Error) -> ExError {
        ExError::Rt(e)
    }
}

/// How an entry's data maps to the file.
pub enum Content {
    /// Bytes as they come.
    Plain,
    /// GNU sparse (expanded by the tar crate: holes read as zeros): holes are seeked over.
    GnuSparse,
    /// PAX sparse format 1.0: a map at the start of the data, then the data chunks.
    PaxSparse1 { realsize: u64 },
}

/// A directory reached by a walk from the root: its descriptor (O_PATH, or
/// the root itself) and its real components below the root.
type Dir = (Rc<OwnedFd>, Vec<Vec<u8>>);

/// Extraction state for one archive.
pub struct Extractor {
    func: &'static str,
    /// The target directory, opened once.
    root: Rc<OwnedFd>,
    /// Its canonical path: absolute symlink targets inside it, per-entry checks.
    canon: PathBuf,
    /// Whether per-entry capability checks run (the policy is not allow-all).
    check: bool,
    /// The last parent walked: its member components and where they led.
    /// Dropped whenever this extraction removes or creates a symlink.
    cache: Option<(Vec<Vec<u8>>, Dir)>,
    /// Directories to finish: real components, mode, mtime.
    dir_meta: Vec<(Vec<Vec<u8>>, u32, Option<u64>)>,
    pub entries: u64,
    pub bytes: u64,
    pub max_size: u64,
    pub max_entries: u64,
    pub overwrite: bool,
    pub keep_mtime: bool,
    /// Copy buffer, reused across entries.
    buf: Vec<u8>,
}

fn errno(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cs(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| errno(libc::EINVAL))
}

const DIR_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// `timespec` pair for futimens/utimensat: atime untouched, mtime `t` seconds.
fn mtime_times(t: u64) -> [libc::timespec; 2] {
    [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        libc::timespec { tv_sec: t.min(i64::MAX as u64) as libc::time_t, tv_nsec: 0 },
    ]
}

/// The components of a symlink target, `..` included.
fn link_components(target: &[u8]) -> VecDeque<(Vec<u8>, bool)> {
    target.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").map(|c| (c.to_vec(), true)).collect()
}


impl Extractor {
    /// Opens the extraction root: `target` is `path` resolved for fs.write
    /// (ffi_sdk::beneath, a final symlink followed). A missing target is
    /// created with its parents; one that is not a directory is AlreadyExists.
    pub fn open(func: &'static str, path: &str, target: Target) -> RtResult<Extractor> {
        let mut t = target;
        match t.stat() {
            Ok(st) if beneath::is(&st, libc::S_IFDIR) => {}
            Ok(_) => return Err(Error::new(Code::AlreadyExists, func, "target exists and is not a directory", path).with("path", path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Created under its plain spelling (`t/.` and `t/` name t; std's create_dir_all,
                // used while unscoped, cannot make `t/.`), then opened as named.
                let plain = beneath::strip_trailing(path).0;
                let m = if plain == path { t } else { beneath::resolve(func, "fs.write", plain, beneath::Follow::Yes)? };
                m.mkdir_all().map_err(|e| m.err(&e))?;
                t = beneath::resolve(func, "fs.write", path, beneath::Follow::Yes)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && t.lstat().is_ok() => {
                return Err(Error::new(Code::AlreadyExists, func, "target exists and is not a directory", path).with("path", path))
            }
            Err(e) => return Err(t.err(&e)),
        }
        let fd = t.open_dir().map_err(|e| t.err(&e))?;
        let canon = match crate::canon_of(func, path, &t)? {
            Some(c) => c,
            // Allow-all: only needed to recognise absolute links into the target.
            None => ffi_sdk::paths::resolve(Path::new(path)).map_err(|e| t.err(&e))?,
        };
        Ok(Extractor {
            func,
            root: Rc::new(fd),
            canon,
            check: !cap::allow_all(),
            cache: None,
            dir_meta: Vec::new(),
            entries: 0,
            bytes: 0,
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
            overwrite: true,
            keep_mtime: true,
            buf: Vec::new(),
        })
    }

    /// An Error about entry `name`.
    pub fn refuse(&self, code: Code, what: impl std::fmt::Display, name: &str) -> Error {
        Error::new(code, self.func, what, ffi_sdk::error::quote(name)).with("entry", name)
    }

    fn io_err(&self, name: &str, e: &io::Error) -> Error {
        Error::io(self.func, ffi_sdk::error::quote(name), e).with("entry", name)
    }

    /// Counts one entry against `max_entries`.
    pub fn count_entry(&mut self, name: &str) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(self
                .refuse(Code::LimitExceeded, format!("archive has more than max_entries ({}) entries", self.max_entries), name)
                .with("limit", self.max_entries));
        }
        Ok(())
    }

    /// The real path of `real` (+ `last`) below the target.
    fn real_path(&self, real: &[Vec<u8>], last: Option<&[u8]>) -> PathBuf {
        let mut p = self.canon.clone();
        for c in real.iter().map(Vec::as_slice).chain(last) {
            p.push(OsStr::from_bytes(c));
        }
        p
    }

    /// Checks fs.write on a real location below the target (not while allow-all).
    fn check_cap(&self, real: &[Vec<u8>], last: Option<&[u8]>) -> Result<(), Error> {
        if !self.check {
            return Ok(());
        }
        cap::check(self.func, "fs.write", &self.real_path(real, last).to_string_lossy())
    }

    /// The directory `comps` lead to from the root (see the module docs), cached for the next entry.
    fn walk(&mut self, name: &str, comps: &[&[u8]], create: bool) -> Result<Dir, Error> {
        if let Some((k, d)) = &self.cache {
            if k.len() == comps.len() && k.iter().zip(comps).all(|(a, b)| a == b) {
                return Ok(d.clone());
            }
        }
        let d = self.walk_uncached(name, comps, create)?;
        self.cache = Some((comps.iter().map(|c| c.to_vec()).collect(), d.clone()));
        Ok(d)
    }

    fn walk_uncached(&mut self, name: &str, comps: &[&[u8]], create: bool) -> Result<Dir, Error> {
        let outside = |x: &Self, via: &[u8]| {
            x.refuse(
                Code::InvalidArgument,
                format!("a parent is a symlink leading outside the target ({})", String::from_utf8_lossy(via)),
                name,
            )
        };
        // Directories below the root: descriptor and name.
        let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
        let mut pending: VecDeque<(Vec<u8>, bool)> = comps.iter().map(|c| (c.to_vec(), false)).collect();
        let mut links = 0usize;
        // The last link read, for messages.
        let mut via: Vec<u8> = Vec::new();
        let real = |stack: &[(OwnedFd, Vec<u8>)]| stack.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
        while let Some((c, from_link)) = pending.pop_front() {
            if c == b".." {
                if stack.pop().is_none() {
                    return Err(outside(self, &via));
                }
                continue;
            }
            let cur = stack.last().map_or(self.root.as_raw_fd(), |(f, _)| f.as_raw_fd());
            let cc = cs(&c).map_err(|e| self.io_err(name, &e))?;
            match beneath::openat(cur, &cc, DIR_FLAGS, 0) {
                Ok(fd) => stack.push((fd, c)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    if from_link {
                        return Err(self.refuse(Code::InvalidArgument, "a parent is a dangling symlink", name));
                    }
                    if !create {
                        return Err(self.refuse(Code::NotFound, "a parent directory does not exist", name));
                    }
                    self.check_cap(&real(&stack), Some(&c))?;
                    // SAFETY: `cc` is a CString alive for the call; `cur` is borrowed from an OwnedFd still held
                    // (the top of `stack`, or `self.root`), neither of which changes before the call returns.
                    match cvt(unsafe { libc::mkdirat(cur, cc.as_ptr(), 0o755) }) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(self.io_err(name, &e)),
                    }
                    // Entered like any other: a link swapped in meanwhile is taken apart below.
                    pending.push_front((c, false));
                    if links > MAX_LINKS {
                        return Err(self.refuse(Code::InvalidArgument, "a parent keeps changing while being created", name));
                    }
                    links += 1;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                    let st = beneath::statat(cur, &cc, true).map_err(|e| self.io_err(name, &e))?;
                    if !beneath::is(&st, libc::S_IFLNK) {
                        if from_link {
                            return Err(self.refuse(Code::InvalidArgument, "a parent is a symlink to a non-directory", name));
                        }
                        let p = self.real_path(&real(&stack), Some(&c));
                        return Err(self.refuse(
                            Code::AlreadyExists,
                            format!("a parent exists and is not a directory ({})", p.display()),
                            name,
                        ));
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(self.refuse(Code::InvalidArgument, "too many levels of symlinks in a parent", name));
                    }
                    let target = crate::tar::readlinkat(cur, &cc).map_err(|e| self.io_err(name, &e))?;
                    via = target.clone();
                    let mut rest = link_components(&target);
                    if target.first() == Some(&b'/') {
                        // Absolute: only as a spelling of a place under the target's canonical path.
                        let root: Vec<&[u8]> = self
                            .canon
                            .components()
                            .filter_map(|k| match k {
                                Component::Normal(n) => Some(n.as_bytes()),
                                _ => None,
                            })
                            .collect();
                        let under = rest.len() >= root.len() && rest.iter().zip(&root).all(|((a, _), b)| a.as_slice() == *b);
                        if !under {
                            return Err(outside(self, &target));
                        }
                        rest.drain(..root.len());
                        stack.clear();
                    }
                    for item in rest.into_iter().rev() {
                        pending.push_front(item);
                    }
                }
                Err(e) => return Err(self.io_err(name, &e)),
            }
        }
        let names = real(&stack);
        let fd = match stack.pop() {
            Some((fd, _)) => Rc::new(fd),
            None => self.root.clone(),
        };
        Ok((fd, names))
    }

    /// The directory that holds `comps`' last component, and that component.
    fn parent_of<'c>(&mut self, name: &str, comps: &[&'c [u8]], create: bool) -> Result<(Dir, &'c [u8]), Error> {
        let Some((last, parents)) = comps.split_last() else {
            return Err(self.refuse(Code::InvalidArgument, "empty member name", name));
        };
        Ok((self.walk(name, parents, create)?, *last))
    }

    /// Removes whatever is at `leaf` in `dir` (a file or link is removed, never written through).
    fn clear(&mut self, name: &str, dir: RawFd, leaf: &CStr) -> Result<(), Error> {
        match beneath::statat(dir, leaf, true) {
            Ok(st) if beneath::is(&st, libc::S_IFDIR) => Err(self.refuse(Code::AlreadyExists, "a directory is in the way", name)),
            Ok(_) if !self.overwrite => Err(self.refuse(Code::AlreadyExists, "the file exists (overwrite is false)", name)),
            Ok(st) => {
                if !beneath::is(&st, libc::S_IFREG) {
                    self.cache = None; // a removed link may have been on a cached walk
                }
                // SAFETY: `leaf` is a borrowed NUL-terminated CStr; `dir` is the caller's descriptor, held open
                // by the `Dir` (Rc<OwnedFd>) it borrowed it from for the whole call.
                match cvt(unsafe { libc::unlinkat(dir, leaf.as_ptr(), 0) }) {
                    Ok(()) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                    Err(e) => Err(self.io_err(name, &e)),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(self.io_err(name, &e)),
        }
    }

    /// A directory entry.
    pub fn directory(&mut self, name: &str, comps: &[&[u8]], mode: u32, mtime: Option<u64>) -> Result<(), Error> {
        if comps.is_empty() {
            return Ok(()); // "./": the target itself
        }
        let ((dir, real), last) = self.parent_of(name, comps, true)?;
        self.check_cap(&real, Some(last))?;
        let leaf = cs(last).map_err(|e| self.io_err(name, &e))?;
        let d = dir.as_raw_fd();
        // SAFETY: `leaf` is a CString owned by this function and `d` the raw fd of `dir` (an Rc<OwnedFd>
        // kept alive in this scope), both outliving the closure's every call.
        let mkdir = |x: &Self| match cvt(unsafe { libc::mkdirat(d, leaf.as_ptr(), 0o700) }) {
            Ok(()) => Ok(()),
            // Made meanwhile (by a racing entry or process): fine if it is a directory.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && beneath::statat(d, &leaf, true).is_ok_and(|s| beneath::is(&s, libc::S_IFDIR)) => Ok(()),
            Err(e) => Err(x.io_err(name, &e)),
        };
        match beneath::statat(d, &leaf, true) {
            Ok(st) if beneath::is(&st, libc::S_IFDIR) => {}
            Ok(_) if !self.overwrite => {
                return Err(self.refuse(Code::AlreadyExists, "a file is in the way of a directory", name));
            }
            Ok(_) => {
                self.clear(name, d, &leaf)?;
                mkdir(self)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => mkdir(self)?,
            Err(e) => return Err(self.io_err(name, &e)),
        }
        let mut at = real;
        at.push(last.to_vec());
        self.dir_meta.push((at, mode & 0o777, mtime));
        Ok(())
    }

    /// A regular file entry of `size` bytes (declared; the real size for sparse files).
    #[allow(clippy::too_many_arguments)]
    pub fn file(
        &mut self,
        name: &str,
        comps: &[&[u8]],
        data: &mut dyn Read,
        size: u64,
        content: Content,
        mode: u32,
        mtime: Option<u64>,
    ) -> Result<(), ExError> {
        if size > self.max_size.saturating_sub(self.bytes) {
            return Err(ExError::Rt(
                self.refuse(
                    Code::LimitExceeded,
                    format!(
                        "entry of {size} bytes would pass max_size ({} bytes, {} written so far)",
                        self.max_size, self.bytes
                    ),
                    name,
                )
                .with("limit", self.max_size),
            ));
        }
        let ((dir, real), last) = self.parent_of(name, comps, true)?;
        self.check_cap(&real, Some(last))?;
        let leaf = cs(last).map_err(|e| self.io_err(name, &e))?;
        let d = dir.as_raw_fd();
        // O_CREAT|O_EXCL|O_NOFOLLOW: never opens what is there; if something is, clear it and retry.
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let open = || beneath::openat(d, &leaf, flags, 0o600);
        let fd = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(name, d, &leaf)?;
                open().map_err(|e| self.io_err(name, &e))?
            }
            Err(e) => return Err(ExError::Rt(self.io_err(name, &e))),
        };
        let f = File::from(fd);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0u8; crate::BUF];
        }
        let r = self.fill(name, &f, data, size, content, &mut buf);
        self.buf = buf;
        let r = r.and_then(|written| {
            self.bytes += written;
            let wr = |e: io::Error| ExError::Rt(self.io_err(name, &e));
            // SAFETY: `f` is the File owning the descriptor we just created; open for the whole call.
            cvt(unsafe { libc::fchmod(f.as_raw_fd(), (mode & 0o777) as libc::mode_t) }).map_err(wr)?;
            if let (true, Some(t)) = (self.keep_mtime, mtime) {
                let times = mtime_times(t);
                // SAFETY: `times` is a live `[timespec; 2]`, exactly the two entries futimens reads; `f` owns
                // the open descriptor.
                cvt(unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) }).map_err(wr)?;
            }
            Ok(())
        });
        if r.is_err() {
            drop(f);
            // SAFETY: `leaf` is a CString still owned here and `d` the fd of `dir`, an Rc<OwnedFd> alive in
            // this scope; result ignored: best-effort removal of the half-written file we created.
            unsafe { libc::unlinkat(d, leaf.as_ptr(), 0) };
        }
        r
    }

    fn budget_error(&self, name: &str) -> ExError {
        ExError::Rt(
            self.refuse(Code::LimitExceeded, format!("output passes max_size ({} bytes)", self.max_size), name)
                .with("limit", self.max_size),
        )
    }

    /// Writes the entry's data; returns the file size.
    fn fill(
        &self,
        name: &str,
        mut f: &File,
        data: &mut dyn Read,
        size: u64,
        content: Content,
        buf: &mut [u8],
    ) -> Result<u64, ExError> {
        let budget = self.max_size.saturating_sub(self.bytes);
        let wr = |e: io::Error| ExError::Rt(self.io_err(name, &e));
        match content {
            Content::Plain | Content::GnuSparse => {
                let sparse = matches!(content, Content::GnuSparse);
                let mut total = 0u64;
                loop {
                    let n = match data.read(buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ExError::Read(e)),
                    };
                    total += n as u64;
                    if total > budget {
                        return Err(self.budget_error(name));
                    }
                    if sparse && buf[..n].iter().all(|b| *b == 0) {
                        f.seek(SeekFrom::Current(n as i64)).map_err(wr)?;
                    } else {
                        f.write_all(&buf[..n]).map_err(wr)?;
                    }
                }
                if total != size {
                    return Err(ExError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "entry data ends early")));
                }
                if sparse {
                    f.set_len(total).map_err(wr)?;
                }
                Ok(total)
            }
            Content::PaxSparse1 { realsize } => {
                let map = read_sparse_map(data).map_err(ExError::Read)?;
                let mut cur = 0u64;
                for (off, len) in map {
                    if off < cur || off.checked_add(len).is_none_or(|end| end > realsize) {
                        return Err(ExError::Read(io::Error::new(io::ErrorKind::InvalidData, "bad sparse map")));
                    }
                    f.seek(SeekFrom::Start(off)).map_err(wr)?;
                    let mut left = len;
                    while left > 0 {
                        let k = left.min(buf.len() as u64) as usize;
                        data.read_exact(&mut buf[..k]).map_err(ExError::Read)?;
                        f.write_all(&buf[..k]).map_err(wr)?;
                        left -= k as u64;
                    }
                    cur = off + len;
                }
                if realsize > budget {
                    return Err(self.budget_error(name));
                }
                f.set_len(realsize).map_err(wr)?;
                Ok(realsize)
            }
        }
    }

    /// Refuses a symlink target that, resolved lexically from a directory
    /// `depth` levels below the target, leaves it.
    fn link_stays_inside(&self, name: &str, depth: usize, target: &[u8]) -> Result<(), Error> {
        let mut depth = depth as i64;
        for c in target.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(self.refuse(
                            Code::InvalidArgument,
                            format!("symlink leading outside the target refused ({})", String::from_utf8_lossy(target)),
                            name,
                        ));
                    }
                }
                _ => depth += 1,
            }
        }
        Ok(())
    }

    /// A symlink entry; its target must stay inside the target directory.
    pub fn symlink(&mut self, name: &str, comps: &[&[u8]], target: &[u8]) -> Result<(), Error> {
        if target.is_empty() {
            return Err(self.refuse(Code::InvalidArgument, "symlink with an empty target", name));
        }
        if target[0] == b'/' {
            return Err(self.refuse(
                Code::InvalidArgument,
                format!("symlink to an absolute path refused ({})", String::from_utf8_lossy(target)),
                name,
            ));
        }
        if target.contains(&0) {
            return Err(self.refuse(Code::InvalidArgument, "NUL byte in symlink target refused", name));
        }
        // In the archive's namespace first (before anything is created), then where the link really goes.
        self.link_stays_inside(name, comps.len().saturating_sub(1), target)?;
        let ((dir, real), last) = self.parent_of(name, comps, true)?;
        self.link_stays_inside(name, real.len(), target)?;
        self.check_cap(&real, Some(last))?;
        let leaf = cs(last).map_err(|e| self.io_err(name, &e))?;
        let tc = cs(target).map_err(|e| self.io_err(name, &e))?;
        self.clear(name, dir.as_raw_fd(), &leaf)?;
        self.cache = None; // a new link may change where a cached walk leads
        // SAFETY: `tc` and `leaf` are CStrings alive for the call; `dir` is the Rc<OwnedFd> returned by
        // `parent_of`, held in this scope, so its descriptor stays open.
        cvt(unsafe { libc::symlinkat(tc.as_ptr(), dir.as_raw_fd(), leaf.as_ptr()) }).map_err(|e| self.io_err(name, &e))
    }

    /// A hard link entry to `target` (a member name already extracted).
    pub fn hardlink(&mut self, name: &str, comps: &[&[u8]], target: &[u8]) -> Result<(), Error> {
        let tname = String::from_utf8_lossy(target).to_string();
        let tcomps = member_components(target)
            .map_err(|why| self.refuse(Code::InvalidArgument, format!("hard link target: {why} ({tname})"), name))?;
        if tcomps.is_empty() {
            return Err(self.refuse(Code::InvalidArgument, "hard link with an empty target", name));
        }
        // The source: reached by the same walk from the root, a regular file itself (never followed).
        let ((sdir, sreal), slast) = self.parent_of(name, &tcomps, false)?;
        let sleaf = cs(slast).map_err(|e| self.io_err(name, &e))?;
        match beneath::statat(sdir.as_raw_fd(), &sleaf, true) {
            Ok(st) if beneath::is(&st, libc::S_IFREG) => {}
            Ok(_) => {
                return Err(self.refuse(
                    Code::InvalidArgument,
                    format!("hard link target is not a regular file ({tname})"),
                    name,
                ))
            }
            Err(_) => {
                return Err(self.refuse(Code::NotFound, format!("hard link target is not in the target ({tname})"), name))
            }
        }
        let ((dir, real), last) = self.parent_of(name, comps, true)?;
        if real == sreal && last == slast {
            return Ok(()); // the entry names its own target
        }
        self.check_cap(&real, Some(last))?;
        let leaf = cs(last).map_err(|e| self.io_err(name, &e))?;
        self.clear(name, dir.as_raw_fd(), &leaf)?;
        // Flags 0: a symlink swapped in at the source is linked as itself, never followed.
        // SAFETY: `sleaf`/`leaf` are CStrings alive for the call; `sdir` and `dir` are Rc<OwnedFd>s held
        // in this scope, so both descriptors stay open; no flag makes linkat follow a link.
        cvt(unsafe { libc::linkat(sdir.as_raw_fd(), sleaf.as_ptr(), dir.as_raw_fd(), leaf.as_ptr(), 0) })
            .map_err(|e| self.io_err(name, &e))
    }

    /// Applies directory modes and mtimes, deepest first (after their contents are written).
    /// Each directory is reached again from the root by its real components, with O_NOFOLLOW.
    pub fn finish(&mut self) -> Result<(), Error> {
        let metas = std::mem::take(&mut self.dir_meta);
        for (real, mode, mtime) in metas.iter().rev() {
            let Some((last, parents)) = real.split_last() else { continue };
            let mut fd: Option<OwnedFd> = None;
            let mut lost = false;
            for c in parents {
                let at = fd.as_ref().map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
                match cs(c).and_then(|c| beneath::openat(at, &c, DIR_FLAGS, 0)) {
                    Ok(next) => fd = Some(next),
                    Err(_) => {
                        lost = true;
                        break;
                    }
                }
            }
            if lost {
                continue; // moved or removed meanwhile
            }
            let at = fd.as_ref().map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            let Ok(leaf) = cs(last) else { continue };
            let path = self.real_path(parents, Some(last));
            let fail = |e: io::Error| Error::io(self.func, path.display(), &e).with("path", path.to_string_lossy().as_ref());
            match beneath::openat(at, &leaf, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
                Ok(d) => {
                    if let (true, Some(t)) = (self.keep_mtime, mtime) {
                        let times = mtime_times(*t);
                        // SAFETY: `times` is a live `[timespec; 2]` (the two entries futimens reads) and `d` the
                        // OwnedFd just opened, alive for the call.
                        let _ = unsafe { libc::futimens(d.as_raw_fd(), times.as_ptr()) };
                    }
                    // SAFETY: `d` is the OwnedFd opened above, still alive; fchmod takes no pointers.
                    cvt(unsafe { libc::fchmod(d.as_raw_fd(), *mode as libc::mode_t) }).map_err(fail)?;
                }
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                    // Not readable (its mode was set already, e.g. a duplicate entry): by name, never following.
                    match beneath::statat(at, &leaf, true) {
                        Ok(st) if beneath::is(&st, libc::S_IFDIR) => {}
                        _ => continue,
                    }
                    if let (true, Some(t)) = (self.keep_mtime, mtime) {
                        let times = mtime_times(*t);
                        // SAFETY: `leaf` is a live CString, `times` a live `[timespec; 2]`; `at` is the fd of `fd` or
                        // `self.root`, OwnedFds held for the whole loop iteration.
                        let _ = unsafe { libc::utimensat(at, leaf.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
                    }
                    // SAFETY: `leaf` is a live CString; `at` borrows an OwnedFd (`fd` or `self.root`) held for the
                    // loop iteration; no pointers besides the name.
                    cvt(unsafe { libc::fchmodat(at, leaf.as_ptr(), *mode as libc::mode_t, libc::AT_SYMLINK_NOFOLLOW) })
                        .map_err(fail)?;
                }
                Err(_) => continue, // replaced or removed meanwhile
            }
        }
        Ok(())
    }
}

/// Reads a PAX sparse 1.0 map (decimal lines: count, then offset/size pairs),
/// consuming the padding to the next 512-byte boundary.
fn read_sparse_map(r: &mut dyn Read) -> io::Result<Vec<(u64, u64)>> {
    let mut consumed = 0u64;
    let mut line = || -> io::Result<u64> {
        let mut s = Vec::new();
        let mut b = [0u8; 1];
        loop {
            r.read_exact(&mut b)?;
            consumed += 1;
            if b[0] == b'\n' {
                break;
            }
            if s.len() > 20 || !b[0].is_ascii_digit() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad sparse map"));
            }
            s.push(b[0]);
        }
        std::str::from_utf8(&s)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad sparse map"))
    };
    let n = line()?;
    if n > 1 << 20 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "sparse map too long"));
    }
    let mut map = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let off = line()?;
        let len = line()?;
        map.push((off, len));
    }
    let pad = (512 - consumed % 512) % 512;
    io::copy(&mut r.take(pad), &mut io::sink())?;
    Ok(map)
}
