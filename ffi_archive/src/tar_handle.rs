//! tar archives behind handles, in the shape Simple's `io/compress_ffi.spl`
//! declares (the zip functions' shape): `rt_tar_create(path)` (sources nil)
//! → `rt_tar_add_data` / `rt_tar_add_file` → `rt_tar_close` to write;
//! `rt_tar_open` → `rt_tar_list` / `rt_tar_extract` / `rt_tar_extract_file`
//! → `rt_tar_close` to read; and the two `.tar.gz` helpers.
//!
//! A TarWriter writes into a temporary file beside the output (created, and
//! fs.write checked, by rt_tar_create) and renames it into place on
//! rt_tar_close: a writer dropped or collected unclosed leaves nothing. A
//! TarReader holds the archive open (fs.read checked by rt_tar_open) and
//! reads it from the start for each call (positioned reads: calls on one
//! handle from several threads do not disturb each other). Extraction is
//! tar.rs's, through the same `safety::Extractor`.

use crate::safety::{member_components, Content};
use crate::tar::{archive_source, member, out_writer, Exact};
use crate::{AtomicFile, Compression, CopyError, FinishWrite};
use ffi_sdk::abi::RtValue;
use ffi_sdk::beneath::{self, Follow};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use ffi_sdk::FromArg;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A tar archive being written (handle type `TarWriter`).
pub struct TarWriter {
    st: Mutex<Option<Building>>,
    path: String,
}

struct Building {
    b: ::tar::Builder<Box<dyn FinishWrite + Send>>,
    out: AtomicFile,
    /// mtime of entries added from data (None: the time of the call).
    mtime: Option<u64>,
    entries: u64,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for TarWriter {
    const NAME: &'static str = "TarWriter";
}

/// A tar archive opened for reading (handle type `TarReader`).
pub struct TarReader {
    file: Arc<File>,
    path: String,
    compression: Option<Compression>,
    memlimit: u64,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for TarReader {
    const NAME: &'static str = "TarReader";
}

/// What list / extract need of a TarReader, taken out of the borrowed handle.
pub(crate) struct ReaderInfo {
    file: Arc<File>,
    pub(crate) path: String,
    pub(crate) compression: Option<Compression>,
    pub(crate) memlimit: u64,
}

impl ReaderInfo {
    /// The archive from its first byte (positioned reads on the shared descriptor).
    pub(crate) fn stream(&self) -> PRead {
        PRead { f: self.file.clone(), pos: 0 }
    }
}

/// Reads a shared file from `pos` on with pread (no shared offset).
pub(crate) struct PRead {
    f: Arc<File>,
    pos: u64,
}

impl Read for PRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Argument `idx` as a TarReader handle (a TypeMismatch that says a path is also accepted).
pub(crate) fn reader_arg(func: &'static str, idx: usize, v: Value) -> RtResult<ReaderInfo> {
    let h = <Handle<TarReader> as FromArg>::from_arg(v.raw(), func, idx, "archive").map_err(|mut e| {
        if e.code == Code::TypeMismatch {
            e.message = format!("{func}: argument {} (archive) must be a path (text) or a TarReader handle, got {}", idx + 1, v.describe());
        }
        e
    })?;
    Ok(ReaderInfo { file: h.file.clone(), path: h.path.clone(), compression: h.compression, memlimit: h.memlimit })
}

/// rt_tar_create with sources nil: a TarWriter on a temporary file beside `output`.
pub(crate) fn writer(func: &'static str, output: &str, opts: &Opts) -> RtResult<Value> {
    opts.only(&["compression", "level", "mtime"])?;
    let comp = Compression::from_opt(func, opts.text("compression")?)?.unwrap_or_else(|| Compression::from_name(output));
    let level = opts.int_in("level", 0, 9)?;
    let mtime = opts.int_in("mtime", 0, 0o77777777777)?.map(|m| m as u64);
    let out = crate::create_output(func, output)?;
    let file = out.file.as_ref().ok_or_else(|| Error::internal(func, "output file missing"))?;
    let w = out_writer(func, file.try_clone().map_err(|e| Error::io(func, output, &e))?, comp, level)?;
    let b = ::tar::Builder::new(w);
    Ok(new_handle(TarWriter { st: Mutex::new(Some(Building { b, out, mtime, entries: 0 })), path: output.to_string() }))
}

/// An entry name for the archive: relative, no `..`, no NUL, not empty.
fn entry_name(func: &'static str, name: &str) -> RtResult<String> {
    let comps = member_components(name.as_bytes()).map_err(|why| Error::invalid(func, why, quote(name)))?;
    if comps.is_empty() {
        return Err(Error::invalid(func, "entry name is empty", quote(name)));
    }
    Ok(comps.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("/"))
}

impl TarWriter {
    fn add(&self, func: &'static str, name: &str, data: &mut dyn Read, size: u64, mode: u32, mtime: Option<u64>) -> RtResult<()> {
        let name = entry_name(func, name)?;
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        let st = g.as_mut().ok_or_else(|| Error::new(Code::Closed, func, "the archive was closed", &self.path))?;
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Regular);
        h.set_mode(mode & 0o777);
        h.set_size(size);
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        h.set_mtime(mtime.or(st.mtime).unwrap_or_else(now));
        h.set_uid(0);
        h.set_gid(0);
        st.b.append_data(&mut h, Path::new(&name), data).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::io(func, quote(&name), &e).with("entry", name.as_str()),
            _ => Error::io(func, &self.path, &e).with("path", self.path.as_str()),
        })?;
        st.entries += 1;
        Ok(())
    }
}

