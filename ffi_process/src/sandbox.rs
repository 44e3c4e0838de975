//! Resource limits for children (real rlimits, set in the child between fork
//! and exec) and the process-wide sandbox ceiling.
//!
//! Limit keys, used by the `limits` option of every spawning function,
//! `rt_process_run_with_limits` and `rt_sandbox_set_limits`:
//!
//! | key | rlimit | what happens at the limit |
//! |---|---|---|
//! | `cpu_seconds` (≥ 1) | RLIMIT_CPU, soft n, hard n+1 | SIGXCPU at n s of CPU, SIGKILL at n+1 |
//! | `address_space_bytes` | RLIMIT_AS | allocations (mmap/brk) fail with ENOMEM |
//! | `open_files` | RLIMIT_NOFILE | open/pipe/socket fail with EMFILE |
//! | `processes` | RLIMIT_NPROC | fork fails with EAGAIN (counts every process of the child's real user; root is exempt) |
//! | `file_size_bytes` | RLIMIT_FSIZE | a write past it raises SIGXFSZ (EFBIG if the child ignores it) |
//!
//! Soft and hard limits are both set (the child cannot raise them again).
//! SIGXFSZ and SIGXCPU are reset to their default action in the child when
//! the host ignores them (CPython ignores SIGXFSZ), so a limit kills as documented.

use ffi_sdk::prelude::*;
use std::sync::Mutex;

/// Names of the limit keys, in the order of [`Limits::vals`].
pub const KEYS: [&str; 5] = ["cpu_seconds", "address_space_bytes", "open_files", "processes", "file_size_bytes"];
const RES: [libc::c_int; 5] = [
    libc::RLIMIT_CPU as libc::c_int,
    libc::RLIMIT_AS as libc::c_int,
    libc::RLIMIT_NOFILE as libc::c_int,
    libc::RLIMIT_NPROC as libc::c_int,
    libc::RLIMIT_FSIZE as libc::c_int,
];

/// A set of limits; `None` = not limited here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub vals: [Option<u64>; 5],
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.vals.iter().all(Option::is_none)
    }

    /// Reads a limits dict (unknown keys, negative values and non-ints are InvalidArgument).
    pub fn parse(func: &'static str, v: Value) -> RtResult<Limits> {
        if !v.is_dict() {
            return Err(Error::invalid(func, "limits must be a dict", v.describe()));
        }
        let d = Opts::new(func, v);
        d.only(&KEYS)?;
        let mut l = Limits::default();
        for (i, k) in KEYS.iter().enumerate() {
            let min = if i == 0 { 1 } else { 0 };
            l.vals[i] = d.int_in(k, min, i64::MAX)?.map(|x| x as u64);
        }
        Ok(l)
    }

    /// The limits as a dict (only the keys that are set).
    pub fn to_value(&self) -> Value {
        let d = Value::dict();
        for (i, k) in KEYS.iter().enumerate() {
            if let Some(v) = self.vals[i] {
                d.set(k, Value::int(v as i64));
            }
        }
        d
    }

    /// The rlimits to set in the child: `(resource, limit)`, the first `n` used.
    pub fn rlimits(&self) -> ([(libc::c_int, libc::rlimit); 5], usize) {
        let mut out = [(0, libc::rlimit { rlim_cur: 0, rlim_max: 0 }); 5];
        let mut n = 0;
        for (i, (val, res)) in self.vals.iter().zip(RES).enumerate() {
            if let Some(v) = *val {
                let v = v as libc::rlim_t;
                // CPU: the soft limit sends SIGXCPU; one second later the hard limit SIGKILLs.
                let hard = if i == 0 { cpu_hard(v) } else { v };
                out[n] = (res, libc::rlimit { rlim_cur: v, rlim_max: hard });
                n += 1;
            }
        }
        (out, n)
    }
}

