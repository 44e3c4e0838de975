//! Insertion-ordered dicts. Keys compare by content for text, bytes, int,
//! float (bitwise), bool and nil; by identity for arrays, dicts, handles and
//! errors. Small dicts are scanned; past 8 entries an open-addressing index
//! of u32 slots (atomic memory, not scanned) makes lookups O(1).

use crate::gc;
use ffi_sdk::lock::lock;
use crate::value::{new_obj, oom, word};
use ffi_sdk::abi::{self, DictObj, Header, RtValue};
use ffi_sdk::args::kind_error;
use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;
use std::hash::Hasher;

const LINEAR_MAX: usize = 8;

/// Content bytes of a key when it compares by content as a blob.
#[inline]
fn blob_of(v: RtValue) -> Option<(u32, &'static [u8])> {
    let val = Value::from_raw(v);
    // SAFETY: keys and dicts reach here as values made by this runtime or immediates
    // (the C boundary's contract, CONTRACT §2-3, or words read out of a live dict),
    // which is `heap_kind`'s precondition.
    match unsafe { abi::heap_kind(v) } {
        abi::HK_STRING => val.as_text().map(|s| (abi::HK_STRING, s.as_bytes())),
        abi::HK_BYTES => val.as_bytes().map(|b| (abi::HK_BYTES, b)),
        _ => None,
    }
}

/// Canonical word for scalar keys: boxed ints and floats compare by value.
#[inline]
fn scalar_of(v: RtValue) -> (u32, u64) {
    let val = Value::from_raw(v);
    // SAFETY: as in `blob_of`: `v` is a runtime value or an immediate.
    match unsafe { abi::heap_kind(v) } {
        abi::HK_INT => (1, val.as_int().unwrap_or(0) as u64),
        abi::HK_FLOAT => (2, val.as_float().unwrap_or(0.0).to_bits()),
        0 => match v & abi::TAG_MASK {
            abi::TAG_INT => (1, ((v as i64) >> 3) as u64),
            abi::TAG_FLOAT => (2, v & !abi::TAG_MASK),
            _ => (3, v),
        },
        _ => (4, v),
    }
}

pub fn key_hash(v: RtValue) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    match blob_of(v) {
        Some((k, b)) => {
            h.write_u32(k);
            h.write(b);
        }
        None => {
            let (k, w) = scalar_of(v);
            h.write_u32(k);
            h.write_u64(w);
        }
    }
    h.finish()
}

/// `key_hash` of a string key given as bytes (same value as for the string object).
fn str_hash(b: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_u32(abi::HK_STRING);
    h.write(b);
    h.finish()
}

/// Key equality. Immediates are canonical (an int or float is boxed only when
/// it cannot be inline), so two words of which one is not a heap object are
/// equal exactly when they are the same word; only two heap objects need a look.
#[inline(always)]
pub fn key_eq(a: RtValue, b: RtValue) -> bool {
    if a == b {
        return true;
    }
    if a & abi::TAG_MASK != abi::TAG_HEAP || b & abi::TAG_MASK != abi::TAG_HEAP {
        return false;
    }
    key_eq_heap(a, b)
}

#[inline(never)]
fn key_eq_heap(a: RtValue, b: RtValue) -> bool {
    match (blob_of(a), blob_of(b)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => scalar_of(a) == scalar_of(b),
        _ => false,
    }
}

/// The dict object of `v`, if it is one (no error value is made).
fn as_dict(v: RtValue) -> Option<*mut DictObj> {
    // SAFETY: `v` is a runtime value or an immediate (C boundary contract), the
    // precondition of `heap_kind`.
    if unsafe { abi::heap_kind(v) } == abi::HK_DICT {
        // SAFETY: same precondition; kind HK_DICT means the header starts a `DictObj`
        // (`rt_dict_new` is its only constructor, `#[repr(C)]` with the Header first).
        Some(unsafe { abi::heap_ptr(v) } as *mut DictObj)
    } else {
        None
    }
}

fn dict_ptr(func: &str, v: RtValue) -> Result<*mut DictObj, RtValue> {
    as_dict(v).ok_or_else(|| kind_error(func, 0, "dict", "dict", Value::from_raw(v)).into_value().raw())
}

/// Position of `key`, with the dict locked by the caller.
unsafe fn find(d: *mut DictObj, key: RtValue) -> Option<usize> {
    let len = (*d).len;
    let e = (*d).entries;
    if (*d).index.is_null() {
        return (0..len).find(|&i| key_eq(*e.add(2 * i), key));
    }
    let mask = (*d).index_cap - 1;
    let mut slot = key_hash(key) as usize & mask;
    loop {
        let s = *(*d).index.add(slot);
        if s == 0 {
            return None;
        }
        let i = (s - 1) as usize;
        if key_eq(*e.add(2 * i), key) {
            return Some(i);
        }
        slot = (slot + 1) & mask;
    }
}

