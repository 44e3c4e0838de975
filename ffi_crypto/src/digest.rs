//! More digests and MACs, under the names Simple's standard library calls
//! (`io/crypto_ffi.spl`, `sffi/crypto.spl`): SHA-512 (ring), SHA3-256 (sha3),
//! BLAKE3 (blake3: SIMD chosen at run time), HMAC-SHA-256/512 and
//! PBKDF2-HMAC-SHA-256 (ring), CRC-32 (crc32fast). Hex results are lowercase.

use crate::sha::{hex, sha256};
use ffi_sdk::deadline;
use ffi_sdk::prelude::*;
use sha3::Digest as _;
use std::num::NonZeroU32;

/// SHA-512 of `data` (the sha2 crate: 1.1-1.4x ring's speed here, about
/// OpenSSL's; BENCHMARKS.md "blake3, sha512, zip").
pub fn sha512(data: &[u8]) -> [u8; 64] {
    sha2::Sha512::digest(data).into()
}

/// SHA-512 of bytes or text (its UTF-8), as 128 lowercase hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha512_hash(data: &[u8]) -> String {
    hex(&sha512(data))
}

/// SHA-512 of bytes or text (its UTF-8), as 64 raw bytes.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha512_bytes(data: &[u8]) -> Vec<u8> {
    sha512(data).to_vec()
}

/// SHA3-256 (FIPS 202) of bytes or text, as 64 lowercase hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_sha3_256_hash(data: &[u8]) -> String {
    hex(&sha3::Sha3_256::digest(data))
}

/// BLAKE3 (32-byte output) of bytes or text, as 64 lowercase hex digits.
/// One thread; blake3 picks AVX-512 / AVX2 / SSE4.1 at run time.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_blake3_hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// BLAKE3 of bytes or text, as 32 raw bytes.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_blake3_bytes(data: &[u8]) -> Vec<u8> {
    blake3::hash(data).as_bytes().to_vec()
}

/// Simple's name for rt_sha256_hash: SHA-256 of bytes or text as 64 hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hash_sha256(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// Simple's name for rt_sha512_hash: SHA-512 as 128 hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hash_sha512(data: &[u8]) -> String {
    hex(&sha512(data))
}

/// Simple's name for rt_sha3_256_hash: SHA3-256 as 64 hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hash_sha3_256(data: &[u8]) -> String {
    hex(&sha3::Sha3_256::digest(data))
}

/// Simple's name for rt_blake3_hash: BLAKE3 as 64 hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hash_blake3(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

fn hmac(alg: ring::hmac::Algorithm, key: &[u8], data: &[u8]) -> String {
    let k = ring::hmac::Key::new(alg, key);
    hex(ring::hmac::sign(&k, data).as_ref())
}

/// HMAC-SHA-256 (RFC 2104) of `data` under `key` (bytes or text, any
/// length), as 64 lowercase hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hmac_sha256(key: &[u8], data: &[u8]) -> String {
    hmac(ring::hmac::HMAC_SHA256, key, data)
}

/// HMAC-SHA-512 of `data` under `key`, as 128 lowercase hex digits.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_hmac_sha512(key: &[u8], data: &[u8]) -> String {
    hmac(ring::hmac::HMAC_SHA512, key, data)
}

/// Most PBKDF2 iterations accepted (bounds the time of one call).
pub const PBKDF2_MAX_ITERATIONS: i64 = 10_000_000;
/// Longest PBKDF2 output accepted, in bytes.
pub const PBKDF2_MAX_LEN: i64 = 1024;

/// PBKDF2-HMAC-SHA-256 (RFC 8018) of `password` with `salt` (both used as given: text as its UTF-8 bytes, not
/// hex-decoded), `iterations` (1..=10^7) and `length` output bytes (1..=1024), as lowercase hex.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: for iterations or length outside those bounds
#[rt_fn(tier = "verified", blocking)]
pub fn rt_derive_key_pbkdf2(password: &[u8], salt: &[u8], iterations: i64, length: i64) -> RtResult<String> {
    if !(1..=PBKDF2_MAX_ITERATIONS).contains(&iterations) {
        return Err(Error::new(Code::OutOfRange, FN, format!("iterations must be 1..={PBKDF2_MAX_ITERATIONS}"), iterations));
    }
    if !(1..=PBKDF2_MAX_LEN).contains(&length) {
        return Err(Error::new(Code::OutOfRange, FN, format!("length must be 1..={PBKDF2_MAX_LEN} bytes"), length));
    }
    let n = NonZeroU32::new(iterations as u32).unwrap_or(NonZeroU32::MIN);
    let (password, salt) = (password.to_vec(), salt.to_vec());
    deadline::run_abandonable(FN, move || {
        let mut out = vec![0u8; length as usize];
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, n, &salt, &password, &mut out);
        hex(&out)
    })
}

/// CRC-32 (IEEE 802.3, the zlib/gzip/zip checksum) of bytes or text, as an
/// int 0..=2^32-1.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Simple's name for rt_crc32 over text (its UTF-8 bytes; bytes are accepted too).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_crc32_text(content: &[u8]) -> u32 {
    crc32fast::hash(content)
}
