//! Deadlines and cancellation for blocking functions (docs/DEADLINES.md).
//! The state (a per-thread deadline and bound cancel tokens) lives in
//! `libffi_core.so`; this module is the stateless way domain crates honour it.
//!
//! - `#[rt_fn(blocking)]` calls [`check`] before the body: a deadline already
//!   passed or a token already triggered is Error Timeout / Cancelled before
//!   anything starts.
//! - A wait inside a blocking function uses [`poll_fd`] / [`sleep`] (they
//!   wake on the deadline and on a bound token's eventfd), or bounds its own
//!   timed wait with [`budget`] / [`slice`] and calls [`check`] again after
//!   it, and undoes what it started (kill the child, remove the temp file...)
//!   before returning the Error.
//!
//! While no thread of the process has a deadline or a bound token, [`check`]
//! is one relaxed load of `RT_DEADLINE_ANY`.

use crate::error::{Code, Error, RtResult};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

extern "C" {
    static RT_DEADLINE_ANY: AtomicU32;
    fn rt__deadline_status() -> u32;
    fn rt__deadline_mono_us() -> u64;
    fn rt__deadline_cancel_fds(out: *mut i32, n: usize) -> usize;
    fn rt__deadline_capture() -> *mut libc::c_void;
    fn rt__deadline_install(p: *mut libc::c_void);
    fn rt__deadline_free(p: *mut libc::c_void);
}

/// How often waits that cannot poll a token's eventfd (condition variables,
/// library calls with only a timeout) re-check for cancellation.
pub const CANCEL_SLICE: Duration = Duration::from_millis(10);

/// Whether any thread of the process has a deadline or a bound token (if
/// not, nothing to honour: the common case, one relaxed load).
#[inline(always)]
pub fn active() -> bool {
    // SAFETY: RT_DEADLINE_ANY is core's `#[no_mangle] pub static AtomicU32` (deadline.rs),
    // declared above with that type; libffi_core.so is always linked, and an atomic load
    // through a shared reference is sound from any thread.
    unsafe { RT_DEADLINE_ANY.load(Ordering::Relaxed) != 0 }
}

/// Error Timeout / Cancelled when the calling thread's deadline has passed
/// or a token bound to it was triggered.
#[inline(always)]
pub fn check(func: &'static str) -> RtResult<()> {
    if !active() {
        return Ok(());
    }
    check_slow(func)
}

#[cold]
#[inline(never)]
fn check_slow(func: &'static str) -> RtResult<()> {
    match status() {
        None => Ok(()),
        Some(c) => Err(error(func, c)),
    }
}

/// Timeout or Cancelled for the calling thread now, or None.
pub fn status() -> Option<Code> {
    if !active() {
        return None;
    }
    // SAFETY: core's `extern "C" fn() -> u32`, declared with that signature; no arguments,
    // it only reads this thread's scope.
    match unsafe { rt__deadline_status() } {
        7 => Some(Code::Timeout),
        18 => Some(Code::Cancelled),
        _ => None,
    }
}

/// The Error a blocking function returns for `code` (Timeout or Cancelled).
pub fn error(func: &str, code: Code) -> Error {
    match code {
        Code::Cancelled => Error::plain(Code::Cancelled, func, "cancelled (a cancel token bound to this thread was triggered)"),
        _ => Error::plain(Code::Timeout, func, "deadline passed"),
    }
}

fn mono_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a writable timespec on this stack; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Time left until the calling thread's deadline (zero when passed); None
/// without a deadline.
pub fn remaining() -> Option<Duration> {
    if !active() {
        return None;
    }
    // SAFETY: core's `extern "C" fn() -> u64`, no arguments.
    let d = unsafe { rt__deadline_mono_us() };
    if d == u64::MAX {
        return None;
    }
    Some(Duration::from_micros(d.saturating_sub(mono_us())))
}

