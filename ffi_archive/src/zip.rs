//! zip archives (the `zip` crate, deflate through flate2 on zlib-rs) behind
//! handles, in the shape Simple's `io/compress_ffi.spl` declares:
//! `rt_zip_create` → add → `rt_zip_close` to write, `rt_zip_open` → list /
//! extract → `rt_zip_close` to read. Extraction goes through the same
//! `safety::Extractor` as tar (every entry created beneath the target's
//! descriptor, parents walked without following symlinks, `..` and absolute
//! names refused, symlinks kept inside, limits on size and entries); raw
//! deflate (RFC 1951) in memory.

use crate::safety::{member_components, Content, ExError, Extractor};
use crate::{corrupt, max_output, output_limit, read_limited, CopyError};
use ffi_sdk::abi::RtValue;
use ffi_sdk::beneath::{self, Follow, WriteMode};
use ffi_sdk::prelude::*;
use ffi_sdk::FromArg;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use zip::write::SimpleFileOptions;

/// A zip archive being written (handle type `ZipWriter`).
pub struct ZipWriter {
    w: Mutex<Option<zip::ZipWriter<File>>>,
    path: String,
    level: Option<i64>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for ZipWriter {
    const NAME: &'static str = "ZipWriter";
}

/// A zip archive opened for reading (handle type `ZipReader`).
pub struct ZipReader {
    r: Mutex<zip::ZipArchive<File>>,
    path: String,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for ZipReader {
    const NAME: &'static str = "ZipReader";
}

fn zip_err(func: &'static str, path: &str, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => Error::io(func, path, &io).with("path", path),
        zip::result::ZipError::FileNotFound => Error::not_found(func, "no such entry in the archive", path),
        other => Error::parse(func, format!("not a valid zip archive: {other}"), path).with("path", path),
    }
}

/// An entry name for the archive: relative, no `..`, no NUL, not empty.
fn entry_name(func: &'static str, name: &str) -> RtResult<String> {
    let comps = member_components(name.as_bytes()).map_err(|why| Error::invalid(func, why, ffi_sdk::error::quote(name)))?;
    if comps.is_empty() {
        return Err(Error::invalid(func, "entry name is empty", ffi_sdk::error::quote(name)));
    }
    Ok(comps.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("/"))
}

/// Creates (or replaces) a zip archive at `path` and returns a ZipWriter handle; add entries with rt_zip_add_data
/// / rt_zip_add_file and write the central directory with rt_zip_close (a writer closed otherwise leaves an
/// incomplete archive). Needs fs.write on `path`. Simple declares `-> i64`: ours is the handle.
///
/// # Options
/// - level (int 0..=9, default 6): deflate, 0 stores
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "handle<ZipWriter>")]
pub fn rt_zip_create(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["level"])?;
    let level = opts.int_in("level", 0, 9)?;
    let t = beneath::resolve(FN, "fs.write", path, Follow::Yes)?;
    let f = t.open_write(WriteMode { read: true, ..WriteMode::REPLACE })?;
    Ok(new_handle(ZipWriter { w: Mutex::new(Some(zip::ZipWriter::new(f))), path: path.to_string(), level }))
}

impl ZipWriter {
    fn options(&self) -> SimpleFileOptions {
        let o = SimpleFileOptions::default().unix_permissions(0o644);
        match self.level {
            Some(0) => o.compression_method(zip::CompressionMethod::Stored),
            Some(l) => o.compression_method(zip::CompressionMethod::Deflated).compression_level(Some(l)),
            None => o.compression_method(zip::CompressionMethod::Deflated).compression_level(Some(6)),
        }
    }

    fn add(&self, func: &'static str, name: &str, data: &mut dyn Read, mode: u32) -> RtResult<()> {
        let name = entry_name(func, name)?;
        let mut g = self.w.lock().unwrap_or_else(|e| e.into_inner());
        let w = g.as_mut().ok_or_else(|| Error::new(Code::Closed, func, "the archive was closed", &self.path))?;
        w.start_file(name.as_str(), self.options().unix_permissions(mode)).map_err(|e| zip_err(func, &self.path, e))?;
        io::copy(data, w).map_err(|e| Error::io(func, &name, &e).with("path", self.path.as_str()))?;
        Ok(())
    }
}

