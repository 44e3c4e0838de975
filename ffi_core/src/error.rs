//! Error values: stable code, message naming the function and input, details.

use crate::value::{new_obj, oom, word};
use ffi_sdk::abi::{self, ErrorObj, RtValue};
use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;

unsafe fn make(code: u32, message: RtValue, details: RtValue) -> RtValue {
    let o = new_obj(abi::HK_ERROR, std::mem::size_of::<ErrorObj>(), false);
    if o.is_null() {
        return oom("rt_error_new", 48);
    }
    let e = o as *mut ErrorObj;
    (*e).code = code;
    (*e).message = message;
    (*e).details = details;
    word(o)
}

/// Internal: an Error value from a code, UTF-8 message bytes and details.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__error_make(code: u32, msg: *const u8, n: usize, details: RtValue) -> RtValue {
    let m = crate::value::rt__string_new_unchecked(msg, n);
    make(code, m, details)
}

/// An Error with `code` (see RT_ERR_*; hosts may use their own codes above 1000) and a text `message`.
#[rt_host(tier = "verified")]
pub fn rt_error_new(code: u32, message: RtValue) -> RtValue {
    if code == 0 {
        return Error::invalid("rt_error_new", "code 0 means no error", code).into_value().raw();
    }
    if Value::from_raw(message).as_text().is_none() {
        return ffi_sdk::args::kind_error("rt_error_new", 1, "message", "text", Value::from_raw(message))
            .into_value()
            .raw();
    }
    unsafe { make(code, message, abi::NIL) }
}

fn error_obj(v: RtValue) -> Option<*const ErrorObj> {
    if unsafe { abi::heap_kind(v) } == abi::HK_ERROR {
        Some(unsafe { abi::heap_ptr(v) } as *const ErrorObj)
    } else {
        None
    }
}

/// The code of an Error; 0 when `v` is not an Error.
#[rt_host(tier = "verified")]
pub fn rt_error_code(v: RtValue) -> u32 {
    error_obj(v).map_or(0, |e| unsafe { (*e).code })
}

/// Static name of a code ("CapabilityDenied"); "Unknown" for codes not in the table.
#[rt_host(tier = "verified")]
pub fn rt_error_name(code: u32) -> *const libc::c_char {
    static NAMES: [&[u8]; 20] = [
        b"None\0",
        b"InvalidArgument\0",
        b"TypeMismatch\0",
        b"NotFound\0",
        b"AlreadyExists\0",
        b"PermissionDenied\0",
        b"CapabilityDenied\0",
        b"Timeout\0",
        b"Io\0",
        b"Parse\0",
        b"Unsupported\0",
        b"Closed\0",
        b"Panic\0",
        b"Internal\0",
        b"OutOfRange\0",
        b"LimitExceeded\0",
        b"Busy\0",
        b"Interrupted\0",
        b"Cancelled\0",
        b"Unknown\0",
    ];
    let i = (code as usize).min(NAMES.len() - 1);
    debug_assert!(Code::ALL.iter().all(|c| NAMES[*c as usize].starts_with(c.name().as_bytes())));
    NAMES[i].as_ptr() as *const libc::c_char
}

/// The message (text) of an Error; Error TypeMismatch when `v` is not one.
#[rt_host(tier = "verified")]
pub fn rt_error_message(v: RtValue) -> RtValue {
    match error_obj(v) {
        Some(e) => unsafe { (*e).message },
        None => ffi_sdk::args::kind_error("rt_error_message", 0, "error", "error", Value::from_raw(v))
            .into_value()
            .raw(),
    }
}

/// The details dict of an Error (errno, path, line, column, ...), or nil.
#[rt_host(tier = "verified")]
pub fn rt_error_details(v: RtValue) -> RtValue {
    error_obj(v).map_or(abi::NIL, |e| unsafe { (*e).details })
}
