//! Spawned children behind `Child` handles.
//!
//! Each child gets a pump thread that feeds its stdin (the `stdin` option),
//! drains stdout and stderr into buffers as they come (so a child never
//! blocks on a full pipe, whether or not the host reads), and reaps the
//! child's supervisor the moment it exits (no zombie). Output buffered and
//! not yet read is bounded by `max_output` per stream (default 64 MiB):
//! past it the child and its descendants are killed and wait/read return
//! Error LimitExceeded. Signals go through the supervisor, which reaches
//! every descendant and never signals a process it has reaped.
//!
//! Closing the handle (`rt_handle_close`) or its collection by the collector:
//! with `kill_on_close` (spawn option, default true) every descendant still
//! running gets SIGKILL (also those that called `setsid` or were orphaned)
//! and close returns once they are reaped; with `kill_on_close: false` it is
//! left running (its output is discarded) and the pump thread reaps it when
//! it exits. A `rt_process_wait` blocked in another thread returns Error
//! Closed at once either way. Close twice: the second `rt_handle_close`
//! returns false; any call on a closed handle is Error Closed.

use crate::sandbox;
use crate::spawn::{self, append_bounded, check_argv, check_loader_env, output_limit_error, resolve, start, utf8_error, Control, Exit, Options, Out, Running};
use ffi_sdk::prelude::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A spawned child process (handle type `Child`). Dropped when the handle is
/// closed or collected and no call is using it: that is the close.
pub struct Child {
    core: Arc<Core>,
}

/// What calls (and a waiter that outlives the handle) share with the pump.
struct Core {
    /// The program (its pid and process group id).
    pid: libc::pid_t,
    shared: Arc<Shared>,
    ctl: Control,
    text: bool,
    captured: [bool; 2],
    kill_on_close: bool,
    max_output: usize,
    program: String,
    /// Our end of the child's stdin when spawned with `stdin_pipe` (non-blocking), until closed.
    stdin: Mutex<Option<OwnedFd>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Child {
    const NAME: &'static str = "Child";
}

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    /// Output received and not yet read, stdout [0] and stderr [1].
    buf: [Vec<u8>; 2],
    /// Bytes already handed out per stream (for error positions).
    consumed: [usize; 2],
    /// End of file reached (true from the start for streams not captured).
    eof: [bool; 2],
    /// Set once the program has exited (reported by the supervisor, or the supervisor's own status).
    exit: Option<Exit>,
    /// The supervisor has been reaped.
    sup_reaped: bool,
    /// Set if the exit status could not be read.
    lost: Option<String>,
    /// The handle is gone: output is read and dropped.
    discard: bool,
    /// The handle was closed (waiters return Error Closed).
    closed: bool,
    /// The stream that went past max_output (the child was killed).
    overflow: Option<usize>,
}

fn lock(sh: &Shared) -> MutexGuard<'_, State> {
    sh.st.lock().unwrap_or_else(|e| e.into_inner())
}

const NAMES: [&str; 2] = ["stdout", "stderr"];

