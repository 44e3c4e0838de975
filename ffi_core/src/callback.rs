//! Host callbacks (docs/CONCURRENCY.md): a host function wrapped as a
//! callable value, so library threads (ffi_concurrent) can run host code,
//! and the lookup that turns a function name into a callable.

use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::callable::{Callback, CB_RESULT_PINNED};
use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;
use libc::c_void;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

fn make(func: &'static str, f: *mut c_void, user_data: *mut c_void, arity: u32) -> RtValue {
    if f.is_null() {
        return Error::invalid(func, "func must not be NULL", "NULL").into_value().raw();
    }
    // SAFETY: `f` is non-null (checked above); `arity` is 1 from `rt_callback_new` and 2 from
    // `rt_callback_new2`, whose documented contract has the host pass an `RtCallback1` /
    // `RtCallback2` that may be called with `user_data` from any thread, several at once.
    new_handle(unsafe { Callback::new(f as *const c_void, user_data, arity) }).raw()
}

/// A callable value (a Callback handle) for `func`, a `RtCallback1`: `RtValue (*)(void *user_data, RtValue arg)`.
/// Library threads call it with `user_data` as given (from any thread, possibly several at once). It returns a
/// value or an Error; the word it returns must stay reachable until it returns (on the stack of the calling
/// thread, which is registered) or be pinned after `rt_callback_set_flags(cb, 1)`. Pass a function pointer
/// through `rt_callback_fn1` (ISO C has no direct conversion to `void *`).
///
/// # Errors
/// - InvalidArgument: for a NULL `func`
#[rt_host(tier = "empirical")]
pub fn rt_callback_new(func: *mut c_void, user_data: *mut c_void) -> RtValue {
    make("rt_callback_new", func, user_data, 1)
}

/// As `rt_callback_new` for a two-argument `RtCallback2`:
/// `RtValue (*)(void *user_data, RtValue a, RtValue b)`.
///
/// # Errors
/// - InvalidArgument: func must not be NULL
#[rt_host(tier = "empirical")]
pub fn rt_callback_new2(func: *mut c_void, user_data: *mut c_void) -> RtValue {
    make("rt_callback_new2", func, user_data, 2)
}

fn with_callback(func: &'static str, cb: RtValue, f: impl FnOnce(&Callback)) -> RtValue {
    match <Handle<Callback> as ffi_sdk::FromArg>::from_arg(cb, func, 0, "callback") {
        Ok(h) => {
            f(&h);
            abi::NIL
        }
        Err(e) => e.into_value().raw(),
    }
}

/// Sets the `RtCallbackRelease` (`void (*)(void *user_data)`) that runs once
/// when the callback is released: after the handle is closed or collected
/// and the last call using it has returned (on whichever thread that is).
/// Nil, or Error (not a Callback, closed, a release already set).
///
/// # Errors
/// - InvalidArgument: a release function is set already
/// - Closed: the handle was closed
#[rt_host(tier = "empirical")]
pub fn rt_callback_on_release(callback: RtValue, release: *mut c_void) -> RtValue {
    let mut clash = false;
    let r = with_callback("rt_callback_on_release", callback, |c| {
        // SAFETY: the host's contract (`RtCallbackRelease`, doc above): `release` is a
        // `void (*)(void *user_data)` that may run once, on whichever thread releases the callback.
        clash = !unsafe { c.set_release(release) };
    });
    if clash {
        return Error::invalid("rt_callback_on_release", "a release function is set already", "callback")
            .into_value()
            .raw();
    }
    r
}

/// Sets the callback's flags: 1 = RT_CALLBACK_RESULT_PINNED (the callback
/// returns its result with one pin, which the library drops once it holds
/// the word where the collector sees it). Nil, or Error (not a Callback,
/// closed, unknown flag bits).
///
/// # Errors
/// - InvalidArgument: unknown flag bits
/// - Closed: the handle was closed
#[rt_host(tier = "empirical")]
pub fn rt_callback_set_flags(callback: RtValue, flags: u32) -> RtValue {
    if flags & !CB_RESULT_PINNED != 0 {
        return Error::invalid("rt_callback_set_flags", "unknown flag bits", flags).into_value().raw();
    }
    // SAFETY: only CB_RESULT_PINNED can be set (checked above), and the host's contract (doc
    // above) is that the callback then returns its result with one pin for the library to drop.
    with_callback("rt_callback_set_flags", callback, |c| unsafe { c.set_flags(flags) })
}

/// Names of host-surface functions, rebuilt when the registry changes.
static HOST_NAMES: Mutex<Option<(u64, HashSet<String>)>> = Mutex::new(None);

fn is_host_fn(name: &str) -> bool {
    let gen = abi_gen();
    let mut g = HOST_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().map(|(k, _)| *k) != Some(gen) {
        let w = crate::registry::rt_registry_json();
        let text = Value::from_raw(w).as_text().unwrap_or("[]").to_string();
        let set: HashSet<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|j| j.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["host"].as_bool() == Some(true))
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect();
        *g = Some((gen, set));
    }
    g.as_ref().is_some_and(|(_, s)| s.contains(name))
}

fn abi_gen() -> u64 {
    crate::registry::RT_REGISTRY_GEN.load(Ordering::Acquire)
}

/// Internal: a domain function by name for a callable: 0 ok (`arity`,
/// `addr` set), 1 unknown, 2 a host-surface function (C types: not callable).
///
/// # Safety
/// `name` is valid for `n` bytes; `arity` and `addr` are writable.
#[no_mangle]
pub unsafe extern "C" fn rt__callable_lookup(name: *const u8, n: usize, arity: *mut u32, addr: *mut *const ()) -> u32 {
    let r = std::panic::catch_unwind(|| {
        let mut a = 0u32;
        let p = crate::registry::rt_registry_lookup(name, n, &mut a);
        if p.is_null() {
            return 1;
        }
        let s = std::str::from_utf8(std::slice::from_raw_parts(name, n)).unwrap_or("");
        if is_host_fn(s) {
            return 2;
        }
        *arity = a;
        *addr = p as *const ();
        0
    });
    r.unwrap_or(1)
}
