//! Base64 (RFC 4648, standard and URL-safe alphabets; the `base64` crate).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ffi_sdk::prelude::*;

/// The first `len` bytes of `input` (all of it when `len` is nil or -1).
fn prefix<'a>(func: &'static str, input: &'a [u8], len: Option<i64>) -> RtResult<&'a [u8]> {
    match len {
        None | Some(-1) => Ok(input),
        Some(n) if n >= 0 && (n as u64) <= input.len() as u64 => Ok(&input[..n as usize]),
        Some(n) => Err(Error::new(
            Code::OutOfRange,
            func,
            format!("len must be -1 or 0..={} (the input's length)", input.len()),
            n,
        )),
    }
}

fn decode(func: &'static str, engine: &impl Engine, text: &[u8]) -> RtResult<Vec<u8>> {
    // Whitespace (line breaks of MIME-wrapped text) is skipped.
    let clean: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    engine.decode(&clean).map_err(|e| {
        let pos = match e {
            base64::DecodeError::InvalidByte(p, _) => Some(p),
            base64::DecodeError::InvalidLastSymbol { offset, .. } => Some(offset),
            _ => None,
        };
        let shown = ffi_sdk::error::quote(&String::from_utf8_lossy(text));
        let err = Error::parse(func, format!("invalid base64: {e}"), shown);
        match pos {
            Some(p) => err.with("position", p),
            None => err,
        }
    })
}

/// Base64 (standard alphabet `+/`, with `=` padding) of bytes or text.
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_base64_encode("hello") -> "aGVsbG8="
#[rt_fn(tier = "verified")]
pub fn rt_base64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64 (padding required; ASCII whitespace ignored) to bytes.
///
/// # Errors
/// - Parse: a character outside the alphabet, or a bad length or padding (details.position)
///
/// # Example
/// rt_base64_decode("aGVsbG8=") -> b"hello"
#[rt_fn(tier = "verified")]
pub fn rt_base64_decode(text: &[u8]) -> RtResult<Vec<u8>> {
    decode(FN, &STANDARD, text)
}

/// URL-safe base64 (alphabet `-_`, no padding: RFC 4648 §5, as JWT uses) of the first `len` bytes of `input`
/// (Simple passes the length; nil or -1 means all).
///
/// # Errors
/// - OutOfRange: `len` exceeds the input
#[rt_fn(tier = "verified")]
pub fn rt_base64url_encode(input: &[u8], len: Option<i64>) -> RtResult<String> {
    Ok(URL_SAFE_NO_PAD.encode(prefix(FN, input, len)?))
}

/// Decodes URL-safe base64; trailing `=` padding is accepted and ignored.
///
/// # Errors
/// - Parse: for a character outside `A-Za-z0-9-_` (details.position)
#[rt_fn(tier = "verified")]
pub fn rt_base64url_decode(text: &[u8]) -> RtResult<Vec<u8>> {
    let end = text.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    decode(FN, &URL_SAFE_NO_PAD, &text[..end])
}