/// n+1, unless our own hard limit leaves no room (then n: SIGKILL at once).
fn cpu_hard(n: libc::rlim_t) -> libc::rlim_t {
    match current(libc::RLIMIT_CPU as libc::c_int) {
        Some(l) if l.rlim_max != libc::RLIM_INFINITY && l.rlim_max <= n && !privileged() => n,
        _ => n.saturating_add(1),
    }
}

fn current(res: libc::c_int) -> Option<libc::rlimit> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `l` is a live, writable `rlimit` local, the one struct getrlimit fills; an
    // unknown `res` is EINVAL, not UB.
    #[allow(clippy::unnecessary_cast)]
    let r = unsafe { libc::getrlimit(res as _, &mut l) };
    (r == 0).then_some(l)
}

fn privileged() -> bool {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The sandbox ceiling: applied to every child this library spawns.
static SANDBOX: Mutex<Limits> = Mutex::new(Limits { vals: [None; 5] });

fn sandbox() -> Limits {
    *SANDBOX.lock().unwrap_or_else(|e| e.into_inner())
}

/// The limits for one spawn: the call's, with the sandbox's filled in. A
/// call may tighten a sandbox limit but not exceed it (PermissionDenied);
/// a value above the host's own hard limit is PermissionDenied too (unless root).
pub fn effective(func: &'static str, call: &Limits) -> RtResult<Limits> {
    let sb = sandbox();
    let mut l = Limits::default();
    for (i, key) in KEYS.iter().enumerate() {
        l.vals[i] = match (sb.vals[i], call.vals[i]) {
            (Some(s), Some(c)) if c > s => {
                return Err(Error::new(
                    Code::PermissionDenied,
                    func,
                    format!("limit {key} exceeds the sandbox limit {s} (rt_sandbox_set_limits)"),
                    c,
                ))
            }
            (s, None) => s,
            (_, c) => c,
        };
    }
    check_hard(func, &l)?;
    Ok(l)
}

fn check_hard(func: &'static str, l: &Limits) -> RtResult<()> {
    if privileged() {
        return Ok(());
    }
    for ((val, res), key) in l.vals.iter().zip(RES).zip(KEYS) {
        if let (Some(v), Some(cur)) = (*val, current(res)) {
            if cur.rlim_max != libc::RLIM_INFINITY && v as libc::rlim_t > cur.rlim_max {
                return Err(Error::new(
                    Code::PermissionDenied,
                    func,
                    format!("limit {key} is above this process's hard limit {}", cur.rlim_max),
                    v,
                ));
            }
        }
    }
    Ok(())
}

/// Sets sandbox limits for every child this library spawns from now on (NOT the host process itself).
/// Keys as in the `limits` option (cpu_seconds, address_space_bytes, open_files, processes,
/// file_size_bytes). Like the capability policy it only narrows: a limit can be lowered, never
/// raised or removed (PermissionDenied, and nothing changes). A spawn's own `limits` may be lower.
///
/// # Errors
/// - InvalidArgument: limits must be a dict
/// - PermissionDenied: sandbox limit <key> is <cur> and can only be lowered; limit <key> is above this process's hard limit …
#[rt_fn(tier = "verified")]
pub fn rt_sandbox_set_limits(limits: Dict) -> RtResult<()> {
    let want = Limits::parse(FN, limits.0)?;
    check_hard(FN, &want)?;
    let mut sb = SANDBOX.lock().unwrap_or_else(|e| e.into_inner());
    for ((cur, w), key) in sb.vals.iter().zip(want.vals).zip(KEYS) {
        if let (Some(cur), Some(w)) = (*cur, w) {
            if w > cur {
                return Err(Error::new(Code::PermissionDenied, FN, format!("sandbox limit {key} is {cur} and can only be lowered"), w));
            }
        }
    }
    for (cur, w) in sb.vals.iter_mut().zip(want.vals) {
        if w.is_some() {
            *cur = w;
        }
    }
    Ok(())
}

/// The sandbox limits now in force for spawned children, as a dict of the keys set (empty when none).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_sandbox_limits() -> Value {
    sandbox().to_value()
}
