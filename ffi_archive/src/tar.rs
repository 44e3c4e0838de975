//! tar archives: create (plain, .tar.gz, .tar.xz), list, and safe extract.
//!
//! Reading accepts v7, ustar, GNU (long names, GNU sparse) and pax (long
//! names, PAX sparse 1.0) archives, plain or gzip/xz compressed (detected by
//! their magic bytes). Writing produces GNU-format archives (long names as
//! GNU long-name records), readable by GNU tar, bsdtar and Python's tarfile.

use crate::safety::{member_components, Content, ExError, Extractor};
use crate::{Compression, SrcState, Tracked};
use ffi_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// An archive being read: the decoded stream and what happened to the file under it.
struct Source {
    reader: Box<dyn Read>,
    state: Rc<RefCell<SrcState>>,
    path: String,
}

fn open_source(func: &'static str, path: &str, compression: Option<Compression>, memlimit: u64) -> RtResult<Source> {
    let p = crate::checked_path(func, "fs.read", path)?;
    let f = File::open(p).map_err(|e| Error::io(func, path, &e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::invalid(func, "archive path is a directory", path));
    }
    let state = Rc::new(RefCell::new(SrcState::default()));
    let mut br = BufReader::with_capacity(crate::BUF, Tracked { inner: f, state: state.clone() });
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
    /// Maps an error of the archive stream: the file's own I/O error, or corrupt data (Parse).
    fn error(&self, func: &'static str, e: &io::Error, entry: Option<&str>) -> Error {
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
struct Member {
    name: Vec<u8>,
    kind: &'static str,
    size: u64,
    mode: u32,
    mtime: Option<u64>,
    link: Option<Vec<u8>>,
    content: Content,
    /// Set for formats this crate cannot extract (e.g. PAX sparse 0.x).
    unsupported: Option<&'static str>,
}

fn member<R: Read>(e: &mut ::tar::Entry<'_, R>) -> io::Result<Member> {
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

fn memlimit_opt(opts: &Opts) -> RtResult<u64> {
    Ok(opts.int_in("memlimit", 1 << 20, i64::MAX)?.map(|v| v as u64).unwrap_or(crate::xz::DEFAULT_MEMLIMIT))
}

/// Lists a tar archive (plain, gzip or xz; detected) without extracting (fs.read).
///
/// Returns an array of dicts {name, type, size, mode, mtime, link}: type is "file", "dir",
/// "symlink", "hardlink", "char", "block", "fifo" or "other"; size is the file's real size
/// (sparse files included); mode the permission bits; link the link target or nil.
/// Options: `max_entries` (default 1000000, more is LimitExceeded), `compression`
/// ("auto", "none", "gzip", "xz"), `memlimit` (xz decoder memory, default 1 GiB).
/// Corrupt or truncated archives are Error Parse.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<dict>")]
pub fn rt_tar_list(archive: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_entries", "compression", "memlimit"])?;
    let (max_entries, _) = limits_opts(&opts)?;
    let comp = Compression::from_opt(FN, opts.text("compression")?)?;
    let Source { reader, state, path } = open_source(FN, archive, comp, memlimit_opt(&opts)?)?;
    let errs = Source { reader: Box::new(io::empty()), state, path };
    let mut ar = ::tar::Archive::new(reader);
    let out = Value::array(0);
    let entries = ar.entries().map_err(|e| errs.error(FN, &e, None))?;
    let mut count = 0u64;
    let mut last = String::new();
    for e in entries {
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

/// Extracts a tar archive (plain, gzip or xz; detected) into `target_dir`, safely.
///
/// Checks fs.read on the archive and fs.write on the target and on every entry's destination.
/// Refused with an Error naming the entry (details.entry): absolute names, `..`, links or
/// parents leading outside the target, device files and FIFOs; setuid/setgid bits are dropped
/// and owners not changed. Options: `max_size` (bytes written, default 16 GiB) and
/// `max_entries` (default 1000000) against bombs (LimitExceeded); `overwrite` (default true:
/// existing files are replaced, never written through); `preserve_mtime` (default true);
/// `compression` ("auto", "none", "gzip", "xz"); `memlimit` (xz decoder). The target is created
/// if missing. Returns {entries, bytes}. Corrupt archives are Error Parse; entries extracted
/// before a failure stay, a half-written file is removed.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_tar_extract(archive: &str, target_dir: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_size", "max_entries", "overwrite", "preserve_mtime", "compression", "memlimit"])?;
    let (max_entries, max_size) = limits_opts(&opts)?;
    let overwrite = opts.bool("overwrite")?.unwrap_or(true);
    let keep_mtime = opts.bool("preserve_mtime")?.unwrap_or(true);
    let comp = Compression::from_opt(FN, opts.text("compression")?)?;
    let memlimit = memlimit_opt(&opts)?;
    let tp = crate::checked_path(FN, "fs.write", target_dir)?;
    let src = open_source(FN, archive, comp, memlimit)?;
    match fs::symlink_metadata(tp) {
        Ok(m) if m.is_dir() || (m.file_type().is_symlink() && tp.is_dir()) => {}
        Ok(_) => return Err(Error::new(Code::AlreadyExists, FN, "target exists and is not a directory", target_dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(tp).map_err(|e| Error::io(FN, target_dir, &e))?;
        }
        Err(e) => return Err(Error::io(FN, target_dir, &e)),
    }
    let mut x = Extractor::new(FN, tp).map_err(|e| Error::io(FN, target_dir, &e))?;
    x.max_entries = max_entries;
    x.max_size = max_size;
    x.overwrite = overwrite;
    x.keep_mtime = keep_mtime;
    let Source { reader, state, path } = src;
    let source_for_errors = Source { reader: Box::new(io::empty()), state, path };
    let mut ar = ::tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| source_for_errors.error(FN, &e, None))?;
    let mut last_name = String::new();
    for e in entries {
        let mut e = e.map_err(|e| {
            let after = if last_name.is_empty() { None } else { Some(last_name.as_str()) };
            source_for_errors.error(FN, &e, after)
        })?;
        let m = member(&mut e).map_err(|err| source_for_errors.error(FN, &err, None))?;
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
            Err(ExError::Read(err)) => return Err(source_for_errors.error(FN, &err, Some(&name))),
        }
    }
    x.finish()?;
    let d = Value::dict();
    d.set("entries", Value::int(x.entries as i64));
    d.set("bytes", Value::int(x.bytes as i64));
    Ok(d)
}

// ---------------------------------------------------------------- create

/// One file-system object to archive.
struct Item {
    name: Vec<u8>,
    path: PathBuf,
    meta: fs::Metadata,
}

struct Walk<'a> {
    func: &'static str,
    follow: bool,
    skip: &'a [(u64, u64)],
    items: Vec<Item>,
}

impl Walk<'_> {
    fn meta(&self, p: &Path) -> RtResult<fs::Metadata> {
        let m = if self.follow { fs::metadata(p) } else { fs::symlink_metadata(p) };
        m.map_err(|e| Error::io(self.func, p.display(), &e))
    }

    /// Adds `path` as `name`, and a directory's contents below it (sorted by name).
    fn add(&mut self, name: Vec<u8>, path: PathBuf) -> RtResult<()> {
        cap::check_path(self.func, "fs.read", &path)?;
        let meta = self.meta(&path)?;
        if self.skip.contains(&(meta.dev(), meta.ino())) {
            return Ok(());
        }
        let is_dir = meta.is_dir();
        if !name.is_empty() {
            self.items.push(Item { name: name.clone(), path: path.clone(), meta });
        }
        if is_dir {
            let mut kids: Vec<_> = fs::read_dir(&path)
                .map_err(|e| Error::io(self.func, path.display(), &e))?
                .map(|d| d.map(|d| d.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| Error::io(self.func, path.display(), &e))?;
            kids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for k in kids {
                let mut n = name.clone();
                if !n.is_empty() && !n.ends_with(b"/") {
                    n.push(b'/');
                }
                n.extend_from_slice(k.as_bytes());
                self.add(n, path.join(&k))?;
            }
        }
        Ok(())
    }
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
fn out_writer(func: &'static str, f: File, c: Compression, level: Option<i64>) -> RtResult<Box<dyn crate::FinishWrite>> {
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
struct Exact<R> {
    r: R,
    left: u64,
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
/// `sources` is a directory path (its contents are archived, named relative to it), a file path
/// (archived under its file name), or an array of paths (each named as given, a leading `/`
/// dropped, directories recursively; with option `base`, paths are relative to that directory).
/// Options: `compression` ("auto" = by output name: .tar.gz/.tgz gzip, .tar.xz/.txz xz, else none;
/// "none", "gzip", "xz"), `level` (gzip 0..=9 / xz preset 0..=9, default 6), `deterministic`
/// (bool: entries sorted by name, mtime = option `mtime` (default 0), uid/gid 0, no owner names),
/// `follow_symlinks` (default false: links are stored as links). Device files, FIFOs and sockets
/// are Error Unsupported. The archive is written under a temporary name and renamed into place.
/// Returns {entries, bytes}.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_tar_create(output: &str, sources: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["compression", "level", "deterministic", "mtime", "follow_symlinks", "base"])?;
    let comp = Compression::from_opt(FN, opts.text("compression")?)?.unwrap_or_else(|| Compression::from_name(output));
    let level = opts.int_in("level", 0, 9)?;
    let deterministic = opts.bool("deterministic")?.unwrap_or(false);
    let fixed_mtime = opts.int_in("mtime", 0, 0o77777777777)?.unwrap_or(0) as u64;
    let follow = opts.bool("follow_symlinks")?.unwrap_or(false);
    let base = opts.text("base")?;
    let op = crate::checked_path(FN, "fs.write", output)?;

    // Sources: a text path, or an array of text paths.
    let mut roots: Vec<(Vec<u8>, PathBuf)> = Vec::new();
    if let Some(s) = sources.as_text() {
        if base.is_some() {
            return Err(Error::invalid(FN, "option base needs sources as an array of paths", "base"));
        }
        let p = paths::validate(FN, s)?;
        let m = fs::metadata(p).map_err(|e| Error::io(FN, s, &e))?;
        if m.is_dir() {
            roots.push((Vec::new(), p.to_path_buf()));
        } else {
            let name = p.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
            roots.push((name, p.to_path_buf()));
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
                    roots.push((list_name(FN, s)?, b.join(s)));
                }
                None => roots.push((list_name(FN, s)?, PathBuf::from(s))),
            }
        }
    } else {
        return Err(ffi_sdk::args::kind_error(FN, 1, "sources", "text or array of text", sources));
    }

    let out = crate::AtomicFile::create(op).map_err(|e| Error::io(FN, output, &e))?;
    let mut skip = Vec::new();
    if let Ok(m) = fs::metadata(out.tmp_path()) {
        skip.push((m.dev(), m.ino()));
    }
    if let Ok(m) = fs::metadata(op) {
        skip.push((m.dev(), m.ino()));
    }
    let mut walk = Walk { func: FN, follow, skip: &skip, items: Vec::new() };
    for (name, path) in roots {
        walk.add(name, path)?;
    }
    let mut items = walk.items;
    if deterministic {
        items.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let file = out.file.as_ref().ok_or_else(|| Error::internal(FN, "output file missing"))?;
    let w = out_writer(FN, file.try_clone().map_err(|e| Error::io(FN, output, &e))?, comp, level)?;
    let mut b = ::tar::Builder::new(w);
    let werr = |e: io::Error| Error::io(FN, output, &e);
    for it in &items {
        let ft = it.meta.file_type();
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(it.meta.mode() & 0o7777);
        if deterministic {
            h.set_mtime(fixed_mtime);
            h.set_uid(0);
            h.set_gid(0);
        } else {
            h.set_mtime(it.meta.mtime().max(0) as u64);
            h.set_uid(it.meta.uid() as u64);
            h.set_gid(it.meta.gid() as u64);
        }
        let name = Path::new(std::ffi::OsStr::from_bytes(&it.name));
        if ft.is_dir() {
            h.set_entry_type(::tar::EntryType::Directory);
            h.set_size(0);
            let mut n = it.name.clone();
            n.push(b'/');
            b.append_data(&mut h, Path::new(std::ffi::OsStr::from_bytes(&n)), io::empty()).map_err(werr)?;
        } else if ft.is_file() {
            let f = File::open(&it.path).map_err(|e| Error::io(FN, it.path.display(), &e))?;
            h.set_entry_type(::tar::EntryType::Regular);
            h.set_size(it.meta.len());
            let r = Exact { r: f, left: it.meta.len() };
            b.append_data(&mut h, name, r).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => Error::io(FN, it.path.display(), &e),
                _ => werr(e),
            })?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&it.path).map_err(|e| Error::io(FN, it.path.display(), &e))?;
            h.set_entry_type(::tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, &target).map_err(werr)?;
        } else {
            let what = if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else {
                "device file"
            };
            return Err(Error::new(Code::Unsupported, FN, format!("cannot archive a {what}"), it.path.display()));
        }
    }
    b.finish().map_err(werr)?;
    let mut w = b.into_inner().map_err(werr)?;
    w.finish_write().map_err(werr)?;
    drop(w);
    out.commit().map_err(werr)?;
    let size = fs::metadata(op).map(|m| m.len()).unwrap_or(0);
    let d = Value::dict();
    d.set("entries", Value::int(items.len() as i64));
    d.set("bytes", Value::int(size as i64));
    Ok(d)
}
