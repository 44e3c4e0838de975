//! Shell commands: `/bin/sh -c COMMAND` (argv[0] `sh`, found at the fixed
//! path /bin/sh, not through PATH). A shell can run anything, so both
//! functions need `process.spawn` unscoped. Options as for `rt_process_run`.

use crate::sandbox;
use crate::spawn::{check_argv, check_loader_env, drive, outcome_value, start, Options, Out};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::path::Path;

const SHELL: &str = "/bin/sh";

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

/// Runs `command` with `/bin/sh -c` and returns {stdout, stderr, code, signal, timed_out} like rt_process_run.
/// Options as rt_process_run (stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, timeout_ms, grace_ms, limits,
/// max_output: default 64 MiB per stream, LimitExceeded past it). A timeout kills every descendant. Under a restricted
/// policy the child inherits only the variables env.read lets the caller read (process.rs module docs).
#[rt_fn(cap = "process.spawn", blocking, tier = "verified", ret = "dict")]
pub fn rt_shell(command: &str, opts: Opts) -> RtResult<Value> {
    let known = &[
        "stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "timeout_ms", "grace_ms", "limits", "max_output",
    ];
    let o = Options::read(FN, &opts, known, Out::Capture)?;
    let oc = sh(FN, command, &o)?;
    outcome_value(FN, &oc, &o)
}

/// Runs `command` with `/bin/sh -c`, its stdout and stderr going to the host's own (default), and returns the
/// exit code, or 128 + N when signal N killed it (as shells report). Options: stdin, inherit_stdin,
/// stdout/stderr ("inherit" or "null"), cwd, env, clear_env, timeout_ms, grace_ms (Error Timeout after every descendant
/// is killed), limits. Inherited environment as rt_shell.
#[rt_fn(cap = "process.spawn", blocking, tier = "verified")]
pub fn rt_shell_exec(command: &str, opts: Opts) -> RtResult<i64> {
    let known = &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "timeout_ms", "grace_ms", "limits"];
    let o = Options::read(FN, &opts, known, Out::Inherit)?;
    if o.stdout == Out::Capture || o.stderr == Out::Capture {
        return Err(Error::invalid(FN, "rt_shell_exec returns only the exit code: use rt_shell to capture output", "capture"));
    }
    let oc = sh(FN, command, &o)?;
    if oc.timed_out {
        let ms = o.timeout.map_or(0, |t| t.as_millis());
        return Err(Error::new(Code::Timeout, FN, format!("command did not finish within {ms} ms; it and its descendants were killed"), quote(command))
            .with("timeout_ms", ms as i64));
    }
    Ok(match oc.exit {
        crate::spawn::Exit::Code(c) => c as i64,
        crate::spawn::Exit::Signal(s) => 128 + s as i64,
    })
}
