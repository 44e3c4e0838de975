//! tar archives: create (plain, .tar.gz, .tar.xz), list, and safe extract.
//!
//! Reading accepts v7, ustar, GNU (long names, GNU sparse) and pax (long
//! names, PAX sparse 1.0) archives, plain or gzip/xz compressed (detected by
//! their magic bytes). Writing produces GNU-format archives (long names as
//! GNU long-name records), readable by GNU tar, bsdtar and Python's tarfile.

// The handle API (Simple's create/add/close, open/list/extract shape) and the .tar.gz helpers.
#[path = "tar_handle.rs"]
pub mod handle;

use crate::safety::{member_components, Content, ExError, Extractor};
use crate::{Compression, SrcState, Tracked};
use ffi_sdk::beneath::{self, Follow};
use ffi_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// An archive being read: the decoded stream and what happened to the file under it.
pub(crate) struct Source {
    pub(crate) reader: Box<dyn Read>,
    state: Rc<RefCell<SrcState>>,
    pub(crate) path: String,
}

fn open_source(func: &'static str, path: &str, compression: Option<Compression>, memlimit: u64) -> RtResult<Source> {
    let f = crate::open_input(func, path, "archive path is a directory")?;
    source_from(func, Box::new(f), path, compression, memlimit)
}

/// The decoded stream of an archive read from `r` (`path` for messages); compression detected when None.
pub(crate) fn source_from(func: &'static str, r: Box<dyn Read>, path: &str, compression: Option<Compression>, memlimit: u64) -> RtResult<Source> {
    let state = Rc::new(RefCell::new(SrcState::default()));
    let mut br = BufReader::with_capacity(crate::BUF, Tracked { inner: r, state: state.clone() });
    let kind = match compression {
        Some(c) => c,
        None => {
            let head = br.fill_buf().map_err(|e| Error::io(func, path, &e))?;
            Compression::sniff(head)
        }
    };
    let reader: Box<dyn Read> = match kind {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(crate::gzip::decoder(br)),
        Compression::Xz => Box::new(crate::xz::decoder(func, br, memlimit)?),
    };
    Ok(Source { reader, state, path: path.to_string() })
}

impl Source {
    /// The decoded stream, and a Source without one that still maps errors (it shares the file's state).
    pub(crate) fn split(self) -> (Box<dyn Read>, Source) {
        let Source { reader, state, path } = self;
        (reader, Source { reader: Box::new(io::empty()), state, path })
    }

    /// Maps an error of the archive stream: the file's own I/O error, or corrupt data (Parse).
    pub(crate) fn error(&self, func: &'static str, e: &io::Error, entry: Option<&str>) -> Error {
        let st = self.state.borrow();
        let err = if let Some(ioe) = st.io_error() {
            Error::io(func, &self.path, &ioe)
        } else if crate::xz::is_memlimit(e) {
            crate::xz::memlimit_error(func, &self.path)
        } else {
            let what = match (e.kind(), entry) {
                (io::ErrorKind::UnexpectedEof, Some(n)) => format!("archive is truncated in entry {}", ffi_sdk::error::quote(n)),
                (io::ErrorKind::UnexpectedEof, None) => "archive is truncated".to_string(),
                (_, Some(n)) => format!("corrupt archive at entry {}: {e}", ffi_sdk::error::quote(n)),
                (_, None) => format!("corrupt archive: {e}"),
            };
            Error::parse(func, what, &self.path).with("position", st.read)
        };
        match entry {
            Some(n) => err.with("entry", n),
            None => err,
        }
    }
}

/// PAX records of an entry (owned).
fn pax_map<R: Read>(e: &mut ::tar::Entry<'_, R>) -> HashMap<String, Vec<u8>> {
    let mut m = HashMap::new();
    if let Ok(Some(exts)) = e.pax_extensions() {
        for ext in exts.flatten() {
            if let Ok(k) = ext.key() {
                m.insert(k.to_string(), ext.value_bytes().to_vec());
            }
        }
    }
    m
}

fn pax_u64(m: &HashMap<String, Vec<u8>>, k: &str) -> Option<u64> {
    m.get(k).and_then(|v| std::str::from_utf8(v).ok()).and_then(|s| s.trim().parse().ok())
}

/// What one entry is, after long names, PAX records and sparse formats are applied.
pub(crate) struct Member {
    pub(crate) name: Vec<u8>,
    pub(crate) kind: &'static str,
    pub(crate) size: u64,
    mode: u32,
    mtime: Option<u64>,
    link: Option<Vec<u8>>,
    pub(crate) content: Content,
    /// Set for formats this crate cannot extract (e.g. PAX sparse 0.x).
    pub(crate) unsupported: Option<&'static str>,
}

