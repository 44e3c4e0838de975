//! The calling process itself, as Simple's `sffi/process.spl` and
//! `io/process_ops.spl` reach it: exit, peak memory, latched signals, and
//! the host's own stdout/stderr.
//!
//! Signals (`rt_signal_install` / `rt_signal_check`, Simple's latch pair):
//! the handler only sets a flag (async-signal-safe) and, when another
//! handler was installed before ours (the host's, or ffi_cli's
//! `rt_signal_handler`), calls it too, so both keep seeing the signal. A
//! handler installed after ours replaces it (signal actions are per process):
//! install ours last, or poll through ffi_cli's `rt_signal_poll` only.
//! The same signals as ffi_cli are accepted; the collector's (SIGPWR,
//! SIGRTMIN+6), SIGXCPU, SIGCHLD (the library reaps its children) and the
//! signals that cannot or must not be caught are refused.

use ffi_sdk::prelude::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Exits the calling process with status `code` (-2147483648..=2147483647; the system keeps `code & 255`),
/// after flushing the host's stdout and stderr (Rust's and C's): atexit handlers run, no destructors of
/// other threads do. Children spawned with kill_on_close keep running (their supervisors detach), as they
/// would if the host called exit itself. Error OutOfRange for a code outside i32. Never returns otherwise.
/// Marked blocking (it does not return): a passed thread deadline or a triggered cancel token is Error
/// Timeout / Cancelled instead of the exit (docs/DEADLINES.md).
#[rt_fn(blocking, tier = "verified")]
pub fn rt_exit(code: i64) -> RtResult<()> {
    let c = i32::try_from(code).map_err(|_| Error::new(Code::OutOfRange, FN, "exit code must fit in 32 bits", code))?;
    let _ = flush_stdout();
    let _ = std::io::stderr().flush();
    std::process::exit(c)
}

/// Peak resident memory of the calling process so far (VmHWM of /proc/self/status), in KiB.
/// Error Unsupported where /proc does not report it.
#[rt_fn(tier = "verified")]
pub fn rt_process_hwm_kib() -> RtResult<i64> {
    let s = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::io(FN, "/proc/self/status", &e))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| Error::unsupported(FN, "/proc/self/status has no VmHWM line"))
}

// ------------------------------------------------------------------ signals

const NSIG: usize = 65;

#[allow(clippy::declare_interior_mutable_const)]
const FALSE: AtomicBool = AtomicBool::new(false);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
/// Set by the handler, cleared by rt_signal_check.
static FIRED: [AtomicBool; NSIG] = [FALSE; NSIG];
/// The handler that was installed before ours (0: none to call), and whether it takes siginfo.
static PREV: [AtomicUsize; NSIG] = [ZERO; NSIG];
static PREV_SIGINFO: [AtomicBool; NSIG] = [FALSE; NSIG];
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

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = sig as usize;
    if i >= NSIG {
        return;
    }
    FIRED[i].store(true, Ordering::SeqCst);
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

fn signal_arg(func: &'static str, sig: i64) -> RtResult<i32> {
    let refused = |why: &str| Error::invalid(func, format!("signal cannot be latched: {why}"), sig);
    let Ok(s) = i32::try_from(sig) else {
        return Err(Error::invalid(func, "unknown signal number", sig));
    };
    if s == libc::SIGPWR || s == libc::SIGXCPU || s == libc::SIGRTMIN() + 6 {
        return Err(refused("used by the garbage collector"));
    }
    if s == libc::SIGKILL || s == libc::SIGSTOP {
        return Err(refused("the kernel does not let it be caught"));
    }
    if s == libc::SIGCHLD {
        return Err(refused("the library reaps its own children"));
    }
    if !ALLOWED.iter().any(|(_, n)| *n == s) {
        return Err(Error::invalid(
            func,
            "signal number not supported (SIGHUP 1, SIGINT 2, SIGQUIT 3, SIGUSR1 10, SIGUSR2 12, SIGPIPE 13, SIGALRM 14, SIGTERM 15, SIGWINCH 28)",
            sig,
        ));
    }
    Ok(s)
}

