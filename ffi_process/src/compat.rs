//! The process functions Simple's standard library calls by its own names
//! (`sffi/process.spl`, `sffi/system.spl`, `io/process_ops.spl`), on the
//! engine every other function here uses (`spawn.rs`: supervisor, limits,
//! timeouts that reach every descendant, environment filtering, capability
//! `process.spawn` checked on the program). Where Simple passes a pid, a
//! Child handle is passed (docs/SIMPLE.md); where Simple returns a tuple
//! `(stdout, stderr, code)`, the dict of rt_process_run is returned.

use crate::child::{spawn_child, SPAWN_KEYS};
use crate::spawn::{execute, outcome_value, stream_value, In, Options, Out, Outcome};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::time::Duration;

/// The spawn options minus those that choose stdin (the Simple spawns fix it).
fn spawn_keys_without_stdin() -> Vec<&'static str> {
    SPAWN_KEYS.iter().copied().filter(|k| !matches!(*k, "stdin" | "inherit_stdin" | "stdin_pipe")).collect()
}

/// Simple's `rt_process_spawn_async(cmd, args) -> i64`: starts a program with stdin from /dev/null and its
/// stdout and stderr going to the host's own (Simple's defaults), and returns a Child handle (wait with
/// rt_process_wait, test with rt_process_is_running, end with rt_process_kill). Options as rt_process_spawn
/// (stdout/stderr "capture" to read them with rt_process_read_stdout/stderr).
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdin_pipe (bool, default false): give the child a stdin pipe to write to (rt_process_write_stdin)
/// - stderr: "capture", "inherit" or "null"
/// - stdout: "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - limits: resource limits for the child (dict)
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
/// - kill_on_close (bool, default true): kill the child when its handle is closed or collected
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, tier = "verified", ret = "handle<Child>")]
pub fn rt_process_spawn_async(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, SPAWN_KEYS, Out::Inherit)?;
    spawn_child(FN, program, &args, &o)
}

/// Simple's `rt_process_spawn_piped(cmd, args) -> i64`: starts a program with stdin a pipe the host writes
/// (rt_process_write_stdin, rt_process_write_stdin_some; rt_process_stdin_close for end of file), stdout
/// captured (rt_process_read_stdout never blocks) and stderr going to the host's own (option stderr:
/// "capture" / "null"). Returns a Child handle; rt_process_close_piped ends it. Options as rt_process_spawn
/// except those choosing stdin.
///
/// # Options
/// - stdout (text, default "capture"): "capture", "inherit" or "null"
/// - stderr (text, default "inherit"): "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env (dict of text or nil): variables to set; a nil value removes the variable
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): output as text (false: bytes)
/// - limits (dict): resource limits for the child (rt_sandbox_set_limits keys)
/// - kill_on_close (bool, default true): kill the child when its handle is closed or collected
/// - max_output (int >= 0, default 64 MiB): bytes buffered and not yet read per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - NotFound: what it names does not exist
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, tier = "verified", ret = "handle<Child>")]
pub fn rt_process_spawn_piped(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let keys = spawn_keys_without_stdin();
    let mut o = Options::read(FN, &opts, &keys, Out::Capture)?;
    o.stdin = In::Pipe;
    if opts.get("stderr").is_nil() {
        o.stderr = Out::Inherit;
    }
    spawn_child(FN, program, &args, &o)
}

const RUN_KEYS: &[&str] = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "grace_ms", "limits", "max_output"];

/// Simple's `timeout_ms: i64` where 0 or less means no timeout.
fn timeout_of(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

/// Runs a program with a deadline and at most `max_output_bytes` kept per stream: past it the first and the last
/// halves are kept with `\n[output truncated: N bytes omitted]\n` between them (Simple's marker, outside the
/// budget) and the program runs on (nothing is killed for its output). `timeout_ms` ≤ 0: no deadline; after it,
/// the program and every descendant are killed (timed_out true). Returns the dict of rt_process_run plus
/// stdout_omitted and stderr_omitted (bytes dropped); Simple's tuple (stdout, stderr, code) with code -1 on a
/// timeout is {stdout, stderr, code, timed_out}. Options as rt_process_run except timeout_ms and max_output.
///
/// # Options
/// - stdin (text or bytes): what the child reads on its stdin
/// - inherit_stdin (bool, default false): the child reads this process's stdin (excludes stdin)
/// - stdout (text, default "capture"): "capture", "inherit" or "null"
/// - stderr (text, default "capture"): "capture", "inherit" or "null"
/// - cwd (text): the working directory
/// - env (dict of text or nil): variables to set; a nil value removes the variable
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): output as text (false: bytes)
/// - grace_ms (int >= 0, default 0): after the deadline, SIGTERM first and SIGKILL this much later
/// - limits (dict): resource limits for the child (rt_sandbox_set_limits keys)
///
/// # Errors
/// - InvalidArgument: max_output_bytes must not be negative; option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid; the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)
/// - Parse: malformed input (details.line/column/position where known)
/// - LimitExceeded: a size, depth or count limit was reached
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_process_run_bounded(program: &str, args: Vec<String>, timeout_ms: i64, max_output_bytes: i64, opts: Opts) -> RtResult<Value> {
    let keys: Vec<&str> = RUN_KEYS.iter().copied().filter(|k| *k != "max_output").collect();
    let mut o = Options::read(FN, &opts, &keys, Out::Capture)?;
    if max_output_bytes < 0 {
        return Err(Error::invalid(FN, "max_output_bytes must not be negative", max_output_bytes));
    }
    o.timeout = timeout_of(timeout_ms);
    o.max_output = usize::try_from(max_output_bytes).unwrap_or(usize::MAX);
    o.truncate = true;
    let oc = execute(FN, program, &args, &o)?;
    let d = outcome_value(FN, &oc, &o)?;
    d.set("stdout_omitted", Value::int(oc.omitted[0] as i64));
    d.set("stderr_omitted", Value::int(oc.omitted[1] as i64));
    Ok(d)
}

