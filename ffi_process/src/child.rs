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
}

impl HandleType for Child {
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
        let mut st = lock(&c.shared);
        st.closed = true;
        st.discard = true;
        st.buf = Default::default();
        c.shared.cv.notify_all();
        if c.kill_on_close && !st.sup_reaped && st.lost.is_none() {
            c.ctl.kill_all();
            // The supervisor kills and reaps everything, then the pump reaps it: wait, so that close leaves nothing.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !st.sup_reaped && st.lost.is_none() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = match c.shared.cv.wait_timeout(st, deadline - now) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
        }
    }
}

const SPAWN_OPTS: &[&str] =
    &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "limits", "kill_on_close", "max_output"];

/// Starts a program and returns a Child handle at once; output is collected in the background.
/// Options as rt_process_run (stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, limits,
/// max_output: bytes buffered and not yet read per stream, default 64 MiB, LimitExceeded past it) plus
/// kill_on_close (default true: closing or collecting the handle SIGKILLs every descendant of the child).
/// Environment under a restricted policy: see the module docs of process.rs (SPEC §7).
#[rt_fn(cap = "process.spawn", scoped, tier = "verified", ret = "handle<Child>")]
pub fn rt_process_spawn(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, SPAWN_OPTS, Out::Capture)?;
    check_argv(FN, program, &args)?;
    check_loader_env(FN, &o)?;
    let exe = resolve(FN, program, &o)?;
    let limits = sandbox::effective(FN, &o.limits)?;
    let r = start(FN, program, &exe, &args, &o, &limits, true)?;
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
        return Err(Error::io(FN, "pump thread", &e));
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
    };
    Ok(new_handle(Child { core: Arc::new(core) }))
}

/// Waits for a spawned child to exit and its output to end; returns {code, signal, stdout, stderr} with the output
/// not read yet. `timeout_ms` nil waits without limit; on timeout Error Timeout (the child keeps running). After exit
/// it returns the same code again (with empty output). Closing the handle meanwhile (another thread) returns
/// Error Closed at once; output past max_output is Error LimitExceeded (the child was killed).
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

/// Sends `signal` (1..=SIGRTMAX, e.g. 15 SIGTERM, 9 SIGKILL) to the child and every descendant (also those
/// that left its process group). Returns true if sent, false if the child has already exited (nothing is sent then).
#[rt_fn(tier = "verified")]
pub fn rt_process_kill(child: Handle<Child>, signal: i64) -> RtResult<bool> {
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
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_process_read_stdout(child: Handle<Child>) -> RtResult<Value> {
    read_stream(FN, &child, 0)
}

/// Takes the stderr a spawned child has written so far and not yet read (never blocks; may be empty).
#[rt_fn(tier = "verified", ret = "any")]
pub fn rt_process_read_stderr(child: Handle<Child>) -> RtResult<Value> {
    read_stream(FN, &child, 1)
}
