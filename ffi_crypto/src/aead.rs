//! AES-256-GCM authenticated encryption (ring), in the format Simple's
//! `encrypt_aes256` documents: hex of nonce (12 bytes) + ciphertext + tag (16 bytes).

use crate::random::random;
use crate::sha::hex;
use ffi_sdk::prelude::*;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

fn unhex(func: &'static str, what: &str, s: &[u8]) -> RtResult<Vec<u8>> {
    let bad = |pos: usize| {
        Error::parse(func, format!("{what} is not hex"), ffi_sdk::error::quote(&String::from_utf8_lossy(s))).with("position", pos)
    };
    if s.len() % 2 != 0 {
        return Err(bad(s.len()));
    }
    let d = |i: usize| (s[i] as char).to_digit(16).map(|v| v as u8).ok_or_else(|| bad(i));
    (0..s.len() / 2).map(|i| Ok(d(2 * i)? << 4 | d(2 * i + 1)?)).collect()
}

/// The AES-256 key: 64 hex digits (Simple's form) or 32 raw bytes.
fn key(func: &'static str, k: &[u8]) -> RtResult<LessSafeKey> {
    let raw = match k.len() {
        64 => unhex(func, "key", k)?,
        32 => k.to_vec(),
        n => {
            return Err(Error::invalid(func, "key must be 64 hex digits or 32 bytes", format!("{n} bytes")));
        }
    };
    let uk = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| Error::internal(func, "ring refused a 32-byte key"))?;
    Ok(LessSafeKey::new(uk))
}

/// Encrypts `data` (bytes or text) with AES-256-GCM under `key` (64 hex digits or 32 bytes) and a fresh random
/// 96-bit nonce; returns lowercase hex of nonce + ciphertext + 16-byte tag.
///
/// # Errors
/// - InvalidArgument: for a bad key
/// - Io: the OS random source failed
/// - Parse: malformed input (details.line/column/position where known)
/// - OutOfRange: length must be 0..=… bytes
#[rt_fn(tier = "verified")]
pub fn rt_encrypt_aes256(key: &[u8], data: &[u8]) -> RtResult<String> {
    let k = self::key(FN, key)?;
    let nonce_bytes = random(FN, NONCE_LEN as i64)?;
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&nonce_bytes);
    let mut buf = data.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut buf)
        .map_err(|_| Error::internal(FN, "AES-GCM sealing failed"))?;
    let mut out = n.to_vec();
    out.extend_from_slice(&buf);
    Ok(hex(&out))
}

/// Decrypts the output of rt_encrypt_aes256 (hex text, or the raw bytes) under `key`: the plaintext as text when
/// it is UTF-8, else as bytes.
///
/// # Errors
/// - InvalidArgument: authentication failed (wrong key or altered data); key must be 64 hex digits or 32 bytes
/// - Parse: for malformed input, InvalidArgument ("authentication failed") for a wrong key or altered data
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_decrypt_aes256(key: &[u8], encrypted: Value) -> RtResult<Value> {
    let k = self::key(FN, key)?;
    let mut raw = if let Some(t) = encrypted.as_text() {
        unhex(FN, "encrypted", t.as_bytes())?
    } else if let Some(b) = encrypted.as_bytes() {
        b.to_vec()
    } else {
        return Err(Error::new(Code::TypeMismatch, FN, "encrypted must be hex text or bytes", encrypted.describe()));
    };
    if raw.len() < NONCE_LEN + 16 {
        return Err(Error::parse(FN, "too short for nonce and tag (28 bytes at least)", format!("{} bytes", raw.len())));
    }
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&raw[..NONCE_LEN]);
    let body = &mut raw[NONCE_LEN..];
    let body_len = body.len();
    let plain = k
        .open_in_place(Nonce::assume_unique_for_key(n), Aad::empty(), body)
        .map_err(|_| Error::invalid(FN, "authentication failed (wrong key or altered data)", format!("{body_len} bytes")))?;
    Ok(match std::str::from_utf8(plain) {
        Ok(s) => Value::text(s),
        Err(_) => Value::bytes(plain),
    })
}
