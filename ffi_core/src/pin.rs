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
    // SAFETY: `v` crosses the C boundary as a value made by this runtime or an immediate
    // (CONTRACT §2-3), which is `heap_ptr`'s precondition; it returns NULL for immediates.
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return;
    }
    // SAFETY: `h` is the non-NULL header of the live object `v` (the caller holds `v`,
    // and `h` itself is on this stack, which the collector scans). `pins` and `pin_cell`
    // are only touched under the header lock taken here. The root cell is a fresh 8-byte
    // uncollectable block, so writing `v` into it is in bounds and makes the collector
    // keep the object until the last unpin frees the cell.
    unsafe {
        let _g = lock(h);
        if (*h).pins == 0 {
            let cell = gc::alloc_root_cell();
            if cell.is_null() {
                // Out of memory with no way to report it (the function returns nothing, and a
                // host that goes on believing the value pinned would use it after it is freed):
                // abort as Rust's allocator does (CONTRACT §4).
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<RtValue>());
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
    // SAFETY: as in `rt_value_pin`: `v` is a runtime value or an immediate by contract.
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return;
    }
    // SAFETY: `h` is the live header of `v`, locked before `pins`/`pin_cell` are read or
    // written. `pin_cell` is non-NULL only between the first pin and the last unpin and
    // was allocated by `gc::alloc_root_cell`, so it is freed exactly once, here, and
    // cleared under the same lock.
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
    // SAFETY: as in `rt_value_pin`: `v` is a runtime value or an immediate by contract.
    let h = unsafe { abi::heap_ptr(v) };
    if h.is_null() {
        return 0;
    }
    // SAFETY: `h` is the live header of `v`; `pins` is read under its lock.
    unsafe {
        let _g = lock(h);
        (*h).pins
    }
}
