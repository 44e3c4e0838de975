//! Non-cryptographic hashes: xxHash64, XXH3-64 and aHash.
//!
//! XXH3-64 over 240 bytes runs this module's own AVX-512F / AVX2 loop
//! ([`xxh3_long`]; `twox-hash` reached 0.72-0.79x of the C library's), the
//! rest `twox-hash`.
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

/// XXH3-64 of `data` with `seed` (0 = the unseeded XXH3_64bits): inputs over
/// 240 bytes through [`xxh3_long`] (AVX-512F / AVX2 chosen at run time), the
/// rest (and CPUs with neither) through `twox-hash`.
#[inline]
pub fn xxh3(data: &[u8], seed: u64) -> u64 {
    if data.len() > 240 {
        if let Some(h) = xxh3_long::hash(data, seed) {
            return h;
        }
    }
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
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_xxhash64(data: &[u8], seed: Option<i64>) -> u64 {
    xxh64(data, seed.unwrap_or(0) as u64)
}

/// XXH3-64 of bytes or text (its UTF-8); `seed` nil = 0 (XXH3_64bits).
///
/// Returns the unsigned 64-bit hash's bits in a 64-bit int (>= 2^63 reads negative);
/// the seed's 64 bits are likewise taken as unsigned. AVX2 or SSE2 chosen at run time.
///
/// # Errors
/// Only the implicit codes.
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
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_ahash(data: &[u8]) -> u64 {
    ahash(data)
}

pub mod xxh3_long {
    //! XXH3-64 for inputs over 240 bytes: the "long" loop of the reference
    //! implementation (xxhash.h 0.8: accumulate 64-byte stripes into eight 64-bit
    //! lanes, scramble every 1024 bytes, merge), with AVX-512F or AVX2 kernels
    //! chosen at run time. Shorter inputs, and CPUs with neither, take `twox-hash`.
    //! Checked against `twox-hash` (and through it the reference vectors) in the
    //! tests below; the bench compares it with the C library.

    const STRIPE: usize = 64;
    const SECRET_SIZE: usize = 192;
    const STRIPES_PER_BLOCK: usize = (SECRET_SIZE - STRIPE) / 8;
    const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK;
    const PREFETCH: usize = 384;

    const P32_1: u64 = 0x9E37_79B1;
    const P32_2: u64 = 0x85EB_CA77;
    const P32_3: u64 = 0xC2B2_AE3D;
    const P64_1: u64 = 0x9E37_79B1_85EB_CA87;
    const P64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P64_3: u64 = 0x1656_67B1_9E37_79F9;
    const P64_4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P64_5: u64 = 0x27D4_EB2F_1656_67C5;

    /// XXH3's default secret (kSecret).
    const SECRET: [u8; SECRET_SIZE] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, //
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, //
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, //
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, //
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3, //
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, //
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, //
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, //
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, //
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, //
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, //
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e, //
    ];

    const INIT_ACC: [u64; 8] = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1];

    fn rd64(b: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
    }

    /// The secret XXH3 derives from a non-zero seed.
    fn custom_secret(seed: u64) -> [u8; SECRET_SIZE] {
        let mut s = [0u8; SECRET_SIZE];
        for i in 0..SECRET_SIZE / 16 {
            s[16 * i..16 * i + 8].copy_from_slice(&rd64(&SECRET, 16 * i).wrapping_add(seed).to_le_bytes());
            s[16 * i + 8..16 * i + 16].copy_from_slice(&rd64(&SECRET, 16 * i + 8).wrapping_sub(seed).to_le_bytes());
        }
        s
    }

    fn mul128_fold64(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }

    fn merge(acc: &[u64; 8], secret: &[u8], start: u64) -> u64 {
        let mut r = start;
        for i in 0..4 {
            r = r.wrapping_add(mul128_fold64(acc[2 * i] ^ rd64(secret, 16 * i), acc[2 * i + 1] ^ rd64(secret, 16 * i + 8)));
        }
        r ^= r >> 37;
        r = r.wrapping_mul(0x1656_6791_9E37_79F9);
        r ^ (r >> 32)
    }

    /// XXH3-64 of `data` (more than 240 bytes) when a SIMD kernel runs here; None otherwise.
    pub fn hash(data: &[u8], seed: u64) -> Option<u64> {
        debug_assert!(data.len() > 240);
        #[cfg(target_arch = "x86_64")]
        {
            let custom;
            let secret = if seed == 0 {
                &SECRET
            } else {
                custom = custom_secret(seed);
                &custom
            };
            let acc = if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above); the kernel reads
                // only inside `data` and `secret` (len > 240 >= one stripe).
                unsafe { x86::long_avx512(data, secret) }
            } else if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above); `data.len() > 240 >= 64`, the
                // kernel's only other precondition, so its reads stay inside `data` and `secret`.
                unsafe { x86::long_avx2(data, secret) }
            } else {
                return None;
            };
            Some(merge(&acc, &secret[11..], (data.len() as u64).wrapping_mul(P64_1)))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (data, seed);
            None
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::*;
        use std::arch::x86_64::*;

        /// The stripe/scramble loop of XXH3_hashLong with one 512-bit accumulator.
        ///
        /// # Safety
        /// The CPU must support AVX-512F; `data.len() >= 64`.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn long_avx512(data: &[u8], secret: &[u8; SECRET_SIZE]) -> [u64; 8] {
            let len = data.len();
            let p = data.as_ptr();
            let s = secret.as_ptr();
            let prime = _mm512_set1_epi32(P32_1 as i32);
            let mut acc = _mm512_loadu_si512(INIT_ACC.as_ptr() as *const _);
            // One stripe's contribution: (d ^ k).lo32 * (d ^ k).hi32 + d with its lanes swapped.
            macro_rules! term {
                ($inp:expr, $sec:expr) => {{
                    let d = _mm512_loadu_si512($inp as *const _);
                    let k = _mm512_loadu_si512($sec as *const _);
                    let dk = _mm512_xor_si512(d, k);
                    _mm512_add_epi64(_mm512_mul_epu32(dk, _mm512_srli_epi64::<32>(dk)), _mm512_shuffle_epi32::<0x4E>(d))
                }};
            }
            macro_rules! stripe {
                ($inp:expr, $sec:expr) => {{
                    acc = _mm512_add_epi64(acc, term!($inp, $sec));
                }};
            }
            let nb_blocks = (len - 1) / BLOCK;
            for n in 0..nb_blocks {
                let b = p.add(n * BLOCK);
                // The additions commute (wrapping u64 lanes): four partial sums keep the
                // chain through `acc` short, as the C compilers' unrolling does.
                let zero = _mm512_setzero_si512();
                let (mut s0, mut s1, mut s2, mut s3) = (acc, zero, zero, zero);
                for i in (0..STRIPES_PER_BLOCK).step_by(4) {
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH + 64) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH + 128) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH + 192) as *const i8);
                    s0 = _mm512_add_epi64(s0, term!(b.add(i * STRIPE), s.add(i * 8)));
                    s1 = _mm512_add_epi64(s1, term!(b.add((i + 1) * STRIPE), s.add((i + 1) * 8)));
                    s2 = _mm512_add_epi64(s2, term!(b.add((i + 2) * STRIPE), s.add((i + 2) * 8)));
                    s3 = _mm512_add_epi64(s3, term!(b.add((i + 3) * STRIPE), s.add((i + 3) * 8)));
                }
                acc = _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3));
                // scramble
                let k = _mm512_loadu_si512(s.add(SECRET_SIZE - STRIPE) as *const _);
                let a = _mm512_xor_si512(acc, _mm512_srli_epi64::<47>(acc));
                let dk = _mm512_xor_si512(a, k);
                let lo = _mm512_mul_epu32(dk, prime);
                let hi = _mm512_mul_epu32(_mm512_srli_epi64::<32>(dk), prime);
                acc = _mm512_add_epi64(lo, _mm512_slli_epi64::<32>(hi));
            }
            let b = p.add(nb_blocks * BLOCK);
            let nb_stripes = ((len - 1) - BLOCK * nb_blocks) / STRIPE;
            let mut s1 = _mm512_setzero_si512();
            let mut i = 0;
            while i + 1 < nb_stripes {
                stripe!(b.add(i * STRIPE), s.add(i * 8));
                s1 = _mm512_add_epi64(s1, term!(b.add((i + 1) * STRIPE), s.add((i + 1) * 8)));
                i += 2;
            }
            if i < nb_stripes {
                stripe!(b.add(i * STRIPE), s.add(i * 8));
            }
            stripe!(p.add(len - STRIPE), s.add(SECRET_SIZE - STRIPE - 7));
            acc = _mm512_add_epi64(acc, s1);
            let mut out = [0u64; 8];
            _mm512_storeu_si512(out.as_mut_ptr() as *mut _, acc);
            out
        }

        /// The same loop with two 256-bit accumulators.
        ///
        /// # Safety
        /// The CPU must support AVX2; `data.len() >= 64`.
        #[target_feature(enable = "avx2")]
        pub unsafe fn long_avx2(data: &[u8], secret: &[u8; SECRET_SIZE]) -> [u64; 8] {
            let len = data.len();
            let p = data.as_ptr();
            let s = secret.as_ptr();
            let prime = _mm256_set1_epi32(P32_1 as i32);
            let mut a0 = _mm256_loadu_si256(INIT_ACC.as_ptr() as *const _);
            let mut a1 = _mm256_loadu_si256(INIT_ACC.as_ptr().add(4) as *const _);
            macro_rules! term {
                ($inp:expr, $sec:expr) => {{
                    let d = _mm256_loadu_si256($inp as *const _);
                    let k = _mm256_loadu_si256($sec as *const _);
                    let dk = _mm256_xor_si256(d, k);
                    _mm256_add_epi64(_mm256_mul_epu32(dk, _mm256_srli_epi64::<32>(dk)), _mm256_shuffle_epi32::<0x4E>(d))
                }};
            }
            macro_rules! half {
                ($acc:ident, $inp:expr, $sec:expr) => {{
                    $acc = _mm256_add_epi64($acc, term!($inp, $sec));
                }};
            }
            macro_rules! stripe {
                ($inp:expr, $sec:expr) => {{
                    let (i, k) = ($inp, $sec);
                    half!(a0, i, k);
                    half!(a1, i.add(32), k.add(32));
                }};
            }
            macro_rules! scramble {
                ($acc:ident, $sec:expr) => {{
                    let k = _mm256_loadu_si256($sec as *const _);
                    let a = _mm256_xor_si256($acc, _mm256_srli_epi64::<47>($acc));
                    let dk = _mm256_xor_si256(a, k);
                    let lo = _mm256_mul_epu32(dk, prime);
                    let hi = _mm256_mul_epu32(_mm256_srli_epi64::<32>(dk), prime);
                    $acc = _mm256_add_epi64(lo, _mm256_slli_epi64::<32>(hi));
                }};
            }
            let nb_blocks = (len - 1) / BLOCK;
            for n in 0..nb_blocks {
                let b = p.add(n * BLOCK);
                let zero = _mm256_setzero_si256();
                let (mut x0, mut x1, mut y0, mut y1) = (a0, a1, zero, zero);
                for i in (0..STRIPES_PER_BLOCK).step_by(2) {
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(i * STRIPE + PREFETCH + 64) as *const i8);
                    let (i0, k0) = (b.add(i * STRIPE), s.add(i * 8));
                    let (i1, k1) = (b.add((i + 1) * STRIPE), s.add((i + 1) * 8));
                    x0 = _mm256_add_epi64(x0, term!(i0, k0));
                    x1 = _mm256_add_epi64(x1, term!(i0.add(32), k0.add(32)));
                    y0 = _mm256_add_epi64(y0, term!(i1, k1));
                    y1 = _mm256_add_epi64(y1, term!(i1.add(32), k1.add(32)));
                }
                a0 = _mm256_add_epi64(x0, y0);
                a1 = _mm256_add_epi64(x1, y1);
                scramble!(a0, s.add(SECRET_SIZE - STRIPE));
                scramble!(a1, s.add(SECRET_SIZE - STRIPE + 32));
            }
            let b = p.add(nb_blocks * BLOCK);
            let nb_stripes = ((len - 1) - BLOCK * nb_blocks) / STRIPE;
            for i in 0..nb_stripes {
                stripe!(b.add(i * STRIPE), s.add(i * 8));
            }
            stripe!(p.add(len - STRIPE), s.add(SECRET_SIZE - STRIPE - 7));
            let mut out = [0u64; 8];
            _mm256_storeu_si256(out.as_mut_ptr() as *mut _, a0);
            _mm256_storeu_si256(out.as_mut_ptr().add(4) as *mut _, a1);
            out
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn input(n: usize) -> Vec<u8> {
            (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
        }

        #[test]
        fn matches_twox_hash_at_every_length_and_seed() {
            let big = input(20_000);
            for n in (241..4200).chain([8191, 8192, 8193, 10_000, 19_999, 20_000]) {
                for seed in [0u64, 1, 0xdead_beef_1234_5678, u64::MAX] {
                    let want = twox_hash::XxHash3_64::oneshot_with_seed(seed, &big[..n]);
                    if let Some(h) = hash(&big[..n], seed) {
                        assert_eq!(h, want, "n={n} seed={seed:#x}");
                    }
                    assert_eq!(crate::hash::xxh3(&big[..n], seed), want, "n={n} seed={seed:#x}");
                }
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[test]
        fn both_kernels_agree_with_twox_hash() {
            let big = input(9_000);
            for n in (241..2200).chain([4096, 8999, 9000]) {
                for seed in [0u64, 42] {
                    let secret = if seed == 0 { SECRET } else { custom_secret(seed) };
                    let want = twox_hash::XxHash3_64::oneshot_with_seed(seed, &big[..n]);
                    let fin = |acc: [u64; 8]| merge(&acc, &secret[11..], (n as u64).wrapping_mul(P64_1));
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: AVX2 is present (checked just above); n > 240 >= 64, the
                        // kernel's length precondition, and `secret` is a full SECRET_SIZE array.
                        assert_eq!(fin(unsafe { x86::long_avx2(&big[..n], &secret) }), want, "avx2 n={n}");
                    }
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        // SAFETY: AVX-512F is present (checked just above); n > 240 >= 64, the
                        // kernel's length precondition, and `secret` is a full SECRET_SIZE array.
                        assert_eq!(fin(unsafe { x86::long_avx512(&big[..n], &secret) }), want, "avx512 n={n}");
                    }
                }
            }
        }
    }
}
