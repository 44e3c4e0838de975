//! Shell commands: `/bin/sh -c COMMAND` (argv[0] `sh`, found at the fixed
//! path /bin/sh, not through PATH). A shell can run anything, so every
//! function here needs `process.spawn` unscoped. Options as for `rt_process_run`.
//!
//! Simple's names: `rt_exec` (= rt_shell_exec), `rt_exec_output` /
//! `rt_shell_output` (stdout as text), `rt_shell_exec_tuple` (= rt_shell), and
//! `rt_shell_exit_code`, the exit status of the calling thread's last shell
//! command (Simple's two-call convention), kept per thread.

use crate::sandbox;
use crate::spawn::{check_argv, check_loader_env, drive, outcome_value, start, Options, Out};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::cell::Cell;
use std::path::Path;

const SHELL: &str = "/bin/sh";

thread_local! {
    /// Exit status of the last shell command this thread ran (128 + N for signal N); 0 before any.
    static LAST_CODE: Cell<i64> = const { Cell::new(0) };
}

/// A shell's view of an exit: the code, or 128 + N when signal N ended it.
fn shell_code(e: crate::spawn::Exit) -> i64 {
    match e {
        crate::spawn::Exit::Code(c) => c as i64,
        crate::spawn::Exit::Signal(s) => 128 + s as i64,
    }
}

fn record(oc: &crate::spawn::Outcome) {
    LAST_CODE.with(|c| c.set(shell_code(oc.exit)));
}

fn timeout_error(func: &'static str, o: &Options, command: &str) -> Error {
    let ms = o.timeout.map_or(0, |t| t.as_millis());
    Error::new(Code::Timeout, func, format!("command did not finish within {ms} ms; it and its descendants were killed"), quote(command))
        .with("timeout_ms", ms as i64)
}

fn sh(func: &'static str, command: &str, o: &Options) -> RtResult<crate::spawn::Outcome> {
    let args = ["-c".to_string(), command.to_string()];
    if command.contains('\0') {
        return Err(Error::invalid(func, "command contains a NUL byte", quote(command)));
    }
    check_argv(func, "sh", &args)?;
    check_loader_env(func, o)?;
    let limits = sandbox::effective(func, &o.limits)?;
    let r = start(func, "sh", Path::new(SHELL), &args, o, &limits, false)?;
    drive(func, r, o, "sh")
}

/// rt_shell's body (also rt_shell_exec_tuple's): the outcome dict, the exit recorded for rt_shell_exit_code.
fn shell_dict(func: &'static str, command: &str, opts: &Opts) -> RtResult<Value> {
    let known = &[
        "stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits", "max_output",
    ];
    let o = Options::read(func, opts, known, Out::Capture)?;
    let oc = sh(func, command, &o)?;
    record(&oc);
    outcome_value(func, &oc, &o)
}

/// Runs `command` with `/bin/sh -c` and returns {stdout, stderr, code, signal, timed_out} like rt_process_run.
/// Options as rt_process_run (stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, timeout_ms, grace_ms, limits,
/// max_output: default 64 MiB per stream, LimitExceeded past it). A timeout kills every descendant. Under a restricted
/// policy the child inherits only the variables env.read lets the caller read (process.rs module docs).
///
/// # Options
/// - stdin (text or bytes): what the child reads on its stdin
/// - inherit_stdin (bool, default false): the child reads this process's stdin (excludes stdin)
/// - stdout (text, default "capture"): "capture", "inherit" or "null"
/// - stderr (text, default "capture"): "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env (dict of text or nil): variables to set; a nil value removes the variable
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): stdout and stderr as text (false: bytes)
/// - timeout_ms (int >= 0): kill the shell and every descendant after this long (timed_out true in the result)
/// - grace_ms (int >= 0, default 0): with timeout_ms, SIGTERM first and SIGKILL this much later
/// - limits (dict): resource limits for the child (rt_sandbox_set_limits keys)
/// - max_output (int, default 64 MiB): the most bytes captured per stream
///
/// # Errors
/// - InvalidArgument: a NUL byte in the command, an unknown or malformed option, cwd not a directory
/// - PermissionDenied: a limit exceeds the sandbox's limit or this process's hard limit
/// - LimitExceeded: a stream's output passed max_output
/// - Parse: the output is not UTF-8 with text true
/// - Io: the shell could not be started or waited for (details.errno)
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
///
/// # Example
/// rt_shell("echo hi; exit 3") -> {stdout: "hi\n", stderr: "", code: 3, signal: nil, timed_out: false}
#[rt_fn(cap = "process.spawn", blocking, tier = "verified", ret = "dict")]
pub fn rt_shell(command: &str, opts: Opts) -> RtResult<Value> {
    shell_dict(FN, command, &opts)
}

