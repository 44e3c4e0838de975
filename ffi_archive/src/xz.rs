//! xz with liblzma: bytes in memory and file to file in constant memory.
//! Decompression reads concatenated streams (and stream padding) and verifies
//! whatever check each stream carries (none, CRC32, CRC64, SHA-256).

use crate::gzip::{decode_to_value, DecodeError};
use crate::{corrupt, max_output, output_limit, CopyError, FinishWrite};
use ffi_sdk::prelude::*;
use liblzma::stream::{Check, Stream};
use std::io::{self, BufReader, Read, Write};

/// Default decoder memory limit: 1 GiB (a hostile header cannot ask for more).
pub const DEFAULT_MEMLIMIT: u64 = 1 << 30;

fn encoder_stream(func: &'static str, opts: &Opts) -> RtResult<Stream> {
    let preset = opts.int_in("preset", 0, 9)?.unwrap_or(6) as u32;
    let extreme = opts.bool("extreme")?.unwrap_or(false);
    let check = match opts.text("check")? {
        None | Some("crc64") => Check::Crc64,
        Some("crc32") => Check::Crc32,
        Some("sha256") => Check::Sha256,
        Some("none") => Check::None,
        Some(other) => return Err(Error::invalid(func, "option check must be crc64, crc32, sha256 or none", other)),
    };
    let flags = preset | if extreme { liblzma::stream::PRESET_EXTREME } else { 0 };
    Stream::new_easy_encoder(flags, check).map_err(|e| Error::invalid(func, "liblzma refused the preset", format!("{e:?}")))
}

/// A decoder for concatenated .xz streams with a memory limit.
pub fn decoder_stream(func: &'static str, memlimit: u64) -> RtResult<Stream> {
    Stream::new_stream_decoder(memlimit, liblzma::stream::CONCATENATED)
        .map_err(|e| Error::internal(func, format!("liblzma decoder: {e:?}")))
}

/// A decoder over all streams of `r`.
pub fn decoder<R: io::BufRead>(func: &'static str, r: R, memlimit: u64) -> RtResult<liblzma::bufread::XzDecoder<R>> {
    Ok(liblzma::bufread::XzDecoder::new_stream(r, decoder_stream(func, memlimit)?))
}

fn memlimit(opts: &Opts) -> RtResult<u64> {
    Ok(opts.int_in("memlimit", 1 << 20, i64::MAX)?.map(|v| v as u64).unwrap_or(DEFAULT_MEMLIMIT))
}

/// True when `e` is liblzma's memory-limit error.
pub(crate) fn is_memlimit(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|le| matches!(le, liblzma::stream::Error::MemLimit | liblzma::stream::Error::Mem))
}

pub(crate) fn memlimit_error(func: &'static str, input: impl std::fmt::Display) -> Error {
    Error::new(Code::LimitExceeded, func, "the xz stream needs more memory than memlimit allows", input)
}

impl<W: Write> FinishWrite for liblzma::write::XzEncoder<W> {
    fn finish_write(&mut self) -> io::Result<()> {
        self.try_finish()?;
        self.get_mut().flush()
    }
}

/// Largest output we size from an index per byte of input (xz of zeros is about
/// 7000:1); an index claiming more is not trusted up front (decoding still works).
const XZ_HINT_MAX_RATIO: u64 = 1 << 16;

