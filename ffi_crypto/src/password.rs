//! Password hashing under Simple's names: Argon2id (shared with
//! rt_argon2_hash / rt_argon2_verify) and bcrypt (`bcrypt` crate, for stored
//! legacy hashes).

use ffi_sdk::deadline;
use ffi_sdk::prelude::*;

/// Highest bcrypt cost accepted (2^20 rounds, about a minute); beyond is LimitExceeded.
pub const BCRYPT_MAX_COST: i64 = 20;

/// Renames the function an error from a shared implementation names.
fn renamed<T>(func: &'static str, from: &str, r: RtResult<T>) -> RtResult<T> {
    r.map_err(|mut e| {
        if let Some(rest) = e.message.strip_prefix(from) {
            e.message = format!("{func}{rest}");
        }
        e
    })
}

/// Argon2id hash of `password` with the default parameters of
/// rt_argon2_hash (m=19456 KiB, t=2, p=1, random 16-byte salt), as a PHC string.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_password_hash(password: &[u8]) -> RtResult<String> {
    renamed(FN, "rt_argon2_hash", crate::argon2::__rt_argon2_hash(password, Opts::new(FN, Value::NIL)))
}

/// True when `password` matches an Argon2 PHC `hash` (rt_argon2_verify's
/// rules: constant time, LimitExceeded for hostile parameters, Parse for a
/// malformed hash). Simple declares `-> i64` (1/0): ours is a bool.
///
/// # Errors
/// - Parse: malformed input (details.line/column/position where known)
#[rt_fn(tier = "verified")]
pub fn rt_password_verify(password: &[u8], hash: &str) -> RtResult<bool> {
    renamed(FN, "rt_argon2_verify", crate::argon2::__rt_argon2_verify(password, hash, Opts::new(FN, Value::NIL)))
}

/// bcrypt hash (`$2b$`, random salt) of `password` at `cost` (4..=20).
/// bcrypt reads at most 72 bytes: a longer password is Error InvalidArgument
/// rather than silently truncated.
///
/// # Errors
/// - InvalidArgument: bcrypt reads at most 72 bytes of a password; bcrypt failed
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: cost must be 4..=31
/// - LimitExceeded: cost above … is refused (hours per hash)
#[rt_fn(tier = "verified", blocking)]
pub fn rt_password_hash_bcrypt(password: &[u8], cost: i64) -> RtResult<String> {
    if !(4..=31).contains(&cost) {
        return Err(Error::new(Code::OutOfRange, FN, "cost must be 4..=31", cost));
    }
    if cost > BCRYPT_MAX_COST {
        return Err(Error::new(Code::LimitExceeded, FN, format!("cost above {BCRYPT_MAX_COST} is refused (hours per hash)"), cost));
    }
    if password.len() > 72 {
        return Err(Error::invalid(FN, "bcrypt reads at most 72 bytes of a password", format!("{} bytes", password.len())));
    }
    let password = password.to_vec();
    deadline::run_abandonable(FN, move || {
        bcrypt::hash(password, cost as u32).map_err(|e| Error::invalid(FN, format!("bcrypt failed: {e}"), cost))
    })?
}

/// True when `password` matches a bcrypt `hash` (`$2a$`, `$2b$`, `$2x$`, `$2y$`).
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Parse: for a malformed hash
/// - LimitExceeded: for a cost above 20
#[rt_fn(tier = "verified", blocking)]
pub fn rt_password_verify_bcrypt(password: &[u8], hash: &str) -> RtResult<bool> {
    let shown = ffi_sdk::error::quote(hash);
    let cost = hash.get(4..6).and_then(|c| c.parse::<i64>().ok());
    if let Some(c) = cost {
        if c > BCRYPT_MAX_COST && hash.starts_with("$2") {
            return Err(Error::new(Code::LimitExceeded, FN, format!("cost above {BCRYPT_MAX_COST} is refused"), shown));
        }
    }
    let (password, hash) = (password.to_vec(), hash.to_owned());
    deadline::run_abandonable(FN, move || {
        bcrypt::verify(password, &hash).map_err(|e| Error::parse(FN, format!("not a bcrypt hash: {e}"), shown))
    })?
}
