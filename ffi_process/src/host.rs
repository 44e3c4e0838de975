//! The calling process itself, as Simple's `sffi/process.spl` and
//! `io/process_ops.spl` reach it: exit, peak memory, and the host's own
//! stdout/stderr. Simple's latched signals (`rt_signal_install` /
//! `rt_signal_check`) are served by ffi_cli (`signal.rs`), on the one signal
//! mechanism of the process that `rt_signal_handler` / `rt_signal_poll` use.

use ffi_sdk::prelude::*;
use std::io::Write;

/// Exits the calling process with status `code` (-2147483648..=2147483647; the system keeps `code & 255`), after
/// flushing the host's stdout and stderr (Rust's and C's): atexit handlers run, no destructors of other threads
/// do. Children spawned with kill_on_close keep running (their supervisors detach), as they would if the host
/// called exit itself. Never returns otherwise. Marked blocking (it does not return): a passed thread deadline or
/// a triggered cancel token is Error Timeout / Cancelled instead of the exit (docs/DEADLINES.md).
///
/// # Errors
/// - OutOfRange: for a code outside i32
#[rt_fn(blocking, tier = "verified")]
pub fn rt_exit(code: i64) -> RtResult<()> {
    let c = i32::try_from(code).map_err(|_| Error::new(Code::OutOfRange, FN, "exit code must fit in 32 bits", code))?;
    let _ = flush_stdout();
    let _ = std::io::stderr().flush();
    std::process::exit(c)
}

/// Peak resident memory of the calling process so far (VmHWM of /proc/self/status), in KiB.
/// Error Unsupported where /proc does not report it.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: /proc/self/status has no VmHWM line
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified")]
pub fn rt_process_hwm_kib() -> RtResult<i64> {
    let s = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::io(FN, "/proc/self/status", &e))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| Error::unsupported(FN, "/proc/self/status has no VmHWM line"))
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
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
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
/// buffer, such as Python's sys.stdout, flushes that itself).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: the flush fails
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified")]
pub fn rt_stdout_flush() -> RtResult<()> {
    flush_stdout().map_err(|e| Error::io(FN, "stdout", &e))
}

/// Flushes the host's stderr (Rust's and C's `stderr` streams; both are normally unbuffered).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
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
