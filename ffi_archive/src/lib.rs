//! ffi_archive: tar (create / list / safe extract), gzip and xz, in memory
//! and file to file in constant memory.
//!
//! - gzip: `flate2` with the zlib-rs backend; multi-member input.
//! - xz: `liblzma` (maintained fork of xz2) over the system or bundled liblzma;
//!   multi-stream input, every check type.
//! - tar: the `tar` crate for the format; extraction is this crate's own
//!   (safety.rs): every entry's parent is walked with lstat inside the target,
//!   nothing is written through links, limits against bombs.
//!
//! Errors: corrupt or truncated input and trailing garbage are Error Parse
//! (details.position = compressed bytes read when it was found); output
//! limits are LimitExceeded; file trouble is Error::io with the path.

pub mod gzip;
pub mod safety;
pub mod tar;
pub mod xz;

use ffi_sdk::prelude::*;
use std::fs::File;
use std::io::{self, Read, Write};
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

/// An output file written under a temporary name beside `dst` and renamed
/// over it on [`AtomicFile::commit`]; dropped uncommitted, the temporary is removed.
pub(crate) struct AtomicFile {
    pub file: Option<File>,
    tmp: PathBuf,
    dst: PathBuf,
    done: bool,
}

impl AtomicFile {
    pub fn create(dst: &Path) -> io::Result<AtomicFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dst.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{}.tmp", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let tmp = dir.join(tmp_name);
        let file = File::options().write(true).create_new(true).open(&tmp)?;
        Ok(AtomicFile { file: Some(file), tmp, dst: dst.to_path_buf(), done: false })
    }
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
    pub fn commit(mut self) -> io::Result<()> {
        drop(self.file.take());
        std::fs::rename(&self.tmp, &self.dst)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.done {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Validates `path` and checks `cap` on it (canonical).
pub(crate) fn checked_path<'a>(func: &'static str, cap_name: &'static str, path: &'a str) -> RtResult<&'a Path> {
    let p = paths::validate(func, path)?;
    cap::check_path(func, cap_name, p)?;
    Ok(p)
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
    let sp = checked_path(func, "fs.read", src)?;
    let dp = checked_path(func, "fs.write", dst)?;
    let f = File::open(sp).map_err(|e| Error::io(func, src, &e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::invalid(func, "source is a directory", src));
    }
    let state = std::rc::Rc::new(std::cell::RefCell::new(SrcState::default()));
    let tracked = Tracked { inner: f, state: state.clone() };
    let mut reader = make(Box::new(tracked))?;
    let out = AtomicFile::create(dp).map_err(|e| Error::io(func, dst, &e))?;
    let file = out.file.as_ref().ok_or_else(|| Error::internal(func, "output file missing"))?;
    let mut w = wrap_out(file.try_clone().map_err(|e| Error::io(func, dst, &e))?);
    let n = match copy_limited(&mut reader, &mut w, max) {
        Ok(n) => n,
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
    out.commit().map_err(|e| Error::io(func, dst, &e))?;
    let read = state.borrow().read;
    let written = std::fs::metadata(dp).map(|m| m.len()).unwrap_or(0);
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
