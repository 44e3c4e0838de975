//! ffi_crypto: SHA-1/SHA-256/SHA-512, SHA3-256, BLAKE3, HMAC, PBKDF2, CRC-32, base64,
//! random bytes and UUIDs, Ed25519, AES-256-GCM, bcrypt (Simple's names: `digest.rs` ... `password.rs`), xxHash64/XXH3, aHash, Argon2id password
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

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod aead;
pub mod argon2;
pub mod digest;
pub mod encode;
pub mod hash;
pub mod password;
pub mod random;
pub mod sha;
pub mod sign;
pub mod stream;