/// Position of the text key `k`, with the dict locked by the caller.
unsafe fn find_str(d: *mut DictObj, k: &[u8]) -> Option<usize> {
    let len = (*d).len;
    let e = (*d).entries;
    let is = |w: RtValue| matches!(blob_of(w), Some((abi::HK_STRING, b)) if b == k);
    if (*d).index.is_null() {
        return (0..len).find(|&i| is(*e.add(2 * i)));
    }
    let mask = (*d).index_cap - 1;
    let mut slot = str_hash(k) as usize & mask;
    loop {
        let s = *(*d).index.add(slot);
        if s == 0 {
            return None;
        }
        let i = (s - 1) as usize;
        if is(*e.add(2 * i)) {
            return Some(i);
        }
        slot = (slot + 1) & mask;
    }
}

/// Internal: the value at a text key given as UTF-8 bytes (no key object is made); nil when absent or not a dict.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__dict_get_str(dict: RtValue, k: *const u8, n: usize) -> RtValue {
    let Some(d) = as_dict(dict) else { return abi::NIL };
    if k.is_null() && n != 0 {
        return abi::NIL;
    }
    let key = if n == 0 { &[][..] } else { std::slice::from_raw_parts(k, n) };
    let _g = lock(d as *mut Header);
    match find_str(d, key) {
        Some(i) => *(*d).entries.add(2 * i + 1),
        None => abi::NIL,
    }
}

/// Internal: an empty dict with room for `cap` entries (no growth until then).
#[no_mangle]
pub extern "C" fn rt__dict_new_cap(cap: usize) -> RtValue {
    let v = rt_dict_new();
    // SAFETY: `v` was just returned by `rt_dict_new`: a dict or an Error value.
    if cap == 0 || unsafe { abi::heap_kind(v) } != abi::HK_DICT {
        return v;
    }
    if cap > gc::MAX_ALLOC / 16 {
        return Error::new(Code::LimitExceeded, "rt_dict_new", "capacity too large", cap).into_value().raw();
    }
    let e = gc::alloc(cap * 16) as *mut RtValue;
    if e.is_null() {
        return oom("rt_dict_new", cap * 16);
    }
    // SAFETY: `v` is the dict `rt_dict_new` just made (kind checked above): no other
    // thread can see it yet, so its fields are written without the lock. `e` is a fresh,
    // zeroed, scanned block of `cap` (key, value) pairs, matching the `cap` stored.
    unsafe {
        let d = abi::heap_ptr(v) as *mut DictObj;
        (*d).entries = e;
        (*d).cap = cap;
    }
    v
}

/// Internal: a dict made from `n` (key, value) pairs in order, a later
/// duplicate key replacing the earlier value (as `rt_dict_set` would): one
/// entries block, one index, no lock per pair (the dict is not shared yet).
/// `pairs` must be memory the collector sees (a collector block or a stack).
/// With `unique` the caller has checked that the keys are distinct: the
/// entries are copied as they are and the index is built once.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__dict_from_pairs(pairs: *const RtValue, n: usize, unique: bool) -> RtValue {
    if n > u32::MAX as usize - 1 {
        return Error::new(Code::LimitExceeded, "rt_dict_new", "too many entries", n).into_value().raw();
    }
    let v = rt__dict_new_cap(n);
    if n == 0 || abi::heap_kind(v) != abi::HK_DICT {
        return v;
    }
    let d = abi::heap_ptr(v) as *mut DictObj;
    if unique {
        std::ptr::copy_nonoverlapping(pairs, (*d).entries, 2 * n);
        (*d).len = n;
        if n > LINEAR_MAX && !reindex(d) {
            return oom("rt_dict_new", n * 8);
        }
        return v;
    }
    if n > LINEAR_MAX {
        let mut cap = 16usize;
        while cap < n * 2 {
            cap *= 2;
        }
        let idx = gc::alloc_atomic(cap * 4) as *mut u32;
        if idx.is_null() {
            return oom("rt_dict_new", cap * 4);
        }
        std::ptr::write_bytes(idx, 0, cap);
        (*d).index = idx;
        (*d).index_cap = cap;
    }
    let e = (*d).entries;
    // Each key is hashed once; equal hashes are confirmed with key_eq.
    let mut small = [0u64; LINEAR_MAX];
    for i in 0..n {
        let (k, val) = (*pairs.add(2 * i), *pairs.add(2 * i + 1));
        let h = key_hash(k);
        let len = (*d).len;
        let dup = if (*d).index.is_null() {
            (0..len).find(|&j| small[j] == h && key_eq(*e.add(2 * j), k))
        } else {
            let mask = (*d).index_cap - 1;
            let mut slot = h as usize & mask;
            loop {
                let sl = *(*d).index.add(slot);
                if sl == 0 {
                    *(*d).index.add(slot) = (len + 1) as u32;
                    break None;
                }
                let j = (sl - 1) as usize;
                if key_eq(*e.add(2 * j), k) {
                    break Some(j);
                }
                slot = (slot + 1) & mask;
            }
        };
        match dup {
            Some(j) => *e.add(2 * j + 1) = val,
            None => {
                if len < LINEAR_MAX {
                    small[len] = h;
                }
                *e.add(2 * len) = k;
                *e.add(2 * len + 1) = val;
                (*d).len = len + 1;
            }
        }
    }
    v
}

