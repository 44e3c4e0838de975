//! Deadlines and cancellation (docs/DEADLINES.md): per-thread state, the
//! host surface `rt_deadline_*` / `rt_cancel_*`, and the internal surface
//! `rt__deadline_*` that `ffi_sdk::deadline` gives domain libraries.
//!
//! - A thread's *scope* is a deadline (CLOCK_MONOTONIC microseconds, or none)
//!   and a stack of bound cancel tokens. It lives in a thread_local here (one
//!   runtime per process); `RT_DEADLINE_ANY` counts the threads whose scope
//!   is not empty, so while nobody uses the feature a blocking function's
//!   check is one relaxed load of that word.
//! - A token is a slot in a table allocated once with `mmap` (not scanned by
//!   the collector, never freed): `state` = generation << 1 | cancelled, and
//!   an eventfd that becomes readable (and stays readable) when the token is
//!   triggered, so poll-based waits wake on cancellation. Slots are reused
//!   with a new generation; the eventfd of a slot is never closed, so a
//!   signal-safe trigger racing a reuse writes to a live eventfd at worst
//!   (a spurious wake-up that waiters re-check) and its compare-and-swap on
//!   `state` never marks a newer token of the slot.

use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Number of threads whose deadline scope is not empty (a deadline, or a
/// bound token). 0: every deadline check is this one load.
#[no_mangle]
pub static RT_DEADLINE_ANY: AtomicU32 = AtomicU32::new(0);

const NONE: u64 = u64::MAX;
const SLOTS: usize = 1 << 16;

/// Microseconds of CLOCK_MONOTONIC.
pub fn mono_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec on this stack; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail and fills `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn unix_us() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec on this stack; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}

// ---------------------------------------------------------------- tokens

#[repr(C)]
struct Slot {
    /// generation << 1 | cancelled.
    state: AtomicU64,
    /// eventfd, made on the slot's first use, never closed (-1 before).
    efd: AtomicI32,
}

static TABLE: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
/// Free slot indexes and the next never-used one.
static FREE: Mutex<(Vec<u32>, u32)> = Mutex::new((Vec::new(), 0));

fn table() -> *mut Slot {
    let t = TABLE.load(Ordering::Acquire);
    if !t.is_null() {
        return t;
    }
    let _g = FREE.lock().unwrap_or_else(|e| e.into_inner());
    let t = TABLE.load(Ordering::Acquire);
    if !t.is_null() {
        return t;
    }
    let size = SLOTS * std::mem::size_of::<Slot>();
    // SAFETY: an anonymous private mapping with no address hint and no fd: no existing
    // memory is affected. The result is checked against MAP_FAILED before use.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    assert!(p != libc::MAP_FAILED, "rt_cancel_new: mmap of the token table failed");
    let p = p as *mut Slot;
    for i in 0..SLOTS {
        // SAFETY: `p` is the fresh mapping of `SLOTS` Slots (page-aligned, so aligned for
        // Slot; zero-filled, which is a valid `Slot` of atomics) and `i < SLOTS`. It is not
        // published in TABLE yet, and FREE's lock is held, so nothing else touches it.
        unsafe { (*p.add(i)).efd.store(-1, Ordering::Relaxed) };
    }
    TABLE.store(p, Ordering::Release);
    p
}

fn slot(idx: u32) -> &'static Slot {
    // SAFETY: `table()` is the initialised, never-unmapped table of `SLOTS` slots, and
    // every caller passes an index handed out by FREE (`< SLOTS`); a Slot is only atomics,
    // so a shared `'static` reference to it is fine from any thread.
    unsafe { &*table().add(idx as usize) }
}