/// Simple's `rt_signal_install(signal_num) -> i64`: from now on signal `signal_num` (SIGHUP 1, SIGINT 2,
/// SIGQUIT 3, SIGUSR1 10, SIGUSR2 12, SIGPIPE 13, SIGALRM 14, SIGTERM 15, SIGWINCH 28) is caught and latched
/// for rt_signal_check instead of its default action; a handler installed before (the host's, ffi_cli's) is
/// still called. Installing twice is harmless. Needs `signal`. Returns true (Simple: 1); refused signals
/// are Error InvalidArgument.
#[rt_fn(cap = "signal", tier = "verified")]
pub fn rt_signal_install(signal_num: i64) -> RtResult<bool> {
    let s = signal_arg(FN, signal_num)?;
    let _g = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: querying and setting the disposition of one signal with a handler that is async-signal-safe.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(s, std::ptr::null(), &mut old) != 0 {
            return Err(Error::io(FN, signal_num, &std::io::Error::last_os_error()));
        }
        let ours = on_signal as *const () as usize;
        if old.sa_sigaction == ours {
            return Ok(true);
        }
        let chain = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
        PREV_SIGINFO[s as usize].store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
        PREV[s as usize].store(if chain { old.sa_sigaction } else { 0 }, Ordering::Release);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ours;
        sa.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(s, &sa, std::ptr::null_mut()) != 0 {
            return Err(Error::io(FN, signal_num, &std::io::Error::last_os_error()));
        }
    }
    Ok(true)
}

/// Simple's `rt_signal_check(signal_num) -> i64`: whether `signal_num` arrived since the last check (or since
/// rt_signal_install), and clears the latch. False for a signal never installed. Signals outside the
/// accepted set are Error InvalidArgument (Simple: 0).
#[rt_fn(tier = "verified")]
pub fn rt_signal_check(signal_num: i64) -> RtResult<bool> {
    let s = signal_arg(FN, signal_num)?;
    Ok(FIRED[s as usize].swap(false, Ordering::SeqCst))
}

// ------------------------------------------------------------------ stdio

extern "C" {
    #[link_name = "stdout"]
    static mut C_STDOUT: *mut libc::FILE;
}

fn flush_stdout() -> std::io::Result<()> {
    let r = std::io::stdout().flush();
    // SAFETY: `stdout` is libc's `FILE *stdout` global, declared above with its C type and read
    // by value (addr_of!, no reference to the static mut); when not NULL it points at libc's
    // stream object, which fflush locks internally.
    unsafe {
        let f = std::ptr::addr_of!(C_STDOUT).read();
        if !f.is_null() {
            libc::fflush(f);
        }
    }
    r
}

/// Writes `s` (text or bytes) to the host's stderr (file descriptor 2) at once, all of it.
/// An Error Io names the failure (e.g. stderr closed).
#[rt_fn(tier = "verified")]
pub fn rt_stderr_write(s: &[u8]) -> RtResult<()> {
    let mut done = 0;
    while done < s.len() {
        // SAFETY: `s[done..]` is a live slice (done < s.len()), readable for the `s.len() - done`
        // bytes passed; descriptor 2 is only handed to the kernel (closed: EBADF, reported).
        let k = unsafe { libc::write(2, s[done..].as_ptr().cast(), s.len() - done) };
        if k >= 0 {
            done += k as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                ffi_sdk::deadline::poll_fd(FN, 2, libc::POLLOUT, None)?;
            }
            _ => return Err(Error::io(FN, "stderr", &e)),
        }
    }
    Ok(())
}

/// Flushes the host's stdout: what Rust's `std::io::stdout` and C's `stdout` stream hold (a host with its own
/// buffer, such as Python's sys.stdout, flushes that itself). Error Io when the flush fails.
#[rt_fn(tier = "verified")]
pub fn rt_stdout_flush() -> RtResult<()> {
    flush_stdout().map_err(|e| Error::io(FN, "stdout", &e))
}

/// Flushes the host's stderr (Rust's and C's `stderr` streams; both are normally unbuffered).
#[rt_fn(tier = "verified")]
pub fn rt_stderr_flush() -> RtResult<()> {
    // fflush(NULL) would flush every stream; stderr through its own lock instead.
    extern "C" {
        #[link_name = "stderr"]
        static mut C_STDERR: *mut libc::FILE;
    }
    // SAFETY: `stderr` is libc's `FILE *stderr` global, declared with its C type; it is read
    // by value (addr_of!, no reference to the static mut is formed) and, when not NULL, points
    // at libc's stream object, which fflush locks internally before touching.
    unsafe {
        let f = std::ptr::addr_of!(C_STDERR).read();
        if !f.is_null() {
            libc::fflush(f);
        }
    }
    std::io::stderr().flush().map_err(|e| Error::io(FN, "stderr", &e))
}