fn pump(mut r: Running, sh: Arc<Shared>, max: usize) {
    let ctl = r.ctl.clone();
    let mut reaped = false;
    let mut detached = false;
    let mut seen = ([r.out[0].is_none(), r.out[1].is_none()], r.prog_exit);
    loop {
        let res = r.step(None, !reaped, &mut |s, b| {
            let mut st = lock(&sh);
            if st.discard || st.overflow.is_some() {
                return;
            }
            if !append_bounded(&mut st.buf[s], b, max) {
                st.overflow = Some(s);
                st.buf = Default::default();
                drop(st);
                ctl.kill_all();
            } else {
                drop(st);
            }
            sh.cv.notify_all();
        });
        let step = match res {
            Ok(s) => s,
            Err(e) => {
                // poll itself failed (not expected): end everything, reap the supervisor under the lock.
                let mut st = lock(&sh);
                if !reaped {
                    ctl.kill_all();
                    match r.reap_blocking() {
                        Ok(x) => {
                            r.drain_ctl();
                            st.exit = Some(r.prog_exit.unwrap_or(x));
                        }
                        Err(e2) => st.lost = Some(e2.to_string()),
                    }
                    st.sup_reaped = true;
                }
                st.lost.get_or_insert_with(|| format!("poll failed: {e}"));
                st.eof = [true, true];
                drop(st);
                sh.cv.notify_all();
                return;
            }
        };
        let mut changed = false;
        if step.child_ready && !reaped {
            let mut st = lock(&sh);
            match r.try_reap() {
                Ok(Some(x)) => {
                    r.drain_ctl();
                    st.exit = Some(r.prog_exit.unwrap_or(x));
                    st.sup_reaped = true;
                    reaped = true;
                    changed = true;
                }
                Ok(None) => {}
                Err(e) => {
                    st.lost = Some(spawn::lost_error("rt_process_wait", &e).message);
                    st.sup_reaped = true;
                    reaped = true;
                    changed = true;
                }
            }
        }
        let now = ([r.out[0].is_none(), r.out[1].is_none()], r.prog_exit);
        if now != seen {
            let mut st = lock(&sh);
            st.eof = now.0;
            if st.exit.is_none() {
                st.exit = now.1;
            }
            seen = now;
            changed = true;
        }
        if changed {
            sh.cv.notify_all();
        }
        // The program exited and its output ended: leave what still runs (daemons) to init.
        if r.prog_exit.is_some() && !r.pipes_open() && !reaped && !detached {
            ctl.detach();
            detached = true;
            // The supervisor has reaped the program and exits at once: reap it now (outside the lock).
            let res = r.reap_blocking();
            let mut st = lock(&sh);
            match res {
                Ok(x) => {
                    r.drain_ctl();
                    st.exit = Some(r.prog_exit.unwrap_or(x));
                }
                Err(e) => st.lost = Some(spawn::lost_error("rt_process_wait", &e).message),
            }
            st.sup_reaped = true;
            reaped = true;
            drop(st);
            sh.cv.notify_all();
        }
        if reaped && !r.pipes_open() {
            return;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let c = &self.core;
        // End of file on a piped stdin first (a child reading it may end by itself).
        drop(c.stdin.lock().unwrap_or_else(|e| e.into_inner()).take());
        let mut st = lock(&c.shared);
        st.closed = true;
        st.discard = true;
        st.buf = Default::default();
        c.shared.cv.notify_all();
        if c.kill_on_close && !st.sup_reaped && st.lost.is_none() {
            // The supervisor kills and reaps everything, then the pump reaps it: wait, so that close leaves nothing.
            c.kill_all_and_wait(st);
        }
    }
}

impl Core {
    /// SIGKILL to every descendant, then waits (at most 5 s, `st` released while waiting) until
    /// the supervisor has been reaped or its status lost.
    fn kill_all_and_wait(&self, mut st: MutexGuard<'_, State>) {
        self.ctl.kill_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !st.sup_reaped && st.lost.is_none() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = match self.shared.cv.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

const SPAWN_OPTS: &[&str] =
    &["stdin", "inherit_stdin", "stdin_pipe", "stdout", "stderr", "cwd", "env", "clear_env", "text", "limits", "kill_on_close", "max_output"];

/// Starts a program and returns a Child handle at once; output is collected in the background.
/// Options as rt_process_run (stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, limits,
/// max_output: bytes buffered and not yet read per stream, default 64 MiB, LimitExceeded past it) plus
/// kill_on_close (default true: closing or collecting the handle SIGKILLs every descendant of the child)
/// and stdin_pipe (default false; true: stdin is a pipe the host writes with rt_process_write_stdin /
/// rt_process_write_stdin_some and closes with rt_process_stdin_close).
/// Environment under a restricted policy: see the module docs of process.rs (SPEC §7).
///
/// # Options
/// - stdout: "capture", "inherit" or "null"
/// - stderr: "capture", "inherit" or "null"
/// - stdin (bytes): what the child reads (text or bytes)
/// - inherit_stdin (bool, default false): the child reads this process's stdin
/// - stdin_pipe (bool, default false): give the child a stdin pipe to write to (rt_process_write_stdin)
/// - cwd (text): the working directory
/// - env: variables to set (dict of text)
/// - clear_env (bool, default false): start from an empty environment
/// - text (bool, default true): decode the output as UTF-8 text instead of bytes
/// - limits: resource limits for the child (dict)
/// - kill_on_close (bool, default true): kill the child when its handle is closed or collected
/// - max_output (int >= 0): the most bytes captured per stream (Error LimitExceeded past it)
///
/// # Errors
/// - InvalidArgument: option grace_ms needs timeout_ms; options stdin and inherit_stdin exclude each other; option stdin_pipe excludes stdin and inherit_stdin; working directory (option cwd) is not a directory
/// - NotFound: what it names does not exist
/// - PermissionDenied: program <why>; limit <key> exceeds the sandbox limit <s> (rt_sandbox_set_limits); limit <key> is above this process's hard limit …
/// - Io: the supervisor of … did not report the program's pid
/// - Unsupported: the policy scopes fs.read or fs.write and the child cannot be confined to it (no Landlock ABI 3 here, or a `!` exception in a scope)
#[rt_fn(cap = "process.spawn", scoped, tier = "verified", ret = "handle<Child>")]
pub fn rt_process_spawn(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, SPAWN_OPTS, Out::Capture)?;
    spawn_child(FN, program, &args, &o)
}

/// The option keys of rt_process_spawn (shared with the Simple-named spawns of `compat.rs`).
pub(crate) const SPAWN_KEYS: &[&str] = SPAWN_OPTS;

/// The body of every spawn: checks, resolves (capability `process.spawn` on the program), starts the child
/// under its supervisor and returns its Child handle.
pub(crate) fn spawn_child(func: &'static str, program: &str, args: &[String], o: &Options) -> RtResult<Value> {
    check_argv(func, program, args)?;
    check_loader_env(func, o)?;
    let exe = resolve(func, program, o)?;
    let limits = sandbox::effective(func, &o.limits)?;
    let mut r = start(func, program, &exe, args, o, &limits, true)?;
    let stdin = r.stdin_pipe.take();
    let captured = [o.stdout == Out::Capture, o.stderr == Out::Capture];
    let shared = Arc::new(Shared {
        st: Mutex::new(State { eof: [!captured[0], !captured[1]], ..State::default() }),
        cv: Condvar::new(),
    });
    let (pid, ctl) = (r.prog, r.ctl.clone());
    let sh = shared.clone();
    let max = o.max_output;
    // Handed over through a slot, so that a failed thread start leaves the child with us to end.
    let slot = Arc::new(Mutex::new(Some(r)));
    let theirs = slot.clone();
    let started = std::thread::Builder::new().name("rt-child-pump".into()).stack_size(256 * 1024).spawn(move || {
        let r = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = r {
            pump(r, sh, max);
        }
    });
    if let Err(e) = started {
        let r = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut r) = r {
            r.abandon(false);
        }
        return Err(Error::io(func, "pump thread", &e));
    }
    let core = Core {
        pid,
        shared,
        ctl,
        text: o.text,
        captured,
        kill_on_close: o.kill_on_close,
        max_output: o.max_output,
        program: program.to_string(),
        stdin: Mutex::new(stdin),
    };
    Ok(new_handle(Child { core: Arc::new(core) }))
}

/// Waits for a spawned child to exit and its output to end; returns {code, signal, stdout, stderr} with the output
/// not read yet. `timeout_ms` nil waits without limit; on timeout Error Timeout (the child keeps running). After exit
/// it returns the same code again (with empty output). Closing the handle meanwhile (another thread) returns
/// Error Closed at once; output past max_output is Error LimitExceeded (the child was killed).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Closed: the Child handle was closed while waiting; `child` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(blocking, tier = "verified", ret = "dict")]
pub fn rt_process_wait(child: Handle<Child>, timeout_ms: Option<u64>) -> RtResult<Value> {
    let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    // Wait on the shared core only: holding the handle's resource would keep a close from taking effect.
    let c = child.core.clone();
    drop(child);
    let mut st = lock(&c.shared);
    loop {
        if st.closed {
            return Err(Error::new(Code::Closed, FN, "the Child handle was closed while waiting", format!("pid {}", c.pid)));
        }
        if let Some(s) = st.overflow {
            return Err(output_limit_error(FN, NAMES[s], c.max_output, &c.program));
        }
        if let Some(why) = &st.lost {
            return Err(Error::plain(Code::Io, FN, why.clone()));
        }
        if st.exit.is_some() && st.eof == [true, true] {
            break;
        }
        if let Some(code) = ffi_sdk::deadline::status() {
            // The thread's deadline or cancel token (docs/DEADLINES.md): end the child and every
            // descendant, and wait (bounded) until the supervisor has reaped them all.
            c.ctl.kill_all();
            let until = Instant::now() + Duration::from_secs(2);
            while !st.sup_reaped && st.lost.is_none() && Instant::now() < until {
                st = match c.shared.cv.wait_timeout(st, Duration::from_millis(20)) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
            return Err(ffi_sdk::deadline::error(FN, code).with("pid", c.pid as i64));
        }
        let cut = ffi_sdk::deadline::slice(None);
        st = match deadline {
            None if cut.is_none() => c.shared.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            None => match c.shared.cv.wait_timeout(st, cut.unwrap_or_default()) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            },
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    let ms = timeout_ms.unwrap_or(0);
                    let what = if st.exit.is_some() { "child exited but its output is still open" } else { "child still running" };
                    return Err(Error::new(Code::Timeout, FN, format!("{what} after {ms} ms"), format!("pid {}", c.pid))
                        .with("timeout_ms", ms));
                }
                match c.shared.cv.wait_timeout(st, cut.map_or(d - now, |t| t.min(d - now))) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                }
            }
        };
    }
    let exit = st.exit.unwrap_or(Exit::Signal(libc::SIGKILL));
    if c.text {
        for (s, name) in NAMES.iter().enumerate() {
            if let Err(e) = std::str::from_utf8(&st.buf[s]) {
                return Err(utf8_error(FN, name, st.consumed[s] + e.valid_up_to()));
            }
        }
    }
    let out = std::mem::take(&mut st.buf[0]);
    let err = std::mem::take(&mut st.buf[1]);
    st.consumed[0] += out.len();
    st.consumed[1] += err.len();
    drop(st);
    let so = spawn::stream_value(FN, "stdout", &out, c.text, c.captured[0])?;
    let se = spawn::stream_value(FN, "stderr", &err, c.text, c.captured[1])?;
    let d = Value::dict();
    d.set("code", exit.code().map_or(Value::NIL, |c| Value::int(c as i64)));
    d.set("signal", exit.signal().map_or(Value::NIL, |s| Value::int(s as i64)));
    d.set("stdout", so);
    d.set("stderr", se);
    Ok(d)
}