pub(crate) fn member<R: Read>(e: &mut ::tar::Entry<'_, R>) -> io::Result<Member> {
    let pax = pax_map(e);
    let h = e.header();
    let et = h.entry_type();
    let mut name = e.path_bytes().into_owned();
    let mode = h.mode().unwrap_or(0o644);
    let mtime = h.mtime().ok();
    let link = e.link_name_bytes().map(|l| l.into_owned());
    let mut size = e.size();
    let mut content = if et.is_gnu_sparse() { Content::GnuSparse } else { Content::Plain };
    let mut unsupported = None;
    if let Some(major) = pax_u64(&pax, "GNU.sparse.major") {
        if let Some(n) = pax.get("GNU.sparse.name") {
            name = n.clone();
        }
        let real = pax_u64(&pax, "GNU.sparse.realsize").or_else(|| pax_u64(&pax, "GNU.sparse.size"));
        match (major, pax_u64(&pax, "GNU.sparse.minor"), real) {
            (1, Some(0), Some(r)) => {
                content = Content::PaxSparse1 { realsize: r };
                size = r;
            }
            _ => unsupported = Some("PAX sparse format other than 1.0"),
        }
    } else if pax.contains_key("GNU.sparse.map") || pax.contains_key("GNU.sparse.offset") {
        if let Some(n) = pax.get("GNU.sparse.name") {
            name = n.clone();
        }
        if let Some(r) = pax_u64(&pax, "GNU.sparse.size") {
            size = r;
        }
        unsupported = Some("PAX sparse format 0.x");
    }
    use ::tar::EntryType as T;
    let kind = match et {
        T::Regular | T::Continuous | T::GNUSparse if name.ends_with(b"/") && !et.is_gnu_sparse() => "dir",
        T::Regular | T::Continuous | T::GNUSparse => "file",
        T::Directory => "dir",
        T::Symlink => "symlink",
        T::Link => "hardlink",
        T::Char => "char",
        T::Block => "block",
        T::Fifo => "fifo",
        T::XGlobalHeader => "pax_global",
        _ => "other",
    };
    Ok(Member { name, kind, size, mode, mtime, link, content, unsupported })
}

fn limits_opts(opts: &Opts) -> RtResult<(u64, u64)> {
    let max_entries = opts.int_in("max_entries", 0, i64::MAX)?.map(|v| v as u64).unwrap_or(crate::safety::DEFAULT_MAX_ENTRIES);
    let max_size = opts.int_in("max_size", 0, i64::MAX)?.map(|v| v as u64).unwrap_or(crate::safety::DEFAULT_MAX_SIZE);
    Ok((max_entries, max_size))
}

fn memlimit_opt(opts: &Opts) -> RtResult<Option<u64>> {
    Ok(opts.int_in("memlimit", 1 << 20, i64::MAX)?.map(|v| v as u64))
}

/// The archive argument of list / extract: a path (text; fs.read checked now) or a TarReader handle
/// (checked when it was opened). `compression` / `memlimit` given here override the handle's.
pub(crate) fn archive_source(
    func: &'static str,
    idx: usize,
    archive: Value,
    compression: Option<Compression>,
    memlimit: Option<u64>,
) -> RtResult<Source> {
    if let Some(p) = archive.as_text() {
        return open_source(func, p, compression, memlimit.unwrap_or(crate::xz::DEFAULT_MEMLIMIT));
    }
    let r = handle::reader_arg(func, idx, archive)?;
    source_from(func, Box::new(r.stream()), &r.path, compression.or(r.compression), memlimit.unwrap_or(r.memlimit))
}

