//! gzip (RFC 1952): bytes in memory, and file to file in constant memory.
//! Decompression (flate2 on zlib-rs) reads every member of a multi-member
//! stream (as `gzip -d` and `cat a.gz b.gz` expect).
//!
//! Compression backend (decided in issue 17, figures in docs/bench/archive.md):
//! **libdeflate** (`libdeflater`), whose level 6 is within 0.3% of GNU `gzip -6`'s
//! size at 2.5-3x its speed; zlib-rs level 6 (zlib-ng's "medium" strategy) was 0.9-1.8%
//! larger, and its level 7 matched the size at only 1.4-1.6x. libdeflate compresses
//! whole buffers only, so:
//! - `rt_gzip_compress` makes one member of the whole input, as before;
//! - `rt_gzip_compress_file` reads [`MEMBER`] bytes at a time and writes each as
//!   one gzip member: a standard multi-member gzip file (RFC 1952 §2.2; `gzip -d`,
//!   zlib, Python and this library read all members), constant memory (about twice
//!   MEMBER), a size within 0.05% of one member (the 32 KiB window restarts every
//!   MEMBER bytes). An empty input is one empty member.
//!
//! In-memory decompression decodes straight into the returned bytes value
//! ([`decode_to_value`]), sized from the stream's own account of its output
//! (gzip's ISIZE trailer, xz's index) when that is plausible: the peak is the
//! output itself, not the output plus a copy of it.

use crate::{corrupt, max_output, output_limit, CopyError, FinishWrite};
use ffi_sdk::prelude::*;

use std::io::{self, BufReader, Read, Write};

/// Deflate never expands more than 1032:1 (a 258-byte match per 2 bits at best).
const DEFLATE_MAX_RATIO: usize = 1032;

/// Why [`decode_to_value`] failed.
pub(crate) enum DecodeError {
    /// The decoder's error, or `max_output` passed.
    Copy(CopyError),
    /// The value could not be allocated.
    Alloc(Error),
}

/// Decodes all of `r` into a new bytes value, failing with [`CopyError::Limit`] past `max`.
///
/// `hint` is the expected size (already bounded by the caller to what the input
/// can plausibly produce). The value is allocated at `min(hint, max)` bytes and the
/// decoder writes straight into it: when the hint is right (a single-member gzip,
/// an xz file with its index) the peak is the output alone. Shorter output shortens
/// the value (or is copied into one of its size when far shorter). Output past the hint (a multi-member gzip: ISIZE covers the last member
/// only), or all of it without a hint, goes into anonymous mappings of [`CHUNK`]
/// bytes that are copied into one value of the exact size and unmapped one by one
/// as they are copied: the peak is then the output plus the first value (the last
/// member) plus one chunk.
pub(crate) fn decode_to_value(r: &mut dyn Read, max: u64, hint: usize) -> Result<Value, DecodeError> {
    let cap = hint.min(usize::try_from(max).unwrap_or(usize::MAX));
    let mut head: Option<(Value, &mut [u8])> = None;
    let mut got = 0;
    if cap > 0 {
        let (v, buf) = Value::bytes_uninit(cap).map_err(DecodeError::Alloc)?;
        while got < cap {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::Copy(CopyError::Read(e))),
            }
        }
        if got < cap {
            // Far shorter than announced (a false trailer or index): do not keep the
            // unused capacity alive with the value; the copy is of what was decoded.
            if cap - got > (64 << 10).max(cap / 8) {
                return Ok(Value::bytes(&buf[..got]));
            }
            v.truncate_blob(got);
            return Ok(v);
        }
        head = Some((v, buf));
    }
    let mut rest = Chunks::default();
    rest.read_from(r, max - got as u64).map_err(DecodeError::Copy)?;
    if rest.total == 0 {
        return Ok(match head {
            Some((v, _)) => v,
            None => Value::bytes(&[]),
        });
    }
    let (w, out) = Value::bytes_uninit(got + rest.total).map_err(DecodeError::Alloc)?;
    if let Some((_, buf)) = head {
        out[..got].copy_from_slice(&buf[..got]);
    }
    rest.drain_into(&mut out[got..]);
    Ok(w)
}