/// Sends `signal` (1..=SIGRTMAX, e.g. 15 SIGTERM, 9 SIGKILL; nil: SIGKILL, as Simple's one-argument
/// `rt_process_kill(pid)` kills) to the child and every descendant (also those that left its process group).
/// Returns true if sent, false if the child has already exited (nothing is sent then).
///
/// # Errors
/// - InvalidArgument: signal must be in 1..=<max>
/// - Closed: `child` was closed
#[rt_fn(tier = "verified")]
pub fn rt_process_kill(child: Handle<Child>, signal: Option<i64>) -> RtResult<bool> {
    let signal = signal.unwrap_or(libc::SIGKILL as i64);
    let max = libc::SIGRTMAX() as i64;
    if !(1..=max).contains(&signal) {
        return Err(Error::invalid(FN, format!("signal must be in 1..={max}"), signal));
    }
    let c = &child.core;
    let st = lock(&c.shared);
    if st.exit.is_some() || st.lost.is_some() || st.sup_reaped {
        return Ok(false);
    }
    // The supervisor signals only processes it has not reaped (no pid reuse).
    Ok(c.ctl.signal(signal as libc::c_int))
}

/// The process id of a spawned child (also its process group id). Its parent is the child's supervisor.
///
/// # Errors
/// - Closed: `child` was closed
#[rt_fn(tier = "verified")]
pub fn rt_process_pid(child: Handle<Child>) -> i64 {
    child.core.pid as i64
}