/// Lists a tar archive (plain, gzip or xz; detected) without extracting (fs.read). `archive` is a path or a
/// TarReader handle (rt_tar_open; Simple's `rt_tar_list(handle) -> text` form).
///
/// Returns an array of dicts {name, type, size, mode, mtime, link}: type is "file", "dir", "symlink", "hardlink",
/// "char", "block", "fifo" or "other"; size is the file's real size (sparse files included); mode the permission
/// bits; link the link target or nil. Corrupt or truncated archives are Error Parse.
///
/// # Options
/// - max_entries (int >= 0, default 1000000): more is LimitExceeded
/// - compression (text): "auto", "none", "gzip", "xz"
/// - memlimit (int, default 1 GiB): xz decoder memory
///
/// # Errors
/// - InvalidArgument: option compression must be auto, none, gzip or xz; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - Parse: malformed input (details.line/column/position where known)
/// - Closed: the handle was closed
/// - LimitExceeded: archive has more than max_entries (<max_entries>) entries
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<dict>")]
pub fn rt_tar_list(archive: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_entries", "compression", "memlimit"])?;
    let (max_entries, _) = limits_opts(&opts)?;
    let comp = Compression::from_opt(FN, opts.text("compression")?)?;
    let (reader, errs) = archive_source(FN, 0, archive, comp, memlimit_opt(&opts)?)?.split();
    let archive = errs.path.clone();
    let mut ar = ::tar::Archive::new(reader);
    let out = Value::array(0);
    let entries = ar.entries().map_err(|e| errs.error(FN, &e, None))?;
    let mut count = 0u64;
    let mut last = String::new();
    for e in entries {
        // Between entries: the thread's deadline / cancel token (docs/DEADLINES.md).
        ffi_sdk::deadline::check(FN)?;
        let mut e = e.map_err(|e| errs.error(FN, &e, if last.is_empty() { None } else { Some(last.as_str()) }))?;
        let m = member(&mut e).map_err(|err| errs.error(FN, &err, None))?;
        last = String::from_utf8_lossy(&m.name).to_string();
        if m.kind == "pax_global" {
            continue;
        }
        count += 1;
        if count > max_entries {
            return Err(Error::new(Code::LimitExceeded, FN, format!("archive has more than max_entries ({max_entries}) entries"), archive)
                .with("limit", max_entries));
        }
        let d = Value::dict();
        d.set("name", Value::text(&last));
        d.set("type", Value::text(m.kind));
        d.set("size", Value::int(m.size as i64));
        d.set("mode", Value::int((m.mode & 0o7777) as i64));
        d.set("mtime", m.mtime.map(|t| Value::int(t as i64)).unwrap_or(Value::NIL));
        d.set("link", m.link.as_ref().map(|l| Value::text(&String::from_utf8_lossy(l))).unwrap_or(Value::NIL));
        out.push(d);
    }
    Ok(out)
}

/// Extracts a tar archive (plain, gzip or xz; detected) into `target_dir`, safely. `archive` is a path or a
/// TarReader handle (rt_tar_open; Simple's `rt_tar_extract(handle, output_dir)` form).
///
/// Checks fs.read on the archive and fs.write on the target and on every entry's real destination. The target is
/// opened once; every entry is created relative to it through descriptors, parents walked with O_NOFOLLOW, so no
/// symlink (there before or swapped in meanwhile) can redirect a write. Refused with an Error naming the entry
/// (details.entry): absolute names, `..`, links or parents leading outside the target, device files and FIFOs;
/// setuid/setgid bits are dropped and owners not changed. The target is created if missing. Returns {entries,
/// bytes}. Corrupt archives are Error Parse; entries extracted before a failure stay, a half-written file is
/// removed.
///
/// # Options
/// - max_entries (int >= 0, default 1000000): against bombs (LimitExceeded)
/// - max_size (int >= 0, default 16 GiB): bytes written
/// - memlimit (int): xz decoder
/// - compression (text): "auto", "none", "gzip", "xz"
/// - overwrite (bool, default true): existing files are replaced, never written through
/// - preserve_mtime (bool, default true): preserve mtime
///
/// # Errors
/// - InvalidArgument: entry has an empty name; option compression must be auto, none, gzip or xz; path names '/', '.' or '..', not an entry: name the directory itself; path is empty
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: target exists and is not a directory
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: … device/FIFO entries are refused; entry type … is not supported
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_tar_extract(archive: Value, target_dir: &str, opts: Opts) -> RtResult<Value> {
    extract(FN, archive, target_dir, &opts, None)
}

