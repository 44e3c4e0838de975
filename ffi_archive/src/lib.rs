//! ffi_archive: tar (create / list / safe extract), gzip and xz, in memory
//! and file to file in constant memory.
//!
//! - gzip: `flate2` with the zlib-rs backend; multi-member input.
//! - xz: `liblzma` (maintained fork of xz2) over the system or bundled liblzma;
//!   multi-stream input, every check type.
//! - tar: the `tar` crate for the format; extraction is this crate's own
//!   (safety.rs): the target is opened once and every entry is created
//!   relative to that descriptor, its parents walked with O_NOFOLLOW,
//!   nothing is written through links, limits against bombs.
//!
//! Files: every path goes through `ffi_sdk::beneath` (checked on its
//! canonical form; under a scoped capability reached without symlinks and
//! acted on through descriptors). Outputs are written under a temporary
//! name in the destination's directory descriptor and renamed into place.
//!
//! Errors: corrupt or truncated input and trailing garbage are Error Parse
//! (details.position = compressed bytes read when it was found); output
//! limits are LimitExceeded; file trouble is Error::io with the path.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod gzip;
pub mod safety;
pub mod tar;
pub mod xz;
pub mod zip;

use ffi_sdk::beneath::{self, Follow};
use ffi_sdk::prelude::*;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Buffer size for streaming (file to file, archive reading).
pub(crate) const BUF: usize = 256 * 1024;

/// Default `max_output` of the in-memory decompressors: 1 GiB.
pub const DEFAULT_MAX_OUTPUT_MEM: u64 = 1 << 30;
/// Default `max_output` of the file-to-file decompressors: 64 GiB.
pub const DEFAULT_MAX_OUTPUT_FILE: u64 = 64 << 30;

/// Compression of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
}

impl Compression {
    /// From the leading bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
    /// From a file name: `.gz`/`.tgz` gzip, `.xz`/`.txz` xz, else none.
    pub fn from_name(name: &str) -> Compression {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".gz") || n.ends_with(".tgz") {
            Compression::Gzip
        } else if n.ends_with(".xz") || n.ends_with(".txz") {
            Compression::Xz
        } else {
            Compression::None
        }
    }
    /// The `compression` option: "auto" (nil), "none", "gzip", "xz".
    pub fn from_opt(func: &'static str, v: Option<&str>) -> RtResult<Option<Compression>> {
        Ok(match v {
            None | Some("auto") => None,
            Some("none") => Some(Compression::None),
            Some("gzip") | Some("gz") => Some(Compression::Gzip),
            Some("xz") => Some(Compression::Xz),
            Some(other) => {
                return Err(Error::invalid(func, "option compression must be auto, none, gzip or xz", other))
            }
        })
    }
}

/// What happened to the underlying source of a decoder: bytes read and the
/// first I/O error, so a decoder's error can be told apart from the file's.
#[derive(Default)]
pub(crate) struct SrcState {
    pub read: u64,
    pub failed: Option<(io::ErrorKind, Option<i32>, String)>,
}

impl SrcState {
    pub fn io_error(&self) -> Option<io::Error> {
        self.failed.as_ref().map(|(k, n, m)| match n {
            Some(n) => io::Error::from_raw_os_error(*n),
            None => io::Error::new(*k, m.clone()),
        })
    }
}