/// One variable-length integer of the xz format (7 bits a byte, at most 9 bytes).
fn vli(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The total uncompressed size recorded in the indexes of every stream of `data`
/// (read backwards from the end: stream padding, footer, index, blocks, header),
/// or 0 when the layout does not add up or the size is implausible. Only a size
/// hint: the decoder checks each index against the blocks it decodes.
pub(crate) fn index_size_hint(data: &[u8]) -> usize {
    fn walk(data: &[u8]) -> Option<u64> {
        let mut end = data.len();
        let mut total = 0u64;
        loop {
            while end >= 4 && data[end - 4..end] == [0; 4] {
                end -= 4; // stream padding
            }
            if end == 0 {
                return Some(total);
            }
            let footer = data.get(end.checked_sub(12)?..end)?;
            if &footer[10..12] != b"YZ" {
                return None;
            }
            let backward = (u64::from(u32::from_le_bytes(footer[4..8].try_into().ok()?)) + 1) * 4;
            let index_start = (end - 12).checked_sub(usize::try_from(backward).ok()?)?;
            let index = &data[index_start..end - 12];
            if index.first() != Some(&0) {
                return None;
            }
            let mut pos = 1;
            let records = vli(index, &mut pos)?;
            if records > index.len() as u64 {
                return None;
            }
            let mut blocks = 0u64;
            for _ in 0..records {
                let unpadded = vli(index, &mut pos)?;
                let size = vli(index, &mut pos)?;
                blocks = blocks.checked_add(unpadded.checked_add(3)? & !3)?;
                total = total.checked_add(size)?;
            }
            let start = index_start.checked_sub(usize::try_from(blocks).ok()?)?.checked_sub(12)?;
            if data[start..start + 6] != [0xFD, b'7', b'z', b'X', b'Z', 0] {
                return None;
            }
            end = start;
        }
    }
    match walk(data) {
        Some(n) if n <= (data.len() as u64).saturating_mul(XZ_HINT_MAX_RATIO) => usize::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

/// Compresses bytes or text to .xz.
///
/// # Options
/// - preset (int 0..=9, default 6): preset
/// - extreme (bool, default false): bool
/// - check (text): "crc64" default, "crc32", "sha256", "none"
///
/// # Errors
/// - InvalidArgument: option check must be crc64, crc32, sha256 or none; liblzma refused the preset; an unknown option, or an option of the wrong kind or range
#[rt_fn(tier = "verified")]
pub fn rt_xz_compress(data: &[u8], opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["preset", "extreme", "check"])?;
    let stream = encoder_stream(FN, &opts)?;
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::with_capacity(data.len() / 4 + 64), stream);
    enc.write_all(data).map_err(|e| Error::internal(FN, e))?;
    enc.finish().map_err(|e| Error::internal(FN, e))
}

/// Decompresses .xz data (all concatenated streams, any check type).
///
/// Options: `max_output` (bytes, default 1 GiB) and `memlimit` (decoder memory, default 1 GiB):
/// past either, LimitExceeded. Empty, corrupt or truncated input, a failed check and trailing
/// garbage are Error Parse.
///
/// # Options
/// - max_output (int >= 0): `max_output` (bytes, default 1 GiB) and `memlimit` (decoder memory, default 1 GiB): past either, LimitExceeded
/// - memlimit (int): bytes, default 1 GiB and `memlimit` decoder memory, default 1 GiB: past either, LimitExceeded
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Parse: empty input is not xz data
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
#[rt_fn(tier = "verified", ret = "bytes")]
pub fn rt_xz_decompress(data: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["max_output", "memlimit"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_MEM)?;
    if data.is_empty() {
        return Err(Error::parse(FN, "empty input is not xz data", "0 bytes").with("position", 0u64));
    }
    let mut dec = decoder(FN, data, memlimit(&opts)?)?;
    // The index at the end of each stream gives the exact output size: decode straight
    // into a value of that size (no hint: grow as we go, then one copy).
    match decode_to_value(&mut dec, max, index_size_hint(data)) {
        Ok(v) => Ok(v),
        Err(DecodeError::Alloc(e)) => Err(e),
        Err(DecodeError::Copy(CopyError::Limit)) => Err(output_limit(FN, max)),
        Err(DecodeError::Copy(CopyError::Read(e))) | Err(DecodeError::Copy(CopyError::Write(e))) => {
            if is_memlimit(&e) {
                return Err(memlimit_error(FN, format!("{} bytes", data.len())));
            }
            Err(corrupt(FN, "xz", &e, format!("{} bytes", data.len()), dec.total_in()))
        }
    }
}

/// Compresses file `src` to .xz file `dst` in constant memory (fs.read src, fs.write dst).
///
/// Options as rt_xz_compress. `dst` is written as by rt_gzip_compress_file (a temporary
/// name renamed into place). Returns {read, written, uncompressed}.
///
/// # Options
/// - preset (int 0..=9, default 6): preset
/// - extreme (bool, default false): extreme
/// - check (text): check
///
/// # Errors
/// - InvalidArgument: option check must be crc64, crc32, sha256 or none; liblzma refused the preset; path names '/', '.' or '..', not an entry: name the directory itself; output path names a directory, not a file
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: empty input is not <format> data
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_xz_compress_file(src: &str, dst: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["preset", "extreme", "check"])?;
    let cell = std::cell::RefCell::new(Some(encoder_stream(FN, &opts)?));
    crate::file_to_file(FN, src, dst, "xz", u64::MAX, false, &|r| Ok(r), &|f| {
        let w = io::BufWriter::with_capacity(crate::BUF, f);
        match cell.borrow_mut().take() {
            Some(s) => Box::new(liblzma::write::XzEncoder::new_stream(w, s)),
            None => Box::new(liblzma::write::XzEncoder::new(w, 6)),
        }
    })
}

