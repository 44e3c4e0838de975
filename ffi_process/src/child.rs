//! Spawned children behind `Child` handles.
//!
//! Each child gets a pump thread that feeds its stdin (the `stdin` option),
//! drains stdout and stderr into buffers as they come (so a child never
//! blocks on a full pipe, whether or not the host reads), and reaps the
//! child the moment it exits (no zombie, and no pid reuse: a signal is only
//! ever sent to a child not yet reaped, under the same lock as the reaping).
//!
//! Closing the handle (`rt_handle_close`) or its collection by the collector:
//! with `kill_on_close` (spawn option, default true) a child still running
//! gets SIGKILL on its whole process group and close returns once it has been
//! reaped (group members that outlived the child and still hold its output
//! open get SIGKILL too); with `kill_on_close: false` it is left running (its output is
//! discarded) and the pump thread reaps it when it exits. Close twice: the
//! second `rt_handle_close` returns false; any call on a closed handle is Error Closed.

use crate::spawn::{self, check_argv, check_loader_env, resolve, start, utf8_error, Exit, Options, Out, Running};
use crate::sandbox;
use ffi_sdk::prelude::*;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A spawned child process (handle type `Child`).
pub struct Child {
    pid: libc::pid_t,
    shared: Arc<Shared>,
    text: bool,
    captured: [bool; 2],
    kill_on_close: bool,
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
    /// Set once the child has been reaped.
    exit: Option<Exit>,
    /// Set if the exit status could not be read.
    lost: Option<String>,
    /// The handle is gone: output is read and dropped.
    discard: bool,
}

fn lock(sh: &Shared) -> MutexGuard<'_, State> {
    sh.st.lock().unwrap_or_else(|e| e.into_inner())
}

const NAMES: [&str; 2] = ["stdout", "stderr"];

