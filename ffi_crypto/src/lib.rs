//! ffi_crypto: SHA-1/SHA-256 digests, xxHash64/XXH3, aHash, Argon2id password
//! hashing, and streaming hashers behind handles. Pure functions: no capability.
//!
//! Backends (chosen by measurement, see docs/bench/crypto.md):
//! - SHA-256: `ring::digest` — OpenSSL-derived assembly, picked at run time
//!   (SHA-NI, AVX, SSSE3 or portable), so it keeps pace with `openssl dgst`
//!   with and without SHA-NI.
//! - SHA-1: the `sha1` crate (SHA-NI at run time, else portable Rust).
//! - XXH3 / XXH64: `twox-hash` 2.x, whose XXH3 picks AVX2 / SSE2 at run time
//!   (`xxhash-rust` fixes its SIMD at compile time: SSE2 for the default target).
//! - aHash: `ahash` with fixed keys; Argon2: `argon2` (RustCrypto).

pub mod argon2;
pub mod hash;
pub mod sha;
pub mod stream;
