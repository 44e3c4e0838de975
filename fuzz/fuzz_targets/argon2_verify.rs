//! rt_argon2_verify with a fixed password and the hash text from the input
//! (invalid UTF-8 replaced): true, false or an Error (Parse, LimitExceeded,
//! InvalidArgument), never a panic. Hashes whose cost parameters are legal
//! but slow (m_cost > 64 KiB... up to the 1 GiB limit, or m*t > 256 Ki) are
//! skipped: the fuzzer is after the parser, and the function's own refusal
//! of parameters over its limits is still exercised (those are not skipped).
#![no_main]
use argon2::password_hash::phc::PasswordHash;
use argon2::Params;
use ffi_crypto::argon2::{rt_argon2_verify, MAX_M_COST, MAX_T_COST};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

fn too_slow(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let get = |k: &str| parsed.params.get_decimal(k);
    let slow = |m: u32, t: u32| m <= MAX_M_COST && t <= MAX_T_COST && (m > 65536 || (m as u64) * (t as u64) > 256 * 1024);
    if let (Some(m), Some(t)) = (get("m"), get("t")) {
        if slow(m, t) {
            return true;
        }
    }
    match Params::try_from(&parsed) {
        Ok(p) => slow(p.m_cost(), p.t_cost()),
        Err(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let hash = String::from_utf8_lossy(data);
    if too_slow(&hash) {
        return;
    }
    if let Ok(v) = result("rt_argon2_verify", rt_argon2_verify(bytes(b"password"), text(&hash), NIL)) {
        assert!(v.as_bool().is_some(), "rt_argon2_verify returned {}", v.describe());
    }
});