/// Bytes per anonymous mapping of [`Chunks`].
pub(crate) const CHUNK: usize = 4 << 20;

/// Output of unknown size, in anonymous mappings returned to the system as soon as
/// they are copied out (heap allocators may keep freed memory resident).
#[derive(Default)]
struct Chunks {
    maps: Vec<*mut u8>,
    total: usize,
}

impl Chunks {
    fn read_from(&mut self, r: &mut dyn Read, room: u64) -> Result<(), CopyError> {
        let mut used = CHUNK;
        loop {
            if used == CHUNK {
                // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
                let p = unsafe {
                    libc::mmap(std::ptr::null_mut(), CHUNK, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
                };
                if p == libc::MAP_FAILED {
                    return Err(CopyError::Read(io::Error::last_os_error()));
                }
                self.maps.push(p as *mut u8);
                used = 0;
            }
            let last = *self.maps.last().expect("a mapping was just pushed");
            // SAFETY: `last` maps CHUNK writable bytes owned by self; `used < CHUNK`.
            let buf = unsafe { std::slice::from_raw_parts_mut(last.add(used), CHUNK - used) };
            match r.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    used += n;
                    self.total += n;
                    if self.total as u64 > room {
                        return Err(CopyError::Limit);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CopyError::Read(e)),
            }
        }
    }