/// The body of rt_tar_extract (and rt_targz_extract, which forces gzip).
pub(crate) fn extract(func: &'static str, archive: Value, target_dir: &str, opts: &Opts, force: Option<Compression>) -> RtResult<Value> {
    opts.only(&["max_size", "max_entries", "overwrite", "preserve_mtime", "compression", "memlimit"])?;
    let (max_entries, max_size) = limits_opts(opts)?;
    let overwrite = opts.bool("overwrite")?.unwrap_or(true);
    let keep_mtime = opts.bool("preserve_mtime")?.unwrap_or(true);
    let comp = match force {
        Some(c) => Some(c),
        None => Compression::from_opt(func, opts.text("compression")?)?,
    };
    let memlimit = memlimit_opt(opts)?;
    // Checked before the archive is opened; created (if missing) after.
    let target = beneath::resolve(func, "fs.write", target_dir, Follow::Yes)?;
    let src = archive_source(func, 0, archive, comp, memlimit)?;
    let mut x = Extractor::open(func, target_dir, target)?;
    x.max_entries = max_entries;
    x.max_size = max_size;
    x.overwrite = overwrite;
    x.keep_mtime = keep_mtime;
    let Source { reader, state, path } = src;
    let source_for_errors = Source { reader: Box::new(io::empty()), state, path };
    let mut ar = ::tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| source_for_errors.error(func, &e, None))?;
    let mut last_name = String::new();
    for e in entries {
        // Between entries: the thread's deadline / cancel token (docs/DEADLINES.md).
        ffi_sdk::deadline::check(func)?;
        let mut e = e.map_err(|e| {
            let after = if last_name.is_empty() { None } else { Some(last_name.as_str()) };
            source_for_errors.error(func, &e, after)
        })?;
        let m = member(&mut e).map_err(|err| source_for_errors.error(func, &err, None))?;
        let name = String::from_utf8_lossy(&m.name).to_string();
        last_name = name.clone();
        if m.kind == "pax_global" {
            continue;
        }
        x.count_entry(&name)?;
        if let Some(why) = m.unsupported {
            return Err(x.refuse(Code::Unsupported, format!("{why} is not supported"), &name));
        }
        let comps = member_components(&m.name).map_err(|why| x.refuse(Code::InvalidArgument, why, &name))?;
        if comps.is_empty() && m.kind != "dir" {
            return Err(x.refuse(Code::InvalidArgument, "entry has an empty name", &name));
        }
        let r = match m.kind {
            "dir" => x.directory(&name, &comps, m.mode, m.mtime).map_err(ExError::Rt),
            "file" => x.file(&name, &comps, &mut e, m.size, m.content, m.mode, m.mtime),
            "symlink" => x.symlink(&name, &comps, m.link.as_deref().unwrap_or(b"")).map_err(ExError::Rt),
            "hardlink" => x.hardlink(&name, &comps, m.link.as_deref().unwrap_or(b"")).map_err(ExError::Rt),
            "char" | "block" | "fifo" => {
                Err(ExError::Rt(x.refuse(Code::Unsupported, format!("{} device/FIFO entries are refused", m.kind), &name)))
            }
            _ => Err(ExError::Rt(x.refuse(
                Code::Unsupported,
                format!("entry type {:?} is not supported", e.header().entry_type()),
                &name,
            ))),
        };
        match r {
            Ok(()) => {}
            Err(ExError::Rt(err)) => return Err(err),
            Err(ExError::Read(err)) => return Err(source_for_errors.error(func, &err, Some(&name))),
        }
    }
    x.finish()?;
    let d = Value::dict();
    d.set("entries", Value::int(x.entries as i64));
    d.set("bytes", Value::int(x.bytes as i64));
    Ok(d)
}

// ---------------------------------------------------------------- create

/// Where the content of a file to archive is read from in the writing pass.
enum Src {
    /// Nothing to read (directories).
    None,
    /// A symlink stored as a link: its target, read with readlinkat.
    Link(Vec<u8>),
    /// A path the caller named (or a followed link): resolved again through beneath.
    Path { path: String, follow: Follow },
    /// A name in a directory reached from anchor `anchor` by the names `dir`, each opened O_NOFOLLOW.
    At { anchor: usize, dir: Rc<[CString]>, name: CString },
}

/// One file-system object to archive.
struct Item {
    name: Vec<u8>,
    /// The path for messages.
    display: String,
    st: libc::stat,
    src: Src,
}

/// A directory the walk started from (a source, or a followed link to a
/// directory): how to open it again, and which object it must be.
struct Anchor {
    path: String,
    follow: Follow,
    id: (u64, u64),
    /// Held open for the first [`KEEP_ANCHORS`] anchors; the others are reopened.
    fd: Option<OwnedFd>,
}

const KEEP_ANCHORS: usize = 64;

/// One directory being walked.
struct Frame {
    fd: OwnedFd,
    anchor: usize,
    /// Names from the anchor to this directory.
    rel: Rc<[CString]>,
    /// Archive name of the directory ("" for a source's root).
    name: Vec<u8>,
    display: String,
    /// Real location, for per-entry checks (None while allow-all).
    canon: Option<PathBuf>,
    id: (u64, u64),
    /// Names left, reversed (pop yields them in byte order).
    left: Vec<CString>,
}

/// Collects what to archive by walking each source through descriptors:
/// every directory is opened with O_NOFOLLOW relative to its parent's
/// descriptor; a symlink is stored as a link, or (option follow_symlinks)
/// resolved as a path through beneath so the policy is checked on it.
struct Walk<'a> {
    func: &'static str,
    follow: bool,
    skip: &'a [(u64, u64)],
    items: Vec<Item>,
    anchors: Vec<Anchor>,
    /// Writing pass: the last directory a file was opened in.
    last_dir: Option<(usize, Rc<[CString]>, OwnedFd)>,
}

