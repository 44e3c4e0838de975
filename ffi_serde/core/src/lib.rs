//! ffi_serde_core: the JSON reader and writer of `ffi_serde`, generic over
//! what they build and what they read, so that one parser and one writer
//! serve every host:
//!
//! - [`read::Reader`] parses JSON text and hands each value to a
//!   [`read::Sink`]: `ffi_serde` builds runtime values (`rt_json_parse`), the
//!   Python extension (`bindings/python`) builds Python objects directly
//!   (no runtime value in between). Grammar, limits, error wording and
//!   positions are the reader's, so both give the same results and errors.
//! - [`write::Writer`] writes JSON text from any [`write::Tree`]: runtime
//!   values (`rt_json_stringify`) or Python objects, byte for byte the same.
//!
//! This crate holds no state and exports no functions (no registry
//! entries), so it can be linked into any library or extension.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod read;
pub mod rt;
pub mod write;

use ffi_sdk::error::quote;
use ffi_sdk::{Code, Error};

/// Deepest nesting of arrays and dicts any format reads or writes: 127 levels,
/// what serde_json accepts (its recursion limit of 128 counts the level that
/// fails). A deeper document or value is Error
/// LimitExceeded, never a stack overflow.
pub const MAX_DEPTH: usize = 127;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Json,
    Toml,
    Yaml,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
        }
    }
}

/// What parsing does with an integer outside the 64-bit range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BigInt {
    /// The nearest float (like JavaScript); the default.
    Float,
    /// Its decimal text.
    Text,
    /// Error OutOfRange.
    Error,
}

impl BigInt {
    pub fn from_opt(func: &'static str, s: Option<&str>) -> ffi_sdk::RtResult<BigInt> {
        match s {
            None | Some("float") => Ok(BigInt::Float),
            Some("text") => Ok(BigInt::Text),
            Some("error") => Ok(BigInt::Error),
            Some(other) => Err(Error::invalid(func, "option bigint must be \"float\", \"text\" or \"error\"", quote(other))),
        }
    }
}

/// Error Parse `func: invalid FMT: what at line L column C` with line/column/position details.
pub fn parse_error(func: &'static str, fmt: Format, what: &str, line: usize, col: usize, pos: usize) -> Error {
    Error::plain(Code::Parse, func, format!("invalid {}: {what} at line {line} column {col}", fmt.name()))
        .with("line", line)
        .with("column", col)
        .with("position", pos)
}

/// Whether `s` is written as `.name` in a path (else `["name"]`).
pub fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Appends the path segment of a text key: `.name` or `["odd key"]`.
pub fn push_text_segment(out: &mut String, t: &str) {
    if is_ident(t) {
        out.push('.');
        out.push_str(t);
    } else {
        out.push('[');
        out.push_str(&write::quote(t));
        out.push(']');
    }
}

/// A float key's text (shortest round trip, as JSON writes floats); None for NaN and infinities.
pub fn float_key(f: f64) -> Option<String> {
    f.is_finite().then(|| zmij::Buffer::new().format_finite(f).to_string())
}

// ------------------------------------------------------------ byte helpers

/// Eight bytes of `s` from `p` (little-endian word); panics unless `p + 8 <= s.len()`.
/// Bounds-checked (the check folds away in the callers' `while p + 8 <= n` loops):
/// this is a safe public function, so it cannot rely on its callers for bounds.
#[inline(always)]
pub fn read_u64(s: &[u8], p: usize) -> u64 {
    match s[p..].first_chunk::<8>() {
        Some(b) => u64::from_le_bytes(*b),
        None => panic!("read_u64: {p} + 8 past {}", s.len()),
    }
}

/// Bytes `i..` of `s` (fewer than 8) in the low end of a word, the rest zero; read in bounds.
#[inline(always)]
pub fn tail_word(s: &[u8], i: usize) -> u64 {
    let n = s.len();
    // Checked in release too: this safe public function's loads below rely on it.
    assert!(i < n && n - i < 8, "tail_word: {i} not within the last 7 bytes of {n}");
    let r = n - i;
    if n >= 8 {
        return read_u64(s, n - 8) >> (8 * (8 - r));
    }
    // The whole string is shorter than a word: two overlapping loads inside `i..n`.
    // SAFETY: `i < n` (asserted above), so `p` points inside the slice.
    let p = unsafe { s.as_ptr().add(i) };
    // SAFETY: `r = n - i` is 1..=7 (asserted), and each branch's loads cover bytes
    // `i..i + w` and `i + r - w..i + r` for a width `w <= r`, all within `s[i..n]`;
    // `read_unaligned` needs no alignment.
    unsafe {
        if r >= 4 {
            let lo = (p as *const u32).read_unaligned() as u64;
            let hi = (p.add(r - 4) as *const u32).read_unaligned() as u64;
            lo | (hi << (8 * (r - 4)))
        } else if r >= 2 {
            let lo = (p as *const u16).read_unaligned() as u64;
            let hi = (p.add(r - 2) as *const u16).read_unaligned() as u64;
            lo | (hi << (8 * (r - 2)))
        } else {
            *p as u64
        }
    }
}

/// Whether two short byte strings are equal (word compares, no call).
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let mut i = 0;
    while i + 8 <= n {
        if read_u64(a, i) != read_u64(b, i) {
            return false;
        }
        i += 8;
    }
    i == n || tail_word(a, i) == tail_word(b, i)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lowest byte of `w` that is `"`, `\` or below 0x20
/// (bits above the lowest match may be set spuriously; only the lowest is used).
#[inline(always)]
pub fn special(w: u64) -> u64 {
    let q = w ^ (ONES * b'"' as u64);
    let b = w ^ (ONES * b'\\' as u64);
    let zq = q.wrapping_sub(ONES) & !q;
    let zb = b.wrapping_sub(ONES) & !b;
    let ctl = w.wrapping_sub(ONES * 0x20) & !w;
    (zq | zb | ctl) & HIGHS
}

/// A 64-bit hash of a key's bytes (for key caches and duplicate checks).
#[inline]
pub fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut i = 0;
    while i + 8 <= b.len() {
        h = (h.rotate_left(5) ^ read_u64(b, i)).wrapping_mul(K);
        i += 8;
    }
    if i < b.len() {
        h = (h.rotate_left(5) ^ tail_word(b, i)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}
