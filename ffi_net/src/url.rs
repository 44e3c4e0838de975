//! URL percent-encoding (RFC 3986 unreserved characters kept).

use ffi_sdk::prelude::*;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but ALPHA / DIGIT / "-" / "." / "_" / "~" is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

pub fn decode_bytes(b: &[u8]) -> Vec<u8> {
    percent_decode(b).collect()
}

/// `k=v&k2=v2`, each part percent-encoded.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes text for a URL component (query value or path segment): every byte except A-Z a-z 0-9 - . _ ~ becomes %XX (UTF-8).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_http_url_encode(text: &str) -> String {
    encode(text)
}

/// Decodes %XX escapes ('+' stays '+').
///
/// # Errors
/// - Parse: the result is not UTF-8
#[rt_fn(tier = "verified")]
pub fn rt_http_url_decode(text: &str) -> RtResult<String> {
    String::from_utf8(decode_bytes(text.as_bytes()))
        .map_err(|e| Error::parse(FN, "decoded bytes are not UTF-8", ffi_sdk::error::quote(text)).with("position", e.utf8_error().valid_up_to() as i64))
}
