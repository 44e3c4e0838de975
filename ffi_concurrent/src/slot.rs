//! A value held in Rust-owned memory: pinned while held (SPEC §4).
//!
//! A value handed out of a slot (received, joined, read under a lock) is
//! from then on, or once its pin drops, seen by the collector only on the
//! receiving thread's stack: so that thread is registered with the collector
//! first ([`hand_out`]). Registration otherwise happens on a thread's first
//! allocation, and a thread that only receives values (a consumer that never
//! allocates) would hold them unseen: a collection could reclaim a value it
//! is reading (`tests/stress.rs`, `a_receiver_that_never_allocated_keeps_its_values`).

use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::Value;

/// One value kept where the collector cannot see it (a channel buffer, a
/// mutex, a thread's argument or result): pinned on entry, unpinned when
/// taken out or dropped. Immediates need no pin.
pub struct Slot(RtValue);

// SAFETY: a slot is an immediate or a pinned heap word: the pin (a count in the collector's
// pin table, thread-safe) keeps the object alive whatever thread holds the slot, and a thread
// that reads the value out is registered first (`hand_out`). The word itself is plain data.
unsafe impl Send for Slot {}
// SAFETY: `&Slot` only gives `get` (a copy of the word, after `hand_out` registers the reader);
// nothing is mutated through a shared slot.
unsafe impl Sync for Slot {}

#[inline]
fn is_heap(w: RtValue) -> bool {
    w & abi::TAG_MASK == abi::TAG_HEAP
}

impl Slot {
    #[inline]
    pub fn new(v: Value) -> Slot {
        let w = v.raw();
        if is_heap(w) && protect() {
            // SAFETY: `Value` contract: `w` is a live runtime heap word, kept reachable by the
            // caller (its argument) until the pin is taken here; the pin table is thread-safe.
            unsafe { abi::rt_value_pin(w) };
        }
        Slot(w)
    }
    /// Hands the word over still pinned (to a container of raw words, the
    /// ring of a bounded channel); [`Slot::from_raw`] takes it back.
    #[inline]
    pub fn into_raw(self) -> RtValue {
        let w = self.0;
        std::mem::forget(self);
        w
    }
    /// A slot for a word from [`Slot::into_raw`].
    ///
    /// # Safety
    /// `w` came from `into_raw` and is taken back once.
    #[inline]
    pub unsafe fn from_raw(w: RtValue) -> Slot {
        Slot(w)
    }
    /// The value (still held here), for the calling thread (registered first, [`hand_out`]).
    #[inline]
    pub fn get(&self) -> Value {
        hand_out(self.0);
        Value::from_raw(self.0)
    }
    /// Takes the value out: the caller's stack holds it from now on (the
    /// thread is registered before the pin drops, [`hand_out`]).
    #[inline]
    pub fn take(self) -> Value {
        hand_out(self.0);
        let v = Value::from_raw(self.0);
        drop(self);
        std::hint::black_box(v)
    }
}

impl Drop for Slot {
    #[inline]
    fn drop(&mut self) {
        if is_heap(self.0) && protect() {
            // SAFETY: `Slot::new` pinned this heap word once (same `protect()`, read once per
            // process), and the slot is dropped once (`into_raw` forgets it instead, `from_raw`
            // takes that pin back): this drops exactly that pin.
            unsafe { abi::rt_value_unpin(self.0) };
        }
    }
}

/// Registers the calling thread with the collector (if it is not yet) before
/// it holds heap value `w` on its stack; immediates need nothing. One
/// thread-local check once registered.
#[inline]
pub fn hand_out(w: RtValue) {
    if is_heap(w) {
        // SAFETY: core's `void rt__thread_enter(void)`: no arguments; registers the calling
        // thread with the collector if it is not yet, from any thread.
        unsafe { abi::rt__thread_enter() };
    }
}

/// Whether slots pin. Always in release builds. Debug builds (the tests)
/// honour `SIMPLE_RT_TEST_UNPROTECTED=1`, read once: the control run of the
/// collector stress test, which shows values are lost without the pins.
#[inline]
pub fn protect() -> bool {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static P: OnceLock<bool> = OnceLock::new();
        *P.get_or_init(|| std::env::var_os("SIMPLE_RT_TEST_UNPROTECTED").is_none_or(|v| v != "1"))
    }
    #[cfg(not(debug_assertions))]
    {
        true
    }
}
