//! The per-object spin lock in every header (arrays, dicts, handles, pins):
//! the one lock protocol of the ABI, used by ffi_core and by readers here.
//! Critical sections are a few loads and stores, or one growth allocation
//! that never re-enters a lock.

use crate::abi::Header;
use std::sync::atomic::Ordering;

pub struct ObjGuard(*mut Header);

/// Locks the object whose header is at `h` (a live heap object).
///
/// # Safety
/// `h` is the header of a live runtime object.
#[inline]
pub unsafe fn lock(h: *mut Header) -> ObjGuard {
    let word = &(*h).lock;
    let mut spins = 0u32;
    while word.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    ObjGuard(h)
}

impl Drop for ObjGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: an ObjGuard is only made by `lock`, whose caller guaranteed `self.0` is the
        // header of a live object; the guard holding it is on the stack (scanned), so the
        // object is still alive here, and this releases the lock that `lock` acquired.
        unsafe { (*self.0).lock.store(0, Ordering::Release) };
    }
}
