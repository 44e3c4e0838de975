//! Shared checks for the fuzz targets.
//!
//! Every export catches panics at its boundary and returns Error Panic, so a
//! panic inside a library would not crash the fuzzer by itself: [`result`]
//! turns Error Panic (and Error Internal, which a decoder must never return
//! for bad input) into a crash, with the function and the message.
//! (Panics in code compiled into the fuzz binary also abort directly through
//! libfuzzer-sys's panic hook, before the boundary catches them.)

use ffi_sdk::abi::{Kind, RtValue};
use std::ffi::c_char;

/// ASan options built into every target (ASAN_OPTIONS still adds to them).
///
/// `detect_stack_use_after_return` (on by default on Linux) moves every local
/// whose address is taken into "fake stack" frames that ASan allocates off
/// the thread stack. The Boehm collector scans only the real stack, so a
/// value held by such a local (a parser's struct with its scratch block, a
/// `&Value`) looks unreachable, gets freed mid-call and the run reports
/// garbage (a dict key of kind "invalid"): a false positive of the fuzzing
/// build, impossible without ASan. So it is off.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const c_char {
    c"detect_stack_use_after_return=0".as_ptr()
}
pub use ffi_sdk::testing::{bytes, text, NIL};
pub use ffi_sdk::{Code, Value};

/// The value an export returned, after checking it is a valid word and not
/// Error Panic / Internal. `Ok(v)` for a value, `Err((code, message))` for an Error.
#[track_caller]
pub fn result(func: &str, raw: RtValue) -> Result<Value, (Code, String)> {
    let v = Value::from_raw(raw);
    assert_ne!(v.kind(), Kind::Invalid, "{func} returned an invalid word {raw:#x}");
    match v.error() {
        Some((code, msg)) => {
            assert_ne!(code, Code::Panic, "{func} panicked: {msg}");
            assert_ne!(code, Code::Internal, "{func} returned Error Internal: {msg}");
            Err((code, msg))
        }
        None => Ok(v),
    }
}

/// An options dict from `(key, value)` pairs.
pub fn opts(pairs: &[(&str, Value)]) -> Value {
    let d = Value::dict();
    for (k, v) in pairs {
        d.set(k, *v);
    }
    d
}

/// Deep equality of two value trees. Floats compare by bits (NaN equals
/// itself, -0.0 differs from 0.0); dicts compare in insertion order when
/// `ordered`, else as key sets (keys compared deeply, in order of `a`).
pub fn deep_eq(a: Value, b: Value, ordered: bool) -> bool {
    let (ka, kb) = (a.kind(), b.kind());
    if ka != kb {
        return false;
    }
    match ka {
        Kind::Nil => true,
        Kind::Bool => a.as_bool() == b.as_bool(),
        Kind::Int => a.as_int() == b.as_int(),
        Kind::Float => a.as_float().map(f64::to_bits) == b.as_float().map(f64::to_bits),
        Kind::String => a.as_text() == b.as_text(),
        Kind::Bytes => a.as_bytes() == b.as_bytes(),
        Kind::Array => a.len() == b.len() && (0..a.len()).all(|i| deep_eq(a.at(i), b.at(i), ordered)),
        Kind::Dict => {
            if a.len() != b.len() {
                return false;
            }
            if ordered {
                a.entries().zip(b.entries()).all(|((k1, v1), (k2, v2))| deep_eq(k1, k2, ordered) && deep_eq(v1, v2, ordered))
            } else {
                a.entries().all(|(k1, v1)| b.entries().any(|(k2, v2)| deep_eq(k1, k2, ordered) && deep_eq(v1, v2, ordered)))
            }
        }
        // Errors, handles: identity.
        _ => a.raw() == b.raw(),
    }
}

/// Whether a value tree holds a float that is NaN or infinite (no JSON spelling).
pub fn has_non_finite(v: Value) -> bool {
    match v.kind() {
        Kind::Float => !v.as_float().is_some_and(f64::is_finite),
        Kind::Array => (0..v.len()).any(|i| has_non_finite(v.at(i))),
        Kind::Dict => v.entries().any(|(k, x)| has_non_finite(k) || has_non_finite(x)),
        _ => false,
    }
}

/// A short printable form of fuzz input for assertion messages.
pub fn show(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(200)]);
    format!("{s:?}{}", if data.len() > 200 { " ..." } else { "" })
}
