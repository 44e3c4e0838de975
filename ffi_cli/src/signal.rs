//! Signals, one mechanism for the whole process: one handler (`on_signal`)
//! per signal, put in place by `rt_signal_handler` (arrivals queued for
//! `rt_signal_poll`, in order) and by Simple's `rt_signal_install` (arrivals
//! latched for `rt_signal_check`); a signal installed through both is seen
//! by both. The handler does only async-signal-safe work: it sets the latch,
//! writes the signal number into a pipe (for signals `rt_signal_handler`
//! named) and, when another handler was installed before ours (the host's),
//! calls it too. A handler installed after ours replaces it (signal actions
//! are per process). Accepted: the signals of `ALLOWED`; the collector's
//! (SIGPWR, SIGRTMIN+6), SIGXCPU, SIGCHLD (ffi_process reaps its own
//! children) and signals that cannot or must not be caught (SIGKILL,
//! SIGSTOP, SIGSEGV, ...) are refused.

use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

static PIPE_R: AtomicI32 = AtomicI32::new(-1);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static SETUP: Mutex<()> = Mutex::new(());

const NSIG: usize = 65;
#[allow(clippy::declare_interior_mutable_const)]
const FALSE: AtomicBool = AtomicBool::new(false);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
/// Set by the handler, cleared by rt_signal_check.
static FIRED: [AtomicBool; NSIG] = [FALSE; NSIG];
/// rt_signal_install was called (and no rt_signal_reset since): the latch counts from then on.
static LATCHED: [AtomicBool; NSIG] = [FALSE; NSIG];
/// Arrivals go to the pipe for rt_signal_poll (set by rt_signal_handler, cleared by rt_signal_reset).
static POLLED: [AtomicBool; NSIG] = [FALSE; NSIG];
/// The handler that was installed before ours (0: none to call), and whether it takes siginfo.
static PREV: [AtomicUsize; NSIG] = [ZERO; NSIG];
static PREV_SIGINFO: [AtomicBool; NSIG] = [FALSE; NSIG];

/// The signals accepted, by number.
const ALLOWED: [(&str, i32); 9] = [
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGWINCH", libc::SIGWINCH),
];

fn name_of(sig: i32) -> String {
    ALLOWED.iter().find(|(_, n)| *n == sig).map(|(s, _)| s.to_string()).unwrap_or_else(|| format!("SIG{sig}"))
}

fn refused(func: &'static str, why: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(func, format!("signal cannot be handled: {why}"), what)
}

/// A signal number, checked against `ALLOWED` (the refusals named).
fn number(func: &'static str, sig: i64) -> RtResult<i32> {
    let Ok(s) = i32::try_from(sig) else {
        return Err(Error::invalid(func, "unknown signal number", sig));
    };
    if s == libc::SIGPWR || s == libc::SIGXCPU || s == libc::SIGRTMIN() + 6 {
        return Err(refused(func, "used by the garbage collector", s));
    }
    if s == libc::SIGKILL || s == libc::SIGSTOP {
        return Err(refused(func, "the kernel does not let it be caught", s));
    }
    if s == libc::SIGCHLD {
        return Err(refused(func, "the library reaps its own children", s));
    }
    if !ALLOWED.iter().any(|(_, n)| *n == s) {
        let known: Vec<String> = ALLOWED.iter().map(|(name, n)| format!("{name} {n}")).collect();
        return Err(Error::invalid(func, format!("signal number not supported ({})", known.join(", ")), sig));
    }
    Ok(s)
}

fn parse(func: &'static str, v: Value) -> RtResult<i32> {
    if let Some(i) = v.as_int() {
        number(func, i)
    } else if let Some(t) = v.as_text() {
        let up = t.to_ascii_uppercase();
        let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
        match ALLOWED.iter().find(|(n, _)| *n == full) {
            Some((_, n)) => Ok(*n),
            None => Err(match full.as_str() {
                "SIGPWR" | "SIGXCPU" => refused(func, "used by the garbage collector", quote(t)),
                "SIGKILL" | "SIGSTOP" => refused(func, "the kernel does not let it be caught", quote(t)),
                "SIGCHLD" => refused(func, "the library reaps its own children", quote(t)),
                _ => {
                    let known: Vec<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
                    Error::invalid(func, format!("unknown or unsupported signal name (known: {})", known.join(", ")), quote(t))
                }
            }),
        }
    } else {
        Err(ffi_sdk::args::kind_error(func, 0, "signals", "signal names or numbers", v))
    }
}

