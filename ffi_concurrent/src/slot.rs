//! A value held in Rust-owned memory: pinned while held (SPEC §4).

use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::Value;

/// One value kept where the collector cannot see it (a channel buffer, a
/// mutex, a thread's argument or result): pinned on entry, unpinned when
/// taken out or dropped. Immediates need no pin.
pub struct Slot(RtValue);

unsafe impl Send for Slot {}
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
            unsafe { abi::rt_value_pin(w) };
        }
        Slot(w)
    }
    /// The value (still held here).
    #[inline]
    pub fn get(&self) -> Value {
        Value::from_raw(self.0)
    }
    /// Takes the value out: the caller's stack holds it from now on.
    #[inline]
    pub fn take(self) -> Value {
        let v = Value::from_raw(self.0);
        drop(self);
        std::hint::black_box(v)
    }
}

impl Drop for Slot {
    #[inline]
    fn drop(&mut self) {
        if is_heap(self.0) && protect() {
            unsafe { abi::rt_value_unpin(self.0) };
        }
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