/// Adds an entry `archive_path` holding `data` (bytes or text) to a TarWriter: a regular file, mode 0644, owner
/// 0, mtime the writer's `mtime` option or now. Simple declares `-> i64`: ours is nil or an Error.
///
/// # Errors
/// - InvalidArgument: for an absolute name, `..` or an empty name; Closed after rt_tar_close
/// - Closed: `tar` was closed
#[rt_fn(blocking, tier = "verified")]
pub fn rt_tar_add_data(tar: Handle<TarWriter>, archive_path: &str, data: &[u8]) -> RtResult<()> {
    tar.add(FN, archive_path, &mut &data[..], data.len() as u64, 0o644, None)
}

/// Adds the regular file `file_path` (content streamed, permission bits and mtime kept, owner 0) as entry
/// `archive_path`. Needs fs.read on `file_path`. A directory or other non-regular file is InvalidArgument;
/// a file that changes size while it is read is Error Io.
///
/// # Errors
/// - InvalidArgument: is not a regular file; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Closed: `tar` was closed
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_tar_add_file(tar: Handle<TarWriter>, archive_path: &str, file_path: &str) -> RtResult<()> {
    let t = beneath::resolve(FN, "fs.read", file_path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let st = beneath::fstat(f.as_raw_fd()).map_err(|e| t.err(&e))?;
    if !beneath::is(&st, libc::S_IFREG) {
        return Err(Error::invalid(FN, "is not a regular file", quote(file_path)).with("path", file_path));
    }
    let len = st.st_size.max(0) as u64;
    let mut r = Exact { r: f, left: len };
    tar.add(FN, archive_path, &mut r, len, st.st_mode, Some(st.st_mtime.max(0) as u64))
}

/// Opens a tar archive (plain, gzip or xz; detected) for reading and returns a TarReader handle for rt_tar_list,
/// rt_tar_extract and rt_tar_extract_file. Needs fs.read. The first header is read now: a file that is not a tar
/// archive is Error Parse here.
///
/// # Options
/// - compression (text): "auto", "none", "gzip", "xz"
/// - memlimit (int): xz decoder memory apply to every later call
///
/// # Errors
/// - InvalidArgument: option compression must be auto, none, gzip or xz; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: not a tar archive
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<TarReader>")]
pub fn rt_tar_open(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["compression", "memlimit"])?;
    let compression = Compression::from_opt(FN, opts.text("compression")?)?;
    let memlimit = opts.int_in("memlimit", 1 << 20, i64::MAX)?.map_or(crate::xz::DEFAULT_MEMLIMIT, |v| v as u64);
    let f = crate::open_input(FN, path, "archive path is a directory")?;
    let info = ReaderInfo { file: Arc::new(f), path: path.to_string(), compression, memlimit };
    // Check the first entry now (an empty archive, all zeros, is fine).
    let (reader, _) = crate::tar::source_from(FN, Box::new(info.stream()), path, compression, memlimit)?.split();
    let mut ar = ::tar::Archive::new(reader);
    let first = ar.entries().and_then(|mut es| es.next().transpose().map(|_| ()));
    if let Err(e) = first {
        return Err(Error::parse(FN, format!("not a tar archive: {e}"), quote(path)).with("path", path));
    }
    Ok(new_handle(TarReader { file: info.file, path: info.path, compression, memlimit }))
}