/// Rebuilds the index for the current entries (len > LINEAR_MAX); false when out of memory.
unsafe fn reindex(d: *mut DictObj) -> bool {
    let len = (*d).len;
    let mut cap = 16usize;
    while cap < len * 2 {
        cap *= 2;
    }
    let idx = gc::alloc_atomic(cap * 4) as *mut u32;
    if idx.is_null() {
        return false;
    }
    std::ptr::write_bytes(idx, 0, cap);
    let mask = cap - 1;
    for i in 0..len {
        let mut slot = key_hash(*(*d).entries.add(2 * i)) as usize & mask;
        while *idx.add(slot) != 0 {
            slot = (slot + 1) & mask;
        }
        *idx.add(slot) = (i + 1) as u32;
    }
    (*d).index = idx;
    (*d).index_cap = cap;
    true
}

/// An empty insertion-ordered dict.
#[rt_host(tier = "verified")]
pub fn rt_dict_new() -> RtValue {
    let o = new_obj(abi::HK_DICT, std::mem::size_of::<DictObj>(), false);
    if o.is_null() {
        return oom("rt_dict_new", 64);
    }
    word(o)
}

/// Sets `key` to `value` (an existing key keeps its position); returns the dict or an Error.
///
/// # Errors
/// - LimitExceeded: dict is full
#[rt_host(tier = "verified")]
pub fn rt_dict_set(dict: RtValue, key: RtValue, value: RtValue) -> RtValue {
    let d = match dict_ptr("rt_dict_set", dict) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // SAFETY: `d` is the live DictObj of `dict` (kind-checked by `dict_ptr`; the caller
    // holds `dict`). Every field is read and written under its header lock, so `len <=
    // cap`, `entries` holds `cap` pairs and `index` (when non-NULL) has `index_cap` (a
    // power of two, at least twice `len`) slots: all `add` offsets below stay in bounds.
    // A grown entries block is a scanned collector block filled before it is published.
    unsafe {
        let _g = lock(d as *mut Header);
        if let Some(i) = find(d, key) {
            *(*d).entries.add(2 * i + 1) = value;
            return dict;
        }
        if (*d).len >= u32::MAX as usize - 1 {
            return Error::new(Code::LimitExceeded, "rt_dict_set", "dict is full", (*d).len).into_value().raw();
        }
        if (*d).len == (*d).cap {
            let ncap = ((*d).cap * 2).max(4);
            let e = gc::alloc(ncap * 16) as *mut RtValue;
            if e.is_null() {
                return oom("rt_dict_set", ncap * 16);
            }
            if (*d).len > 0 {
                std::ptr::copy_nonoverlapping((*d).entries, e, 2 * (*d).len);
            }
            (*d).entries = e;
            (*d).cap = ncap;
        }
        let i = (*d).len;
        *(*d).entries.add(2 * i) = key;
        *(*d).entries.add(2 * i + 1) = value;
        (*d).len += 1;
        let n = (*d).len;
        if n > LINEAR_MAX {
            if (*d).index.is_null() || n * 2 > (*d).index_cap {
                if !reindex(d) {
                    (*d).len -= 1;
                    return oom("rt_dict_set", n * 8);
                }
            } else {
                let mask = (*d).index_cap - 1;
                let mut slot = key_hash(key) as usize & mask;
                while *(*d).index.add(slot) != 0 {
                    slot = (slot + 1) & mask;
                }
                *(*d).index.add(slot) = n as u32;
            }
        }
    }
    dict
}