fn bytes_display(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn join_display(base: &str, name: &CStr) -> String {
    let n = bytes_display(name.to_bytes());
    if base.ends_with('/') {
        format!("{base}{n}")
    } else {
        format!("{base}/{n}")
    }
}

fn join_name(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut n = prefix.to_vec();
    if !n.is_empty() && !n.ends_with(b"/") {
        n.push(b'/');
    }
    n.extend_from_slice(name);
    n
}

/// readlinkat into a byte vector (any length).
pub(crate) fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut cap = 256usize;
    loop {
        let mut buf = vec![0u8; cap];
        // SAFETY: `buf` is a live Vec of exactly `cap` initialized bytes, so the kernel may
        // write up to `cap` bytes through its pointer; `name` is a borrowed NUL-terminated
        // CStr; `dir` is only handed to the kernel (a stale one is EBADF, not UB).
        let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), cap) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < cap {
            buf.truncate(n);
            return Ok(buf);
        }
        cap *= 2;
    }
}

fn kind_error(func: &'static str, st: &libc::stat, display: &str) -> Error {
    let what = if beneath::is(st, libc::S_IFIFO) {
        "FIFO"
    } else if beneath::is(st, libc::S_IFSOCK) {
        "socket"
    } else {
        "device file"
    };
    Error::new(Code::Unsupported, func, format!("cannot archive a {what}"), display).with("path", display)
}

