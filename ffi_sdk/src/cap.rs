//! Capability checks for domain functions (SPEC §7). The policy lives in
//! `ffi_core`; while it is allow-all (and no audit log is open) a check is
//! one relaxed atomic load.

use crate::abi;
use crate::error::{Code, Error, RtResult};
use std::path::Path;
use std::sync::atomic::Ordering;

/// True while every capability is granted and nothing is audited.
#[inline(always)]
pub fn allow_all() -> bool {
    // SAFETY: RT_CAP_SLOW is core's `#[no_mangle] pub static AtomicU32` (caps.rs), declared
    // here with the same type; every library links libffi_core.so, so the symbol exists,
    // and an atomic load through a shared reference needs no further synchronisation.
    unsafe { abi::RT_CAP_SLOW.load(Ordering::Relaxed) == 0 }
}

/// Checks `cap` for `resource` ("" for unscoped capabilities).
#[inline(always)]
pub fn check(func: &'static str, cap: &'static str, resource: &str) -> RtResult<()> {
    if allow_all() {
        return Ok(());
    }
    decide(func, cap, resource)
}

#[cold]
#[inline(never)]
fn decide(func: &str, cap: &str, resource: &str) -> RtResult<()> {
    // SAFETY: the three (pointer, length) pairs come from live `&str`s, each readable for
    // its length during the call (an empty one has a dangling but non-NULL pointer with
    // length 0, which `rt__cap_decide` slices as empty); core copies nothing it keeps.
    let r = unsafe {
        abi::rt__cap_decide(cap.as_ptr(), cap.len(), resource.as_ptr(), resource.len(), func.as_ptr(), func.len())
    };
    match r {
        1 => Ok(()),
        0 => {
            let msg = if resource.is_empty() {
                format!("{func} needs {cap}")
            } else {
                format!("{func} needs {cap} for {resource}")
            };
            Err(Error { code: Code::CapabilityDenied, message: msg, details: Vec::new() }
                .with("capability", cap)
                .with("resource", resource))
        }
        _ => Err(Error::internal(func, format!("unknown capability {cap}"))),
    }
}

/// Whether `cap` is granted for `resource` ("" = unscoped use), without an
/// audit record: for the library's own questions (is this capability
/// scoped at all?), not for decisions about a caller's request.
pub fn query(cap: &'static str, resource: &str) -> bool {
    if allow_all() {
        return true;
    }
    // SAFETY: `cap` and `resource` are live `&str`s passed with their lengths; `func` is
    // NULL with length 0, which `rt__cap_decide` reads as "" (no audit record).
    unsafe { abi::rt__cap_decide(cap.as_ptr(), cap.len(), resource.as_ptr(), resource.len(), std::ptr::null(), 0) == 1 }
}

/// Checks `cap` on the canonical form of `path` (see [`crate::paths::resolve`]).
pub fn check_path(func: &'static str, cap: &'static str, path: &Path) -> RtResult<()> {
    if allow_all() {
        return Ok(());
    }
    let canon = crate::paths::resolve(path).map_err(|e| Error::io(func, path.display(), &e))?;
    decide(func, cap, &canon.to_string_lossy())
}

/// Whether `cap` allows `resource` (already canonical for paths), audited
/// like any check: the filter form of [`check`], for entries found by a
/// descriptor walk.
pub fn permits(func: &'static str, cap: &'static str, resource: &str) -> bool {
    check(func, cap, resource).is_ok()
}

/// Whether `cap` allows the canonical form of `path` (false when it cannot be
/// resolved): the filter form of [`check_path`], for results of a walk or glob.
/// Denials are audited like any check.
pub fn permitted(func: &'static str, cap: &'static str, path: &Path) -> bool {
    if allow_all() {
        return true;
    }
    match crate::paths::resolve(path) {
        Ok(c) => decide(func, cap, &c.to_string_lossy()).is_ok(),
        Err(_) => false,
    }
}

/// What the policy grants of one capability, for a library that must pass
/// the policy on (a spawned child's file-system confinement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Granted whole (also while the policy is allow-all).
    All,
    /// Not granted.
    Nothing,
    /// Granted for these scopes (canonical paths for the fs family), except
    /// the `deny` ones (written `!scope` in the policy).
    Some { allow: Vec<String>, deny: Vec<String> },
}

/// The grant of `cap` in the policy in force ([`Scope::All`] for an unknown name).
pub fn scope(cap: &str) -> Scope {
    let [s] = scopes([cap]);
    s
}

/// The grants of several capabilities, read from one view of the policy.
pub fn scopes<const N: usize>(caps: [&str; N]) -> [Scope; N] {
    if allow_all() {
        return std::array::from_fn(|_| Scope::All);
    }
    // SAFETY: core's `RtValue rt_cap_current(void)` (an `#[rt_fn]` export, declared in abi.rs
    // with that type); it takes nothing and returns a fresh dict kept on this stack while read.
    let d = crate::Value::from_raw(unsafe { abi::rt_cap_current() });
    let out = caps.map(|cap| {
        let v = d.get(cap);
        if v.as_bool() == Some(false) {
            return Scope::Nothing;
        }
        if !v.is_array() {
            return Scope::All;
        }
        let (mut allow, mut deny) = (Vec::new(), Vec::new());
        for item in v.items() {
            if let Some(s) = item.as_text() {
                match s.strip_prefix('!') {
                    Some(d) => deny.push(d.to_string()),
                    None => allow.push(s.to_string()),
                }
            }
        }
        Scope::Some { allow, deny }
    });
    std::hint::black_box(d);
    out
}