/// Decompresses .xz file `src` (all streams) to `dst` in constant memory (fs.read src, fs.write dst).
///
/// Options: `max_output` (bytes, default 64 GiB), `memlimit` (default 1 GiB): past either,
/// LimitExceeded and no output is left. Corrupt input is Error Parse. `dst` is written as by
/// rt_gzip_compress_file. Returns {read, written, uncompressed}.
///
/// # Options
/// - max_output (int >= 0): `max_output` (bytes, default 64 GiB), `memlimit` (default 1 GiB): past either, LimitExceeded and no output is left
/// - memlimit (int): bytes, default 64 GiB, `memlimit` default 1 GiB: past either, LimitExceeded and no output is left
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; output path names a directory, not a file; the destination is a directory, not a file; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - Parse: empty input is not <format> data
/// - LimitExceeded: decompressed output exceeds max_output bytes; the xz stream needs more memory than memlimit allows
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_xz_decompress_file(src: &str, dst: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["max_output", "memlimit"])?;
    let max = max_output(&opts, crate::DEFAULT_MAX_OUTPUT_FILE)?;
    let ml = memlimit(&opts)?;
    crate::file_to_file(
        FN,
        src,
        dst,
        "xz",
        max,
        true,
        &|r| Ok(Box::new(decoder(FN, BufReader::with_capacity(crate::BUF, r), ml)?) as Box<dyn Read>),
        &|f| Box::new(crate::PlainOut(io::BufWriter::with_capacity(crate::BUF, f))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn index_hint_is_the_output_size() {
        let a = vec![7u8; 300_000];
        let b: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let za = xz(&a);
        assert_eq!(index_size_hint(&za), a.len());
        // Concatenated streams with stream padding between and after.
        let mut cat = za.clone();
        cat.extend([0u8; 8]);
        cat.extend(xz(&b));
        cat.extend([0u8; 4]);
        assert_eq!(index_size_hint(&cat), a.len() + b.len());
        assert_eq!(index_size_hint(&xz(b"")), 0);
        // Anything that does not add up is no hint.
        let mut bad = za.clone();
        bad.push(1);
        assert_eq!(index_size_hint(&bad), 0);
        assert_eq!(index_size_hint(&za[..za.len() - 1]), 0);
        assert_eq!(index_size_hint(&za[1..]), 0);
        assert_eq!(index_size_hint(&[]), 0);
        assert_eq!(index_size_hint(&[0u8; 12]), 0);
    }
}
