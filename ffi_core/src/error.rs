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
    if trace::STATE.load(std::sync::atomic::Ordering::Relaxed) != trace::OFF {
        // SAFETY: `msg` is valid for `n` bytes (this function's contract).
        trace::record(code, unsafe { std::slice::from_raw_parts(msg, n) });
    }
    let m = crate::value::rt__string_new_unchecked(msg, n);
    make(code, m, details)
}

/// The opt-in error trace for `rt errors-check` (docs/CONTRACT.md, "Error codes per
/// function"): with `RT_ERROR_TRACE=<path>` set, every Error made here appends
/// `<code name>\t<function>\n` to that file (O_APPEND, one write(2) per line), the
/// function being the message's first word (`rt_fn: what (input)`, `rt_fn needs cap`).
/// The variable is read once; unset, the cost is one relaxed load. The file is opened
/// per line and closed again, so no descriptor of the trace stays in the process (tests
/// count descriptors).
mod trace {
    use std::ffi::CString;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::OnceLock;

    const UNKNOWN: u8 = 0;
    /// Unset: nothing is written.
    pub const OFF: u8 = 1;
    const ON: u8 = 2;
    pub static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
    static PATH: OnceLock<Option<CString>> = OnceLock::new();

    #[cold]
    pub fn record(code: u32, msg: &[u8]) {
        let path = PATH.get_or_init(|| {
            let p = std::env::var_os("RT_ERROR_TRACE").filter(|p| !p.is_empty())?;
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).ok()
        });
        let Some(path) = path else {
            STATE.store(OFF, Ordering::Relaxed);
            return;
        };
        STATE.store(ON, Ordering::Relaxed);
        // `rt_fn: what (input)`, or `rt_fn needs cap for resource` (CapabilityDenied).
        let end = msg.iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'_')).unwrap_or(msg.len());
        let func: &[u8] = if end > 0 && matches!(msg.get(end), Some(b':' | b' ')) { &msg[..end] } else { b"?" };
        let name = ffi_sdk::prelude::Code::from_u32(code).map_or_else(|| code.to_string(), |c| c.name().to_string());
        let mut line = Vec::with_capacity(name.len() + func.len() + 2);
        line.extend_from_slice(name.as_bytes());
        line.push(b'\t');
        line.extend_from_slice(func);
        line.push(b'\n');
        // SAFETY: `path` is NUL-terminated and lives in a static; `line` is valid for its
        // length; the descriptor is closed right after. A failed open or short write loses
        // one trace line only.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC, 0o644);
            if fd >= 0 {
                libc::write(fd, line.as_ptr().cast(), line.len());
                libc::close(fd);
            }
        }
    }
}

/// An Error with `code` (see RT_ERR_*; hosts may use their own codes above 1000) and a text `message`.
///
/// # Errors
/// - InvalidArgument: code 0 means no error
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
    // SAFETY: `make` writes only into the object it just allocated; `message` was checked
    // above to be a text value of this runtime and is stored as a word the collector scans.
    unsafe { make(code, message, abi::NIL) }
}

fn error_obj(v: RtValue) -> Option<*const ErrorObj> {
    // SAFETY: `v` is a value made by this runtime or an immediate (the C boundary's
    // contract, CONTRACT §2-3), the precondition of `heap_kind`/`heap_ptr`. With kind
    // HK_ERROR the header starts an `ErrorObj` (`make` is its only constructor).
    if unsafe { abi::heap_kind(v) } == abi::HK_ERROR {
        // SAFETY: same precondition as `heap_kind` just above; the kind is HK_ERROR, so the
        // pointer is non-NULL and addresses an `ErrorObj` (`#[repr(C)]`, Header first).
        Some(unsafe { abi::heap_ptr(v) } as *const ErrorObj)
    } else {
        None
    }
}

/// The code of an Error; 0 when `v` is not an Error.
#[rt_host(tier = "verified")]
pub fn rt_error_code(v: RtValue) -> u32 {
    // SAFETY: `e` points at the live ErrorObj `v` (held by the caller); Error objects are
    // never written after `make`, so reading without the lock is race-free.
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
        // SAFETY: `e` is the live, immutable ErrorObj of `v` (see `rt_error_code`).
        Some(e) => unsafe { (*e).message },
        None => ffi_sdk::args::kind_error("rt_error_message", 0, "error", "error", Value::from_raw(v))
            .into_value()
            .raw(),
    }
}

/// The details dict of an Error (errno, path, line, column, ...), or nil.
#[rt_host(tier = "verified")]
pub fn rt_error_details(v: RtValue) -> RtValue {
    // SAFETY: `e` is the live, immutable ErrorObj of `v` (see `rt_error_code`).
    error_obj(v).map_or(abi::NIL, |e| unsafe { (*e).details })
}
