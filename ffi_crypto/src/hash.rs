//! Non-cryptographic hashes: xxHash64, XXH3-64 and aHash.
//!
//! Results are unsigned 64-bit values carried in a 64-bit int: the int holds
//! the same 64 bits, so values of 2^63 and above read as negative ints
//! (reinterpret as unsigned: `v & 0xFFFF_FFFF_FFFF_FFFF` in Python, `(uint64_t)`
//! in C). A seed is read the same way: its 64 bits are the unsigned seed.

use ffi_sdk::prelude::*;

/// Fixed aHash keys (digits of pi): stable within a process and between runs of
/// one build, NOT across versions of this library or of the `ahash` crate.
const AHASH_KEYS: [u64; 4] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344, 0xa409_3822_299f_31d0, 0x082e_fa98_ec4e_6c89];

fn ahasher() -> &'static ahash::RandomState {
    static S: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    S.get_or_init(|| ahash::RandomState::with_seeds(AHASH_KEYS[0], AHASH_KEYS[1], AHASH_KEYS[2], AHASH_KEYS[3]))
}

/// XXH64 of `data` with `seed`.
#[inline]
pub fn xxh64(data: &[u8], seed: u64) -> u64 {
    twox_hash::XxHash64::oneshot(seed, data)
}

/// XXH3-64 of `data` with `seed` (0 = the unseeded XXH3_64bits).
#[inline]
pub fn xxh3(data: &[u8], seed: u64) -> u64 {
    if seed == 0 {
        twox_hash::XxHash3_64::oneshot(data)
    } else {
        twox_hash::XxHash3_64::oneshot_with_seed(seed, data)
    }
}

/// aHash of `data` with the library's fixed keys.
#[inline]
pub fn ahash(data: &[u8]) -> u64 {
    ahasher().hash_one(data)
}

/// XXH64 of bytes or text (its UTF-8); `seed` nil = 0.
///
/// Returns the unsigned 64-bit hash's bits in a 64-bit int (>= 2^63 reads negative);
/// the seed's 64 bits are likewise taken as unsigned. Same values as `xxhsum -H64`.
#[rt_fn(tier = "verified")]
pub fn rt_xxhash64(data: &[u8], seed: Option<i64>) -> u64 {
    xxh64(data, seed.unwrap_or(0) as u64)
}

/// XXH3-64 of bytes or text (its UTF-8); `seed` nil = 0 (XXH3_64bits).
///
/// Returns the unsigned 64-bit hash's bits in a 64-bit int (>= 2^63 reads negative);
/// the seed's 64 bits are likewise taken as unsigned. AVX2 or SSE2 chosen at run time.
#[rt_fn(tier = "verified")]
pub fn rt_xxhash3(data: &[u8], seed: Option<i64>) -> u64 {
    xxh3(data, seed.unwrap_or(0) as u64)
}

/// aHash of bytes or text, for in-process hash tables ONLY.
///
/// Keys are fixed, so equal inputs hash equal within a process (and between runs of
/// one build), but values change across versions of this library and of aHash and
/// between CPUs: never store them or send them elsewhere. Not a cryptographic hash.
/// Returns the unsigned 64-bit hash's bits in a 64-bit int.
#[rt_fn(tier = "empirical")]
pub fn rt_ahash(data: &[u8]) -> u64 {
    ahash(data)
}
