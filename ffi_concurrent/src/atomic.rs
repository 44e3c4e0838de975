//! Atomic ints and bools (Simple's `rt_atomic_int_*` / `rt_atomic_bool_*`):
//! sequentially consistent, behind handles.

use ffi_sdk::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::SeqCst};

/// An atomic 64-bit int.
pub struct AtomicInt(AtomicI64);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for AtomicInt {
    const NAME: &'static str = "AtomicInt";
}

/// An atomic bool.
pub struct AtomicFlag(AtomicBool);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for AtomicFlag {
    const NAME: &'static str = "AtomicBool";
}

/// A new atomic int holding `initial`.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "handle<AtomicInt>", tier = "empirical")]
pub fn rt_atomic_int_new(initial: i64) -> Value {
    new_handle(AtomicInt(AtomicI64::new(initial)))
}

/// The current value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_load(atomic: Handle<AtomicInt>) -> i64 {
    atomic.0.load(SeqCst)
}

/// Stores `value`.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_store(atomic: Handle<AtomicInt>, value: i64) {
    atomic.0.store(value, SeqCst)
}

/// Stores `value`; returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_swap(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.swap(value, SeqCst)
}

/// Adds `value` (wrapping at 64 bits); returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_fetch_add(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.fetch_add(value, SeqCst)
}

/// Subtracts `value` (wrapping at 64 bits); returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_fetch_sub(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.fetch_sub(value, SeqCst)
}

/// Bitwise and with `value`; returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_fetch_and(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.fetch_and(value, SeqCst)
}

/// Bitwise or with `value`; returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_fetch_or(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.fetch_or(value, SeqCst)
}

/// Bitwise xor with `value`; returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_fetch_xor(atomic: Handle<AtomicInt>, value: i64) -> i64 {
    atomic.0.fetch_xor(value, SeqCst)
}

/// Stores `new_value` if the value is `current`; true when it did.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_compare_exchange(atomic: Handle<AtomicInt>, current: i64, new_value: i64) -> bool {
    atomic.0.compare_exchange(current, new_value, SeqCst, SeqCst).is_ok()
}

/// Releases the atomic (same as `rt_handle_close`).
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_int_free(atomic: Handle<AtomicInt>) {
    atomic.close();
}

/// A new atomic bool holding `initial`.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "handle<AtomicBool>", tier = "empirical")]
pub fn rt_atomic_bool_new(initial: bool) -> Value {
    new_handle(AtomicFlag(AtomicBool::new(initial)))
}

/// The current value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_bool_load(atomic: Handle<AtomicFlag>) -> bool {
    atomic.0.load(SeqCst)
}

/// Stores `value`.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_bool_store(atomic: Handle<AtomicFlag>, value: bool) {
    atomic.0.store(value, SeqCst)
}

/// Stores `value`; returns the previous value.
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_bool_swap(atomic: Handle<AtomicFlag>, value: bool) -> bool {
    atomic.0.swap(value, SeqCst)
}

/// Releases the atomic (same as `rt_handle_close`).
///
/// # Errors
/// - Closed: `atomic` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_atomic_bool_free(atomic: Handle<AtomicFlag>) {
    atomic.close();
}