fn pump(mut r: Running, sh: Arc<Shared>) {
    let pid = r.pid;
    let mut reaped = false;
    let mut eof_seen = [r.out[0].is_none(), r.out[1].is_none()];
    loop {
        let res = r.step(None, !reaped, &mut |s, b| {
            let mut st = lock(&sh);
            if !st.discard {
                st.buf[s].extend_from_slice(b);
            }
            drop(st);
            sh.cv.notify_all();
        });
        let step = match res {
            Ok(s) => s,
            Err(e) => {
                // poll itself failed (not expected): end the child, reap it under the lock.
                let mut st = lock(&sh);
                if !reaped {
                    let _ = spawn::signal_group(pid, libc::SIGKILL);
                    match spawn::reap_blocking(pid) {
                        Ok(x) => st.exit = Some(x),
                        Err(e2) => st.lost = Some(e2.to_string()),
                    }
                }
                st.lost.get_or_insert_with(|| format!("poll failed: {e}"));
                st.eof = [true, true];
                drop(st);
                sh.cv.notify_all();
                return;
            }
        };
        let now_eof = [r.out[0].is_none(), r.out[1].is_none()];
        let mut changed = now_eof != eof_seen;
        eof_seen = now_eof;
        if changed {
            lock(&sh).eof = now_eof;
        }
        if step.child_ready && !reaped {
            let mut st = lock(&sh);
            match spawn::try_reap(pid) {
                Ok(Some(x)) => {
                    st.exit = Some(x);
                    reaped = true;
                    changed = true;
                }
                Ok(None) => {}
                Err(e) => {
                    st.lost = Some(spawn::lost_error("rt_process_wait", &e).message);
                    reaped = true;
                    changed = true;
                }
            }
        }
        if changed {
            sh.cv.notify_all();
        }
        if reaped && !r.pipes_open() {
            return;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        st.discard = true;
        st.buf = Default::default();
        if self.kill_on_close && st.exit.is_some() && st.eof != [true, true] {
            // The child exited but members of its group still hold its output open: end them too.
            let _ = spawn::signal_pgid(self.pid, libc::SIGKILL);
        }
        if st.exit.is_none() && st.lost.is_none() && self.kill_on_close {
            let _ = spawn::signal_group(self.pid, libc::SIGKILL);
            // The pump reaps it within microseconds; wait so that close leaves no zombie.
            let deadline = Instant::now() + Duration::from_secs(5);
            while st.exit.is_none() && st.lost.is_none() {
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
}

const SPAWN_OPTS: &[&str] =
    &["stdin", "inherit_stdin", "stdout", "stderr", "cwd", "env", "clear_env", "text", "limits", "kill_on_close"];

/// Starts a program and returns a Child handle at once; output is collected in the background.
/// Options as rt_process_run (stdin, inherit_stdin, stdout, stderr, cwd, env, clear_env, text, limits) plus
/// kill_on_close (default true: closing or collecting the handle SIGKILLs the child's process group).
#[rt_fn(cap = "process.spawn", scoped, tier = "verified", ret = "handle<Child>")]
pub fn rt_process_spawn(program: &str, args: Vec<String>, opts: Opts) -> RtResult<Value> {
    let o = Options::read(FN, &opts, SPAWN_OPTS, Out::Capture)?;
    check_argv(FN, program, &args)?;
    check_loader_env(FN, &o)?;
    let exe = resolve(FN, program, &o)?;
    let limits = sandbox::effective(FN, &o.limits)?;
    let r = start(FN, program, &exe, &args, &o, &limits)?;
    let captured = [o.stdout == Out::Capture, o.stderr == Out::Capture];
    let shared = Arc::new(Shared {
        st: Mutex::new(State { eof: [!captured[0], !captured[1]], ..State::default() }),
        cv: Condvar::new(),
    });
    let pid = r.pid;
    let sh = shared.clone();
    let started = std::thread::Builder::new().name("rt-child-pump".into()).stack_size(256 * 1024).spawn(move || pump(r, sh));
    if let Err(e) = started {
        // The closure (and the pipes) were dropped: end the child here.
        let _ = spawn::signal_group(pid, libc::SIGKILL);
        let _ = spawn::reap_blocking(pid);
        return Err(Error::io(FN, "pump thread", &e));
    }
    Ok(new_handle(Child { pid, shared, text: o.text, captured, kill_on_close: o.kill_on_close }))
}

/// Waits for a spawned child to exit and its output to end; returns {code, signal, stdout, stderr} with the output
/// not read yet. `timeout_ms` nil waits without limit; on timeout Error Timeout (the child keeps running). After exit
/// it returns the same code again (with empty output).
#[rt_fn(blocking, tier = "verified", ret = "dict")]
pub fn rt_process_wait(child: Handle<Child>, timeout_ms: Option<u64>) -> RtResult<Value> {
    let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut st = lock(&child.shared);
    loop {
        if let Some(why) = &st.lost {
            return Err(Error::plain(Code::Io, FN, why.clone()));
        }
        if st.exit.is_some() && st.eof == [true, true] {
            break;
        }
        st = match deadline {
            None => child.shared.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    let ms = timeout_ms.unwrap_or(0);
                    let what = if st.exit.is_some() { "child exited but its output is still open" } else { "child still running" };
                    return Err(Error::new(Code::Timeout, FN, format!("{what} after {ms} ms"), format!("pid {}", child.pid))
                        .with("timeout_ms", ms));
                }
                match child.shared.cv.wait_timeout(st, d - now) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                }
            }
        };
    }
    let exit = st.exit.unwrap_or(Exit::Signal(libc::SIGKILL));
    if child.text {
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
    let so = spawn::stream_value(FN, "stdout", &out, child.text, child.captured[0])?;
    let se = spawn::stream_value(FN, "stderr", &err, child.text, child.captured[1])?;
    let d = Value::dict();
    d.set("code", exit.code().map_or(Value::NIL, |c| Value::int(c as i64)));
    d.set("signal", exit.signal().map_or(Value::NIL, |s| Value::int(s as i64)));
    d.set("stdout", so);
    d.set("stderr", se);
    Ok(d)
}

/// Sends `signal` (1..=SIGRTMAX, e.g. 15 SIGTERM, 9 SIGKILL) to the child's process group. Returns true if sent,
/// false if the child has already exited (nothing is sent then).
#[rt_fn(tier = "verified")]
pub fn rt_process_kill(child: Handle<Child>, signal: i64) -> RtResult<bool> {
    let max = libc::SIGRTMAX() as i64;
    if !(1..=max).contains(&signal) {
        return Err(Error::invalid(FN, format!("signal must be in 1..={max}"), signal));
    }
    let st = lock(&child.shared);
    if st.exit.is_some() || st.lost.is_some() {
        return Ok(false);
    }
    // Under the lock: the pump cannot reap (and the pid cannot be reused) meanwhile.
    spawn::signal_group(child.pid, signal as libc::c_int).map_err(|e| Error::io(FN, format!("pid {}", child.pid), &e))
}

/// The process id of a spawned child (also its process group id).
#[rt_fn(tier = "verified")]
pub fn rt_process_pid(child: Handle<Child>) -> i64 {
    child.pid as i64
}

fn read_stream(func: &'static str, child: &Child, s: usize) -> RtResult<Value> {
    if !child.captured[s] {
        return Err(Error::invalid(func, format!("{} is not captured (spawn option {})", NAMES[s], NAMES[s]), format!("pid {}", child.pid)));
    }
    let mut st = lock(&child.shared);
    let take = if child.text {
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
    if child.text {
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
