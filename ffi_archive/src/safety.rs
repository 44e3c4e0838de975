//! Safe extraction: every write stays inside the target directory.
//!
//! Rules (each refusal is an Error naming the entry, details.entry = its name):
//! - member names: no absolute paths, no `..` component (InvalidArgument);
//! - each parent component is walked from the canonical target with lstat:
//!   missing ones are created as directories, real directories are used,
//!   a symlink is followed only if its canonical target stays inside the
//!   target and is a directory; anything else is refused (InvalidArgument);
//! - the final component is never written through: an existing file or
//!   link there is removed first (option overwrite, default true) and the
//!   file is created with O_CREAT|O_EXCL|O_NOFOLLOW;
//! - symlink entries: the target must be relative and, resolved from the
//!   link's directory, stay inside the target (InvalidArgument);
//! - hard link entries: the target must be a regular file already extracted
//!   inside the target (InvalidArgument / NotFound);
//! - device files and FIFOs are refused (Unsupported);
//! - modes keep only the permission bits (setuid, setgid, sticky dropped);
//!   owners are never changed;
//! - `max_size` (total bytes written, checked against each entry's declared
//!   size before anything is written) and `max_entries` (LimitExceeded).
//!
//! A file that fails half-way is removed. Every entry's destination is
//! checked against `fs.write` (canonical path).

use ffi_sdk::prelude::*;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Default `max_size`: 16 GiB written in total.
pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;
/// Default `max_entries`: one million.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

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

/// Extraction state for one archive.
pub struct Extractor {
    func: &'static str,
    root: PathBuf,
    dirs_ok: HashSet<PathBuf>,
    dir_meta: Vec<(PathBuf, u32, Option<u64>)>,
    pub entries: u64,
    pub bytes: u64,
    pub max_size: u64,
    pub max_entries: u64,
    pub overwrite: bool,
    pub keep_mtime: bool,
    /// Copy buffer, reused across entries.
    buf: Vec<u8>,
}

fn os(c: &[u8]) -> &OsStr {
    OsStr::from_bytes(c)
}

