//! The host surface for building and reading values (SPEC §3).

use crate::gc;
use ffi_sdk::lock::lock;
use ffi_sdk::abi::{self, ArrayObj, BlobObj, FloatObj, Header, IntObj, RtValue};
use ffi_sdk::args::kind_error;
use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;

/// Allocates an object of `size` bytes with an initialised header; null when out of memory.
pub fn new_obj(hk: u32, size: usize, atomic: bool) -> *mut Header {
    let p = if atomic { gc::alloc_atomic(size) } else { gc::alloc(size) } as *mut Header;
    if !p.is_null() {
        // SAFETY: `p` is a fresh, non-null collector block of `size` bytes (callers pass at least
        // the header size), 8-aligned like every collector block, and owned by nobody else yet;
        // `write` initialises the header without reading or dropping the old (uninitialised) bytes.
        unsafe {
            p.write(Header {
                kind: abi::HEAP_MAGIC | hk,
                lock: std::sync::atomic::AtomicU32::new(0),
                pins: 0,
                _reserved: 0,
                pin_cell: std::ptr::null_mut(),
            });
        }
    }
    p
}

#[inline]
pub fn word(p: *mut Header) -> RtValue {
    p as u64 | abi::TAG_HEAP
}

/// Error Internal for a failed allocation of `n` bytes.
#[cold]
pub fn oom(func: &str, n: usize) -> RtValue {
    Error::new(Code::Internal, func, "out of memory", format!("{n} bytes")).into_value().raw()
}

/// ABI version of this library: major << 16 | minor. Refuse a different major.
#[rt_host(tier = "verified")]
pub fn rt_abi_version() -> u32 {
    abi::ABI_VERSION
}

/// Kind of a value (RT_KIND_*); boxed ints and floats report INT and FLOAT.
#[rt_host(tier = "verified")]
pub fn rt_kind(v: RtValue) -> u32 {
    ffi_sdk::value::kind_of(v) as u32
}

/// An int, inline when it fits 61 bits, else boxed: lossless.
#[rt_host(tier = "verified")]
pub fn rt_int_new(i: i64) -> RtValue {
    if (abi::INLINE_INT_MIN..=abi::INLINE_INT_MAX).contains(&i) {
        return (i as u64) << 3;
    }
    let p = new_obj(abi::HK_INT, std::mem::size_of::<IntObj>(), true);
    if p.is_null() {
        return oom("rt_int_new", 16);
    }
    // SAFETY: `p` is the non-null fresh object just allocated with `size_of::<IntObj>()` bytes and
    // an initialised header, 8-aligned and not yet shared; writing the `value` field stays in it.
    unsafe { (*(p as *mut IntObj)).value = i };
    word(p)
}

/// The int in `v`; 0 when `v` is not an int.
#[rt_host(tier = "verified")]
pub fn rt_int_get(v: RtValue) -> i64 {
    Value::from_raw(v).as_int().unwrap_or(0)
}

/// A float, inline when its low 3 bits are 0, else boxed: lossless.
#[rt_host(tier = "verified")]
pub fn rt_float_new(d: f64) -> RtValue {
    let bits = d.to_bits();
    if bits & abi::TAG_MASK == 0 {
        return bits | abi::TAG_FLOAT;
    }
    let p = new_obj(abi::HK_FLOAT, std::mem::size_of::<FloatObj>(), true);
    if p.is_null() {
        return oom("rt_float_new", 16);
    }
    // SAFETY: `p` is the non-null fresh object just allocated with `size_of::<FloatObj>()` bytes and
    // an initialised header, 8-aligned and not yet shared; writing the `value` field stays in it.
    unsafe { (*(p as *mut FloatObj)).value = d };
    word(p)
}

/// The float in `v`; NaN when `v` is not a float.
#[rt_host(tier = "verified")]
pub fn rt_float_get(v: RtValue) -> f64 {
    Value::from_raw(v).as_float().unwrap_or(f64::NAN)
}

/// true or false.
#[rt_host(tier = "verified")]
pub fn rt_bool_new(b: bool) -> RtValue {
    if b {
        abi::TRUE
    } else {
        abi::FALSE
    }
}

/// Whether `v` is true (false for false and for anything that is not a bool).
#[rt_host(tier = "verified")]
pub fn rt_bool_get(v: RtValue) -> bool {
    v == abi::TRUE
}

/// A new blob of kind `hk` holding a copy of `n` bytes at `p`.
///
/// # Safety
/// `p` is NULL with `n == 0`, or readable for `n` bytes (it may be NULL with
/// `n != 0`: that is refused with an Error value).
unsafe fn blob_new(func: &str, hk: u32, p: *const u8, n: usize) -> RtValue {
    if p.is_null() && n != 0 {
        return Error::invalid(func, "null pointer with a non-zero length", n).into_value().raw();
    }
    if n > gc::MAX_ALLOC {
        return Error::new(Code::LimitExceeded, func, "length exceeds the 1 TiB object limit", n)
            .into_value()
            .raw();
    }
    let size = std::mem::size_of::<BlobObj>() + n + 1;
    let o = new_obj(hk, size, true);
    if o.is_null() {
        return oom(func, size);
    }
    // SAFETY: `o` is a fresh, non-null, unshared block of `size_of::<BlobObj>() + n + 1` bytes
    // with its header written, so `len` and the `n + 1` payload bytes after it are in bounds;
    // `p` is non-null whenever `n > 0` (checked above) and readable for `n` bytes by this fn's
    // contract, and cannot overlap the block allocated just now.
    unsafe {
        let b = o as *mut BlobObj;
        (*b).len = n;
        let data = (*b).data.as_mut_ptr();
        if n > 0 {
            std::ptr::copy_nonoverlapping(p, data, n);
        }
        *data.add(n) = 0;
    }
    word(o)
}

