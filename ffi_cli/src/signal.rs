//! Signals as polled events: `rt_signal_handler` installs a handler that
//! only writes the signal number into a pipe (async-signal-safe, nothing
//! else runs inside it); `rt_signal_poll` reads them back in order.
//! The collector's signals (SIGPWR, SIGRTMIN+6), SIGXCPU and signals that
//! cannot or must not be caught (SIGKILL, SIGSTOP, SIGSEGV, ...) are refused.

use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

static PIPE_R: AtomicI32 = AtomicI32::new(-1);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static SETUP: Mutex<()> = Mutex::new(());

const ALLOWED: [(&str, i32); 9] = [
    ("SIGINT", libc::SIGINT),
    ("SIGTERM", libc::SIGTERM),
    ("SIGHUP", libc::SIGHUP),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGALRM", libc::SIGALRM),
    ("SIGPIPE", libc::SIGPIPE),
];

fn name_of(sig: i32) -> String {
    ALLOWED.iter().find(|(_, n)| *n == sig).map(|(s, _)| s.to_string()).unwrap_or_else(|| format!("SIG{sig}"))
}

fn parse(func: &'static str, v: Value) -> RtResult<i32> {
    let refused = |what: String, why: &str| Error::invalid(func, format!("signal cannot be handled: {why}"), what);
    let sig = if let Some(i) = v.as_int() {
        i32::try_from(i).map_err(|_| Error::invalid(func, "unknown signal number", i))?
    } else if let Some(t) = v.as_text() {
        let up = t.to_ascii_uppercase();
        let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
        match ALLOWED.iter().find(|(n, _)| *n == full) {
            Some((_, n)) => *n,
            None => {
                return Err(match full.as_str() {
                    "SIGPWR" | "SIGXCPU" => refused(quote(t), "used by the garbage collector"),
                    "SIGKILL" | "SIGSTOP" => refused(quote(t), "the kernel does not let it be caught"),
                    _ => Error::invalid(
                        func,
                        "unknown or unsupported signal name (known: SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH, SIGALRM, SIGPIPE)",
                        quote(t),
                    ),
                })
            }
        }
    } else {
        return Err(ffi_sdk::args::kind_error(func, 0, "signals", "signal names or numbers", v));
    };
    if sig == libc::SIGPWR || sig == libc::SIGXCPU || sig == libc::SIGRTMIN() + 6 {
        return Err(refused(sig.to_string(), "used by the garbage collector"));
    }
    if !ALLOWED.iter().any(|(_, n)| *n == sig) {
        return Err(Error::invalid(func, "signal number not supported (SIGINT 2, SIGTERM 15, SIGHUP 1, SIGUSR1 10, SIGUSR2 12, SIGQUIT 3, SIGWINCH 28, SIGALRM 14, SIGPIPE 13)", sig));
    }
    Ok(sig)
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

extern "C" fn on_signal(sig: libc::c_int) {
    unsafe {
        let saved = *libc::__errno_location();
        let fd = PIPE_W.load(Ordering::Relaxed);
        if fd >= 0 {
            let b = sig as u8;
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
        *libc::__errno_location() = saved;
    }
}

fn ensure_pipe(func: &'static str) -> RtResult<()> {
    if PIPE_R.load(Ordering::Acquire) >= 0 {
        return Ok(());
    }
    let mut fds = [0i32; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(Error::io(func, "pipe", &std::io::Error::last_os_error()));
    }
    PIPE_W.store(fds[1], Ordering::Release);
    PIPE_R.store(fds[0], Ordering::Release);
    Ok(())
}

/// Handles `signals` (a name like "SIGINT" / "INT" / "sigterm", a number, or an array of them: SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH, SIGALRM, SIGPIPE) from now on: each arrival is recorded for `rt_signal_poll` instead of the default action. The collector's signals (SIGPWR, SIGRTMIN+6), SIGXCPU, SIGKILL and SIGSTOP are refused (InvalidArgument). Needs `signal`. Nil.
#[rt_fn(cap = "signal", tier = "empirical")]
pub fn rt_signal_handler(signals: Value) -> RtResult<()> {
    let sigs = signals_arg(FN, signals)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    ensure_pipe(FN)?;
    for s in sigs {
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        if unsafe { libc::sigaction(s, &sa, std::ptr::null_mut()) } != 0 {
            return Err(Error::io(FN, name_of(s), &std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Restores the default action for `signals` (as `rt_signal_handler` takes them); arrivals already recorded stay pollable. Needs `signal`. Nil.
#[rt_fn(cap = "signal", tier = "empirical")]
pub fn rt_signal_reset(signals: Value) -> RtResult<()> {
    let sigs = signals_arg(FN, signals)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    for s in sigs {
        if unsafe { libc::signal(s, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(Error::io(FN, name_of(s), &std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The signals recorded since the last poll, in arrival order, as names ("SIGINT", ...); waits up to opts.timeout_ms (0 = do not wait; default 0) for the first. An empty array when none arrived.
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
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend(buf[..n as usize].iter().map(|&b| name_of(b as i32)));
    }
    Ok(out)
}
