//! gzip (RFC 1952) with flate2 on the zlib-rs backend: bytes in memory, and
//! file to file in constant memory. Decompression reads every member of a
//! multi-member stream (as `gzip -d` and `cat a.gz b.gz` expect).

use crate::{corrupt, max_output, output_limit, read_limited, CopyError, FinishWrite};
use ffi_sdk::prelude::*;
use flate2::write::GzEncoder;

use std::io::{self, BufReader, Read, Write};

fn level(opts: &Opts) -> RtResult<flate2::Compression> {
    Ok(flate2::Compression::new(opts.int_in("level", 0, 9)?.unwrap_or(6) as u32))
}

/// A decoder over every member of a gzip stream.
pub fn decoder<'a, R: io::BufRead + 'a>(r: R) -> flate2::bufread::MultiGzDecoder<R> {
    flate2::bufread::MultiGzDecoder::new(r)
}

impl<W: Write> FinishWrite for GzEncoder<W> {
    fn finish_write(&mut self) -> io::Result<()> {
        self.try_finish()?;
        self.get_mut().flush()
    }
}

/// Compresses bytes or text to gzip. Option `level` 0..=9 (default 6).
///
/// The header carries no name and mtime 0, so equal input gives equal output.
#[rt_fn(tier = "verified")]
pub fn rt_gzip_compress(data: &[u8], opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["level"])?;
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 3 + 64), level(&opts)?);
    enc.write_all(data).map_err(|e| Error::internal(FN, e))?;
    enc.finish().map_err(|e| Error::internal(FN, e))
}

/// Decompresses gzip data (all members). Option `max_output` (bytes, default 1 GiB): more is LimitExceeded.
///
/// Empty, corrupt or truncated input, a bad CRC or length, and trailing garbage are Error Parse.
#[rt_fn(tier = "verified")]
pub fn rt_gzip_decompress(data: &[u8], opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["max_output"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_MEM)?;
    if data.is_empty() {
        return Err(Error::parse(FN, "empty input is not gzip data", "0 bytes").with("position", 0u64));
    }
    // The trailer's ISIZE is the (last member's) size mod 2^32: a good capacity hint.
    let isize_hint = data.len().checked_sub(4).map_or(0, |i| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize);
    let mut dec = decoder(data);
    match read_limited(&mut dec, max, isize_hint.max(data.len().saturating_mul(3))) {
        Ok(v) => Ok(v),
        Err(CopyError::Limit) => Err(output_limit(FN, max)),
        Err(CopyError::Read(e)) | Err(CopyError::Write(e)) => {
            let pos = (data.len() - dec.get_ref().len()) as u64;
            Err(corrupt(FN, "gzip", &e, format!("{} bytes", data.len()), pos))
        }
    }
}

/// Compresses file `src` to gzip file `dst` in constant memory (fs.read src, fs.write dst).
///
/// Option `level` 0..=9 (default 6). `dst` is written under a temporary name in its directory
/// and renamed into place, so a failure leaves no partial output; a symlink `dst` is followed
/// (its target replaced, the link kept); a `dst` ending in `/` is InvalidArgument; under a
/// scoped fs.write a `dst` with other hard links is CapabilityDenied unless fs.hardlink is held.
/// Returns {read, written, uncompressed}.
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
        &|f| Box::new(GzEncoder::new(io::BufWriter::with_capacity(crate::BUF, f), lvl)),
    )
}

/// Decompresses gzip file `src` (all members) to `dst` in constant memory (fs.read src, fs.write dst).
///
/// Option `max_output` (bytes, default 64 GiB): more is LimitExceeded and no output is left.
/// Corrupt input is Error Parse. `dst` is written as by rt_gzip_compress_file.
/// Returns {read, written, uncompressed}.
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