/// A string copied from `n` bytes at `p`.
///
/// # Errors
/// - InvalidArgument: they are not UTF-8
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_host(tier = "verified")]
pub unsafe fn rt_string_new(p: *const u8, n: usize) -> RtValue {
    if !p.is_null() && n != 0 && n <= gc::MAX_ALLOC {
        let bytes = std::slice::from_raw_parts(p, n);
        if let Err(e) = std::str::from_utf8(bytes) {
            return Error::invalid(
                "rt_string_new",
                format!("bytes are not UTF-8: invalid sequence at byte {}", e.valid_up_to()),
                format!("length {n}"),
            )
            .with("position", e.valid_up_to())
            .into_value()
            .raw();
        }
    }
    blob_new("rt_string_new", abi::HK_STRING, p, n)
}

/// Internal: a string from bytes the caller guarantees are UTF-8.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__string_new_unchecked(p: *const u8, n: usize) -> RtValue {
    blob_new("rt_string_new", abi::HK_STRING, p, n)
}

/// Internal: a new string or bytes object of `n` bytes whose content the
/// caller writes through `*data` before the value escapes (a string's
/// content must be UTF-8: ffi_sdk validates it). Error value when the
/// kind is not a blob kind or memory runs out (then `*data` is null).
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__blob_alloc(hk: u32, n: usize, data: *mut *mut u8) -> RtValue {
    *data = std::ptr::null_mut();
    if hk != abi::HK_STRING && hk != abi::HK_BYTES {
        return Error::invalid("rt_blob_alloc", "not a blob kind", hk).into_value().raw();
    }
    if n > gc::MAX_ALLOC {
        return Error::new(Code::LimitExceeded, "rt_blob_alloc", "length exceeds the 1 TiB object limit", n)
            .into_value()
            .raw();
    }
    let size = std::mem::size_of::<BlobObj>() + n + 1;
    let o = new_obj(hk, size, true);
    if o.is_null() {
        return oom("rt_blob_alloc", size);
    }
    let b = o as *mut BlobObj;
    (*b).len = n;
    let d = (*b).data.as_mut_ptr();
    *d.add(n) = 0;
    *data = d;
    word(o)
}