/// Finishes and closes a TarWriter (end-of-archive blocks, the compressor's trailer, then the temporary file
/// renamed into place), or closes a TarReader.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: it was closed already
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified", blocking)]
pub fn rt_tar_close(tar: Value) -> RtResult<()> {
    let raw: RtValue = tar.raw();
    let writer = <Handle<TarWriter> as FromArg>::from_arg(raw, FN, 0, "tar");
    if let Err(e) = &writer {
        if e.code == Code::Closed {
            return Err(e.clone());
        }
    }
    if let Ok(w) = writer {
        let taken = w.st.lock().unwrap_or_else(|e| e.into_inner()).take();
        w.close();
        let Some(Building { b, out, .. }) = taken else {
            return Err(Error::new(Code::Closed, FN, "the archive was closed", &w.path));
        };
        let werr = |e: io::Error| Error::io(FN, &w.path, &e).with("path", w.path.as_str());
        let mut inner = b.into_inner().map_err(werr)?;
        inner.finish_write().map_err(werr)?;
        drop(inner);
        out.commit().map_err(werr)?;
        return Ok(());
    }
    let r = <Handle<TarReader> as FromArg>::from_arg(raw, FN, 0, "tar").map_err(|mut e| {
        if e.code == Code::TypeMismatch {
            e.message = format!("{FN}: argument 1 (tar) must be a TarWriter or TarReader handle, got {}", tar.describe());
        }
        e
    })?;
    r.close();
    Ok(())
}

/// The archive name of an entry as a lookup key: its components joined by `/` (`./a//b` is `a/b`).
fn key_of(name: &[u8]) -> Option<Vec<u8>> {
    member_components(name).ok().map(|c| c.join(&b'/'))
}

