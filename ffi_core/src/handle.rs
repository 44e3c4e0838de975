//! Handles: native resources behind values (SPEC §2, §4). Close is
//! idempotent; use after close is Error Closed; the collector closes
//! unreachable handles on the finalizer thread.

use crate::gc;
use ffi_sdk::lock::lock;
use crate::value::{new_obj, oom, word};
use ffi_sdk::abi::{self, HandleObj, HandleVTable, Header, RtValue};
use ffi_sdk::prelude::*;

/// Internal: a handle owning one reference to `data`.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_new(vt: *const HandleVTable, data: *const ()) -> RtValue {
    let o = new_obj(abi::HK_HANDLE, std::mem::size_of::<HandleObj>(), false);
    if o.is_null() {
        ((*vt).release)(data);
        return oom("rt_handle_new", 56);
    }
    let h = o as *mut HandleObj;
    (*h).vt = vt;
    (*h).data = data;
    (*h).closed = 0;
    gc::register_finalizer(o as *mut u8, finalize);
    word(o)
}

unsafe extern "C" fn finalize(obj: *mut libc::c_void, _cd: *mut libc::c_void) {
    let _ = std::panic::catch_unwind(|| close(obj as *mut HandleObj));
}

/// Takes the resource out under the lock and releases it outside: 0 closed now, 3 already closed.
unsafe fn close(h: *mut HandleObj) -> u32 {
    let (vt, data) = {
        let _g = lock(h as *mut Header);
        if (*h).closed != 0 {
            return 3;
        }
        (*h).closed = 1;
        let d = (*h).data;
        (*h).data = std::ptr::null();
        ((*h).vt, d)
    };
    if !data.is_null() {
        ((*vt).release)(data);
    }
    0
}

unsafe fn handle_obj(v: RtValue) -> Option<*mut HandleObj> {
    if abi::heap_kind(v) == abi::HK_HANDLE {
        Some(abi::heap_ptr(v) as *mut HandleObj)
    } else {
        None
    }
}

/// Internal: a new owner of a handle's data: 0 ok, 1 not a handle, 2 other type, 3 closed.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_acquire(v: RtValue, name: *const u8, n: usize, out: *mut *const ()) -> u32 {
    let Some(h) = handle_obj(v) else { return 1 };
    let want = std::slice::from_raw_parts(name, n);
    let _g = lock(h as *mut Header);
    if (*(*h).vt).type_name.as_bytes() != want {
        return 2;
    }
    if (*h).closed != 0 {
        return 3;
    }
    ((*(*h).vt).acquire)((*h).data);
    *out = (*h).data;
    0
}

/// Internal: closes a handle: 0 closed now, 1 not a handle, 3 already closed.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_close(v: RtValue) -> u32 {
    match handle_obj(v) {
        Some(h) => close(h),
        None => 1,
    }
}

/// Closes any handle now (releases its resource once calls in flight return); true if it was open, false if already closed.
#[rt_fn(tier = "verified")]
pub fn rt_handle_close(handle: Value) -> RtResult<bool> {
    match unsafe { rt__handle_close(handle.raw()) } {
        0 => Ok(true),
        3 => Ok(false),
        _ => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}

/// The type name of a handle (`Regex`, `FileLock`, `Child`, ...).
#[rt_fn(tier = "verified")]
pub fn rt_handle_type(handle: Value) -> RtResult<String> {
    match unsafe { handle_obj(handle.raw()) } {
        Some(h) => Ok(unsafe { (*(*h).vt).type_name.to_string() }),
        None => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}

/// Whether a handle is still open.
#[rt_fn(tier = "verified")]
pub fn rt_handle_is_open(handle: Value) -> RtResult<bool> {
    match unsafe { handle_obj(handle.raw()) } {
        Some(h) => unsafe {
            let _g = lock(h as *mut Header);
            Ok((*h).closed == 0)
        },
        None => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}