/// Adds an entry `archive_path` holding `data` (bytes or text) to a ZipWriter, mode 0644.
///
/// # Errors
/// - InvalidArgument: for an absolute name, `..` or an empty name; Closed after rt_zip_close
/// - Closed: `zip` was closed
#[rt_fn(tier = "verified", blocking)]
pub fn rt_zip_add_data(zip: Handle<ZipWriter>, archive_path: &str, data: &[u8]) -> RtResult<()> {
    zip.add(FN, archive_path, &mut &data[..], 0o644)
}

/// Adds the regular file `file_path` (its content and permission bits) as
/// entry `archive_path`, streamed. Needs fs.read on `file_path`.
///
/// # Errors
/// - InvalidArgument: is not a regular file; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Closed: `zip` was closed
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_zip_add_file(zip: Handle<ZipWriter>, archive_path: &str, file_path: &str) -> RtResult<()> {
    let t = beneath::resolve(FN, "fs.read", file_path, Follow::Yes)?;
    let mut f = t.open_read().map_err(|e| t.err(&e))?;
    let m = f.metadata().map_err(|e| t.err(&e))?;
    if !m.is_file() {
        return Err(Error::invalid(FN, "is not a regular file", file_path).with("path", file_path));
    }
    use std::os::unix::fs::PermissionsExt;
    zip.add(FN, archive_path, &mut f, m.permissions().mode() & 0o777)
}

