//! String interning: one process-wide, thread-safe table (lasso
//! `ThreadedRodeo`). `rt_intern_string` maps a text to a small int symbol
//! (0, 1, 2... in order of first appearance; equal texts give equal symbols,
//! from any thread and any library); `rt_intern_resolve` maps it back.
//! Interned strings live until the process exits.
//!
//! Resolving returns the same string value every time: beside the rodeo, a
//! lock-free append-only table holds one pinned text value per symbol, so a
//! resolve is two atomic loads and no allocation.

use ffi_sdk::prelude::*;
use lasso::{Key, Spur, ThreadedRodeo};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Slots in chunk `c`: 64 << c. 27 chunks cover every `Spur` (u32 keys).
const FIRST: usize = 64;
const CHUNKS: usize = 27;

/// Symbol -> pinned text value (raw word; 0 = not filled yet).
struct Texts {
    chunks: [AtomicPtr<AtomicU64>; CHUNKS],
    grow: Mutex<()>,
}

#[inline]
fn slot_of(idx: usize) -> (usize, usize) {
    let n = idx + FIRST;
    let bit = usize::BITS as usize - 1 - n.leading_zeros() as usize;
    (bit - FIRST.trailing_zeros() as usize, n - (1 << bit))
}

impl Texts {
    fn new() -> Texts {
        Texts { chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())), grow: Mutex::new(()) }
    }

    #[inline]
    fn get(&self, idx: usize) -> Option<Value> {
        let (c, off) = slot_of(idx);
        let chunk = self.chunks.get(c)?.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: a non-NULL chunk `c` is a leaked `Box<[AtomicU64]>` of `FIRST << c` slots
        // (published with Release, read with Acquire, never freed), and `slot_of` gives
        // `off < FIRST << c`; the slot is an atomic, so a shared access is race-free.
        let w = unsafe { (*chunk.add(off)).load(Ordering::Acquire) };
        (w != 0).then(|| Value::from_raw(w))
    }

    /// Fills slot `idx` with a pinned copy of `s` unless it is filled already.
    #[cold]
    fn fill(&self, idx: usize, s: &str) -> Value {
        let (c, off) = slot_of(idx);
        let _g = self.grow.lock();
        let mut chunk = self.chunks[c].load(Ordering::Acquire);
        if chunk.is_null() {
            let n = FIRST << c;
            let b: Box<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
            chunk = Box::into_raw(b) as *mut AtomicU64;
            self.chunks[c].store(chunk, Ordering::Release);
        }
        // SAFETY: `chunk` is chunk `c` (just made with `FIRST << c` slots or loaded non-NULL),
        // leaked for the process lifetime, and `off < FIRST << c` by `slot_of`; a shared
        // reference to an atomic slot is fine while other threads read it.
        let slot = unsafe { &*chunk.add(off) };
        let w = slot.load(Ordering::Acquire);
        if w != 0 {
            return Value::from_raw(w);
        }
        let v = Value::text(s);
        // Pinned for the life of the process, like the interned string itself.
        std::mem::forget(Root::new(v));
        slot.store(v.raw(), Ordering::Release);
        v
    }
}

struct Interner {
    rodeo: ThreadedRodeo<Spur>,
    texts: Texts,
}

fn interner() -> &'static Interner {
    static I: OnceLock<Interner> = OnceLock::new();
    I.get_or_init(|| Interner { rodeo: ThreadedRodeo::new(), texts: Texts::new() })
}

/// Interns `text`: the same small int symbol for equal texts, process-wide (thread-safe).
///
/// # Errors
/// - LimitExceeded: the interner is full
///
/// # Example
/// rt_intern_string("simple") -> a symbol (small int); rt_intern_resolve of it -> "simple"
#[rt_fn(tier = "verified")]
pub fn rt_intern_string(text: &str) -> RtResult<i64> {
    let i = interner();
    let key = i
        .rodeo
        .try_get_or_intern(text)
        .map_err(|e| Error::new(Code::LimitExceeded, FN, format!("interner is full: {e}"), ffi_sdk::error::quote(text)))?;
    let idx = key.into_usize();
    if i.texts.get(idx).is_none() {
        i.texts.fill(idx, text);
    }
    Ok(idx as i64)
}

/// The text of an interned symbol.
///
/// # Errors
/// - NotFound: `symbol` was never returned by rt_intern_string
///
/// # Example
/// rt_intern_resolve(rt_intern_string("simple")) -> "simple"
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_intern_resolve(symbol: i64) -> RtResult<Value> {
    let i = interner();
    let not_found = || Error::not_found(FN, "unknown symbol", symbol);
    let idx = usize::try_from(symbol).map_err(|_| not_found())?;
    if let Some(v) = i.texts.get(idx) {
        return Ok(v);
    }
    // Interned by a call still in flight on another thread: fill its slot here.
    let key = Spur::try_from_usize(idx).ok_or_else(not_found)?;
    match i.rodeo.try_resolve(&key) {
        Some(s) => Ok(i.texts.fill(idx, s)),
        None => Err(not_found()),
    }
}
