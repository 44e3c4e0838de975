//! Thread-local values (Simple's `rt_thread_local_*`): one handle, one value
//! per thread, each pinned while set.

use crate::slot::Slot;
use ffi_sdk::prelude::*;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Per-thread values keyed by thread id (`rt_thread_id`).
pub struct ThreadLocal(Mutex<HashMap<u64, Slot>>);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for ThreadLocal {
    const NAME: &'static str = "ThreadLocal";
}

/// A new thread-local slot (nil on every thread until set). A value set by a thread stays pinned until that thread sets nil or the handle is released.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "handle<ThreadLocal>", tier = "empirical")]
pub fn rt_thread_local_new() -> Value {
    new_handle(ThreadLocal(Mutex::new(HashMap::new())))
}

/// The calling thread's value (nil when unset).
///
/// # Errors
/// - Closed: `tls` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_local_get(tls: Handle<ThreadLocal>) -> Value {
    tls.0.lock().get(&crate::current_id()).map_or(Value::NIL, Slot::get)
}

/// Sets the calling thread's value (nil removes it).
///
/// # Errors
/// - Closed: `tls` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_local_set(tls: Handle<ThreadLocal>, value: Value) {
    let me = crate::current_id();
    let old = if value.is_nil() { tls.0.lock().remove(&me) } else { tls.0.lock().insert(me, Slot::new(value)) };
    drop(old);
}