fn read_stream(func: &'static str, child: &Child, s: usize) -> RtResult<Value> {
    let c = &child.core;
    if !c.captured[s] {
        return Err(Error::invalid(func, format!("{} is not captured (spawn option {})", NAMES[s], NAMES[s]), format!("pid {}", c.pid)));
    }
    let mut st = lock(&c.shared);
    if let Some(o) = st.overflow {
        return Err(output_limit_error(func, NAMES[o], c.max_output, &c.program));
    }
    let take = if c.text {
        match std::str::from_utf8(&st.buf[s]) {
            Ok(_) => st.buf[s].len(),
            // An incomplete character at the end: keep it for the next read.
            Err(e) if e.error_len().is_none() && !st.eof[s] => e.valid_up_to(),
            Err(e) => return Err(utf8_error(func, NAMES[s], st.consumed[s] + e.valid_up_to())),
        }
    } else {
        st.buf[s].len()
    };
    let rest = st.buf[s].split_off(take);
    let bytes = std::mem::replace(&mut st.buf[s], rest);
    st.consumed[s] += bytes.len();
    drop(st);
    if c.text {
        let t = String::from_utf8(bytes).map_err(|_| Error::internal(func, "validated output is not UTF-8"))?;
        Ok(Value::text(&t))
    } else {
        Ok(Value::bytes(&bytes))
    }
}

