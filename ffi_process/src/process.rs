//! Running a program to completion: `rt_process_run`, `_timeout`,
//! `_with_limits`, and `rt_getpid`.
//!
//! Options (the trailing `opts` dict, nil for defaults, the same keys
//! wherever they apply; unknown keys are InvalidArgument):
//! - `stdin`: text or bytes fed to the child, then end of file (default: /dev/null);
//!   `inherit_stdin: true` gives it the host's stdin instead; `stdin_pipe: true`
//!   (spawns only) keeps a pipe open for rt_process_write_stdin /
//!   rt_process_write_stdin_some until rt_process_stdin_close.
//! - `stdout`, `stderr`: `"capture"` (default), `"inherit"` or `"null"`; not captured → nil in the result.
//! - `cwd`: working directory (must exist); `./x` programs are found relative to it.
//! - `env`: dict name → text (set) or nil (remove), over the inherited
//!   environment (below) unless `clear_env: true`. Setting any `LD_*` (LD_PRELOAD,
//!   LD_LIBRARY_PATH, LD_AUDIT...) or `DYLD_*` variable needs unscoped
//!   `process.spawn` (SPEC §7): CapabilityDenied otherwise.
//! - `text` (default true): stdout/stderr as text, Error Parse (with the byte
//!   position) if not UTF-8; false: bytes.
//! - `timeout_ms` (≥ 0), `grace_ms` (≥ 0, default 0): see `rt_process_run_timeout`.
//! - `limits`: dict of rlimits (see `sandbox.rs`).
//! - `max_output` (≥ 0, default 67108864 = 64 MiB): most bytes captured per
//!   stream. Past it the call returns Error LimitExceeded (naming the stream)
//!   and the program and all its descendants are killed. For a Child handle it
//!   bounds the output buffered and not yet read.
//!
//! Inherited environment: while the policy is allow-all a child inherits the
//! host's whole environment. Under a restricted policy, when `env.read` is
//! scoped a child inherits only the variables the policy lets the caller read
//! (as `rt_env_get` would), plus those set by the `env` option; and `LD_*` /
//! `DYLD_*` variables are never inherited unless `process.spawn` is unscoped
//! (whatever `env.read` says). PATH lookup uses the child's PATH after this
//! filtering.
//!
//! Program lookup: a name without `/` is searched in the child's PATH (the
//! env option's, else the host's, else `/bin:/usr/bin`); `./x` and `dir/x`
//! are relative to `cwd`. Capability `process.spawn` is checked on the
//! canonical path of the file found. Missing: NotFound naming the program;
//! not executable or a directory: PermissionDenied.
//!
//! Children start in their own process group (pgid = pid) under a small
//! supervisor process (the child's parent, a child subreaper; `supervise.rs`):
//! a timeout, rt_process_kill or a close reaches every descendant, also those
//! that called `setsid` or were orphaned by a double fork; none survives it.
//! The call returns when the child has exited AND its stdout/stderr reached end
//! of file (a background grandchild that keeps them open keeps the call
//! waiting: give a timeout). Descendants still running then, with the output
//! closed (daemons), are left running, as they would be without the supervisor.
//! The supervisor shares the host's memory until it exits (a `clone(CLONE_VM)`
//! process, not a fork): it costs about what a thread does, and a run of
//! `true` stays within ~10% of std's `Command::output()` (docs/bench/process.md).

use crate::sandbox::Limits;
use crate::spawn::{execute, outcome_value, Options, Out};
use ffi_sdk::prelude::*;
use std::time::Duration;

const RUN_OPTS: &[&str] =
    &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits", "max_output"];

/// Runs a program to completion and returns {stdout, stderr, code, signal, timed_out} (code nil when killed by a
/// signal). A non-zero exit status is a result, not an Error. Under a restricted policy the child inherits only
/// the variables env.read lets the caller read, and LD_*/DYLD_* only with unscoped process.spawn (module docs).
///
/// # Options
/// - stdin (text or bytes): what the child reads on its stdin (default: nothing, /dev/null)
/// - inherit_stdin (bool, default false): the child reads this process's stdin (excludes stdin)
/// - stdout (text, default "capture"): "capture", "inherit" or "null"
/// - stderr (text, default "capture"): "capture", "inherit" or "null"
/// - cwd (text): the child's working directory (default: this process's)
/// - env (dict of text or nil): variables to set; a nil value removes the variable
/// - clear_env (bool, default false): start the child from an empty environment
/// - text (bool, default true): stdout and stderr as text (false: bytes)
/// - timeout_ms (int >= 0): kill the program and every descendant after this long (timed_out true in the result)
/// - grace_ms (int >= 0, default 0): with timeout_ms, SIGTERM first and SIGKILL this much later
/// - limits (dict): resource limits for the child (rt_sandbox_set_limits keys)
/// - max_output (int, default 64 MiB): the most bytes captured per stream
///
/// # Errors
/// - NotFound: the program is not found (on PATH, or at the path given)
/// - PermissionDenied: the program is not executable, or a limit exceeds the sandbox's limit
/// - InvalidArgument: an empty program, a NUL byte in the program or an argument, an unknown or malformed option, cwd not a directory
/// - LimitExceeded: a stream's output passed max_output
/// - Parse: the output is not UTF-8 with text true
/// - Io: the program could not be started (details.errno)
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
///
/// # Example
/// rt_process_run("echo", ["hello", "from a child"]) -> {stdout: "hello from a child\n", stderr: "", code: 0, signal: nil, timed_out: false}
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, RUN_OPTS, Out::Capture)?;
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Runs a program with a deadline: after `timeout_ms` the program and every descendant (also those that left its
/// process group) get SIGTERM, then SIGKILL `grace_ms` later (option, default 0 = SIGKILL at once). Returns the dict of rt_process_run with
/// timed_out true and the output captured so far.
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdout: "capture", "inherit" or "null"
/// - stderr: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - grace_ms (int >= 0, default 0): also those that left its process group get SIGTERM, then SIGKILL `grace_ms` later option, default 0 = SIGKILL at once
/// - limits: resource limits for the child (dict)
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid; the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)
/// - Parse: malformed input (details.line/column/position where known)
/// - LimitExceeded: a size, depth or count limit was reached
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run_timeout(program: &str, args: Vec<String>, timeout_ms: u64, opts: Opts) -> RtResult<Value> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "grace_ms", "limits", "max_output"];
    let mut o = Options::read(FN, &opts, known, Out::Capture)?;
    o.timeout = Some(Duration::from_millis(timeout_ms));
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Runs a program under resource limits (real rlimits set in the child before exec): `limits` keys
/// cpu_seconds, address_space_bytes, open_files, processes, file_size_bytes. Returns the dict of rt_process_run
/// (options and environment rule as rt_process_run).
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdout: "capture", "inherit" or "null"
/// - stderr: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - NotFound: what it names does not exist
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid; the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)
/// - Parse: malformed input (details.line/column/position where known)
/// - LimitExceeded: a size, depth or count limit was reached
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run_with_limits(program: &str, args: Vec<String>, limits: Dict, opts: Opts) -> RtResult<Value> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "max_output"];
    let mut o = Options::read(FN, &opts, known, Out::Capture)?;
    o.limits = Limits::parse(FN, limits.0)?;
    let oc = execute(FN, program, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// The id of the calling process.
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_getpid() -> 4242
#[rt_fn(tier = "verified")]
pub fn rt_getpid() -> i64 {
    std::process::id() as i64
}
