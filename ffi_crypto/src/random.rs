//! Random bytes and identifiers from the operating system's CSPRNG
//! (`getrandom`: the getrandom(2) system call), and UUIDs (`uuid`).

use base64::Engine as _;
use crate::sha::hex;
use ffi_sdk::prelude::*;

/// Most random bytes one call returns (1 MiB).
pub const MAX_RANDOM: i64 = 1 << 20;

/// `n` bytes from the OS random source; Error OutOfRange outside 0..=1 MiB.
pub fn random(func: &'static str, n: i64) -> RtResult<Vec<u8>> {
    if !(0..=MAX_RANDOM).contains(&n) {
        return Err(Error::new(Code::OutOfRange, func, format!("length must be 0..={MAX_RANDOM} bytes"), n));
    }
    let mut buf = vec![0u8; n as usize];
    getrandom::fill(&mut buf).map_err(|e| Error::plain(Code::Io, func, format!("the OS random source failed: {e}")))?;
    Ok(buf)
}

/// `length` cryptographically secure random bytes (OS source), as bytes.
/// Error OutOfRange outside 0..=1048576.
///
/// # Errors
/// - Io: the OS random source failed
/// - OutOfRange: length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_random_bytes(length: i64) -> RtResult<Vec<u8>> {
    random(FN, length)
}

/// `length` random bytes as 2*length lowercase hex digits.
///
/// # Errors
/// - Io: the OS random source failed
/// - OutOfRange: length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_random_hex(length: i64) -> RtResult<String> {
    Ok(hex(&random(FN, length)?))
}

/// A random key of `length` bytes (1..=1048576), as standard base64 text
/// (as Simple's `generate_key` documents).
///
/// # Errors
/// - Io: the OS random source failed
/// - OutOfRange: length must be at least 1 byte; length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_generate_key(length: i64) -> RtResult<String> {
    if length < 1 {
        return Err(Error::new(Code::OutOfRange, FN, "length must be at least 1 byte", length));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(random(FN, length)?))
}

/// A random key of `length` bytes (1..=1048576), as lowercase hex.
///
/// # Errors
/// - Io: the OS random source failed
/// - OutOfRange: length must be at least 1 byte; length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_generate_key_hex(length: i64) -> RtResult<String> {
    if length < 1 {
        return Err(Error::new(Code::OutOfRange, FN, "length must be at least 1 byte", length));
    }
    Ok(hex(&random(FN, length)?))
}

/// A random (version 4, RFC 9562) UUID in its hyphenated lowercase form
/// (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`), from the OS random source.
///
/// # Errors
/// - Io: the OS random source failed
/// - OutOfRange: length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_uuid_v4() -> RtResult<String> {
    let b = random(FN, 16)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(&b);
    Ok(uuid::Builder::from_random_bytes(a).into_uuid().hyphenated().to_string())
}
