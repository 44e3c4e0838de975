//! Running a program to completion: `rt_process_run`, `_timeout`,
//! `_with_limits`, and `rt_getpid`.
//!
//! Options (the trailing `opts` dict, nil for defaults, the same keys
//! wherever they apply; unknown keys are InvalidArgument):
//! - `stdin`: text or bytes fed to the child, then end of file (default: /dev/null);
//!   `inherit_stdin: true` gives it the host's stdin instead.
//! - `stdout`, `stderr`: `"capture"` (default), `"inherit"` or `"null"`; not captured → nil in the result.
//! - `cwd`: working directory (must exist); `./x` programs are found relative to it.
//! - `env`: dict name → text (set) or nil (remove), over the host's environment
//!   unless `clear_env: true`. Setting LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT or
//!   DYLD_* needs unscoped `process.spawn` (SPEC §7).
//! - `text` (default true): stdout/stderr as text, Error Parse (with the byte
//!   position) if not UTF-8; false: bytes.
//! - `timeout_ms` (≥ 0), `grace_ms` (≥ 0, default 0): see `rt_process_run_timeout`.
//! - `limits`: dict of rlimits (see `sandbox.rs`).
//!
//! Program lookup: a name without `/` is searched in the child's PATH (the
//! env option's, else the host's, else `/bin:/usr/bin`); `./x` and `dir/x`
//! are relative to `cwd`. Capability `process.spawn` is checked on the
//! canonical path of the file found. Missing: NotFound naming the program;
//! not executable or a directory: PermissionDenied.
//!
//! Children start in their own process group (pgid = pid). The call returns
//! when the child has exited AND its stdout/stderr reached end of file (a
//! background grandchild that keeps them open keeps the call waiting: give a timeout).

use crate::sandbox::Limits;
use crate::spawn::{execute, outcome_value, Options, Out};
use ffi_sdk::prelude::*;
use std::time::Duration;

const RUN_OPTS: &[&str] =
    &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits"];

/// Runs a program to completion and returns {stdout, stderr, code, signal, timed_out} (code nil when killed by a signal).
/// Options: stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, timeout_ms, grace_ms, limits.
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, RUN_OPTS, Out::Capture)?;
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Runs a program with a deadline: after `timeout_ms` its whole process group gets SIGTERM, then SIGKILL
/// `grace_ms` later (option, default 0 = SIGKILL at once). Returns the dict of rt_process_run with
/// timed_out true and the output captured so far.
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run_timeout(program: &str, args: Vec<String>, timeout_ms: u64, opts: Opts) -> RtResult<Value> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "grace_ms", "limits"];
    let mut o = Options::read(FN, &opts, known, Out::Capture)?;
    o.timeout = Some(Duration::from_millis(timeout_ms));
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Runs a program under resource limits (real rlimits set in the child before exec): `limits` keys
/// cpu_seconds, address_space_bytes, open_files, processes, file_size_bytes. Returns the dict of rt_process_run.
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run_with_limits(program: &str, args: Vec<String>, limits: Dict, opts: Opts) -> RtResult<Value> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms"];
    let mut o = Options::read(FN, &opts, known, Out::Capture)?;
    o.limits = Limits::parse(FN, limits.0)?;
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// The id of the calling process.
#[rt_fn(tier = "verified")]
pub fn rt_getpid() -> i64 {
    std::process::id() as i64
}