/// A run's exit as a shell reports it: the code, or 128 + N when signal N ended it.
fn code_of(oc: &Outcome) -> i64 {
    match oc.exit {
        crate::spawn::Exit::Code(c) => c as i64,
        crate::spawn::Exit::Signal(s) => 128 + s as i64,
    }
}

/// Simple's `rt_process_run_inherit(cmd, args) -> i64`: runs a program in the foreground with the host's own
/// stdin, stdout and stderr and returns its exit code (128 + N when signal N killed it).
///
/// # Options
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - grace_ms (int >= 0, default 0): Error Timeout after every descendant is killed
/// - limits: resource limits for the child (dict)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - NotFound: what it names does not exist
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid; the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)
/// - LimitExceeded: a size, depth or count limit was reached
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified")]
pub fn rt_process_run_inherit(program: &str, args: Vec<String>, opts: Opts) -> RtResult<i64> {
    let mut o = Options::read(FN, &opts, &["cwd", "env", "clear_env", "timeout_ms", "grace_ms", "limits"], Out::Inherit)?;
    o.stdin = In::Inherit;
    let oc = execute(FN, program, &args, &o)?;
    if oc.timed_out {
        let ms = o.timeout.map_or(0, |t| t.as_millis());
        return Err(Error::new(Code::Timeout, FN, format!("program did not finish within {ms} ms; it and its descendants were killed"), quote(program))
            .with("timeout_ms", ms as i64));
    }
    Ok(code_of(&oc))
}

/// Simple's `rt_execute_native(binary_path, args, timeout_ms) -> (text, text, i32)`: rt_process_run_timeout
/// under Simple's name, with `timeout_ms` ≤ 0 meaning no deadline. Returns the dict {stdout, stderr, code,
/// signal, timed_out}. Options as rt_process_run_timeout.
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stderr: "capture", "inherit" or "null"
/// - stdout: "capture", "inherit" or "null"
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
/// - NotFound: what it names does not exist
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid; the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)
/// - Parse: malformed input (details.line/column/position where known)
/// - LimitExceeded: a size, depth or count limit was reached
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "dict")]
pub fn rt_execute_native(binary_path: &str, args: Vec<String>, timeout_ms: i64, opts: Opts) -> RtResult<Value> {
    let mut o = Options::read(FN, &opts, RUN_KEYS, Out::Capture)?;
    o.timeout = timeout_of(timeout_ms);
    let oc = execute(FN, binary_path, &args, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Simple's `rt_process_output(cmd, args) -> text`: runs a program and returns its stdout (text; bytes with the
/// option text: false) whatever its exit status; stderr goes to the host's own (option stderr). Options as
/// rt_process_run; a timeout (option timeout_ms) is Error Timeout, output past max_output LimitExceeded.
///
/// # Options
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stderr: option stderr
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): bytes with the option text: false whatever its exit status
/// - timeout_ms (int >= 0): option timeout_ms is Error Timeout, output past max_output LimitExceeded
/// - grace_ms (int >= 0, default 0): after SIGTERM at the timeout, how long before SIGKILL
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
#[rt_fn(cap = "process.spawn", scoped, blocking, tier = "verified", ret = "any")]
pub fn rt_process_output(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let keys = ["stdin", "inherit_stdin", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits", "max_output"];
    let mut o = Options::read(FN, &opts, &keys, Out::Capture)?;
    if opts.get("stderr").is_nil() {
        o.stderr = Out::Inherit;
    }
    let oc = execute(FN, program, &args, &o)?;
    if oc.timed_out {
        let ms = o.timeout.map_or(0, |t| t.as_millis());
        return Err(Error::new(Code::Timeout, FN, format!("program did not finish within {ms} ms; it and its descendants were killed"), quote(program))
            .with("timeout_ms", ms as i64));
    }
    stream_value(FN, "stdout", &oc.out[0], o.text, true)
}