impl Walk<'_> {
    fn io(&self, display: &str, e: &io::Error) -> Error {
        Error::io(self.func, display, e).with("path", display)
    }

    fn skipped(&self, st: &libc::stat) -> bool {
        self.skip.contains(&crate::file_id(st))
    }

    fn anchor(&mut self, path: String, follow: Follow, id: (u64, u64), fd: &OwnedFd) -> usize {
        let keep = if self.anchors.len() < KEEP_ANCHORS { fd.try_clone().ok() } else { None };
        self.anchors.push(Anchor { path, follow, id, fd: keep });
        self.anchors.len() - 1
    }

    /// Adds the source `path` as `name` ("" for a directory whose contents
    /// are named relative to it), and a directory's contents below it.
    /// `follow_root`: the source is followed even without follow_symlinks.
    fn add_root(&mut self, name: Vec<u8>, path: &str, follow_root: bool) -> RtResult<()> {
        let trailing = path.ends_with('/') || path.ends_with("/.");
        let fol = if self.follow || follow_root || trailing { Follow::Yes } else { Follow::No };
        let t = beneath::resolve(self.func, "fs.read", path, fol)?;
        let st = t.stat().map_err(|e| t.err(&e))?;
        if self.skipped(&st) {
            return Ok(());
        }
        if beneath::is(&st, libc::S_IFDIR) {
            let fd = t.open_dir().map_err(|e| t.err(&e))?;
            let st = beneath::fstat(fd.as_raw_fd()).map_err(|e| t.err(&e))?;
            let canon = crate::canon_of(self.func, path, &t)?;
            if !name.is_empty() {
                self.items.push(Item { name: name.clone(), display: path.to_string(), st, src: Src::None });
            }
            let a = self.anchor(path.to_string(), fol, crate::file_id(&st), &fd);
            let frame = self.frame(fd, a, Rc::from(Vec::new()), name, path.to_string(), canon, crate::file_id(&st))?;
            return self.run(frame);
        }
        let src = if beneath::is(&st, libc::S_IFREG) {
            Src::Path { path: path.to_string(), follow: fol }
        } else if beneath::is(&st, libc::S_IFLNK) {
            Src::Link(readlinkat(t.dirfd(), t.name()).map_err(|e| t.err(&e))?)
        } else {
            return Err(kind_error(self.func, &st, path));
        };
        self.items.push(Item { name, display: path.to_string(), st, src });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn frame(
        &self,
        fd: OwnedFd,
        anchor: usize,
        rel: Rc<[CString]>,
        name: Vec<u8>,
        display: String,
        canon: Option<PathBuf>,
        id: (u64, u64),
    ) -> RtResult<Frame> {
        let mut left = beneath::read_names(fd.as_raw_fd()).map_err(|e| self.io(&display, &e))?;
        left.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        Ok(Frame { fd, anchor, rel, name, display, canon, id, left })
    }

    /// Depth-first over descriptors (iterative: deep trees do not grow the stack).
    fn run(&mut self, first: Frame) -> RtResult<()> {
        let mut stack = vec![first];
        while let Some(top) = stack.last_mut() {
            let Some(c) = top.left.pop() else {
                stack.pop();
                continue;
            };
            let display = join_display(&top.display, &c);
            let canon = top.canon.as_ref().map(|p| p.join(OsStr::from_bytes(c.to_bytes())));
            let name = join_name(&top.name, c.to_bytes());
            let dfd = top.fd.as_raw_fd();
            let (anchor, rel) = (top.anchor, top.rel.clone());
            let st = match beneath::statat(dfd, &c, true) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished meanwhile
                Err(e) => return Err(self.io(&display, &e)),
            };
            // The entry's own location (the objects below it were reached through descriptors from there).
            if let Some(cp) = &canon {
                cap::check(self.func, "fs.read", &cp.to_string_lossy())?;
            }
            if self.skipped(&st) {
                continue;
            }
            let loops = |id: (u64, u64), stack: &[Frame]| stack.iter().any(|f| f.id == id);
            if beneath::is(&st, libc::S_IFDIR) {
                let fd = beneath::openat(dfd, &c, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                    .map_err(|e| self.io(&display, &e))?;
                let st = beneath::fstat(fd.as_raw_fd()).map_err(|e| self.io(&display, &e))?;
                let mut r: Vec<CString> = rel.to_vec();
                r.push(c.clone());
                self.items.push(Item { name: name.clone(), display: display.clone(), st, src: Src::None });
                let f = self.frame(fd, anchor, Rc::from(r), name, display, canon, crate::file_id(&st))?;
                stack.push(f);
            } else if beneath::is(&st, libc::S_IFREG) {
                self.items.push(Item { name, display, st, src: Src::At { anchor, dir: rel, name: c } });
            } else if beneath::is(&st, libc::S_IFLNK) && self.follow {
                // Resolved like any path the caller names: checked on its target, walked without symlinks.
                let lp = canon.as_ref().map_or_else(|| display.clone(), |p| p.to_string_lossy().into_owned());
                let t = beneath::resolve(self.func, "fs.read", &lp, Follow::Yes)?;
                let tst = t.stat().map_err(|e| t.err(&e))?;
                if self.skipped(&tst) {
                    continue;
                }
                if beneath::is(&tst, libc::S_IFDIR) {
                    let fd = t.open_dir().map_err(|e| t.err(&e))?;
                    let tst = beneath::fstat(fd.as_raw_fd()).map_err(|e| t.err(&e))?;
                    let id = crate::file_id(&tst);
                    if loops(id, &stack) {
                        return Err(Error::new(Code::Io, self.func, "symlink loop", &display).with("path", display.as_str()));
                    }
                    let tcanon = crate::canon_of(self.func, &lp, &t)?;
                    self.items.push(Item { name: name.clone(), display: display.clone(), st: tst, src: Src::None });
                    let a = self.anchor(lp, Follow::Yes, id, &fd);
                    let f = self.frame(fd, a, Rc::from(Vec::new()), name, display, tcanon, id)?;
                    stack.push(f);
                } else if beneath::is(&tst, libc::S_IFREG) {
                    self.items.push(Item { name, display, st: tst, src: Src::Path { path: lp, follow: Follow::Yes } });
                } else {
                    return Err(kind_error(self.func, &tst, &display));
                }
            } else if beneath::is(&st, libc::S_IFLNK) {
                let target = readlinkat(dfd, &c).map_err(|e| self.io(&display, &e))?;
                self.items.push(Item { name, display, st, src: Src::Link(target) });
            } else {
                return Err(kind_error(self.func, &st, &display));
            }
        }
        Ok(())
    }

    /// Opens anchor `a` (held, or resolved again and checked to be the same directory).
    fn open_anchor(&self, a: usize) -> RtResult<OwnedFd> {
        let an = &self.anchors[a];
        if let Some(fd) = &an.fd {
            return fd.try_clone().map_err(|e| self.io(&an.path, &e));
        }
        let t = beneath::resolve(self.func, "fs.read", &an.path, an.follow)?;
        let fd = t.open_dir().map_err(|e| t.err(&e))?;
        let st = beneath::fstat(fd.as_raw_fd()).map_err(|e| t.err(&e))?;
        if crate::file_id(&st) != an.id {
            return Err(changed_while_archived(self.func, &an.path));
        }
        Ok(fd)
    }

    /// Opens a regular file of the walk for reading: the same object the walk saw.
    fn open_item(&mut self, it: &Item) -> RtResult<File> {
        let f = match &it.src {
            Src::Path { path, follow } => {
                let t = beneath::resolve(self.func, "fs.read", path, *follow)?;
                t.open_read().map_err(|e| t.err(&e))?
            }
            Src::At { anchor, dir, name } => {
                let hit = matches!(&self.last_dir, Some((a, d, _)) if *a == *anchor && (Rc::ptr_eq(d, dir) || d[..] == dir[..]));
                if !hit {
                    let mut fd = self.open_anchor(*anchor)?;
                    for c in dir.iter() {
                        fd = beneath::openat(fd.as_raw_fd(), c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                            .map_err(|e| self.io(&it.display, &e))?;
                    }
                    self.last_dir = Some((*anchor, dir.clone(), fd));
                }
                let Some((_, _, dfd)) = &self.last_dir else {
                    return Err(Error::internal(self.func, "directory cache empty"));
                };
                let fd = beneath::openat(dfd.as_raw_fd(), name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
                    .map_err(|e| self.io(&it.display, &e))?;
                File::from(fd)
            }
            Src::None | Src::Link(_) => return Err(Error::internal(self.func, "not a regular file")),
        };
        let st = beneath::fstat(f.as_raw_fd()).map_err(|e| self.io(&it.display, &e))?;
        if crate::file_id(&st) != crate::file_id(&it.st) {
            return Err(changed_while_archived(self.func, &it.display));
        }
        Ok(f)
    }
}

fn changed_while_archived(func: &'static str, display: &str) -> Error {
    Error::new(Code::Io, func, "the file was replaced while being archived", display).with("path", display)
}

/// Archive name for a source path given in a list: relative paths as given (normalized),
/// absolute ones without the leading `/`; `..` is refused.
fn list_name(func: &'static str, s: &str) -> RtResult<Vec<u8>> {
    let trimmed = s.trim_start_matches('/');
    let comps = member_components(trimmed.as_bytes())
        .map_err(|why| Error::invalid(func, format!("source name: {why}"), ffi_sdk::error::quote(s)))?;
    if comps.is_empty() {
        return Ok(Vec::new());
    }
    Ok(comps.join(&b'/'))
}

/// The tar output: plain, gzip or xz over a buffered file.
pub(crate) fn out_writer(func: &'static str, f: File, c: Compression, level: Option<i64>) -> RtResult<Box<dyn crate::FinishWrite + Send>> {
    let w = io::BufWriter::with_capacity(crate::BUF, f);
    Ok(match c {
        Compression::None => Box::new(crate::PlainOut(w)),
        Compression::Gzip => {
            Box::new(flate2::write::GzEncoder::new(w, flate2::Compression::new(level.unwrap_or(6) as u32)))
        }
        Compression::Xz => {
            let s = liblzma::stream::Stream::new_easy_encoder(level.unwrap_or(6) as u32, liblzma::stream::Check::Crc64)
                .map_err(|e| Error::internal(func, format!("liblzma encoder: {e:?}")))?;
            Box::new(liblzma::write::XzEncoder::new_stream(w, s))
        }
    })
}

/// Exactly `size` bytes of `r`, or an error if the file changed size while being read.
pub(crate) struct Exact<R> {
    pub(crate) r: R,
    pub(crate) left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let k = buf.len().min(self.left as usize);
        let n = self.r.read(&mut buf[..k])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being archived"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Creates a tar archive at `output` from `sources` (fs.read on each source, fs.write on output).
///
/// `sources` is a directory path (its contents are archived, named relative to it), a file path (archived under
/// its file name), or an array of paths (each named as given, a leading `/` dropped, directories recursively;
/// with option `base`, paths are relative to that directory). Sources are walked through directory descriptors
/// (O_NOFOLLOW). Device files, FIFOs and sockets are Error Unsupported. The archive is written under a temporary
/// name and renamed into place; `output` is resolved as the `dst` of rt_gzip_compress_file. Returns {entries,
/// bytes}.
///
/// `sources` nil (Simple's `rt_tar_create(path) -> i64`): returns a TarWriter handle instead; add entries with
/// rt_tar_add_data / rt_tar_add_file and finish with rt_tar_close, which renames the archive into place (a writer
/// never closed leaves nothing). Options then: `compression`, `level`, `mtime` (of entries added from data;
/// default now).
///
/// # Options
/// - compression (text): "auto" = by output name: .tar.gz/.tgz gzip, .tar.xz/.txz xz, else none; "none", "gzip", "xz"
/// - level (int 0..=9, default 6): gzip 0..=9 / xz preset 0..=9
/// - deterministic (bool, default false): bool: entries sorted by name, mtime = option `mtime` (default 0), uid/gid 0, no owner names
/// - mtime (int >= 0, default 0): `compression`, `level`, `mtime` of entries added from data
/// - follow_symlinks (bool, default false): links are stored as links; true: each link is resolved and checked against fs.read like a path the caller names
/// - base (text): with option `base`, paths are relative to that directory
///
/// # Errors
/// - InvalidArgument: option base needs sources as an array of paths; sources is an empty array; with option base, sources must be relative; option compression must be auto, none, gzip or xz
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Unsupported: not supported (on this machine or build, or for this input)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "any")]
pub fn rt_tar_create(output: &str, sources: Option<Value>, opts: Opts) -> RtResult<Value> {
    let Some(sources) = sources else {
        return handle::writer(FN, output, &opts);
    };
    opts.only(&["compression", "level", "deterministic", "mtime", "follow_symlinks", "base"])?;
    let comp = Compression::from_opt(FN, opts.text("compression")?)?.unwrap_or_else(|| Compression::from_name(output));
    let level = opts.int_in("level", 0, 9)?;
    let deterministic = opts.bool("deterministic")?.unwrap_or(false);
    let fixed_mtime = opts.int_in("mtime", 0, 0o77777777777)?.unwrap_or(0) as u64;
    let follow = opts.bool("follow_symlinks")?.unwrap_or(false);
    let base = opts.text("base")?;
    // The output first: checked (and its temporary created) before any source is read.
    let out = crate::create_output(FN, output)?;

    // Sources: a text path, or an array of text paths: (name, path, follow the path itself).
    let mut roots: Vec<(Vec<u8>, String, bool)> = Vec::new();
    if let Some(s) = sources.as_text() {
        if base.is_some() {
            return Err(Error::invalid(FN, "option base needs sources as an array of paths", "base"));
        }
        let t = beneath::resolve(FN, "fs.read", s, Follow::Yes)?;
        let st = t.stat().map_err(|e| t.err(&e))?;
        if beneath::is(&st, libc::S_IFDIR) {
            roots.push((Vec::new(), s.to_string(), true));
        } else {
            let name = Path::new(s).file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
            roots.push((name, s.to_string(), false));
        }
    } else if sources.is_array() {
        if sources.is_empty() {
            return Err(Error::invalid(FN, "sources is an empty array", "[]"));
        }
        let base_path = match base {
            Some(b) => Some(paths::validate(FN, b)?.to_path_buf()),
            None => None,
        };
        for (i, item) in sources.items().enumerate() {
            let s = item.as_text().ok_or_else(|| {
                Error::plain(Code::TypeMismatch, FN, format!("argument 2 (sources) item {i} must be text, got {}", item.describe()))
            })?;
            paths::validate(FN, s)?;
            match &base_path {
                Some(b) => {
                    if s.starts_with('/') {
                        return Err(Error::invalid(FN, "with option base, sources must be relative", s));
                    }
                    roots.push((list_name(FN, s)?, b.join(s).to_string_lossy().into_owned(), false));
                }
                None => roots.push((list_name(FN, s)?, s.to_string(), false)),
            }
        }
    } else {
        return Err(ffi_sdk::args::kind_error(FN, 1, "sources", "text or array of text", sources));
    }

    // Neither the archive being written nor the file it replaces is archived.
    let skip = out.ids.clone();
    let mut walk = Walk { func: FN, follow, skip: &skip, items: Vec::new(), anchors: Vec::new(), last_dir: None };
    for (name, path, follow_root) in roots {
        walk.add_root(name, &path, follow_root)?;
    }
    let mut items = std::mem::take(&mut walk.items);
    if deterministic {
        items.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let file = out.file.as_ref().ok_or_else(|| Error::internal(FN, "output file missing"))?;
    let w = out_writer(FN, file.try_clone().map_err(|e| Error::io(FN, output, &e))?, comp, level)?;
    let mut b = ::tar::Builder::new(w);
    let werr = |e: io::Error| Error::io(FN, output, &e);
    for it in &items {
        // Between entries: the thread's deadline / cancel token (the partial output is removed).
        ffi_sdk::deadline::check(FN)?;
        let st = &it.st;
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        if deterministic {
            h.set_mtime(fixed_mtime);
            h.set_uid(0);
            h.set_gid(0);
        } else {
            h.set_mtime(st.st_mtime.max(0) as u64);
            h.set_uid(st.st_uid as u64);
            h.set_gid(st.st_gid as u64);
        }
        let name = Path::new(OsStr::from_bytes(&it.name));
        match &it.src {
            Src::None => {
                h.set_entry_type(::tar::EntryType::Directory);
                h.set_size(0);
                let mut n = it.name.clone();
                n.push(b'/');
                b.append_data(&mut h, Path::new(OsStr::from_bytes(&n)), io::empty()).map_err(werr)?;
            }
            Src::Link(target) => {
                h.set_entry_type(::tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, Path::new(OsStr::from_bytes(target))).map_err(werr)?;
            }
            Src::Path { .. } | Src::At { .. } => {
                let f = walk.open_item(it)?;
                let len = st.st_size.max(0) as u64;
                h.set_entry_type(::tar::EntryType::Regular);
                h.set_size(len);
                let r = Exact { r: f, left: len };
                b.append_data(&mut h, name, r).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => Error::io(FN, &it.display, &e),
                    _ => werr(e),
                })?;
            }
        }
    }
    b.finish().map_err(werr)?;
    let mut w = b.into_inner().map_err(werr)?;
    w.finish_write().map_err(werr)?;
    drop(w);
    let size = out.file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    out.commit().map_err(werr)?;
    let d = Value::dict();
    d.set("entries", Value::int(items.len() as i64));
    d.set("bytes", Value::int(size as i64));
    Ok(d)
}
