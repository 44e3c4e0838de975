//! Argon2id password hashing to PHC strings, and constant-time verification.
//!
//! Defaults (OWASP's first recommendation for Argon2id): m_cost = 19456 KiB,
//! t_cost = 2, p_cost = 1, 32-byte output, 16-byte salt from the OS random
//! source. Limits against parameters that would exhaust the machine (also for
//! parameters read from a hash being verified): m_cost at most 1 GiB
//! (1048576 KiB) and t_cost at most 1000 (LimitExceeded), p_cost 1..=255.
//!
//! Deadlines and cancellation (docs/DEADLINES.md): the argon2 crate has no
//! hook between passes, so while a deadline or cancel token is in force the
//! hash runs on a helper thread (`deadline::run_abandonable`) and the call
//! returns Timeout / Cancelled promptly; the abandoned hash runs to its end
//! (bounded by the limits above) and its result is dropped.

use ::argon2::password_hash::phc::{PasswordHash, Salt};
use ::argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use ::argon2::{Algorithm, Argon2, AssociatedData, Params, ParamsBuilder, Version};
use ffi_sdk::deadline;
use ffi_sdk::prelude::*;

/// Highest memory cost accepted, in KiB (1 GiB).
pub const MAX_M_COST: u32 = 1024 * 1024;
/// Highest number of passes accepted.
pub const MAX_T_COST: u32 = 1000;
/// Highest parallelism accepted.
pub const MAX_P_COST: u32 = 255;
/// Salt length used when none is given.
pub const SALT_LEN: usize = 16;

fn limits(func: &'static str, m: u32, t: u32, p: u32) -> RtResult<()> {
    if m > MAX_M_COST {
        return Err(Error::new(
            Code::LimitExceeded,
            func,
            format!("m_cost asks for more than {MAX_M_COST} KiB (1 GiB) of memory"),
            m,
        ));
    }
    if t > MAX_T_COST {
        return Err(Error::new(Code::LimitExceeded, func, format!("t_cost is above {MAX_T_COST} passes"), t));
    }
    if p == 0 || p > MAX_P_COST {
        return Err(Error::invalid(func, format!("p_cost must be in 1..={MAX_P_COST}"), p));
    }
    Ok(())
}

fn map_err(func: &'static str, e: ::argon2::Error) -> Error {
    match e {
        ::argon2::Error::OutOfMemory => {
            Error::plain(Code::LimitExceeded, func, "not enough memory for the requested m_cost")
        }
        other => Error::invalid(func, "argon2 refused the parameters", other),
    }
}

fn phc_err(func: &'static str, e: ::argon2::password_hash::Error) -> Error {
    match e {
        ::argon2::password_hash::Error::OutOfMemory => {
            Error::plain(Code::LimitExceeded, func, "not enough memory for the requested m_cost")
        }
        other => Error::invalid(func, "argon2 refused the parameters", other),
    }
}

/// Argon2id hash of `password` as a PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
///
/// # Options
/// - m_cost (int >= 1, default 19456): KiB, at most 1048576 else LimitExceeded
/// - t_cost (int >= 1, default 2): passes, at most 1000
/// - p_cost (int >= 1, default 1): lanes
/// - output_len (int 10..=64, default 32): bytes, 10..=64
/// - salt (bytes, default 16 random bytes from the OS — give one only for tests): bytes, 8..=48
/// - secret (bytes): bytes: a pepper, needed again to verify
/// - data (bytes): associated data, at most 32 bytes
///
/// # Errors
/// - InvalidArgument: m_cost must be at least 8 * p_cost KiB; option data must be at most 32 bytes; option salt must be …..=… bytes; p_cost must be in 1..=…
/// - Io: the OS random source failed
/// - LimitExceeded: m_cost asks for more than … KiB (1 GiB) of memory; t_cost is above … passes; not enough memory for the requested m_cost
#[rt_fn(tier = "verified", blocking)]
pub fn rt_argon2_hash(password: &[u8], opts: Opts) -> RtResult<String> {
    opts.only(&["m_cost", "t_cost", "p_cost", "output_len", "salt", "secret", "data"])?;
    let m = opts.int_in("m_cost", 1, u32::MAX as i64)?.unwrap_or(Params::DEFAULT_M_COST as i64) as u32;
    let t = opts.int_in("t_cost", 1, u32::MAX as i64)?.unwrap_or(Params::DEFAULT_T_COST as i64) as u32;
    let p = opts.int_in("p_cost", 1, u32::MAX as i64)?.unwrap_or(Params::DEFAULT_P_COST as i64) as u32;
    limits(FN, m, t, p)?;
    if m < 8 * p {
        return Err(Error::invalid(FN, "m_cost must be at least 8 * p_cost KiB", format!("m_cost {m}, p_cost {p}")));
    }
    let out_len = opts.int_in("output_len", 10, 64)?.unwrap_or(32) as usize;
    let mut b = ParamsBuilder::new();
    b.m_cost(m).t_cost(t).p_cost(p).output_len(out_len);
    if let Some(d) = opts.bytes("data")? {
        let ad = AssociatedData::new(d)
            .map_err(|_| Error::invalid(FN, "option data must be at most 32 bytes", d.len()))?;
        b.data(ad);
    }
    let params = b.build().map_err(|e| map_err(FN, e))?;
    let mut salt_buf = [0u8; SALT_LEN];
    let salt: &[u8] = match opts.bytes("salt")? {
        Some(s) => {
            if s.len() < Salt::MIN_LENGTH || s.len() > Salt::MAX_LENGTH {
                return Err(Error::invalid(
                    FN,
                    format!("option salt must be {}..={} bytes", Salt::MIN_LENGTH, Salt::MAX_LENGTH),
                    s.len(),
                ));
            }
            s
        }
        None => {
            getrandom::fill(&mut salt_buf)
                .map_err(|e| Error::plain(Code::Io, FN, format!("the OS random source failed: {e}")))?;
            &salt_buf
        }
    };
    let secret = opts.bytes("secret")?.map(<[u8]>::to_vec);
    let (password, salt) = (password.to_vec(), salt.to_vec());
    deadline::run_abandonable(FN, move || {
        let ctx = match &secret {
            Some(s) => Argon2::new_with_secret(s, Algorithm::Argon2id, Version::V0x13, params)
                .map_err(|e| map_err(FN, e))?,
            None => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        };
        let hash = ctx.hash_password_with_salt(&password, &salt).map_err(|e| phc_err(FN, e))?;
        Ok(hash.to_string())
    })?
}