/// The value at `key`; nil when absent; Error TypeMismatch if not a dict.
#[rt_host(tier = "verified")]
pub fn rt_dict_get(dict: RtValue, key: RtValue) -> RtValue {
    let d = match dict_ptr("rt_dict_get", dict) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // SAFETY: `d` is the live DictObj of `dict` (checked by `dict_ptr`), read under its
    // lock; `find` returns an index below `len`, so the entry read is in bounds.
    unsafe {
        let _g = lock(d as *mut Header);
        match find(d, key) {
            Some(i) => *(*d).entries.add(2 * i + 1),
            None => abi::NIL,
        }
    }
}

/// Whether `key` is present (distinguishes a nil value from absence).
#[rt_host(tier = "verified")]
pub fn rt_dict_has(dict: RtValue, key: RtValue) -> bool {
    match as_dict(dict) {
        // SAFETY: `d` is the live DictObj of `dict` (kind-checked by `as_dict`), searched under its lock.
        Some(d) => unsafe {
            let _g = lock(d as *mut Header);
            find(d, key).is_some()
        },
        None => false,
    }
}

/// Removes `key` (later entries keep their order); returns its value, or nil when absent.
#[rt_host(tier = "verified")]
pub fn rt_dict_remove(dict: RtValue, key: RtValue) -> RtValue {
    let d = match dict_ptr("rt_dict_remove", dict) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // SAFETY: `d` is the live DictObj of `dict` (checked by `dict_ptr`), changed only under
    // its lock. `i < len` (from `find`), so the shifted range `2i+2 .. 2len` and the
    // cleared last pair are inside the `cap >= len` pairs of `entries`; the cleared words
    // stop the block from keeping the removed key and value alive.
    unsafe {
        let _g = lock(d as *mut Header);
        let Some(i) = find(d, key) else { return abi::NIL };
        let e = (*d).entries;
        let old = *e.add(2 * i + 1);
        let len = (*d).len;
        std::ptr::copy(e.add(2 * i + 2), e.add(2 * i), 2 * (len - i - 1));
        *e.add(2 * (len - 1)) = 0;
        *e.add(2 * (len - 1) + 1) = 0;
        (*d).len -= 1;
        if (*d).len > LINEAR_MAX {
            if !reindex(d) {
                (*d).index = std::ptr::null_mut();
                (*d).index_cap = 0;
            }
        } else {
            (*d).index = std::ptr::null_mut();
            (*d).index_cap = 0;
        }
        old
    }
}

/// Number of entries; 0 if not a dict.
#[rt_host(tier = "verified")]
pub fn rt_dict_len(dict: RtValue) -> usize {
    match as_dict(dict) {
        // SAFETY: `d` is the live DictObj of `dict` (checked by `as_dict`); `len` read under its lock.
        Some(d) => unsafe {
            let _g = lock(d as *mut Header);
            (*d).len
        },
        None => 0,
    }
}

unsafe fn entry_at(func: &str, dict: RtValue, i: usize, off: usize) -> RtValue {
    let d = match dict_ptr(func, dict) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let len = {
        let _g = lock(d as *mut Header);
        if i < (*d).len {
            return *(*d).entries.add(2 * i + off);
        }
        (*d).len
    };
    Error::new(Code::OutOfRange, func, "index out of range", format!("index {i}, length {len}")).into_value().raw()
}

/// Key number `i` in insertion order.
///
/// # Errors
/// - OutOfRange: past the end
#[rt_host(tier = "verified")]
pub fn rt_dict_key_at(dict: RtValue, i: usize) -> RtValue {
    // SAFETY: `entry_at` checks the kind of `dict` itself and reads entry `i` only below
    // `len`, under the lock; `dict` is a runtime value by the C boundary's contract.
    unsafe { entry_at("rt_dict_key_at", dict, i, 0) }
}

/// Value number `i` in insertion order.
///
/// # Errors
/// - OutOfRange: past the end
#[rt_host(tier = "verified")]
pub fn rt_dict_value_at(dict: RtValue, i: usize) -> RtValue {
    // SAFETY: as for `rt_dict_key_at`.
    unsafe { entry_at("rt_dict_value_at", dict, i, 1) }
}

/// Whether two values are equal as dict keys: by content for text, bytes, int, float (bitwise), bool, nil; else identity.
///
/// # Errors
/// Only the implicit codes.
#[ffi_sdk::rt_fn(tier = "verified")]
pub fn rt_value_equal(a: Value, b: Value) -> bool {
    key_eq(a.raw(), b.raw())
}

/// Hash of a value consistent with `rt_value_equal` (stable within a process only).
///
/// # Errors
/// Only the implicit codes.
#[ffi_sdk::rt_fn(tier = "verified")]
pub fn rt_value_hash(v: Value) -> i64 {
    key_hash(v.raw()) as i64
}