/// The bytes of a string, NUL-terminated (interior NULs possible: use rt_string_len); NULL if not a string.
#[rt_host(tier = "verified")]
pub fn rt_string_ptr(v: RtValue) -> *const u8 {
    Value::from_raw(v).as_text().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Length of a string in bytes, without the NUL; 0 if not a string.
#[rt_host(tier = "verified")]
pub fn rt_string_len(v: RtValue) -> usize {
    Value::from_raw(v).as_text().map_or(0, |s| s.len())
}

/// A bytes value copied from `n` bytes at `p` (any content).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_host(tier = "verified")]
pub unsafe fn rt_bytes_new(p: *const u8, n: usize) -> RtValue {
    blob_new("rt_bytes_new", abi::HK_BYTES, p, n)
}

/// The bytes of a bytes value (a NUL follows them); NULL if not bytes.
#[rt_host(tier = "verified")]
pub fn rt_bytes_ptr(v: RtValue) -> *const u8 {
    Value::from_raw(v).as_bytes().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Length of a bytes value; 0 if not bytes.
#[rt_host(tier = "verified")]
pub fn rt_bytes_len(v: RtValue) -> usize {
    Value::from_raw(v).as_bytes().map_or(0, |s| s.len())
}

/// An empty array with room for `capacity` items.
///
/// # Errors
/// - LimitExceeded: capacity too large
#[rt_host(tier = "verified")]
pub fn rt_array_new(capacity: usize) -> RtValue {
    if capacity > gc::MAX_ALLOC / 8 {
        return Error::new(Code::LimitExceeded, "rt_array_new", "capacity too large", capacity).into_value().raw();
    }
    let o = new_obj(abi::HK_ARRAY, std::mem::size_of::<ArrayObj>(), false);
    if o.is_null() {
        return oom("rt_array_new", 48);
    }
    if capacity > 0 {
        let items = gc::alloc(capacity * 8) as *mut RtValue;
        if items.is_null() {
            return oom("rt_array_new", capacity * 8);
        }
        // SAFETY: `o` is the fresh, non-null, unshared `ArrayObj`-sized block allocated above
        // (zeroed by `gc::alloc`, so `len` is 0); `items` holds `capacity` words, recorded as `cap`.
        unsafe {
            (*(o as *mut ArrayObj)).items = items;
            (*(o as *mut ArrayObj)).cap = capacity;
        }
    }
    word(o)
}

/// The array object of `v`, if it is one (no error value is made).
fn as_array(v: RtValue) -> Option<*mut ArrayObj> {
    // SAFETY: the host contract (CONTRACT §3, `heap_ptr`'s doc): every word a host passes is an
    // immediate or a value this runtime made and that the host keeps reachable, so the
    // header read is of live memory; anything else reads as kind 0.
    if unsafe { abi::heap_kind(v) } == abi::HK_ARRAY {
        // SAFETY: as above; the kind is HK_ARRAY, so the header heads an `ArrayObj`.
        Some(unsafe { abi::heap_ptr(v) } as *mut ArrayObj)
    } else {
        None
    }
}

fn array_ptr(func: &str, v: RtValue) -> Result<*mut ArrayObj, RtValue> {
    as_array(v).ok_or_else(|| kind_error(func, 0, "array", "array", Value::from_raw(v)).into_value().raw())
}

/// Appends `item`; returns the array, or an Error (not an array, out of memory).
#[rt_host(tier = "verified")]
pub fn rt_array_push(array: RtValue, item: RtValue) -> RtValue {
    let a = match array_ptr("rt_array_push", array) {
        Ok(a) => a,
        Err(e) => return e,
    };
    // SAFETY: `a` is the live array of `array` (`as_array`), which stays reachable from the
    // argument on this stack; its fields are read and written only under its object lock.
    // `items` holds `cap` words and `len <= cap`, so the store at `len` is in bounds after the
    // growth check; the old items are copied (`len` words) into the new, distinct block.
    unsafe {
        let _g = lock(a as *mut Header);
        if (*a).len == (*a).cap {
            let ncap = ((*a).cap * 2).max(4);
            let items = gc::alloc(ncap * 8) as *mut RtValue;
            if items.is_null() {
                return oom("rt_array_push", ncap * 8);
            }
            if (*a).len > 0 {
                std::ptr::copy_nonoverlapping((*a).items, items, (*a).len);
            }
            (*a).items = items;
            (*a).cap = ncap;
        }
        *(*a).items.add((*a).len) = item;
        (*a).len += 1;
    }
    array
}

/// Number of items; 0 if not an array.
#[rt_host(tier = "verified")]
pub fn rt_array_len(array: RtValue) -> usize {
    match as_array(array) {
        // SAFETY: `a` is the live array of `array` (`as_array`); `len` is read under its lock.
        Some(a) => unsafe {
            let _g = lock(a as *mut Header);
            (*a).len
        },
        None => 0,
    }
}

/// Item `i`.
///
/// # Errors
/// - OutOfRange: past the end
#[rt_host(tier = "verified")]
pub fn rt_array_get(array: RtValue, i: usize) -> RtValue {
    let a = match array_ptr("rt_array_get", array) {
        Ok(a) => a,
        Err(e) => return e,
    };
    // SAFETY: `a` is the live array of `array` (`as_array`); under its lock `items` holds at
    // least `len` words, and the read is at `i < len`.
    let (len, v) = unsafe {
        let _g = lock(a as *mut Header);
        let len = (*a).len;
        (len, if i < len { Some(*(*a).items.add(i)) } else { None })
    };
    v.unwrap_or_else(|| {
        Error::new(Code::OutOfRange, "rt_array_get", "index out of range", format!("index {i}, length {len}"))
            .into_value()
            .raw()
    })
}

/// Replaces item `i`; returns the array, or Error OutOfRange / TypeMismatch.
///
/// # Errors
/// - OutOfRange: index out of range
#[rt_host(tier = "verified")]
pub fn rt_array_set(array: RtValue, i: usize, item: RtValue) -> RtValue {
    let a = match array_ptr("rt_array_set", array) {
        Ok(a) => a,
        Err(e) => return e,
    };
    // SAFETY: `a` is the live array of `array` (`as_array`); under its lock `items` holds at
    // least `len` words, and the store is at `i < len`.
    let len = unsafe {
        let _g = lock(a as *mut Header);
        if i < (*a).len {
            *(*a).items.add(i) = item;
            return array;
        }
        (*a).len
    };
    Error::new(Code::OutOfRange, "rt_array_set", "index out of range", format!("index {i}, length {len}"))
        .into_value()
        .raw()
}

/// Whether `v` is an immediate or points at the start of a live runtime object (slower; for hosts that validate words).
#[rt_host(tier = "verified")]
pub fn rt_value_valid(v: RtValue) -> bool {
    match v & abi::TAG_MASK {
        abi::TAG_INT | abi::TAG_FLOAT => true,
        abi::TAG_SPECIAL => matches!(v, abi::NIL | abi::TRUE | abi::FALSE),
        abi::TAG_HEAP => {
            let p = (v & !abi::TAG_MASK) as *const u8;
            gc::is_object_start(p) && ffi_sdk::value::kind_of(v) != abi::Kind::Invalid
        }
        _ => false,
    }
}