/// Takes the stdout a spawned child has written so far and not yet read (never blocks; may be empty).
/// Text mode keeps an incomplete UTF-8 character for the next read.
///
/// # Errors
/// - InvalidArgument: … is not captured (spawn option …)
/// - Parse: malformed input (details.line/column/position where known)
/// - Closed: `child` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_process_read_stdout(child: Handle<Child>) -> RtResult<Value> {
    read_stream(FN, &child, 0)
}

/// Takes the stderr a spawned child has written so far and not yet read (never blocks; may be empty).
///
/// # Errors
/// - InvalidArgument: … is not captured (spawn option …)
/// - Parse: malformed input (details.line/column/position where known)
/// - Closed: `child` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_process_read_stderr(child: Handle<Child>) -> RtResult<Value> {
    read_stream(FN, &child, 1)
}

impl Core {
    fn stdin_closed(&self, func: &'static str) -> Error {
        Error::new(
            Code::Closed,
            func,
            "the child's stdin is not open for writing (spawn it with the option stdin_pipe: true or with rt_process_spawn_piped; rt_process_stdin_close closes it)",
            format!("pid {}", self.pid),
        )
    }

    /// One non-blocking write to the stdin pipe: the count written (0 when the pipe is full).
    fn write_once(&self, func: &'static str, fd: &OwnedFd, data: &[u8]) -> RtResult<usize> {
        loop {
            let (k, err) = spawn::write_nosigpipe(fd.as_raw_fd(), data);
            if k >= 0 {
                return Ok(k as usize);
            }
            match err {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(0),
                Some(libc::EPIPE) => {
                    return Err(Error::new(Code::Closed, func, "the child closed its stdin (it exited or stopped reading)", format!("pid {}", self.pid)))
                }
                e => return Err(Error::io(func, format!("stdin of pid {}", self.pid), &std::io::Error::from_raw_os_error(e.unwrap_or(libc::EIO)))),
            }
        }
    }
}

impl Child {
    /// The program has not exited yet (and its status was not lost).
    fn running(&self) -> bool {
        let st = lock(&self.core.shared);
        st.exit.is_none() && st.lost.is_none() && !st.sup_reaped
    }

    /// SIGKILL to every descendant, then waits (at most 5 s) until the supervisor has reaped them all.
    fn kill_and_reap(&self) {
        let c = &self.core;
        let st = lock(&c.shared);
        if st.sup_reaped || st.lost.is_some() {
            return;
        }
        c.kill_all_and_wait(st);
    }
}

/// Writes all of `data` (bytes or text) to the stdin of a child spawned with the option stdin_pipe (or by
/// rt_process_spawn_piped), waiting while the pipe is full (the thread's deadline or cancel token ends the wait:
/// docs/DEADLINES.md; what was written stays written). Simple declares `-> bool`: ours is nil or an Error.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: its stdin is not a pipe, was closed, or the child closed its end (exited); `child` was closed
#[rt_fn(blocking, tier = "verified")]
pub fn rt_process_write_stdin(child: Handle<Child>, data: &[u8]) -> RtResult<()> {
    // Write through the shared core only: holding the handle would keep a close (another thread) from
    // taking effect while the pipe is full; the waits are sliced so that a close gets the lock.
    let c = child.core.clone();
    drop(child);
    let mut done = 0;
    while done < data.len() {
        if lock(&c.shared).closed {
            return Err(Error::new(Code::Closed, FN, "the Child handle was closed while writing", format!("pid {}", c.pid)));
        }
        let g = c.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let Some(fd) = g.as_ref() else { return Err(c.stdin_closed(FN)) };
        let n = c.write_once(FN, fd, &data[done..])?;
        done += n;
        if n == 0 {
            ffi_sdk::deadline::poll_fd(FN, fd.as_raw_fd(), libc::POLLOUT, Some(Duration::from_millis(50)))?;
        }
    }
    Ok(())
}

