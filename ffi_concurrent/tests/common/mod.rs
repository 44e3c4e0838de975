//! Shared by the ffi_concurrent test binaries: callbacks made from Rust
//! `extern "C"` functions (as a C host makes them), value helpers.
#![allow(dead_code)]

use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::ok;
use ffi_sdk::Value;
use std::ffi::c_void;

extern "C" {
    pub fn rt_callback_new(f: *mut c_void, user_data: *mut c_void) -> RtValue;
    pub fn rt_callback_new2(f: *mut c_void, user_data: *mut c_void) -> RtValue;
    pub fn rt_callback_on_release(cb: RtValue, release: *mut c_void) -> RtValue;
    pub fn rt_callback_set_flags(cb: RtValue, flags: u32) -> RtValue;
    pub fn rt_gc_collect() -> RtValue;
    pub fn rt_value_equal(a: RtValue, b: RtValue) -> RtValue;
}

pub type Cb1 = unsafe extern "C" fn(*mut c_void, RtValue) -> RtValue;
pub type Cb2 = unsafe extern "C" fn(*mut c_void, RtValue, RtValue) -> RtValue;

/// A Callback handle for `f` (arity 1).
pub fn cb1(f: Cb1, ud: usize) -> Value {
    // SAFETY: core's `rt_callback_new(void *func, void *user_data)`: `f` is a non-null
    // `RtCallback1` passed as `void *` (same size on the supported targets), as C hosts do; the
    // callbacks of these tests never dereference `ud` (an integer tag) and may run on any thread.
    ok(unsafe { rt_callback_new(f as *mut c_void, ud as *mut c_void) })
}

/// A Callback handle for `f` (arity 2).
pub fn cb2(f: Cb2, ud: usize) -> Value {
    // SAFETY: as in `cb1`, with a two-argument `RtCallback2` for `rt_callback_new2`.
    ok(unsafe { rt_callback_new2(f as *mut c_void, ud as *mut c_void) })
}

/// x * 2 for ints; an Error for -13.
pub unsafe extern "C" fn double(_: *mut c_void, a: RtValue) -> RtValue {
    let v = Value::from_raw(a);
    match v.as_int() {
        Some(-13) => ffi_sdk::Error::invalid("double", "unlucky", -13).into_value().raw(),
        Some(i) => Value::int(i * 2).raw(),
        None => ffi_sdk::Error::invalid("double", "not an int", v.describe()).into_value().raw(),
    }
}

/// A fresh nested value for `i`: {"i": i, "s": "item-i", "a": [i, "i", b"i"]}.
pub fn make_nested(i: i64) -> Value {
    let a = Value::array(3).push(Value::int(i)).push(Value::text(&i.to_string())).push(Value::bytes(i.to_string().as_bytes()));
    Value::dict().set("i", Value::int(i)).set("s", Value::text(&format!("item-{i}"))).set("a", a)
}

/// Whether `v` is exactly `make_nested(i)` (reads defensively: kinds first).
pub fn nested_ok(v: Value, i: i64) -> bool {
    if !v.is_dict() || v.len() != 3 {
        return false;
    }
    let s = format!("item-{i}");
    let a = v.get("a");
    v.get("i").as_int() == Some(i)
        && v.get("s").as_text() == Some(s.as_str())
        && a.is_array()
        && a.len() == 3
        && a.at(0).as_int() == Some(i)
        && a.at(1).as_text() == Some(i.to_string().as_str())
        && a.at(2).as_bytes() == Some(i.to_string().as_bytes())
}

/// A callback: make_nested(arg) (fresh allocations on the library thread).
pub unsafe extern "C" fn nested(_: *mut c_void, a: RtValue) -> RtValue {
    make_nested(Value::from_raw(a).as_int().unwrap_or(-1)).raw()
}

/// Garbage out: a word that is no value.
pub unsafe extern "C" fn garbage(_: *mut c_void, _a: RtValue) -> RtValue {
    let local = 0u64;
    (&local as *const u64 as u64) | 1
}

/// Threads of this process (/proc/self/task).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Resident set size in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
