//! ffi_process: programs run to completion (captured output bounded by
//! `max_output`, stdin, cwd, env, timeouts that kill every descendant,
//! rlimits), spawned children behind `Child` handles, `sh -c`, and the
//! sandbox limit ceiling.
//!
//! Files: `process.rs` (rt_process_run*, rt_getpid), `child.rs` (the
//! `Child` handle: spawn, wait, kill, read output), `shell.rs` (rt_shell*),
//! `sandbox.rs` (limits, rt_sandbox_*), `spawn.rs` (the engine they share:
//! options, the inherited environment, PATH lookup and capability check,
//! spawning, the poll loop), `supervise.rs` (the supervisor process each
//! child runs under, which reaches every descendant), `sys.rs` (the raw
//! system calls the supervisor and the child before exec are limited to),
//! `compat.rs` (the runs and spawns under Simple's names), `confine.rs` (the
//! Landlock ruleset that keeps a child within the policy's fs scopes), `host.rs` (the
//! calling process: exit, peak memory, stdio; Simple's latched signals
//! are ffi_cli's, `signal.rs`).
//! The options dict is documented once, in `process.rs`.
//!
//! Signals: the library sends SIGTERM/SIGKILL (timeouts, close) and, via
//! rt_process_kill, any signal the host names, to every descendant of the
//! call (through the child's supervisor, a subreaper: `setsid` and double
//! forks do not escape). It installs no signal handler (ffi_cli's
//! rt_signal_handler / rt_signal_install do, when asked) and never touches SIGCHLD; if the host
//! ignores SIGCHLD (auto-reaping), exit statuses are lost and reported as
//! Error Io.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod child;
pub mod compat;
pub mod confine;
pub mod host;
pub mod process;
pub mod sandbox;
pub mod shell;
pub mod spawn;
pub mod supervise;
mod sys;