/// The shorter of a function's own timeout and the thread's remaining time.
pub fn budget(own: Option<Duration>) -> Option<Duration> {
    match (own, remaining()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether a token is bound to the calling thread (waits that cannot poll
/// its eventfd then wait in [`slice`]s).
pub fn has_token() -> bool {
    if !active() {
        return false;
    }
    let mut fds = [0i32; 1];
    // SAFETY: `fds` has room for the 1 int passed as `n`; core writes at most `n`.
    unsafe { rt__deadline_cancel_fds(fds.as_mut_ptr(), 1) > 0 }
}

/// Writes the eventfds of the tokens bound to the calling thread (each
/// becomes readable, and stays so, when its token is triggered) to `out`;
/// returns how many. For poll-based waits that build their own pollfd set.
pub fn cancel_fds(out: &mut [i32]) -> usize {
    if !active() {
        return 0;
    }
    // SAFETY: `out` is an exclusive slice of `out.len()` ints; core writes at most that many.
    unsafe { rt__deadline_cancel_fds(out.as_mut_ptr(), out.len()) }
}

/// How long a wait that cannot wake on a token may sleep before re-checking:
/// [`budget`], cut to [`CANCEL_SLICE`] while a token is bound.
pub fn slice(own: Option<Duration>) -> Option<Duration> {
    let b = budget(own);
    if has_token() {
        Some(b.map_or(CANCEL_SLICE, |b| b.min(CANCEL_SLICE)))
    } else {
        b
    }
}

/// Waits until `fd` (-1: none) reports one of `events` (poll(2) bits):
/// Ok(true) ready, Ok(false) the function's own timeout `own` passed first;
/// Error Timeout (thread deadline) or Cancelled (a bound token's eventfd
/// wakes the poll). EINTR is retried with the time left.
pub fn poll_fd(func: &'static str, fd: i32, events: i16, own: Option<Duration>) -> RtResult<bool> {
    let start = mono_us();
    let own_end = own.map(|d| start.saturating_add(d.as_micros().min(u64::MAX as u128) as u64));
    let mut cfds = [-1i32; 8];
    // SAFETY: `cfds` holds `cfds.len()` (8) ints and core writes at most that many, returning
    // the count written, so `n <= 8` and `cfds[..n]` below is in range.
    let n = if active() { unsafe { rt__deadline_cancel_fds(cfds.as_mut_ptr(), cfds.len()) } } else { 0 };
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(1 + n);
    if fd >= 0 {
        pfds.push(libc::pollfd { fd, events, revents: 0 });
    }
    for &c in &cfds[..n] {
        pfds.push(libc::pollfd { fd: c, events: libc::POLLIN, revents: 0 });
    }
    loop {
        check(func)?;
        let now = mono_us();
        // SAFETY: core's `extern "C" fn() -> u64`, no arguments.
        let dl = if active() { unsafe { rt__deadline_mono_us() } } else { u64::MAX };
        let end = own_end.unwrap_or(u64::MAX).min(dl);
        let ms: i32 = if end == u64::MAX { -1 } else { (end.saturating_sub(now)).div_ceil(1000).min(i32::MAX as u64) as i32 };
        for p in pfds.iter_mut() {
            p.revents = 0;
        }
        // SAFETY: `pfds` is a Vec of `pfds.len()` initialised pollfds that poll(2) may update
        // (`revents`); it is not touched elsewhere during the call. The descriptors are only
        // passed to the kernel (a closed one is reported as POLLNVAL).
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io(func, "poll", &e));
        }
        if fd >= 0 && pfds[0].revents != 0 {
            return Ok(true);
        }
        if own_end.is_some_and(|e| mono_us() >= e) {
            return Ok(false);
        }
        // The thread's deadline, a token's eventfd, or a spurious wake: re-checked at the top.
    }
}

/// Sleeps for `d`, waking early with Error Timeout / Cancelled.
pub fn sleep(func: &'static str, d: Duration) -> RtResult<()> {
    check(func)?;
    if !active() {
        std::thread::sleep(d);
        return check(func);
    }
    poll_fd(func, -1, 0, Some(d)).map(|_| ())
}

/// The calling thread's scope (deadline and bound tokens), captured for a
/// thread the library starts: `install` it first thing on that thread.
pub struct Captured(*mut libc::c_void);

// SAFETY: the pointer is null or an unshared `Box<Scope>` from `rt__deadline_capture`
// (a deadline and `Arc`s of tokens made only of integers/atomics), owned by this value
// alone and consumed exactly once (install or free), so moving it to another thread
// and using it there is sound.
unsafe impl Send for Captured {}

impl Captured {
    pub fn capture() -> Captured {
        // SAFETY: core's `extern "C" fn() -> *mut c_void`, no arguments; the result (null or a
        // fresh Box) is owned by the Captured made here.
        Captured(if active() { unsafe { rt__deadline_capture() } } else { std::ptr::null_mut() })
    }
    /// Makes the captured scope the calling thread's (for a new thread).
    pub fn install(mut self) {
        let p = std::mem::replace(&mut self.0, std::ptr::null_mut());
        if p.is_null() && !active() {
            return;
        }
        // SAFETY: `p` is null or the pointer from `rt__deadline_capture` that `self` owned; it
        // was swapped out of `self`, so this is its single use and `Drop` will not free it.
        unsafe { rt__deadline_install(p) };
    }
    /// Runs the calling thread under the captured scope until the guard
    /// drops, then puts its own scope back (for pool threads that run work
    /// of several callers).
    pub fn enter(self) -> Entered {
        if self.0.is_null() && !active() {
            return Entered(None);
        }
        let prev = Captured::capture();
        self.install();
        Entered(Some(prev))
    }
}

/// From [`Captured::enter`]: restores the thread's previous scope on drop.
pub struct Entered(Option<Captured>);

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(mut prev) = self.0.take() {
            let p = std::mem::replace(&mut prev.0, std::ptr::null_mut());
            // SAFETY: `p` was swapped out of `prev` (null or its unconsumed captured scope), so it
            // is installed exactly once and `prev`'s Drop sees null.
            unsafe { rt__deadline_install(p) };
        }
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: `self.0` is non-NULL, from `rt__deadline_capture`, and was not taken by
            // `install` (which leaves null behind): this is its one and only free.
            unsafe { rt__deadline_free(self.0) };
        }
    }
}