    /// Copies everything into `out` (exactly `total` bytes), unmapping each chunk once copied.
    fn drain_into(mut self, out: &mut [u8]) {
        let mut at = 0;
        for p in std::mem::take(&mut self.maps) {
            let n = (self.total - at).min(CHUNK);
            // SAFETY: `p` maps CHUNK bytes of which the first `n` were written by read_from;
            // it is unmapped right after and never used again.
            unsafe {
                out[at..at + n].copy_from_slice(std::slice::from_raw_parts(p, n));
                libc::munmap(p as *mut libc::c_void, CHUNK);
            }
            at += n;
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        for &p in &self.maps {
            // SAFETY: each pointer is a live CHUNK-byte mapping owned by self.
            unsafe { libc::munmap(p as *mut libc::c_void, CHUNK) };
        }
    }
}

/// The output size a gzip stream announces (its last member's ISIZE), when plausible
/// for `data.len()` bytes of deflate data; 0 when not.
pub(crate) fn isize_hint(data: &[u8]) -> usize {
    let Some(i) = data.len().checked_sub(4) else { return 0 };
    let n = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
    if n > data.len().saturating_mul(DEFLATE_MAX_RATIO) {
        0
    } else {
        n
    }
}

fn level(opts: &Opts) -> RtResult<libdeflater::CompressionLvl> {
    let l = opts.int_in("level", 0, 9)?.unwrap_or(6) as i32;
    // 0..=9 were checked above; libdeflate takes 0..=12.
    libdeflater::CompressionLvl::new(l).map_err(|_| Error::internal("gzip", format!("libdeflate refused level {l}")))
}

impl<W: Write> FinishWrite for flate2::write::GzEncoder<W> {
    fn finish_write(&mut self) -> io::Result<()> {
        self.try_finish()?;
        self.get_mut().flush()
    }
}

/// Input bytes per gzip member written by the file compressor.
pub const MEMBER: usize = 8 << 20;

/// One gzip member of `data` (libdeflate), appended to `out`.
fn member(c: &mut libdeflater::Compressor, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let at = out.len();
    out.resize(at + c.gzip_compress_bound(data.len()), 0);
    match c.gzip_compress(data, &mut out[at..]) {
        Ok(n) => {
            out.truncate(at + n);
            Ok(())
        }
        Err(e) => Err(io::Error::other(format!("libdeflate: {e:?}"))),
    }
}

/// A gzip writer for streams: [`MEMBER`] bytes of input per member (see the module docs).
pub struct MemberWriter<W: Write> {
    inner: W,
    c: libdeflater::Compressor,
    buf: Vec<u8>,
    out: Vec<u8>,
    members: u64,
}

impl<W: Write> MemberWriter<W> {
    pub fn new(inner: W, level: libdeflater::CompressionLvl) -> Self {
        MemberWriter { inner, c: libdeflater::Compressor::new(level), buf: Vec::new(), out: Vec::new(), members: 0 }
    }
    fn emit(&mut self) -> io::Result<()> {
        self.out.clear();
        member(&mut self.c, &self.buf, &mut self.out)?;
        self.inner.write_all(&self.out)?;
        self.buf.clear();
        self.members += 1;
        Ok(())
    }
}

impl<W: Write> Write for MemberWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(MEMBER);
        }
        let n = data.len().min(MEMBER - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == MEMBER {
            self.emit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> MemberWriter<W> {
    /// The writer underneath (after [`finish`]).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Writes the last member of `w` and flushes (what the file compressor does at the end).
pub fn finish<W: Write>(w: &mut MemberWriter<W>) -> io::Result<()> {
    w.finish_write()
}

impl<W: Write> FinishWrite for MemberWriter<W> {
    fn finish_write(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() || self.members == 0 {
            self.emit()?;
        }
        self.inner.flush()
    }
}

/// A decoder over every member of a gzip stream.
pub fn decoder<'a, R: io::BufRead + 'a>(r: R) -> flate2::bufread::MultiGzDecoder<R> {
    flate2::bufread::MultiGzDecoder::new(r)
}

/// Compresses bytes or text to gzip.
///
/// The header carries no name and mtime 0, so equal input gives equal output.
///
/// # Options
/// - level (int 0..=9, default 6): the compression level (0: stored, 9: smallest)
///
/// # Errors
/// - InvalidArgument: an unknown option, or level outside 0..=9
///
/// # Example
/// rt_gzip_compress("hello hello hello hello") -> b"\x1f\x8b\x08..."
#[rt_fn(tier = "verified")]
pub fn rt_gzip_compress(data: &[u8], opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["level"])?;
    let mut c = libdeflater::Compressor::new(level(&opts)?);
    let mut out = Vec::new();
    member(&mut c, data, &mut out).map_err(|e| Error::internal(FN, e))?;
    Ok(out)
}

/// Decompresses gzip data (all members).
///
/// # Options
/// - max_output (int >= 0, default 1 GiB): the most bytes of output
///
/// # Errors
/// - Parse: empty, corrupt or truncated input, a bad CRC or length, or trailing garbage
/// - LimitExceeded: the output would pass max_output
/// - InvalidArgument: an unknown option, or max_output negative
///
/// # Example
/// rt_gzip_decompress(rt_gzip_compress("hello")) -> b"hello"
#[rt_fn(tier = "verified", ret = "bytes")]
pub fn rt_gzip_decompress(data: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["max_output"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_MEM)?;
    if data.is_empty() {
        return Err(Error::parse(FN, "empty input is not gzip data", "0 bytes").with("position", 0u64));
    }
    // The trailer's ISIZE is the (last member's) size mod 2^32: for the usual
    // single-member stream under 4 GiB, the exact size of the output.
    let mut dec = decoder(data);
    match decode_to_value(&mut dec, max, isize_hint(data)) {
        Ok(v) => Ok(v),
        Err(DecodeError::Alloc(e)) => Err(e),
        Err(DecodeError::Copy(CopyError::Limit)) => Err(output_limit(FN, max)),
        Err(DecodeError::Copy(CopyError::Read(e))) | Err(DecodeError::Copy(CopyError::Write(e))) => {
            let pos = (data.len() - dec.get_ref().len()) as u64;
            Err(corrupt(FN, "gzip", &e, format!("{} bytes", data.len()), pos))
        }
    }
}

/// Compresses file `src` to gzip file `dst` in constant memory (fs.read src, fs.write dst). `dst` is written
/// under a temporary name in its directory and renamed into place, so a failure leaves no partial output; a
/// symlink `dst` is followed (its target replaced, the link kept); a `dst` ending in `/` is InvalidArgument;
/// under a scoped fs.write a `dst` with other hard links is CapabilityDenied unless fs.hardlink is held. Returns
/// {read, written, uncompressed}.
///
/// # Options
/// - level (int 0..=9, default 6): the compression level
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; output path names a directory, not a file; the destination is a directory, not a file; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: empty input is not <format> data
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_gzip_compress_file(src: &str, dst: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["level"])?;
    let lvl = level(&opts)?;
    crate::file_to_file(
        FN,
        src,
        dst,
        "gzip",
        u64::MAX,
        false,
        &|r| Ok(r),
        &|f| Box::new(MemberWriter::new(f, lvl)),
    )
}

/// Decompresses gzip file `src` (all members) to `dst` in constant memory (fs.read src, fs.write dst).
///
/// Option `max_output` (bytes, default 64 GiB): more is LimitExceeded and no output is left.
/// Corrupt input is Error Parse. `dst` is written as by rt_gzip_compress_file.
/// Returns {read, written, uncompressed}.
///
/// # Options
/// - max_output (int >= 0, default 64 GiB): the most bytes of output; more is LimitExceeded and no output is left
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; output path names a directory, not a file; the destination is a directory, not a file; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: empty input is not <format> data
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_gzip_decompress_file(src: &str, dst: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_output"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_FILE)?;
    crate::file_to_file(
        FN,
        src,
        dst,
        "gzip",
        max,
        true,
        &|r| Ok(Box::new(decoder(BufReader::with_capacity(crate::BUF, r))) as Box<dyn Read>),
        &|f| Box::new(crate::PlainOut(io::BufWriter::with_capacity(crate::BUF, f))),
    )
}


#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decoder(z).read_to_end(&mut out).unwrap();
        out
    }

    fn decode(data: &[u8], max: u64, hint: usize) -> Result<Vec<u8>, &'static str> {
        match decode_to_value(&mut &data[..], max, hint) {
            Ok(v) => Ok(v.as_bytes().unwrap().to_vec()),
            Err(DecodeError::Copy(CopyError::Limit)) => Err("limit"),
            Err(_) => Err("other"),
        }
    }

    #[test]
    fn decode_to_value_with_any_hint() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 777)).map(|i| (i % 253) as u8).collect();
        let n = data.len();
        for hint in [0, 1, 1000, CHUNK, n - 1, n, n + 1, n * 2] {
            assert_eq!(decode(&data, u64::MAX, hint).unwrap(), data, "hint {hint}");
            assert_eq!(decode(&data, n as u64, hint).unwrap(), data, "hint {hint}, max = n");
            assert_eq!(decode(&data, n as u64 - 1, hint), Err("limit"), "hint {hint}, max = n - 1");
        }
        assert_eq!(decode(&[], 10, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(decode(&[], 10, 5).unwrap(), Vec::<u8>::new());
        assert_eq!(decode(b"abc", 0, 0), Err("limit"));
    }

    #[test]
    fn isize_hint_is_plausible_or_zero() {
        let data = vec![b'a'; 100_000];
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(6).unwrap());
        let mut z = Vec::new();
        member(&mut c, &data, &mut z).unwrap();
        assert_eq!(isize_hint(&z), data.len());
        assert_eq!(isize_hint(&z[..3]), 0);
        // 20 bytes claiming 4 GiB - 1: deflate cannot expand that much.
        let mut lie = vec![0u8; 16];
        lie.extend(u32::MAX.to_le_bytes());
        assert_eq!(isize_hint(&lie), 0);
    }

    #[test]
    fn member_writer_makes_standard_multi_member_gzip() {
        let data: Vec<u8> = (0..(MEMBER * 2 + 12_345)).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        let mut w = MemberWriter::new(Vec::new(), libdeflater::CompressionLvl::new(6).unwrap());
        for chunk in data.chunks(100_003) {
            w.write_all(chunk).unwrap();
        }
        w.finish_write().unwrap();
        assert_eq!(w.members, 3);
        assert_eq!(gunzip(&w.inner), data);
        // GNU gzip reads every member too.
        let f = std::env::temp_dir().join(format!("rt-members-{}.gz", std::process::id()));
        std::fs::write(&f, &w.inner).unwrap();
        let out = std::process::Command::new("gzip").arg("-dc").arg(&f).output().expect("gzip");
        let _ = std::fs::remove_file(&f);
        assert!(out.status.success());
        assert!(out.stdout == data, "gzip -dc differs");
        // Empty input: one empty member, still a gzip file.
        let mut e = MemberWriter::new(Vec::new(), libdeflater::CompressionLvl::new(6).unwrap());
        e.finish_write().unwrap();
        assert_eq!(e.members, 1);
        assert!(gunzip(&e.inner).is_empty());
    }
}