/// Opens a zip archive for reading and returns a ZipReader handle. Needs fs.read.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: no such entry in the archive
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: it is not a zip archive
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<ZipReader>")]
pub fn rt_zip_open(path: &str) -> RtResult<Value> {
    let t = beneath::resolve(FN, "fs.read", path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let ar = zip::ZipArchive::new(f).map_err(|e| zip_err(FN, path, e))?;
    Ok(new_handle(ZipReader { r: Mutex::new(ar), path: path.to_string() }))
}

/// Finishes and closes a ZipWriter (writes the central directory), or closes a ZipReader.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: no such entry in the archive
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: not a valid zip archive
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: it was closed already
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified", blocking)]
pub fn rt_zip_close(zip: Value) -> RtResult<()> {
    let raw: RtValue = zip.raw();
    let writer = <Handle<ZipWriter> as FromArg>::from_arg(raw, FN, 0, "zip");
    if let Err(e) = &writer {
        if e.code == Code::Closed {
            return Err(e.clone());
        }
    }
    if let Ok(w) = writer {
        let taken = w.w.lock().unwrap_or_else(|e| e.into_inner()).take();
        w.close();
        return match taken {
            Some(zw) => zw.finish().map(|_| ()).map_err(|e| zip_err(FN, &w.path, e)),
            None => Err(Error::new(Code::Closed, FN, "the archive was closed", &w.path)),
        };
    }
    let r = <Handle<ZipReader> as FromArg>::from_arg(raw, FN, 0, "zip")?;
    r.close();
    Ok(())
}

static NAME: Key = Key::new("name");
static SIZE: Key = Key::new("size");
static CSIZE: Key = Key::new("compressed_size");
static KIND: Key = Key::new("kind");

/// The entries of a ZipReader, in archive order: `{name, size,
/// compressed_size, kind}` with kind "file", "dir" or "symlink" (Simple
/// declares `-> text`: ours is an array of dicts, like rt_tar_list).
///
/// # Errors
/// - NotFound: no such entry in the archive
/// - Io: an operating-system failure (details.errno)
/// - Parse: not a valid zip archive
/// - Closed: `zip` was closed
#[rt_fn(tier = "verified", ret = "array<dict>")]
pub fn rt_zip_list(zip: Handle<ZipReader>) -> RtResult<Value> {
    let mut ar = zip.r.lock().unwrap_or_else(|e| e.into_inner());
    let out = Value::array(ar.len());
    for i in 0..ar.len() {
        let e = ar.by_index_raw(i).map_err(|e| zip_err(FN, &zip.path, e))?;
        let d = Value::record(&[
            (&NAME, Value::text(&String::from_utf8_lossy(e.name_raw()))),
            (&SIZE, Value::int(e.size() as i64)),
            (&CSIZE, Value::int(e.compressed_size() as i64)),
            (&KIND, Value::text(kind(&e))),
        ]);
        if d.is_error() {
            return Err(Error::from_value(d));
        }
        out.push(d);
    }
    Ok(out)
}

fn kind<R: Read>(e: &zip::read::ZipFile<'_, R>) -> &'static str {
    if e.is_dir() {
        "dir"
    } else if e.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
        "symlink"
    } else {
        "file"
    }
}

/// Extracts every entry of a ZipReader into `output_dir` (created if missing) with tar's safety rules (see
/// rt_tar_extract): absolute names, `..`, symlinks leading outside, and writes through links are refused with an
/// Error naming the entry. Needs fs.write on the target and every entry's real destination. Returns `{entries,
/// bytes}`. Simple declares `-> i64`: ours is the dict.
///
/// # Options
/// - max_size (int >= 0, default 16 GiB): bytes
/// - max_entries (int >= 0, default 1000000): the most entries (Error LimitExceeded past it)
/// - overwrite (bool, default true): replace existing files
///
/// # Errors
/// - InvalidArgument: entry has an empty name; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: no such entry in the archive
/// - AlreadyExists: target exists and is not a directory
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: not a valid zip archive
/// - Closed: `zip` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_zip_extract(zip: Handle<ZipReader>, output_dir: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_size", "max_entries", "overwrite"])?;
    let target = beneath::resolve(FN, "fs.write", output_dir, Follow::Yes)?;
    let mut x = Extractor::open(FN, output_dir, target)?;
    if let Some(m) = opts.int_in("max_size", 0, i64::MAX)? {
        x.max_size = m as u64;
    }
    if let Some(m) = opts.int_in("max_entries", 0, i64::MAX)? {
        x.max_entries = m as u64;
    }
    x.overwrite = opts.bool("overwrite")?.unwrap_or(true);
    x.keep_mtime = false;
    let mut ar = zip.r.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..ar.len() {
        ffi_sdk::deadline::check(FN)?; // between entries (docs/DEADLINES.md)
        let mut e = ar.by_index(i).map_err(|e| zip_err(FN, &zip.path, e))?;
        let raw = e.name_raw().to_vec();
        let name = String::from_utf8_lossy(&raw).into_owned();
        x.count_entry(&name)?;
        let comps = member_components(&raw).map_err(|why| x.refuse(Code::InvalidArgument, why, &name))?;
        let k = kind(&e);
        if comps.is_empty() && k != "dir" {
            return Err(x.refuse(Code::InvalidArgument, "entry has an empty name", &name));
        }
        let mode = e.unix_mode().unwrap_or(if k == "dir" { 0o755 } else { 0o644 });
        let size = e.size();
        let r = match k {
            "dir" => x.directory(&name, &comps, mode & 0o7777, None).map_err(ExError::Rt),
            "symlink" => {
                let mut target = Vec::new();
                (&mut e).take(4096).read_to_end(&mut target).map_err(|err| corrupt(FN, "zip", &err, &name, 0))?;
                x.symlink(&name, &comps, &target).map_err(ExError::Rt)
            }
            _ => {
                // The declared size bounds what is written (a lying header cannot pass max_size).
                let mut data = (&mut e).take(size);
                x.file(&name, &comps, &mut data, size, Content::Plain, mode & 0o7777, None)
            }
        };
        match r {
            Ok(()) => {}
            Err(ExError::Rt(err)) => return Err(err),
            Err(ExError::Read(err)) => return Err(corrupt(FN, "zip", &err, &name, 0).with("entry", name.as_str())),
        }
    }
    x.finish()?;
    let d = Value::dict();
    d.set("entries", Value::int(x.entries as i64));
    d.set("bytes", Value::int(x.bytes as i64));
    Ok(d)
}