/// Runs CPU-bound `work` that has no hook between its steps (a key
/// derivation, a password hash) so that the caller still returns promptly
/// on its deadline or a cancel. With no deadline or token in force anywhere
/// it runs inline. Otherwise it runs on a helper thread while the caller
/// waits in [`poll_fd`]; when stopped, the caller returns Timeout /
/// Cancelled at once and the helper runs to its end (bounded by the
/// function's parameter limits) and drops its result. `work` must own its
/// inputs and must not touch runtime values (the helper thread is not known
/// to the collector).
pub fn run_abandonable<T: Send + 'static>(
    func: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> RtResult<T> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::{Arc, Mutex};
    check(func)?;
    if !active() {
        return Ok(work());
    }
    // SAFETY: eventfd takes no pointers; a negative result is handled below.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(Error::io(func, "eventfd", &std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let done = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
    let slot: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let (done2, slot2) = (Arc::clone(&done), Arc::clone(&slot));
    let spawned = std::thread::Builder::new().name("rt-abandonable".into()).spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        *slot2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd this closure keeps alive (Arc).
        unsafe { libc::write(done2.as_raw_fd(), (&one as *const u64).cast(), 8) };
    });
    if let Err(e) = spawned {
        return Err(Error::io(func, "could not start a worker thread", &e));
    }
    loop {
        poll_fd(func, done.as_raw_fd(), libc::POLLIN, None)?;
        if let Some(r) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return r.map_err(|_| Error::plain(Code::Internal, func, "the computation panicked"));
        }
    }
}