/// A reader that records its byte count and its first error in a shared [`SrcState`].
pub(crate) struct Tracked<R> {
    pub inner: R,
    pub state: std::rc::Rc<std::cell::RefCell<SrcState>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.state.borrow_mut().read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let mut st = self.state.borrow_mut();
                if st.failed.is_none() && e.kind() != io::ErrorKind::Interrupted {
                    st.failed = Some((e.kind(), e.raw_os_error(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Outcome of a limited copy.
pub(crate) enum CopyError {
    /// Reading (decoding) failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
    /// More than the limit would have been produced.
    Limit,
}

/// Copies `r` to `w`, failing with [`CopyError::Limit`] past `max` bytes.
pub(crate) fn copy_limited(r: &mut dyn Read, w: &mut dyn Write, max: u64) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        // Between chunks: the thread's deadline / cancel token (docs/DEADLINES.md); the caller
        // sees `deadline::status()` set and reports Timeout / Cancelled.
        if ffi_sdk::deadline::status().is_some() {
            return Err(CopyError::Write(io::Error::other("stopped by the deadline or a cancel token")));
        }
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        total += n as u64;
        if total > max {
            return Err(CopyError::Limit);
        }
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// Reads all of `r` into memory, failing with [`CopyError::Limit`] past `max` bytes.
pub(crate) fn read_limited(r: &mut dyn Read, max: u64, hint: usize) -> Result<Vec<u8>, CopyError> {
    let mut out = Vec::new();
    // A hint only: a failed reservation just means growing as we go (never an abort).
    let _ = out.try_reserve_exact(hint.min(usize::try_from(max).unwrap_or(usize::MAX)).min(256 << 20));
    let n = r.take(max.saturating_add(1)).read_to_end(&mut out).map_err(CopyError::Read)?;
    if n as u64 > max {
        return Err(CopyError::Limit);
    }
    Ok(out)
}

/// The LimitExceeded error for `max_output`.
pub(crate) fn output_limit(func: &'static str, max: u64) -> Error {
    Error::new(Code::LimitExceeded, func, "decompressed output exceeds max_output bytes", max).with("limit", max)
}

/// A Parse error for corrupt compressed input.
pub(crate) fn corrupt(func: &'static str, format: &str, e: &io::Error, input: impl std::fmt::Display, pos: u64) -> Error {
    let what = match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("truncated {format} data"),
        _ => format!("corrupt {format} data: {e}"),
    };
    Error::parse(func, what, input).with("position", pos)
}

/// The `max_output` option (bytes, >= 0).
pub(crate) fn max_output(opts: &Opts, default: u64) -> RtResult<u64> {
    Ok(opts.int_in("max_output", 0, i64::MAX)?.map(|v| v as u64).unwrap_or(default))
}

/// Opens `path` for reading under `fs.read` (ffi_sdk::beneath: checked on its
/// canonical form and, when the capability is scoped, reached without any
/// symlink). A directory is InvalidArgument with `dir_msg`.
pub(crate) fn open_input(func: &'static str, path: &str, dir_msg: &str) -> RtResult<File> {
    let t = beneath::resolve(func, "fs.read", path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let st = beneath::fstat(f.as_raw_fd()).map_err(|e| t.err(&e))?;
    if beneath::is(&st, libc::S_IFDIR) {
        return Err(Error::invalid(func, dir_msg, path));
    }
    Ok(f)
}

/// (device, inode) of a stat.
pub(crate) fn file_id(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// The canonical path of what `t` (resolved from `path`) names, for
/// per-entry capability checks below it: None while the policy is
/// allow-all (nothing to check). Under a scoped capability it is the path
/// the policy allowed, which the descriptor walk followed exactly
/// ([`beneath::Target::canonical`]); unscoped (but audited), the canonical
/// form of `path`, for the audit records.
pub(crate) fn canon_of(func: &'static str, path: &str, t: &beneath::Target) -> RtResult<Option<PathBuf>> {
    if cap::allow_all() {
        return Ok(None);
    }
    if let Some(c) = t.canonical() {
        return Ok(Some(c.to_path_buf()));
    }
    paths::resolve(Path::new(path)).map(Some).map_err(|e| Error::io(func, ffi_sdk::error::quote(path), &e).with("path", path))
}

pub(crate) use ffi_sdk::atomic_file::AtomicFile;

/// The output file `dst` for `func`, written beside it and renamed over it on
/// [`AtomicFile::commit`] (ffi_sdk::atomic_file). Resolved for `fs.write`
/// (a final symlink is followed: its target is replaced, the link kept). A
/// path ending in `/` or naming `.`/`..` is InvalidArgument (it names a
/// directory), as is a directory there; under a scoped fs.write an existing
/// file with other hard links is refused (CapabilityDenied) unless fs.hardlink is held.
pub(crate) fn create_output(func: &'static str, dst: &str) -> RtResult<AtomicFile> {
    paths::validate(func, dst)?;
    if dst.ends_with('/') || dst.ends_with("/.") || dst == "." || dst.ends_with("/..") || dst == ".." {
        return Err(Error::invalid(func, "output path names a directory, not a file", ffi_sdk::error::quote(dst)).with("path", dst));
    }
    let t = beneath::resolve(func, "fs.write", dst, Follow::Yes)?;
    AtomicFile::create(func, &t, dst, 0o666)
}

/// File-to-file (de)compression: reads `src` through `make_reader`, writes `dst` atomically.
pub(crate) fn file_to_file(
    func: &'static str,
    src: &str,
    dst: &str,
    format: &str,
    max: u64,
    decode: bool,
    make: &dyn Fn(Box<dyn Read>) -> RtResult<Box<dyn Read>>,
    wrap_out: &dyn Fn(File) -> Box<dyn FinishWrite>,
) -> RtResult<Value> {
    let f = open_input(func, src, "source is a directory")?;
    let state = std::rc::Rc::new(std::cell::RefCell::new(SrcState::default()));
    let tracked = Tracked { inner: f, state: state.clone() };
    let mut reader = make(Box::new(tracked))?;
    let out = create_output(func, dst)?;
    let file = out.file.as_ref().ok_or_else(|| Error::internal(func, "output file missing"))?;
    let mut w = wrap_out(file.try_clone().map_err(|e| Error::io(func, dst, &e))?);
    let n = match copy_limited(&mut reader, &mut w, max) {
        Ok(n) => n,
        // Stopped between chunks: `out` (the temporary file) is removed by its drop.
        Err(_) if ffi_sdk::deadline::status().is_some() => {
            return Err(ffi_sdk::deadline::error(func, ffi_sdk::deadline::status().unwrap_or(Code::Timeout)))
        }
        Err(CopyError::Limit) => return Err(output_limit(func, max)),
        Err(CopyError::Write(e)) => return Err(Error::io(func, dst, &e)),
        Err(CopyError::Read(e)) => {
            let st = state.borrow();
            if let Some(ioe) = st.io_error() {
                return Err(Error::io(func, src, &ioe));
            }
            if !decode {
                return Err(Error::io(func, src, &e));
            }
            if xz::is_memlimit(&e) {
                return Err(xz::memlimit_error(func, src));
            }
            if st.read == 0 {
                return Err(Error::parse(func, format!("empty input is not {format} data"), src).with("position", 0u64));
            }
            return Err(corrupt(func, format, &e, src, st.read));
        }
    };
    w.finish_write().map_err(|e| Error::io(func, dst, &e))?;
    drop(w);
    let written = out.file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    out.commit().map_err(|e| Error::io(func, dst, &e))?;
    let read = state.borrow().read;
    let d = Value::dict();
    d.set("read", Value::int(read as i64));
    d.set("written", Value::int(written as i64));
    d.set("uncompressed", Value::int(if decode { n } else { read } as i64));
    Ok(d)
}

/// A writer that has a final step (compressors write their trailer).
pub(crate) trait FinishWrite: Write {
    fn finish_write(&mut self) -> io::Result<()>;
}

/// A plain buffered file.
pub(crate) struct PlainOut(pub io::BufWriter<File>);
impl Write for PlainOut {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl FinishWrite for PlainOut {
    fn finish_write(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