/// A cancel token: one slot of the table, for this slot's generation.
/// Dropped (handle closed or collected and no thread bound to it): the slot
/// goes back to the free list under a new generation.
pub struct Token {
    idx: u32,
    gen: u64,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Token {
    const NAME: &'static str = "CancelToken";
}

impl Token {
    fn new(func: &'static str) -> RtResult<Token> {
        let mut f = FREE.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match f.0.pop() {
            Some(i) => i,
            None if (f.1 as usize) < SLOTS => {
                f.1 += 1;
                f.1 - 1
            }
            None => return Err(Error::plain(Code::LimitExceeded, func, format!("more than {SLOTS} live cancel tokens"))),
        };
        drop(f);
        let s = slot(idx);
        if s.efd.load(Ordering::Relaxed) < 0 {
            // SAFETY: eventfd takes no pointers; the result is checked for failure below.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                FREE.lock().unwrap_or_else(|e| e.into_inner()).0.push(idx);
                return Err(Error::io(func, "eventfd", &e));
            }
            s.efd.store(fd, Ordering::Release);
        } else {
            // Drain a stale trigger of an earlier generation.
            let mut buf = 0u64;
            // SAFETY: reads at most 8 bytes into the u64 `buf` on this stack from the slot's own
            // eventfd, which is never closed; the fd is non-blocking, so an empty counter is EAGAIN.
            unsafe { libc::read(s.efd.load(Ordering::Relaxed), &mut buf as *mut u64 as *mut libc::c_void, 8) };
        }
        let gen = s.state.load(Ordering::Acquire) >> 1;
        Ok(Token { idx, gen })
    }
    /// The integer id for `rt_cancel_trigger_signal_safe`.
    pub fn id(&self) -> u64 {
        (self.gen << 16) | self.idx as u64
    }
    pub fn cancelled(&self) -> bool {
        slot(self.idx).state.load(Ordering::Acquire) == (self.gen << 1) | 1
    }
    pub fn fd(&self) -> i32 {
        slot(self.idx).efd.load(Ordering::Relaxed)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // New generation, not cancelled; later triggers of the old id fail their CAS.
        slot(self.idx).state.store((self.gen + 1) << 1, Ordering::Release);
        FREE.lock().unwrap_or_else(|e| e.into_inner()).0.push(self.idx);
    }
}

/// Signal-safe: atomic compare-and-swap and write(2) only. 1 triggered now
/// or before, 0 unknown (stale) id.
fn trigger_id(id: u64) -> i32 {
    let idx = (id & 0xFFFF) as usize;
    let gen = id >> 16;
    let t = TABLE.load(Ordering::Acquire);
    if t.is_null() || idx >= SLOTS {
        return 0;
    }
    // SAFETY: `t` is the published table (non-NULL, `SLOTS` slots, never unmapped) and
    // `idx < SLOTS` was checked above; Slot holds only atomics, so a shared reference is
    // sound even from a signal handler.
    let s = unsafe { &*t.add(idx) };
    let live = gen << 1;
    match s.state.compare_exchange(live, live | 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let one: u64 = 1;
            let fd = s.efd.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: writes the 8 bytes of `one` (on this stack) to the slot's eventfd, which is
                // never closed once created; write(2) is async-signal-safe.
                unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
            }
            1
        }
        Err(cur) if cur == live | 1 => 1,
        Err(_) => 0,
    }
}

// ---------------------------------------------------------------- thread scope

#[derive(Clone, Default)]
struct Scope {
    deadline: u64,
    tokens: Vec<Arc<Token>>,
}

struct Tls {
    deadline: Cell<u64>,
    tokens: RefCell<Vec<Arc<Token>>>,
    /// Whether this thread counts in RT_DEADLINE_ANY.
    counted: Cell<bool>,
}