/// Runs `command` with `/bin/sh -c`, its stdout and stderr going to the host's own (default), and returns the
/// exit code, or 128 + N when signal N killed it (as shells report). Inherited environment as rt_shell.
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdout: "inherit" or "null"
/// - stderr: "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - grace_ms (int >= 0, default 0): Error Timeout after every descendant is killed
/// - limits: resource limits for the child (dict)
///
/// # Errors
/// - InvalidArgument: rt_shell_exec returns only the exit code: use rt_shell to capture output; option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin
/// - PermissionDenied: limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits)
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", blocking, tier = "verified")]
pub fn rt_shell_exec(command: &str, opts: Opts) -> RtResult<i64> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "timeout_ms", "grace_ms", "limits"];
    let o = Options::read(FN, &opts, known, Out::Inherit)?;
    if o.stdout == Out::Capture || o.stderr == Out::Capture {
        return Err(Error::invalid(FN, "rt_shell_exec returns only the exit code: use rt_shell to capture output", "capture"));
    }
    exec_code(FN, command, &o)
}

fn exec_code(func: &'static str, command: &str, o: &Options) -> RtResult<i64> {
    if o.stdout == Out::Capture || o.stderr == Out::Capture {
        return Err(Error::invalid(func, format!("{func} returns only the exit code: use rt_shell to capture output"), "capture"));
    }
    let oc = sh(func, command, o)?;
    record(&oc);
    if oc.timed_out {
        return Err(timeout_error(func, o, command));
    }
    Ok(shell_code(oc.exit))
}

const EXEC_KEYS: &[&str] = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "timeout_ms", "grace_ms", "limits"];

/// Simple's `rt_exec(cmd) -> i32`: rt_shell_exec under Simple's name. Runs `command` with `/bin/sh -c`, its
/// stdout and stderr going to the host's own, and returns the exit code (128 + N when signal N killed it).
/// Options and errors as rt_shell_exec.
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdout: "capture", "inherit" or "null"
/// - stderr: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
/// - limits: resource limits for the child (dict)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits)
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", blocking, tier = "verified")]
pub fn rt_exec(command: &str, opts: Opts) -> RtResult<i64> {
    let o = Options::read(FN, &opts, EXEC_KEYS, Out::Inherit)?;
    exec_code(FN, command, &o)
}

const OUTPUT_KEYS: &[&str] =
    &["stdin", "inherit_stdin", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits", "max_output"];

/// stdout of a shell command whatever its exit status (kept for rt_shell_exit_code); stderr to the host's own
/// unless the stderr option says otherwise. A timeout is Error Timeout.
fn output_of(func: &'static str, command: &str, opts: &Opts) -> RtResult<Value> {
    let mut o = Options::read(func, opts, OUTPUT_KEYS, Out::Capture)?;
    if opts.get("stderr").is_nil() {
        o.stderr = Out::Inherit;
    }
    let oc = sh(func, command, &o)?;
    record(&oc);
    if oc.timed_out {
        return Err(timeout_error(func, &o, command));
    }
    crate::spawn::stream_value(func, "stdout", &oc.out[0], o.text, true)
}

/// Simple's `rt_exec_output(cmd) -> text`: runs `command` with `/bin/sh -c` and returns its stdout (text; bytes
/// with the option text: false), whatever the exit status (read it with rt_shell_exit_code). stderr goes to
/// the host's own (option stderr: "capture" drops it, "null"). Options as rt_shell otherwise; a timeout is Error
/// Timeout; output past max_output (default 64 MiB) is LimitExceeded.
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stderr: option stderr: "capture" drops it, "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): bytes with the option text: false, whatever the exit status read it with rt_shell_exit_code
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
/// - limits: resource limits for the child (dict)
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits)
/// - Io: the supervisor of … did not report the program's pid
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", blocking, tier = "verified", ret = "any")]
pub fn rt_exec_output(command: &str, opts: Opts) -> RtResult<Value> {
    output_of(FN, command, &opts)
}

/// Simple's `rt_shell_output(cmd) -> text`: the same as rt_exec_output (stdout of `/bin/sh -c command`).
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stderr: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
/// - limits: resource limits for the child (dict)
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits)
/// - Io: the supervisor of … did not report the program's pid
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", blocking, tier = "verified", ret = "any")]
pub fn rt_shell_output(command: &str, opts: Opts) -> RtResult<Value> {
    output_of(FN, command, &opts)
}

/// Simple's `rt_shell_exec_tuple(cmd) -> (text, text, i64)`: rt_shell under Simple's name; returns the dict
/// {stdout, stderr, code, signal, timed_out} where Simple has the tuple (stdout, stderr, code).
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdout: "capture", "inherit" or "null"
/// - stderr: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
/// - limits: resource limits for the child (dict)
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits)
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", blocking, tier = "verified", ret = "dict")]
pub fn rt_shell_exec_tuple(command: &str, opts: Opts) -> RtResult<Value> {
    shell_dict(FN, command, &opts)
}

/// The exit status of the last shell command the calling thread ran (rt_shell, rt_shell_exec,
/// rt_shell_exec_tuple, rt_exec, rt_exec_output, rt_shell_output): its code, or 128 + N when signal N
/// killed it; 0 before the first. Per thread, as Simple's `rt_shell_exec` + `rt_shell_exit_code` pair.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_shell_exit_code() -> i64 {
    LAST_CODE.with(|c| c.get())
}