/// True when `password` matches the PHC `hash` (argon2id, argon2i or argon2d; v=16 or v=19).
///
/// A hash without a `v=` field is version 16 (0x10), as the reference implementation reads it (its own v=16 test
/// vectors have none); `v=19` must be explicit, as every current encoder (rt_argon2_hash included) writes it.
/// Comparison is constant-time. A wrong password is `false`; a malformed hash string is Error Parse; parameters
/// beyond the limits of rt_argon2_hash are LimitExceeded (so a hostile hash cannot exhaust memory).
///
/// # Options
/// - secret (bytes): bytes : the pepper used to hash
///
/// # Errors
/// - InvalidArgument: p_cost must be in 1..=…; argon2 refused the parameters; an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed PHC string; not an argon2 hash (algorithm …); unknown argon2 version <v>; PHC string lacks the salt or the hash
/// - LimitExceeded: m_cost asks for more than … KiB (1 GiB) of memory; t_cost is above … passes; not enough memory for the requested m_cost
#[rt_fn(tier = "verified", blocking)]
pub fn rt_argon2_verify(password: &[u8], hash: &str, opts: Opts) -> RtResult<bool> {
    opts.only(&["secret"])?;
    let shown = ffi_sdk::error::quote(hash);
    let mut parsed = PasswordHash::new(hash)
        .map_err(|e| Error::parse(FN, format!("malformed PHC string: {e}"), &shown))?;
    let alg = Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|_| Error::parse(FN, format!("not an argon2 hash (algorithm {})", parsed.algorithm), &shown))?;
    // No `v=`: version 16, as the reference decoder has it. Written into the parsed hash too,
    // since verify_password hashes with the version the PHC string gives (its own default is 19).
    let v = parsed.version.unwrap_or(u32::from(Version::V0x10));
    let version = Version::try_from(v).map_err(|_| Error::parse(FN, format!("unknown argon2 version {v}"), &shown))?;
    parsed.version = Some(u32::from(version));
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(Error::parse(FN, "PHC string lacks the salt or the hash", &shown));
    }
    // Read m, t, p ourselves first so a hostile hash is refused before anything is allocated.
    let get = |k: &str| parsed.params.get_decimal(k);
    if let (Some(m), Some(t), Some(p)) = (get("m"), get("t"), get("p")) {
        limits(FN, m, t, p)?;
    }
    let params = Params::try_from(&parsed)
        .map_err(|e| Error::parse(FN, format!("bad argon2 parameters: {e}"), &shown))?;
    limits(FN, params.m_cost(), params.t_cost(), params.p_cost())?;
    let secret = opts.bytes("secret")?.map(<[u8]>::to_vec);
    let (password, hash) = (password.to_vec(), hash.to_owned());
    deadline::run_abandonable(FN, move || {
        let ctx = match &secret {
            Some(s) => Argon2::new_with_secret(s, alg, version, params).map_err(|e| map_err(FN, e))?,
            None => Argon2::new(alg, version, params),
        };
        // Parsed again on this side: a PasswordHash borrows the string it came from.
        let mut parsed = PasswordHash::new(&hash).map_err(|e| Error::parse(FN, format!("malformed PHC string: {e}"), &hash))?;
        parsed.version = Some(u32::from(version));
        match ctx.verify_password(&password, &parsed) {
            Ok(()) => Ok(true),
            Err(::argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(phc_err(FN, e)),
        }
    })?
}
