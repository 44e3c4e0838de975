//! Streaming hashers behind handles: feed data in pieces, so large inputs
//! never have to be one value.
//!
//! `rt_hasher_new("sha256")` -> handle; `rt_hasher_update(h, data)` any number
//! of times; `rt_hasher_finish(h)` -> the same result the one-shot function
//! gives for the concatenated data. After finish the hasher is done: finishing
//! again returns the same result, updating again is Error Closed.

use ffi_sdk::prelude::*;
use sha1::Digest as _;
use std::hash::Hasher as _;
use std::sync::Mutex;

/// Algorithms a hasher can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha1,
    Xxh64,
    Xxh3,
}

impl Algorithm {
    pub const NAMES: &'static str = "sha256, sha1, xxh64, xxh3";
    pub fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Algorithm::Sha256,
            "sha1" => Algorithm::Sha1,
            "xxh64" | "xxhash64" => Algorithm::Xxh64,
            "xxh3" | "xxhash3" | "xxh364" => Algorithm::Xxh3,
            _ => return None,
        })
    }
}

enum State {
    Sha256(ring::digest::Context),
    Sha1(Box<sha1::Sha1>),
    Xxh64(twox_hash::XxHash64),
    Xxh3(Box<twox_hash::XxHash3_64>),
    /// Finished: the raw digest (8 big-endian bytes for the xxHashes).
    Done(Vec<u8>),
}

/// A streaming hasher (handle type `Hasher`).
pub struct Hasher {
    alg: Algorithm,
    state: Mutex<State>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Hasher {
    const NAME: &'static str = "Hasher";
}

impl Hasher {
    pub fn new(alg: Algorithm, seed: u64) -> Hasher {
        let state = match alg {
            Algorithm::Sha256 => State::Sha256(ring::digest::Context::new(&ring::digest::SHA256)),
            Algorithm::Sha1 => State::Sha1(Box::default()),
            Algorithm::Xxh64 => State::Xxh64(twox_hash::XxHash64::with_seed(seed)),
            Algorithm::Xxh3 => State::Xxh3(Box::new(twox_hash::XxHash3_64::with_seed(seed))),
        };
        Hasher { alg, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock (caught at the boundary) leaves a usable state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `data`; false when the hasher is finished.
    pub fn update(&self, data: &[u8]) -> bool {
        match &mut *self.lock() {
            State::Sha256(c) => c.update(data),
            State::Sha1(h) => h.update(data),
            State::Xxh64(h) => h.write(data),
            State::Xxh3(h) => h.write(data),
            State::Done(_) => return false,
        }
        true
    }

    /// The raw digest; the first call finishes the hasher.
    pub fn finish(&self) -> Vec<u8> {
        let mut st = self.lock();
        let digest = match std::mem::replace(&mut *st, State::Done(Vec::new())) {
            State::Sha256(c) => c.finish().as_ref().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Xxh64(h) => h.finish().to_be_bytes().to_vec(),
            State::Xxh3(h) => h.finish().to_be_bytes().to_vec(),
            State::Done(d) => d,
        };
        *st = State::Done(digest.clone());
        digest
    }
}

/// A new streaming hasher for `algorithm` (sha256, sha1, xxh64, xxh3); option `seed` (int) for the xxHashes.
///
/// # Options
/// - seed (int): option `seed` (int) for the xxHashes
///
/// # Errors
/// - InvalidArgument: unknown algorithm (known: …); option seed applies only to xxh64 and xxh3; an unknown option, or an option of the wrong kind or range
#[rt_fn(tier = "verified", ret = "handle<Hasher>")]
pub fn rt_hasher_new(algorithm: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["seed"])?;
    let alg = Algorithm::parse(algorithm).ok_or_else(|| {
        Error::invalid(FN, format!("unknown algorithm (known: {})", Algorithm::NAMES), ffi_sdk::error::quote(algorithm))
    })?;
    let seed = opts.int("seed")?;
    if seed.is_some() && matches!(alg, Algorithm::Sha256 | Algorithm::Sha1) {
        return Err(Error::invalid(FN, "option seed applies only to xxh64 and xxh3", algorithm));
    }
    Ok(new_handle(Hasher::new(alg, seed.unwrap_or(0) as u64)))
}

/// Feeds bytes or text (its UTF-8) to a hasher; Error Closed once it is finished.
///
/// # Errors
/// - Closed: the hasher is finished; make a new one; `hasher` was closed
#[rt_fn(tier = "verified")]
pub fn rt_hasher_update(hasher: Handle<Hasher>, data: &[u8]) -> RtResult<()> {
    if hasher.update(data) {
        Ok(())
    } else {
        Err(Error::plain(Code::Closed, FN, "the hasher is finished; make a new one"))
    }
}

/// Finishes a hasher: hex text for sha256/sha1, int (unsigned 64-bit bits) for xxh64/xxh3.
///
/// Finishing again returns the same result; updating after finish is Error Closed.
///
/// # Errors
/// - Closed: `hasher` was closed
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_hasher_finish(hasher: Handle<Hasher>) -> Value {
    let d = hasher.finish();
    match hasher.alg {
        Algorithm::Sha256 | Algorithm::Sha1 => Value::text(&crate::sha::hex(&d)),
        Algorithm::Xxh64 | Algorithm::Xxh3 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d);
            Value::int(u64::from_be_bytes(b) as i64)
        }
    }
}

/// Finishes a hasher and returns the raw digest bytes (xxHashes: 8 bytes, big-endian as xxhsum prints).
///
/// # Errors
/// - Closed: `hasher` was closed
#[rt_fn(tier = "verified")]
pub fn rt_hasher_finish_bytes(hasher: Handle<Hasher>) -> Vec<u8> {
    hasher.finish()
}
