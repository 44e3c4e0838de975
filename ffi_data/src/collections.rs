//! Maps of values shared between threads, as handles:
//! - `Map` (`rt_map_*`): a concurrent hash map (dashmap, sharded locks);
//!   no order.
//! - `OrderedMap` (`rt_omap_*`): an insertion-ordered map (indexmap behind a
//!   read-write lock); removal keeps the order of the others; `rt_omap_at`
//!   reads entry i.
//!
//! Keys are text, int, bytes or bool (compared by content; `1` and `"1"` are
//! different keys); other kinds are Error TypeMismatch. Values are any value.
//! Each stored value is pinned (SPEC §4) while the map holds it and unpinned
//! when it is replaced, removed, cleared, or the map is released (close, or
//! the collector finding the handle unreachable).
//!
//! Iteration: `keys` and `to_dict` return snapshots (arrays / dicts made in
//! collector memory) taken under the map's locks, so a host iterates them
//! while other threads keep writing; for the ordered map, `len` + `at(i)`
//! walk it in place.

use dashmap::DashMap;
use ffi_sdk::prelude::*;
use indexmap::IndexMap;
use parking_lot::RwLock;

/// A map key: copied out of the value.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Key {
    Text(Box<str>),
    Int(i64),
    Bytes(Box<[u8]>),
    Bool(bool),
}

impl Key {
    fn from_value(func: &'static str, v: Value) -> RtResult<Key> {
        if let Some(s) = v.as_text() {
            Ok(Key::Text(s.into()))
        } else if let Some(i) = v.as_int() {
            Ok(Key::Int(i))
        } else if let Some(b) = v.as_bytes() {
            Ok(Key::Bytes(b.into()))
        } else if let Some(b) = v.as_bool() {
            Ok(Key::Bool(b))
        } else {
            Err(ffi_sdk::args::kind_error(func, 1, "key", "text, int, bytes or bool", v))
        }
    }
    fn to_value(&self) -> Value {
        match self {
            Key::Text(s) => Value::text(s),
            Key::Int(i) => Value::int(*i),
            Key::Bytes(b) => Value::bytes(b),
            Key::Bool(b) => Value::bool(*b),
        }
    }
}

/// Concurrent hash map of values (handle type `Map`).
pub struct Map {
    map: DashMap<Key, Root>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Map {
    const NAME: &'static str = "Map";
}

/// Insertion-ordered map of values (handle type `OrderedMap`).
pub struct OrderedMap {
    map: RwLock<IndexMap<Key, Root>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for OrderedMap {
    const NAME: &'static str = "OrderedMap";
}

/// The value a removed/replaced root held; the root is dropped (unpinned) after the
/// value is on this stack, where the collector sees it.
fn take(old: Option<Root>) -> Value {
    match old {
        Some(r) => {
            let v = r.get();
            drop(r);
            v
        }
        None => Value::NIL,
    }
}

// ---------------------------------------------------------------- Map

/// A new concurrent hash map of values (keys: text, int, bytes, bool).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified", ret = "handle<Map>")]
pub fn rt_map_new() -> Value {
    new_handle(Map { map: DashMap::new() })
}

/// Sets `key` to `value` (pinned while stored); returns the previous value, or nil.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_set(map: Handle<Map>, key: Value, value: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    Ok(take(map.map.insert(k, Root::new(value))))
}

/// The value at `key`, or nil when absent (use rt_map_has to tell a stored nil apart).
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_get(map: Handle<Map>, key: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    Ok(map.map.get(&k).map_or(Value::NIL, |r| r.get()))
}

/// Whether `key` is present.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_has(map: Handle<Map>, key: Value) -> RtResult<bool> {
    let k = Key::from_value(FN, key)?;
    Ok(map.map.contains_key(&k))
}

/// Removes `key`; returns its value (now unpinned), or nil when absent.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_remove(map: Handle<Map>, key: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    Ok(take(map.map.remove(&k).map(|(_, r)| r)))
}

/// Number of entries.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_len(map: Handle<Map>) -> i64 {
    map.map.len() as i64
}

/// Snapshot of the keys (no particular order).
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_map_keys(map: Handle<Map>) -> Value {
    let out = Value::array(map.map.len());
    for e in map.map.iter() {
        out.push(e.key().to_value());
    }
    out
}

/// Snapshot of the entries as a dict (no particular order).
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_map_to_dict(map: Handle<Map>) -> RtResult<Value> {
    let out = Value::dict();
    for e in map.map.iter() {
        out.set_value(e.key().to_value(), e.value().get())?;
    }
    Ok(out)
}

/// Removes every entry (unpinning the values).
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_map_clear(map: Handle<Map>) {
    map.map.clear();
}

// ---------------------------------------------------------------- OrderedMap

/// A new insertion-ordered map of values (keys: text, int, bytes, bool).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified", ret = "handle<OrderedMap>")]
pub fn rt_omap_new() -> Value {
    new_handle(OrderedMap { map: RwLock::new(IndexMap::new()) })
}

/// Sets `key` to `value` (a new key goes last, an existing one keeps its place); returns the previous value, or nil.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_set(map: Handle<OrderedMap>, key: Value, value: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    let root = Root::new(value);
    let old = map.map.write().insert(k, root);
    Ok(take(old))
}

/// The value at `key`, or nil when absent.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_get(map: Handle<OrderedMap>, key: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    Ok(map.map.read().get(&k).map_or(Value::NIL, |r| r.get()))
}

/// Whether `key` is present.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_has(map: Handle<OrderedMap>, key: Value) -> RtResult<bool> {
    let k = Key::from_value(FN, key)?;
    Ok(map.map.read().contains_key(&k))
}

/// Removes `key`, keeping the order of the others (O(n)); returns its value, or nil when absent.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_remove(map: Handle<OrderedMap>, key: Value) -> RtResult<Value> {
    let k = Key::from_value(FN, key)?;
    let old = map.map.write().shift_remove(&k);
    Ok(take(old))
}

/// Number of entries.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_len(map: Handle<OrderedMap>) -> i64 {
    map.map.read().len() as i64
}

/// Snapshot of the keys in insertion order.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_omap_keys(map: Handle<OrderedMap>) -> Value {
    let m = map.map.read();
    let out = Value::array(m.len());
    for k in m.keys() {
        out.push(k.to_value());
    }
    out
}

/// Snapshot of the entries as a dict, in insertion order.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_omap_to_dict(map: Handle<OrderedMap>) -> RtResult<Value> {
    let m = map.map.read();
    let out = Value::dict();
    for (k, v) in m.iter() {
        out.set_value(k.to_value(), v.get())?;
    }
    Ok(out)
}

/// Entry `index` in insertion order as `[key, value]`.
///
/// # Errors
/// - InvalidArgument: `index` is negative
/// - Closed: `map` was closed
/// - OutOfRange: past the end
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_omap_at(map: Handle<OrderedMap>, index: u64) -> RtResult<Value> {
    let m = map.map.read();
    let i = usize::try_from(index).unwrap_or(usize::MAX);
    match m.get_index(i) {
        Some((k, v)) => Ok(Value::array(2).push(k.to_value()).push(v.get())),
        None => Err(Error::new(Code::OutOfRange, FN, "index out of range", format!("index {index}, length {}", m.len()))),
    }
}

/// Removes every entry (unpinning the values).
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_omap_clear(map: Handle<OrderedMap>) {
    map.map.write().clear();
}
