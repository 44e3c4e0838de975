//! ffi_crypto: SHA-1/SHA-256, xxHash, aHash, Argon2id. Not built yet: no exports.
