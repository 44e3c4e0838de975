//! SHA-256 and SHA-1 digests: lowercase hex (`*_hash`) or raw bytes (`*_bytes`).

use ffi_sdk::prelude::*;
use sha1::Digest as _;

/// SHA-256 of `data` (ring: assembly chosen at run time).
#[inline]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-1 of `data` (sha1 crate: SHA-NI at run time, else portable).
#[inline]
pub fn sha1(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of bytes or text (its UTF-8), as 64 lowercase hex digits.
///
/// Empty input is valid (the digest of the empty string).
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_sha256_hash("abc") -> "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#[rt_fn(tier = "verified")]
pub fn rt_sha256_hash(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// SHA-256 of bytes or text (its UTF-8), as 32 raw bytes.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha256_bytes(data: &[u8]) -> Vec<u8> {
    sha256(data).to_vec()
}

/// SHA-1 of bytes or text (its UTF-8), as 40 lowercase hex digits (for legacy formats: git, not security).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha1_hash(data: &[u8]) -> String {
    hex(&sha1(data))
}

/// SHA-1 of bytes or text (its UTF-8), as 20 raw bytes.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha1_bytes(data: &[u8]) -> Vec<u8> {
    sha1(data).to_vec()
}
