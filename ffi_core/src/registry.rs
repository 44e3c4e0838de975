//! The process registry (SPEC §6): every function of every loaded library,
//! added by each entry's load-time constructor.

use ffi_sdk::abi::{self, Entry, TypeDesc};
use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct Registry {
    entries: Vec<&'static Entry>,
    by_name: HashMap<&'static str, usize>,
    /// Names defined twice (a packaging bug the tests look for).
    duplicates: Vec<String>,
    json: Option<String>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Incremented on every registry change. Internal (CONTRACT §3): the libraries use it to
/// re-resolve cached callables; hosts re-read `rt_registry_json` instead.
#[no_mangle]
pub static RT_REGISTRY_GEN: AtomicU64 = AtomicU64::new(0);

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Registry::default))
}

/// Internal: adds a library's entries (called by load-time constructors).
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__registry_add(entries: *const *const Entry, n: usize) {
    let list = std::slice::from_raw_parts(entries, n);
    with(|r| {
        for &e in list {
            let e: &'static Entry = &*e;
            if r.by_name.contains_key(e.name) {
                r.duplicates.push(e.name.to_string());
                continue;
            }
            r.by_name.insert(e.name, r.entries.len());
            r.entries.push(e);
        }
        r.json = None;
    });
    RT_REGISTRY_GEN.fetch_add(1, Ordering::Release);
}

/// `text`, `array<text>`, `dict?`, `handle<Regex>`.
pub fn type_string(t: &TypeDesc) -> String {
    let mut s = t.name.to_string();
    if !t.sub.is_empty() {
        s = format!("{s}<{}>", t.sub);
    }
    if t.optional {
        s.push('?');
    }
    s
}

fn entry_json(e: &Entry) -> Json {
    let params: Vec<Json> = e
        .params
        .iter()
        .map(|p| {
            let mut o = json!({"name": p.name, "type": type_string(&p.ty)});
            if e.host {
                o["ctype"] = json!(p.ctype);
            }
            o
        })
        .collect();
    let sig = format!(
        "{}({}) -> {}",
        e.name,
        e.params.iter().map(|p| format!("{}: {}", p.name, type_string(&p.ty))).collect::<Vec<_>>().join(", "),
        type_string(&e.ret)
    );
    let mut o = json!({
        "name": e.name,
        "domain": e.domain,
        "doc": e.doc,
        "params": params,
        "returns": type_string(&e.ret),
        "arity": e.params.len(),
        "capability": if e.cap.is_empty() { Json::Null } else { json!(e.cap) },
        "scoped": e.scoped,
        "blocking": e.blocking,
        "tier": e.tier,
        "host": e.host,
        "signature": sig,
    });
    if e.host {
        o["c_returns"] = json!(e.c_ret);
    }
    o
}

/// Every function of every loaded library as a JSON array (text), sorted by domain then name.
#[rt_host(tier = "verified")]
pub fn rt_registry_json() -> abi::RtValue {
    let s = with(|r| {
        if r.json.is_none() {
            let mut list: Vec<&&Entry> = r.entries.iter().collect();
            list.sort_by(|a, b| (a.domain, a.name).cmp(&(b.domain, b.name)));
            let arr: Vec<Json> = list.into_iter().map(|e| entry_json(e)).collect();
            r.json = Some(serde_json::to_string(&arr).unwrap_or_else(|_| "[]".into()));
        }
        r.json.clone().unwrap_or_default()
    });
    Value::text(&s).raw()
}

/// Address and arity of a loaded function by name; NULL (arity untouched) when unknown.
#[rt_host(tier = "verified")]
pub unsafe fn rt_registry_lookup(name: *const u8, n: usize, arity: *mut u32) -> *mut libc::c_void {
    if name.is_null() {
        return std::ptr::null_mut();
    }
    let Ok(key) = std::str::from_utf8(std::slice::from_raw_parts(name, n)) else {
        return std::ptr::null_mut();
    };
    with(|r| match r.by_name.get(key) {
        Some(&i) => {
            let e = r.entries[i];
            if !arity.is_null() {
                *arity = e.params.len() as u32;
            }
            e.addr as *mut libc::c_void
        }
        None => std::ptr::null_mut(),
    })
}

/// Names that more than one loaded library defined (should be empty).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_registry_duplicates() -> Vec<String> {
    with(|r| r.duplicates.clone())
}

/// The ABI as JSON (text): version, word tags, kinds, error codes, capabilities. Feeds the generated header.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_abi_info_json() -> String {
    let kinds: Vec<Json> = abi::Kind::ALL.iter().map(|k| json!({"name": k.name(), "value": *k as u32})).collect();
    let errors: Vec<Json> =
        Code::ALL.iter().map(|c| json!({"code": *c as u32, "name": c.name(), "doc": c.doc()})).collect();
    let caps: Vec<Json> = crate::caps::CAPS
        .iter()
        .map(|(n, fam)| json!({"name": n, "scope": crate::caps::family_name(*fam)}))
        .collect();
    json!({
        "abi_major": abi::ABI_MAJOR,
        "abi_minor": abi::ABI_MINOR,
        "tags": {"int": abi::TAG_INT, "heap": abi::TAG_HEAP, "float": abi::TAG_FLOAT, "special": abi::TAG_SPECIAL},
        "specials": {"nil": abi::NIL, "true": abi::TRUE, "false": abi::FALSE},
        "inline_int_min": abi::INLINE_INT_MIN,
        "inline_int_max": abi::INLINE_INT_MAX,
        "kinds": kinds,
        "errors": errors,
        "capabilities": caps,
        "heap_kinds": {"string": abi::HK_STRING, "bytes": abi::HK_BYTES, "array": abi::HK_ARRAY, "dict": abi::HK_DICT,
            "int": abi::HK_INT, "float": abi::HK_FLOAT, "error": abi::HK_ERROR, "handle": abi::HK_HANDLE},
        "heap_magic": abi::HEAP_MAGIC,
        "collector_signals": {"suspend": libc::SIGPWR, "restart": libc::SIGRTMIN() + 6},
    })
    .to_string()
}