/// Extracts the one entry `archive_path` of a ZipReader to the file `output_path` (created or replaced; a new
/// file is removed again on failure) and returns the number of bytes written. Needs fs.write.
///
/// # Options
/// - max_size (int >= 0, default 16 GiB): LimitExceeded
///
/// # Errors
/// - InvalidArgument: it is a directory; an unknown option, or an option of the wrong kind or range
/// - NotFound: the archive has no such entry
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: not a valid zip archive
/// - Closed: `zip` was closed
/// - LimitExceeded: decompressed output exceeds max_output bytes
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_zip_extract_file(zip: Handle<ZipReader>, archive_path: &str, output_path: &str, opts: Opts) -> RtResult<u64> {
    opts.only(&["max_size"])?;
    let max = opts.int_in("max_size", 0, i64::MAX)?.map_or(crate::safety::DEFAULT_MAX_SIZE, |m| m as u64);
    let mut ar = zip.r.lock().unwrap_or_else(|e| e.into_inner());
    let mut e = ar.by_name(archive_path).map_err(|e| zip_err(FN, archive_path, e))?;
    if e.is_dir() {
        return Err(Error::invalid(FN, "entry is a directory", ffi_sdk::error::quote(archive_path)));
    }
    if e.size() > max {
        return Err(output_limit(FN, max));
    }
    let t = beneath::resolve(FN, "fs.write", output_path, Follow::Yes)?;
    let existed = t.lstat().is_ok();
    let mut f = t.open_write(WriteMode::REPLACE)?;
    let r = crate::copy_limited(&mut e, &mut f, max);
    match r {
        Ok(n) => Ok(n),
        Err(err) => {
            drop(f);
            if !existed {
                let _ = t.unlink();
            }
            Err(match err {
                CopyError::Limit => output_limit(FN, max),
                CopyError::Read(io) => corrupt(FN, "zip", &io, archive_path, 0),
                CopyError::Write(io) => Error::io(FN, output_path, &io).with("path", output_path),
            })
        }
    }
}

/// Compresses bytes or text to a raw deflate stream (RFC 1951: no zlib or gzip header) at `level` 0..=9 (nil: 6).
///
/// # Errors
/// - OutOfRange: for another level
#[rt_fn(tier = "verified")]
pub fn rt_deflate_compress(data: &[u8], level: Option<i64>) -> RtResult<Vec<u8>> {
    let l = level.unwrap_or(6);
    if !(0..=9).contains(&l) {
        return Err(Error::new(Code::OutOfRange, FN, "level must be 0..=9", l));
    }
    let mut enc = flate2::write::DeflateEncoder::new(Vec::with_capacity(data.len() / 3 + 64), flate2::Compression::new(l as u32));
    enc.write_all(data).map_err(|e| Error::internal(FN, e))?;
    enc.finish().map_err(|e| Error::internal(FN, e))
}

/// Decompresses a raw deflate stream (RFC 1951). Corrupt or truncated input is Error Parse.
///
/// # Options
/// - max_output (int >= 0, default 1 GiB): bytes : more is LimitExceeded
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Parse: empty or truncated deflate stream
/// - LimitExceeded: decompressed output exceeds max_output bytes
#[rt_fn(tier = "verified")]
pub fn rt_deflate_decompress(data: &[u8], opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["max_output"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_MEM)?;
    let mut dec = flate2::bufread::DeflateDecoder::new(data);
    match read_limited(&mut dec, max, data.len().saturating_mul(3)) {
        Ok(v) => {
            if dec.total_in() == 0 && !data.is_empty() || data.is_empty() {
                return Err(Error::parse(FN, "empty or truncated deflate stream", format!("{} bytes", data.len())));
            }
            Ok(v)
        }
        Err(CopyError::Limit) => Err(output_limit(FN, max)),
        Err(CopyError::Read(e)) | Err(CopyError::Write(e)) => {
            let pos = dec.total_in();
            Err(corrupt(FN, "deflate", &e, format!("{} bytes", data.len()), pos))
        }
    }
}