fn signals_arg(func: &'static str, v: Value) -> RtResult<Vec<i32>> {
    if v.is_array() {
        let s: RtResult<Vec<i32>> = v.items().map(|x| parse(func, x)).collect();
        let s = s?;
        if s.is_empty() {
            return Err(Error::invalid(func, "no signal named", "[]"));
        }
        Ok(s)
    } else {
        Ok(vec![parse(func, v)?])
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = sig as usize;
    if i >= NSIG {
        return;
    }
    FIRED[i].store(true, Ordering::SeqCst);
    // SAFETY: only async-signal-safe work: errno is read and restored through glibc's
    // per-thread `__errno_location` (a valid pointer on every thread), the descriptor is an
    // atomic load, and write(2) is async-signal-safe; `b` is a live 1-byte local. A closed or full
    // pipe (O_NONBLOCK) only makes the write fail, which is ignored.
    unsafe {
        let saved = *libc::__errno_location();
        let fd = PIPE_W.load(Ordering::Relaxed);
        if fd >= 0 && POLLED[i].load(Ordering::Relaxed) {
            let b = sig as u8;
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
        *libc::__errno_location() = saved;
    }
    let prev = PREV[i].load(Ordering::Acquire);
    if prev != 0 {
        // SAFETY: a handler address read from sigaction, called with the arguments its flags promise.
        unsafe {
            if PREV_SIGINFO[i].load(Ordering::Acquire) {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(prev);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev);
                f(sig);
            }
        }
    }
}

/// Puts `on_signal` in place for `s` (one of ALLOWED; the caller holds SETUP), remembering a
/// handler installed before it to call; nothing to do when it is in place already.
fn install(func: &'static str, s: i32) -> RtResult<()> {
    // SAFETY: querying and setting the disposition of one signal (one of ALLOWED: `number`/`parse`
    // refuse the collector's signals and uncatchable ones) with a handler that is async-signal-safe;
    // `old` and `sa` are live locals, plain C structs for which all-zero bytes are valid.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(s, std::ptr::null(), &mut old) != 0 {
            return Err(Error::io(func, name_of(s), &std::io::Error::last_os_error()));
        }
        let ours = on_signal as *const () as usize;
        if old.sa_sigaction == ours {
            return Ok(());
        }
        let chain = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
        PREV_SIGINFO[s as usize].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
        PREV[s as usize].store(if chain { old.sa_sigaction } else { 0 }, Ordering::Release);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ours;
        sa.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(s, &sa, std::ptr::null_mut()) != 0 {
            return Err(Error::io(func, name_of(s), &std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn ensure_pipe(func: &'static str) -> RtResult<()> {
    if PIPE_R.load(Ordering::Acquire) >= 0 {
        return Ok(());
    }
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live array of the 2 ints pipe2 writes; the flags are valid for it.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(Error::io(func, "pipe", &std::io::Error::last_os_error()));
    }
    PIPE_W.store(fds[1], Ordering::Release);
    PIPE_R.store(fds[0], Ordering::Release);
    Ok(())
}

/// Handles `signals` (a name like "SIGINT" / "INT" / "sigterm", a number, or an array of them: SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH, SIGALRM, SIGPIPE) from now on: each arrival is recorded for `rt_signal_poll` instead of the default action (a handler installed before, the host's, is still called; rt_signal_install / rt_signal_check see the same arrivals). The collector's signals (SIGPWR, SIGRTMIN+6), SIGXCPU, SIGCHLD, SIGKILL and SIGSTOP are refused (InvalidArgument). Needs `signal`. Nil.
///
/// # Errors
/// - InvalidArgument: no signal named; unknown or unsupported signal name (known: …); unknown signal number; signal number not supported (…)
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "signal", tier = "empirical")]
pub fn rt_signal_handler(signals: Value) -> RtResult<()> {
    let sigs = signals_arg(FN, signals)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    ensure_pipe(FN)?;
    for s in sigs {
        POLLED[s as usize].store(true, Ordering::Release);
        install(FN, s)?;
    }
    Ok(())
}

/// Restores the default action for `signals` (as `rt_signal_handler` takes them), for rt_signal_install's latch too; arrivals already recorded stay pollable. Needs `signal`. Nil.
///
/// # Errors
/// - InvalidArgument: no signal named; unknown or unsupported signal name (known: …); unknown signal number; signal number not supported (…)
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "signal", tier = "empirical")]
pub fn rt_signal_reset(signals: Value) -> RtResult<()> {
    let sigs = signals_arg(FN, signals)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    for s in sigs {
        // SAFETY: `s` is one of ALLOWED (checked by `parse`), none of them the collector's; SIG_DFL
        // shares no memory.
        if unsafe { libc::signal(s, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(Error::io(FN, name_of(s), &std::io::Error::last_os_error()));
        }
        POLLED[s as usize].store(false, Ordering::Release);
        LATCHED[s as usize].store(false, Ordering::Release);
        PREV[s as usize].store(0, Ordering::Release);
    }
    Ok(())
}

/// Simple's `rt_signal_install(signal_num) -> i64`: from now on signal `signal_num` (SIGHUP 1, SIGINT 2,
/// SIGQUIT 3, SIGUSR1 10, SIGUSR2 12, SIGPIPE 13, SIGALRM 14, SIGTERM 15, SIGWINCH 28) is caught and latched
/// for rt_signal_check instead of its default action; a handler installed before (the host's) is still
/// called, and rt_signal_handler / rt_signal_poll see the same arrivals (one handler). Installing twice is
/// harmless. Needs `signal`. Returns true (Simple: 1); refused signals are Error InvalidArgument.
///
/// # Errors
/// - InvalidArgument: unknown signal number; signal number not supported (…); signal cannot be handled
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "signal", tier = "verified")]
pub fn rt_signal_install(signal_num: i64) -> RtResult<bool> {
    let s = number(FN, signal_num)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    install(FN, s)?;
    if !LATCHED[s as usize].swap(true, Ordering::AcqRel) {
        // An arrival before (seen by rt_signal_handler's poll only) is not latched.
        FIRED[s as usize].store(false, Ordering::SeqCst);
    }
    Ok(true)
}