impl Extractor {
    /// `root` must exist; it is canonicalized here.
    pub fn new(func: &'static str, root: &Path) -> io::Result<Extractor> {
        let root = fs::canonicalize(root)?;
        let mut dirs_ok = HashSet::new();
        dirs_ok.insert(root.clone());
        Ok(Extractor {
            func,
            root,
            dirs_ok,
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

    pub fn root(&self) -> &Path {
        &self.root
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

    /// The real directory that holds `comps`' last component, walked from the root with lstat.
    /// Missing directories are created when `create`.
    fn parent_dir(&mut self, name: &str, comps: &[&[u8]], create: bool) -> Result<PathBuf, Error> {
        let mut cur = self.root.clone();
        for c in &comps[..comps.len().saturating_sub(1)] {
            let next = cur.join(os(c));
            if self.dirs_ok.contains(&next) {
                cur = next;
                continue;
            }
            match fs::symlink_metadata(&next) {
                Ok(m) if m.is_dir() => {
                    self.dirs_ok.insert(next.clone());
                    cur = next;
                }
                Ok(m) if m.file_type().is_symlink() => {
                    let real = fs::canonicalize(&next).map_err(|_| {
                        self.refuse(Code::InvalidArgument, "a parent is a dangling symlink", name)
                    })?;
                    if !real.starts_with(&self.root) {
                        return Err(self.refuse(
                            Code::InvalidArgument,
                            format!("a parent is a symlink leading outside the target ({})", real.display()),
                            name,
                        ));
                    }
                    if !real.is_dir() {
                        return Err(self.refuse(Code::InvalidArgument, "a parent is a symlink to a non-directory", name));
                    }
                    cur = real;
                }
                Ok(_) => {
                    return Err(self.refuse(
                        Code::AlreadyExists,
                        format!("a parent exists and is not a directory ({})", next.display()),
                        name,
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    cap::check_path(self.func, "fs.write", &next)?;
                    fs::DirBuilder::new().mode(0o755).create(&next).map_err(|e| self.io_err(name, &e))?;
                    self.dirs_ok.insert(next.clone());
                    cur = next;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(self.refuse(Code::NotFound, "a parent directory does not exist", name))
                }
                Err(e) => return Err(self.io_err(name, &e)),
            }
        }
        Ok(cur)
    }

    /// Destination of a non-directory entry: parents walked and the capability checked.
    fn leaf_path(&mut self, name: &str, comps: &[&[u8]]) -> Result<PathBuf, Error> {
        let last = *comps.last().ok_or_else(|| self.refuse(Code::InvalidArgument, "empty member name", name))?;
        let parent = self.parent_dir(name, comps, true)?;
        let dest = parent.join(os(last));
        cap::check_path(self.func, "fs.write", &dest)?;
        Ok(dest)
    }

    /// Removes whatever is at `dest` (a file or link is removed, never written through).
    fn clear(&self, name: &str, dest: &Path) -> Result<(), Error> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => Err(self.refuse(Code::AlreadyExists, "a directory is in the way", name)),
            Ok(_) if !self.overwrite => {
                Err(self.refuse(Code::AlreadyExists, "the file exists (overwrite is false)", name))
            }
            Ok(_) => fs::remove_file(dest).map_err(|e| self.io_err(name, &e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_err(name, &e)),
        }
    }

    /// Destination of a link entry, cleared.
    fn dest_for_leaf(&mut self, name: &str, comps: &[&[u8]]) -> Result<PathBuf, Error> {
        let dest = self.leaf_path(name, comps)?;
        self.clear(name, &dest)?;
        Ok(dest)
    }

    /// A directory entry.
    pub fn directory(&mut self, name: &str, comps: &[&[u8]], mode: u32, mtime: Option<u64>) -> Result<(), Error> {
        let Some(last) = comps.last() else {
            return Ok(()); // "./": the target itself
        };
        let parent = self.parent_dir(name, comps, true)?;
        let dest = parent.join(os(last));
        cap::check_path(self.func, "fs.write", &dest)?;
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => {}
            Ok(_) if !self.overwrite => {
                return Err(self.refuse(Code::AlreadyExists, "a file is in the way of a directory", name));
            }
            Ok(_) => {
                fs::remove_file(&dest).map_err(|e| self.io_err(name, &e))?;
                fs::DirBuilder::new().mode(0o700).create(&dest).map_err(|e| self.io_err(name, &e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o700).create(&dest).map_err(|e| self.io_err(name, &e))?;
            }
            Err(e) => return Err(self.io_err(name, &e)),
        }
        self.dirs_ok.insert(dest.clone());
        self.dir_meta.push((dest, mode & 0o777, mtime));
        Ok(())
    }

    /// A regular file entry of `size` bytes (declared; the real size for sparse files).
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
        let dest = self.leaf_path(name, comps)?;
        // O_CREAT|O_EXCL|O_NOFOLLOW: never opens what is there; if something is, clear it and retry.
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&dest)
        };
        let f = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(name, &dest)?;
                open().map_err(|e| self.io_err(name, &e))?
            }
            Err(e) => return Err(ExError::Rt(self.io_err(name, &e))),
        };
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0u8; crate::BUF];
        }
        let r = self.fill(name, &f, data, size, content, &mut buf);
        self.buf = buf;
        let r = r.and_then(|written| {
            self.bytes += written;
            f.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(|e| ExError::Rt(self.io_err(name, &e)))?;
            if let (true, Some(t)) = (self.keep_mtime, mtime) {
                f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(t))
                    .map_err(|e| ExError::Rt(self.io_err(name, &e)))?;
            }
            Ok(())
        });
        if r.is_err() {
            drop(f);
            let _ = fs::remove_file(&dest);
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
        // Resolve lexically from the link's directory, inside the archive's namespace.
        let mut depth = comps.len().saturating_sub(1) as i64;
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
        let dest = self.dest_for_leaf(name, comps)?;
        std::os::unix::fs::symlink(os(target), &dest).map_err(|e| self.io_err(name, &e))
    }

    /// A hard link entry to `target` (a member name already extracted).
    pub fn hardlink(&mut self, name: &str, comps: &[&[u8]], target: &[u8]) -> Result<(), Error> {
        let tname = String::from_utf8_lossy(target).to_string();
        let tcomps = member_components(target)
            .map_err(|why| self.refuse(Code::InvalidArgument, format!("hard link target: {why} ({tname})"), name))?;
        let Some(tlast) = tcomps.last() else {
            return Err(self.refuse(Code::InvalidArgument, "hard link with an empty target", name));
        };
        let tparent = self.parent_dir(name, &tcomps, false)?;
        let src = tparent.join(os(tlast));
        match fs::symlink_metadata(&src) {
            Ok(m) if m.is_file() => {}
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
        let real = fs::canonicalize(&src).map_err(|e| self.io_err(name, &e))?;
        if !real.starts_with(&self.root) {
            return Err(self.refuse(Code::InvalidArgument, "hard link target outside the target refused", name));
        }
        let dest = self.dest_for_leaf(name, comps)?;
        if dest == src {
            return Ok(());
        }
        fs::hard_link(&src, &dest).map_err(|e| self.io_err(name, &e))
    }

    /// Applies directory modes and mtimes, deepest first (after their contents are written).
    pub fn finish(&mut self) -> Result<(), Error> {
        let metas = std::mem::take(&mut self.dir_meta);
        for (path, mode, mtime) in metas.iter().rev() {
            match fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => {}
                _ => continue,
            }
            if let (true, Some(t)) = (self.keep_mtime, mtime) {
                if let Ok(d) = File::open(path) {
                    let _ = d.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(*t));
                }
            }
            fs::set_permissions(path, Permissions::from_mode(*mode))
                .map_err(|e| Error::io(self.func, path.display(), &e))?;
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