impl Drop for Tls {
    fn drop(&mut self) {
        if self.counted.get() {
            RT_DEADLINE_ANY.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static TLS: Tls = const { Tls { deadline: Cell::new(NONE), tokens: RefCell::new(Vec::new()), counted: Cell::new(false) } };
}

fn recount(t: &Tls) {
    let busy = t.deadline.get() != NONE || !t.tokens.borrow().is_empty();
    if busy != t.counted.get() {
        t.counted.set(busy);
        if busy {
            RT_DEADLINE_ANY.fetch_add(1, Ordering::SeqCst);
        } else {
            RT_DEADLINE_ANY.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn set_deadline(d: u64) -> u64 {
    TLS.with(|t| {
        let prev = t.deadline.get();
        t.deadline.set(d);
        recount(t);
        prev
    })
}

fn current_deadline() -> u64 {
    TLS.try_with(|t| t.deadline.get()).unwrap_or(NONE)
}

/// 0 ok, 7 Timeout, 18 Cancelled for the calling thread's scope now.
fn status() -> u32 {
    TLS.try_with(|t| {
        if t.tokens.borrow().iter().any(|k| k.cancelled()) {
            return Code::Cancelled as u32;
        }
        let d = t.deadline.get();
        if d != NONE && mono_us() >= d {
            return Code::Timeout as u32;
        }
        0
    })
    .unwrap_or(0)
}

// ---------------------------------------------------------------- internal surface

/// 0 ok, 7 the calling thread's deadline has passed, 18 a token bound to it
/// was triggered (Cancelled wins).
#[no_mangle]
pub extern "C" fn rt__deadline_status() -> u32 {
    status()
}

/// The calling thread's deadline in CLOCK_MONOTONIC microseconds, u64::MAX for none.
#[no_mangle]
pub extern "C" fn rt__deadline_mono_us() -> u64 {
    current_deadline()
}

/// Writes up to `n` eventfds of the tokens bound to the calling thread to
/// `out` (each becomes readable when its token is triggered); returns how many.
///
/// # Safety
/// `out` points to `n` writable ints.
#[no_mangle]
pub unsafe extern "C" fn rt__deadline_cancel_fds(out: *mut i32, n: usize) -> usize {
    TLS.try_with(|t| {
        let toks = t.tokens.borrow();
        let mut k = 0;
        for tok in toks.iter().take(n) {
            *out.add(k) = tok.fd();
            k += 1;
        }
        k
    })
    .unwrap_or(0)
}

/// A copy of the calling thread's scope (deadline and bound tokens), for a
/// thread the library starts; null when the scope is empty. Give it to
/// `rt__deadline_install` (on the new thread) or `rt__deadline_free`.
#[no_mangle]
pub extern "C" fn rt__deadline_capture() -> *mut libc::c_void {
    let s = TLS.try_with(|t| Scope { deadline: t.deadline.get(), tokens: t.tokens.borrow().clone() }).unwrap_or_default();
    if s.deadline == NONE && s.tokens.is_empty() {
        return std::ptr::null_mut();
    }
    Box::into_raw(Box::new(s)) as *mut libc::c_void
}

/// Makes a captured scope the calling thread's (and frees it); null: an
/// empty scope (no deadline, no token).
///
/// # Safety
/// `p` is null or from `rt__deadline_capture`, used once.
#[no_mangle]
pub unsafe extern "C" fn rt__deadline_install(p: *mut libc::c_void) {
    let s = if p.is_null() { Box::new(Scope { deadline: NONE, tokens: Vec::new() }) } else { Box::from_raw(p as *mut Scope) };
    if p.is_null() && TLS.try_with(|t| !t.counted.get()).unwrap_or(true) {
        return;
    }
    TLS.with(|t| {
        t.deadline.set(s.deadline);
        *t.tokens.borrow_mut() = s.tokens;
        recount(t);
    });
}

/// Frees a captured scope without installing it.
///
/// # Safety
/// As `rt__deadline_install`.
#[no_mangle]
pub unsafe extern "C" fn rt__deadline_free(p: *mut libc::c_void) {
    if !p.is_null() {
        drop(Box::from_raw(p as *mut Scope));
    }
}

// ---------------------------------------------------------------- host surface

/// Sets the calling thread's deadline to `micros_from_now` microseconds from
/// now (0 or less: already passed), unless the current one is sooner:
/// deadlines only shorten. Every blocking function called on this thread
/// (and on threads it spawns through ffi_concurrent) then returns Error
/// Timeout once the deadline passes, with nothing half-done
/// (docs/DEADLINES.md). Returns the previous deadline as an opaque token
/// (CLOCK_MONOTONIC microseconds, -1 for none) for `rt_deadline_restore`
/// at the end of the scope.
#[rt_host(tier = "empirical")]
pub fn rt_deadline_set(micros_from_now: i64) -> i64 {
    let now = mono_us();
    let want = if micros_from_now <= 0 { now } else { now.saturating_add(micros_from_now as u64) };
    let prev = current_deadline();
    set_deadline(want.min(prev));
    if prev == NONE { -1 } else { prev as i64 }
}

/// As `rt_deadline_set` with an absolute deadline in Unix microseconds
/// (CLOCK_REALTIME; converted to the monotonic clock now, so later changes
/// of the wall clock do not move it). Returns the previous deadline token.
#[rt_host(tier = "empirical")]
pub fn rt_deadline_at(unix_micros: i64) -> i64 {
    rt_deadline_set(unix_micros.saturating_sub(unix_us()))
}

/// Ends a scope: puts back the deadline `previous` that `rt_deadline_set`
/// or `rt_deadline_at` returned (-1: none). Scopes nest like a stack; restore
/// in the reverse order of the sets.
#[rt_host(tier = "empirical")]
pub fn rt_deadline_restore(previous: i64) {
    set_deadline(if previous < 0 { NONE } else { previous as u64 });
}

/// Removes the calling thread's deadline (bound tokens stay bound).
#[rt_host(tier = "empirical")]
pub fn rt_deadline_clear() {
    set_deadline(NONE);
}

/// Microseconds left until the calling thread's deadline: 0 when it has
/// passed, -1 when there is none.
#[rt_host(tier = "empirical")]
pub fn rt_deadline_remaining() -> i64 {
    let d = current_deadline();
    if d == NONE {
        return -1;
    }
    d.saturating_sub(mono_us()) as i64
}

/// Makes a new cancel token (a CancelToken handle), not triggered. Bind it to a thread with `rt_cancel_bind`;
/// trigger it from any thread with `rt_cancel_trigger`, or from a signal handler with
/// `rt_cancel_trigger_signal_safe(rt_cancel_id(token))`.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - LimitExceeded: past 65,536 live tokens
#[rt_fn(tier = "empirical", ret = "handle<CancelToken>")]
pub fn rt_cancel_new() -> RtResult<Value> {
    Ok(new_handle(Token::new(FN)?))
}

/// Triggers `token` (from any thread; idempotent, permanent): every blocking
/// call on a thread it is bound to returns Error Cancelled promptly, and
/// later ones at once, with nothing half-done.
///
/// # Errors
/// - Closed: `token` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cancel_trigger(token: Handle<Token>) -> RtResult<()> {
    trigger_id(token.id());
    Ok(())
}

/// Whether `token` was triggered.
///
/// # Errors
/// - Closed: `token` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cancel_is_cancelled(token: Handle<Token>) -> RtResult<bool> {
    Ok(token.cancelled())
}

/// The plain integer id of `token` for `rt_cancel_trigger_signal_safe`
/// (valid while the token is alive; keep the handle reachable).
///
/// # Errors
/// - Closed: `token` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cancel_id(token: Handle<Token>) -> RtResult<i64> {
    Ok(token.id() as i64)
}

/// Triggers the token with id `token_id` (from `rt_cancel_id`). Async-signal
/// safe: an atomic compare-and-swap and one write(2) to an eventfd, nothing
/// else, so a host's SIGINT handler may call it. Returns 1 when the token is
/// (now) triggered, 0 for an id of no live token.
#[rt_host(tier = "empirical")]
pub fn rt_cancel_trigger_signal_safe(token_id: u64) -> i32 {
    trigger_id(token_id)
}

/// Binds `token` to the calling thread's scope (a stack: an inner bind adds a
/// token, the outer ones stay in force) until `rt_cancel_unbind`. Threads
/// spawned through ffi_concurrent inherit the bound tokens.
///
/// # Errors
/// - Closed: `token` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_cancel_bind(token: Handle<Token>) -> RtResult<()> {
    let a = token.arc();
    TLS.with(|t| {
        t.tokens.borrow_mut().push(a);
        recount(t);
    });
    Ok(())
}

/// Unbinds the token bound last on the calling thread; false when none was bound.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_cancel_unbind() -> RtResult<bool> {
    let popped = TLS.with(|t| {
        let p = t.tokens.borrow_mut().pop();
        recount(t);
        p
    });
    Ok(popped.is_some())
}