/// Simple's `rt_signal_check(signal_num) -> i64`: whether `signal_num` arrived since the last check (or since
/// rt_signal_install), and clears the latch. False for a signal never installed. Signals outside the
/// accepted set are Error InvalidArgument (Simple: 0).
///
/// # Errors
/// - InvalidArgument: unknown signal number; signal number not supported (…); signal cannot be handled
#[rt_fn(tier = "verified")]
pub fn rt_signal_check(signal_num: i64) -> RtResult<bool> {
    let s = number(FN, signal_num)?;
    Ok(FIRED[s as usize].swap(false, Ordering::SeqCst))
}

/// The signals recorded since the last poll, in arrival order, as names ("SIGINT", ...); waits up to opts.timeout_ms (0 = do not wait; default 0) for the first. An empty array when none arrived.
///
/// # Options
/// - timeout_ms (int, default 0): waits up to opts.timeout_ms 0 = do not wait
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_signal_poll(opts: Opts) -> RtResult<Vec<String>> {
    opts.only(&["timeout_ms"])?;
    let ms = opts.int_in("timeout_ms", -1, i32::MAX as i64)?.unwrap_or(0) as i32;
    let fd = PIPE_R.load(Ordering::Acquire);
    if fd < 0 {
        if ms > 0 {
            ffi_sdk::deadline::sleep(FN, std::time::Duration::from_millis(ms as u64))?;
        }
        return Ok(Vec::new());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64);
    if ffi_sdk::deadline::active() {
        // The thread's deadline / cancel token (docs/DEADLINES.md) end the wait with Error Timeout /
        // Cancelled; recorded signals stay queued for the next poll.
        let own = if ms < 0 { None } else { Some(std::time::Duration::from_millis(ms as u64)) };
        ffi_sdk::deadline::poll_fd(FN, fd, libc::POLLIN, own)?;
    }
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: `&mut p` is one live pollfd on this stack and the count passed is 1.
        let n = unsafe { libc::poll(&mut p, 1, if ms < 0 { -1 } else { left }) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io(FN, "signal pipe", &e));
        }
        break;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: `buf` is a live stack array and at most `buf.len()` bytes are asked for; `fd` is the
        // non-blocking read end of the signal pipe (stays open for the process).
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend(buf[..n as usize].iter().map(|&b| name_of(b as i32)));
    }
    Ok(out)
}