/// Writes at most `max_bytes` of `data[offset..data_len]` to a piped stdin without waiting and returns how many
/// bytes were written: 0 when the pipe is full or `offset == data_len` (call again later from `offset + n`).
/// `data_len` nil means the length of `data`.
///
/// # Errors
/// - InvalidArgument: `data_len` passes the end of `data` or `max_bytes` is 0; `offset` is negative; `max_bytes` is negative
/// - Closed: `child` was closed
/// - OutOfRange: `offset > data_len`; Closed as rt_process_write_stdin
#[rt_fn(tier = "verified")]
pub fn rt_process_write_stdin_some(child: Handle<Child>, data: &[u8], data_len: Option<u64>, offset: u64, max_bytes: u64) -> RtResult<u64> {
    let len = data_len.unwrap_or(data.len() as u64);
    if len > data.len() as u64 {
        return Err(Error::invalid(FN, format!("data_len passes the end of data ({} bytes)", data.len()), len));
    }
    if max_bytes == 0 {
        return Err(Error::invalid(FN, "max_bytes must be at least 1", 0));
    }
    if offset > len {
        return Err(Error::new(Code::OutOfRange, FN, format!("offset is past data_len ({len})"), offset));
    }
    let g = child.core.stdin.lock().unwrap_or_else(|e| e.into_inner());
    let Some(fd) = g.as_ref() else { return Err(child.core.stdin_closed(FN)) };
    let end = len.min(offset.saturating_add(max_bytes)) as usize;
    if offset as usize == end {
        return Ok(0);
    }
    child.core.write_once(FN, fd, &data[offset as usize..end]).map(|n| n as u64)
}

/// Closes the write end of a piped stdin (the child reads end of file). True if it was open, false if it
/// was closed already or the child was not spawned with a stdin pipe.
///
/// # Errors
/// - Closed: `child` was closed
#[rt_fn(tier = "verified")]
pub fn rt_process_stdin_close(child: Handle<Child>) -> bool {
    child.core.stdin.lock().unwrap_or_else(|e| e.into_inner()).take().is_some()
}

/// Simple's end of a piped child: closes its stdin, SIGKILLs it and every descendant, waits until they
/// are reaped, and closes the handle (its unread output is dropped). Returns true; a handle closed already
/// is Error Closed (Simple's false for an unknown pid).
///
/// # Errors
/// - Closed: `child` was closed
#[rt_fn(blocking, tier = "verified")]
pub fn rt_process_close_piped(child: Handle<Child>) -> bool {
    drop(child.core.stdin.lock().unwrap_or_else(|e| e.into_inner()).take());
    child.kill_and_reap();
    child.close();
    true
}

/// Whether a spawned child is still running (it has not exited). False once it exited, also before
/// rt_process_wait; a closed handle is Error Closed (Simple: false for an unknown pid).
///
/// # Errors
/// - Closed: `child` was closed
#[rt_fn(tier = "verified")]
pub fn rt_process_is_running(child: Handle<Child>) -> bool {
    child.running()
}

/// Simple's name for rt_process_is_running on a piped child (the same answer).
///
/// # Errors
/// - Closed: `child` was closed
#[rt_fn(tier = "verified")]
pub fn rt_process_is_alive(child: Handle<Child>) -> bool {
    child.running()
}

/// Whether a process exists. `process` is a Child handle (its program still runs, as rt_process_is_running)
/// or a process id (an int > 0: a process with that id exists, checked with `kill(pid, 0)`, which sends
/// nothing; a process of another user counts; a zombie counts). The id form asks about any process of the
/// machine, so it needs `sys.info`; the handle form needs nothing.
///
/// # Errors
/// - InvalidArgument: a process id must be in 1..=2147483647
#[rt_fn(cap = "sys.info", scoped, tier = "verified")]
pub fn rt_process_exists(process: Value) -> RtResult<bool> {
    if let Some(pid) = process.as_int() {
        if pid <= 0 || pid > i32::MAX as i64 {
            return Err(Error::invalid(FN, "a process id must be in 1..=2147483647", pid));
        }
        cap::check(FN, "sys.info", "")?;
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        return Ok(r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
    }
    let h = <Handle<Child> as ffi_sdk::FromArg>::from_arg(process.raw(), FN, 0, "process").map_err(|mut e| {
        if e.code == Code::TypeMismatch {
            e.message = format!("{FN}: argument 1 (process) must be a Child handle or a process id (int), got {}", process.describe());
        }
        e
    })?;
    Ok(h.running())
}
