//! Pins (SPEC §4): a pinned object is referenced from an uncollectable cell,
//! so the collector keeps it while a host or Rust structure holds it. Pins
//! are counted in the object header; immediates need none.

use crate::gc;
use ffi_sdk::lock::lock;
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::rt_host;

/// Keeps a value alive while memory the collector cannot see holds it (counted; no-op on immediates).
#[rt_host(tier = "verified")]
pub fn rt_value_pin(v: RtValue) {
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return;
    }
    unsafe {
        let _g = lock(h);
        if (*h).pins == 0 {
            let cell = gc::alloc_root_cell();
            if cell.is_null() {
                return;
            }
            *cell = v;
            (*h).pin_cell = cell;
        }
        (*h).pins = (*h).pins.saturating_add(1);
    }
}

/// Drops one pin; the last unpin lets the collector reclaim the value when unreachable.
#[rt_host(tier = "verified")]
pub fn rt_value_unpin(v: RtValue) {
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return;
    }
    unsafe {
        let _g = lock(h);
        if (*h).pins == 0 {
            return;
        }
        (*h).pins -= 1;
        if (*h).pins == 0 && !(*h).pin_cell.is_null() {
            gc::free((*h).pin_cell as *mut u8);
            (*h).pin_cell = std::ptr::null_mut();
        }
    }
}

/// Number of pins on a value (0 for immediates).
#[rt_host]
pub fn rt_value_pin_count(v: RtValue) -> u32 {
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return 0;
    }
    unsafe {
        let _g = lock(h);
        (*h).pins
    }
}
