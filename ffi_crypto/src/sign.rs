//! Ed25519 signatures (RFC 8032; `ed25519-dalek`, strict verification).

use ffi_sdk::prelude::*;

fn key32<'a>(func: &'static str, what: &str, b: &'a [u8]) -> RtResult<&'a [u8; 32]> {
    b.try_into().map_err(|_| Error::invalid(func, format!("{what} must be 32 bytes"), format!("{} bytes", b.len())))
}

/// True when `signature` (64 bytes) is a valid Ed25519 signature of `message` under `pubkey` (32 bytes). Strict
/// (RFC 8032 §5.1.7 with canonical encodings, no small-order keys): a forged or malleated signature is false.
///
/// # Errors
/// - InvalidArgument: for wrong lengths; a public key that is not a curve point is false
#[rt_fn(tier = "verified")]
pub fn rt_ed25519_verify(message: &[u8], pubkey: &[u8], signature: &[u8]) -> RtResult<bool> {
    let pk = key32(FN, "pubkey", pubkey)?;
    let sig: &[u8; 64] = signature
        .try_into()
        .map_err(|_| Error::invalid(FN, "signature must be 64 bytes", format!("{} bytes", signature.len())))?;
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(pk) else {
        return Ok(false);
    };
    Ok(vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig)).is_ok())
}

/// The Ed25519 signature (64 bytes) of `message` under the 32-byte secret
/// seed `secret` (RFC 8032: deterministic).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_ed25519_sign(message: &[u8], secret: &[u8]) -> RtResult<Vec<u8>> {
    use ed25519_dalek::Signer as _;
    let sk = ed25519_dalek::SigningKey::from_bytes(key32(FN, "secret", secret)?);
    Ok(sk.sign(message).to_bytes().to_vec())
}

/// The Ed25519 public key (32 bytes) of a 32-byte secret seed.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
#[rt_fn(tier = "verified")]
pub fn rt_ed25519_public_key(secret: &[u8]) -> RtResult<Vec<u8>> {
    let sk = ed25519_dalek::SigningKey::from_bytes(key32(FN, "secret", secret)?);
    Ok(sk.verifying_key().to_bytes().to_vec())
}