/// Extracts the one regular-file entry `archive_path` of a tar archive (a TarReader handle or a path) to the file
/// `output_path` (written under a temporary name and renamed into place, so a failure leaves nothing) and returns
/// the number of bytes written. `archive_path` is compared by its components (`./a` is `a`); the last entry of
/// that name wins, as tar does. Needs fs.write on `output_path` (and fs.read on a path archive).
///
/// # Options
/// - max_size (int >= 0, default 16 GiB): LimitExceeded
/// - compression (text): "auto", "none", "gzip" or "xz"
/// - memlimit (int): the xz decoder's memory limit, in bytes
///
/// # Errors
/// - InvalidArgument: it is not a regular file; an unknown option, or an option of the wrong kind or range
/// - NotFound: there is no such entry
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: PAX sparse entries can be extracted with rt_tar_extract only
/// - LimitExceeded: decompressed output exceeds max_output bytes
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_tar_extract_file(tar: Value, archive_path: &str, output_path: &str, opts: Opts) -> RtResult<u64> {
    opts.only(&["max_size", "compression", "memlimit"])?;
    let max = opts.int_in("max_size", 0, i64::MAX)?.map_or(crate::safety::DEFAULT_MAX_SIZE, |m| m as u64);
    let comp = Compression::from_opt(FN, opts.text("compression")?)?;
    let memlimit = opts.int_in("memlimit", 1 << 20, i64::MAX)?.map(|v| v as u64);
    let want = key_of(archive_path.as_bytes()).filter(|k| !k.is_empty()).ok_or_else(|| {
        Error::invalid(FN, "entry name must be relative, without `..`, and not empty", quote(archive_path))
    })?;
    // Checked (and the temporary created) before the archive is read.
    let out = crate::create_output(FN, output_path)?;
    // Find the last entry of that name first (a later one replaces an earlier one), then copy it in a second pass.
    let index = {
        let (reader, errs) = archive_source(FN, 0, tar, comp, memlimit)?.split();
        let mut ar = ::tar::Archive::new(reader);
        let mut found: Option<(usize, &'static str)> = None;
        for (i, e) in ar.entries().map_err(|e| errs.error(FN, &e, None))?.enumerate() {
            ffi_sdk::deadline::check(FN)?;
            let mut e = e.map_err(|e| errs.error(FN, &e, None))?;
            let m = member(&mut e).map_err(|err| errs.error(FN, &err, None))?;
            if key_of(&m.name).as_deref() == Some(&want[..]) {
                found = Some((i, m.kind));
            }
        }
        match found {
            None => return Err(Error::not_found(FN, "no such entry in the archive", quote(archive_path)).with("entry", archive_path)),
            Some((_, kind)) if kind != "file" => {
                return Err(Error::invalid(FN, format!("entry is a {kind}, not a regular file"), quote(archive_path)).with("entry", archive_path))
            }
            Some((i, _)) => i,
        }
    };
    let (reader, errs) = archive_source(FN, 0, tar, comp, memlimit)?.split();
    let mut ar = ::tar::Archive::new(reader);
    let mut entries = ar.entries().map_err(|e| errs.error(FN, &e, None))?;
    let mut e = match entries.nth(index) {
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(errs.error(FN, &e, Some(archive_path))),
        None => return Err(Error::io(FN, &errs.path, &io::Error::other("the archive changed while it was read"))),
    };
    let m = member(&mut e).map_err(|err| errs.error(FN, &err, Some(archive_path)))?;
    if let Some(why) = m.unsupported {
        return Err(Error::new(Code::Unsupported, FN, format!("{why} is not supported"), quote(archive_path)));
    }
    if matches!(m.content, Content::PaxSparse1 { .. }) {
        return Err(Error::new(Code::Unsupported, FN, "PAX sparse entries can be extracted with rt_tar_extract only", quote(archive_path)));
    }
    if m.size > max {
        return Err(crate::output_limit(FN, max));
    }
    let file = out.file.as_ref().ok_or_else(|| Error::internal(FN, "output file missing"))?;
    let mut w = io::BufWriter::with_capacity(crate::BUF, file.try_clone().map_err(|e| Error::io(FN, output_path, &e))?);
    let n = match crate::copy_limited(&mut e, &mut w, max) {
        Ok(n) => n,
        Err(_) if ffi_sdk::deadline::status().is_some() => {
            return Err(ffi_sdk::deadline::error(FN, ffi_sdk::deadline::status().unwrap_or(Code::Timeout)))
        }
        Err(CopyError::Limit) => return Err(crate::output_limit(FN, max)),
        Err(CopyError::Read(err)) => return Err(errs.error(FN, &err, Some(archive_path))),
        Err(CopyError::Write(err)) => return Err(Error::io(FN, output_path, &err).with("path", output_path)),
    };
    io::Write::flush(&mut w).map_err(|e| Error::io(FN, output_path, &e))?;
    drop(w);
    out.commit().map_err(|e| Error::io(FN, output_path, &e))?;
    Ok(n)
}

/// Whether the first 512 bytes are a tar header (checksum right) or the all-zero end of an empty archive.
fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if block.iter().all(|b| *b == 0) {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 }).sum();
    stored == Some(sum)
}

/// Simple's `rt_targz_create(tar_path, output_path, level)`: compresses the existing tar archive `tar_path`
/// to the gzip file `output_path` (a `.tar.gz`) at `level` 0..=9 (nil: 6), in constant memory, written under a
/// temporary name and renamed into place. The input must be an uncompressed tar archive (its first header is
/// checked): anything else is Error InvalidArgument. Needs fs.read on `tar_path`, fs.write on `output_path`.
/// Returns {read, written, uncompressed} (Simple: 1). To build a .tar.gz from files in one call:
/// rt_tar_create(output, sources) with an output named `.tar.gz`.
///
/// # Errors
/// - InvalidArgument: tar_path is already compressed (gzip or xz), not a plain tar archive; tar_path is not a tar archive (no valid tar header at its start); path names '/', '.' or '..', not an entry: name the directory itself; path is empty
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: empty input is not <format> data
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: level must be 0..=9
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_targz_create(tar_path: &str, output_path: &str, level: Option<i64>) -> RtResult<Value> {
    let lvl = level.unwrap_or(6);
    if !(0..=9).contains(&lvl) {
        return Err(Error::new(Code::OutOfRange, FN, "level must be 0..=9", lvl));
    }
    {
        let f = crate::open_input(FN, tar_path, "tar_path is a directory")?;
        let mut block = vec![0u8; 512];
        let mut got = 0;
        while got < 512 {
            match f.read_at(&mut block[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(FN, tar_path, &e)),
            }
        }
        block.truncate(got);
        if Compression::sniff(&block) != Compression::None {
            return Err(Error::invalid(FN, "tar_path is already compressed (gzip or xz), not a plain tar archive", quote(tar_path)));
        }
        if !looks_like_tar(&block) {
            return Err(Error::invalid(FN, "tar_path is not a tar archive (no valid tar header at its start)", quote(tar_path)));
        }
    }
    let gz = flate2::Compression::new(lvl as u32);
    crate::file_to_file(FN, tar_path, output_path, "gzip", u64::MAX, false, &|r| Ok(r), &|f| {
        Box::new(flate2::write::GzEncoder::new(io::BufWriter::with_capacity(crate::BUF, f), gz))
    })
}

/// Simple's `rt_targz_extract(input_path, output_dir)`: rt_tar_extract of a gzip-compressed tar archive (gzip
/// required: other input is Error Parse), with the same safety rules, options and result {entries, bytes}.
///
/// # Options
/// - compression (text): "auto", "none", "gzip" or "xz"
/// - memlimit (int): the xz decoder's memory limit, in bytes
/// - max_size (int >= 0): the most bytes written (Error LimitExceeded past it)
/// - max_entries (int >= 0): the most entries (Error LimitExceeded past it)
/// - overwrite (bool, default true): replace existing files
/// - preserve_mtime (bool, default true): preserve mtime
///
/// # Errors
/// - InvalidArgument: rt_targz_extract reads gzip only: no compression option; entry has an empty name; option compression must be auto, none, gzip or xz; path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: input_path (or a directory on it) does not exist
/// - AlreadyExists: target exists and is not a directory
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: … device/FIFO entries are refused; entry type … is not supported
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_targz_extract(input_path: &str, output_dir: &str, opts: Opts) -> RtResult<Value> {
    if !opts.get("compression").is_nil() {
        return Err(Error::invalid(FN, "rt_targz_extract reads gzip only: no compression option", "compression"));
    }
    crate::tar::extract(FN, Value::text(input_path), output_dir, &opts, Some(Compression::Gzip))
}
