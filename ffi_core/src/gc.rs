//! The system Boehm collector (`libgc.so.1`), bound directly (SPEC §4).
//!
//! Signals: the collector stops threads with SIGPWR and restarts them with
//! SIGRTMIN+6 (moved off its default SIGXCPU so RLIMIT_CPU keeps its meaning).
//!
//! Threads: a thread that allocates through us is registered on the spot and
//! stays registered until it exits (a thread-local check per allocation).
//! Hosts whose threads must not stay registered (CPython) bracket calls with
//! `rt_thread_attach` / `rt_thread_detach` instead.
//!
//! Finalizers run on one dedicated thread, never inside an allocation, so a
//! handle's close can take locks safely.

use ffi_sdk::prelude::*;
use ffi_sdk::rt_host;
use libc::{c_int, c_void, size_t};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, Once};

#[repr(C)]
struct GcStackBase {
    mem_base: *mut c_void,
}

type FinalizerProc = unsafe extern "C" fn(obj: *mut c_void, cd: *mut c_void);

extern "C" {
    fn GC_init();
    fn GC_malloc(n: size_t) -> *mut c_void;
    fn GC_malloc_atomic(n: size_t) -> *mut c_void;
    fn GC_malloc_uncollectable(n: size_t) -> *mut c_void;
    fn GC_free(p: *mut c_void);
    fn GC_gcollect();
    fn GC_disable();
    fn GC_enable();
    fn GC_get_heap_size() -> size_t;
    fn GC_get_free_bytes() -> size_t;
    fn GC_get_gc_no() -> usize;
    fn GC_get_total_bytes() -> size_t;
    fn GC_get_unmapped_bytes() -> size_t;
    fn GC_get_bytes_since_gc() -> size_t;
    fn GC_expand_hp(n: size_t) -> c_int;
    fn GC_allow_register_threads();
    fn GC_register_my_thread(sb: *const GcStackBase) -> c_int;
    fn GC_unregister_my_thread() -> c_int;
    fn GC_thread_is_registered() -> c_int;
    fn GC_get_stack_base(sb: *mut GcStackBase) -> c_int;
    fn GC_set_thr_restart_signal(sig: c_int);
    fn GC_register_finalizer_no_order(
        obj: *mut c_void,
        f: Option<FinalizerProc>,
        cd: *mut c_void,
        ofn: *mut Option<FinalizerProc>,
        ocd: *mut *mut c_void,
    );
    fn GC_set_finalize_on_demand(v: c_int);
    fn GC_set_finalizer_notifier(f: Option<unsafe extern "C" fn()>);
    fn GC_invoke_finalizers() -> c_int;
    fn GC_base(p: *mut c_void) -> *mut c_void;
    fn GC_set_warn_proc(f: Option<unsafe extern "C" fn(*mut libc::c_char, usize)>);
}

/// Largest single object we ask the collector for (1 TiB): larger requests
/// are refused before they reach it.
pub const MAX_ALLOC: usize = 1 << 40;

static INIT: Once = Once::new();
static DISABLED: AtomicUsize = AtomicUsize::new(0);
static FINALIZED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn quiet_warn(_msg: *mut libc::c_char, _arg: usize) {}

/// Starts the collector (idempotent). Runs from the library constructor.
pub fn init() {
    // SAFETY: runs once per process (`Once`), first from the library constructor on the loading
    // thread, before any other collector call. The setters that must precede GC_init
    // (restart signal, finalize-on-demand) come first; the notifier and warn proc are
    // `extern "C"` functions of the right signature that live as long as the library
    // (linked `-z nodelete`). Unregistering the thread GC_init registered is the once-allowed
    // exception gc.h grants for the main (initialising) thread.
    INIT.call_once(|| unsafe {
        GC_set_thr_restart_signal(libc::SIGRTMIN() + 6);
        GC_set_finalize_on_demand(1);
        GC_init();
        GC_allow_register_threads();
        GC_set_finalizer_notifier(Some(finalizer_notify));
        if std::env::var_os("RT_GC_WARN").is_none() {
            GC_set_warn_proc(Some(quiet_warn));
        }
        // A larger initial heap avoids thousands of tiny collections at start.
        GC_expand_hp(16 << 20);
        // GC_init registered the loading thread. Unregister it: it registers
        // again on its first allocation like any other thread, so a host whose
        // loading thread never calls in (CPython's main thread spawning
        // processes) is not stopped by collections.
        GC_unregister_my_thread();
    });
}

const NONE: u32 = 0;
const AUTO: u32 = 1;
const ATTACHED: u32 = 2;

struct ThreadReg {
    state: Cell<u32>,
    depth: Cell<u32>,
    /// Cached stack base: GC_get_stack_base reads /proc/self/maps on the main thread (~250 us).
    stack_base: Cell<*mut c_void>,
}

impl Drop for ThreadReg {
    fn drop(&mut self) {
        if self.state.get() != NONE {
            // SAFETY: the state is AUTO or ATTACHED only after `register_current` registered
            // this thread (the thread-local is per thread), and it has not been unregistered
            // since (detach resets the state to NONE), so this is the one matching unregister.
            unsafe { GC_unregister_my_thread() };
        }
    }
}

thread_local! {
    static THREAD: ThreadReg = const {
        ThreadReg { state: Cell::new(NONE), depth: Cell::new(0), stack_base: Cell::new(std::ptr::null_mut()) }
    };
}

/// Registers the calling thread with the collector unless it already is.
///
/// # Safety
/// `t` is the calling thread's own `THREAD` entry (its cached stack base is this
/// thread's), and `init` has run (GC_allow_register_threads).
unsafe fn register_current(t: &ThreadReg) -> bool {
    if GC_thread_is_registered() != 0 {
        return false;
    }
    let mut sb = GcStackBase { mem_base: t.stack_base.get() };
    if sb.mem_base.is_null() {
        GC_get_stack_base(&mut sb);
        t.stack_base.set(sb.mem_base);
    }
    GC_register_my_thread(&sb);
    true
}

/// Registers the calling thread permanently if it is not registered yet.
#[inline]
pub fn thread_enter() {
    let _ = THREAD.try_with(|t| {
        if t.state.get() == NONE {
            init();
            // SAFETY: `t` is this thread's own THREAD entry (from `try_with`), and `init`
            // just ran, so threads may register.
            if unsafe { register_current(t) } {
                t.state.set(AUTO);
            }
        }
    });
}

/// Registers the calling thread with the collector (internal surface for domain libraries).
#[no_mangle]
pub extern "C" fn rt__thread_enter() {
    thread_enter();
}

/// Registers the calling thread until the matching `rt_thread_detach` (nests). Returns the depth.
#[rt_host]
pub fn rt_thread_attach() -> u32 {
    THREAD
        .try_with(|t| {
            if t.state.get() == NONE {
                init();
                // SAFETY: `t` is this thread's own THREAD entry (from `try_with`), and `init`
                // just ran, so threads may register.
                if unsafe { register_current(t) } {
                    t.state.set(ATTACHED);
                }
            }
            t.depth.set(t.depth.get() + 1);
            t.depth.get()
        })
        .unwrap_or(0)
}

/// Ends one `rt_thread_attach`; the outermost unregisters the thread, also one
/// registered on its own earlier (the loading thread included), so a host in
/// attach mode never keeps threads registered between calls. Values the
/// thread still holds must be pinned. Returns the remaining depth.
#[rt_host]
pub fn rt_thread_detach() -> u32 {
    THREAD
        .try_with(|t| {
            let d = t.depth.get().saturating_sub(1);
            t.depth.set(d);
            if d == 0 && t.state.get() != NONE {
                // SAFETY: a state other than NONE means `register_current` registered this
                // thread and nothing unregistered it since; the state is reset right after,
                // so the unregister is not repeated (here or in ThreadReg's drop). Values
                // still held by the thread must be pinned (documented above).
                unsafe { GC_unregister_my_thread() };
                t.state.set(NONE);
            }
            d
        })
        .unwrap_or(0)
}

/// Allocates `n` zeroed bytes that the collector scans for pointers. Null on failure.
#[inline]
pub fn alloc(n: usize) -> *mut u8 {
    if n > MAX_ALLOC {
        return std::ptr::null_mut();
    }
    thread_enter();
    // SAFETY: GC_malloc takes any size (`n` is capped at MAX_ALLOC above) and returns a zeroed
    // block or NULL; the collector is initialised and the calling thread registered by
    // `thread_enter`, as allocation from a thread requires.
    unsafe { GC_malloc(n) as *mut u8 }
}

/// Allocates `n` bytes holding no pointers (not zeroed). Null on failure.
#[inline]
pub fn alloc_atomic(n: usize) -> *mut u8 {
    if n > MAX_ALLOC {
        return std::ptr::null_mut();
    }
    thread_enter();
    // SAFETY: as in `alloc`: any size (capped above), collector initialised, thread registered
    // by `thread_enter`; NULL on failure.
    unsafe { GC_malloc_atomic(n) as *mut u8 }
}

/// Internal: `n` bytes on the collector heap (zeroed and scanned, or with `atomic` neither); null on failure.
#[no_mangle]
pub extern "C" fn rt__alloc(n: usize, atomic: bool) -> *mut u8 {
    if atomic {
        alloc_atomic(n)
    } else {
        alloc(n)
    }
}

/// A cell the collector scans but never frees (pins).
pub fn alloc_root_cell() -> *mut u64 {
    thread_enter();
    // SAFETY: a fixed 8-byte request from a thread `thread_enter` registered; the block is
    // 8-aligned (the collector's granule is at least 8 bytes) or NULL.
    unsafe { GC_malloc_uncollectable(8) as *mut u64 }
}

/// Frees a collector block at once.
///
/// # Safety
/// `p` is NULL or the start of a block from this collector that is not freed yet and
/// that nothing will use again (no live value or pointer still refers to it).
pub unsafe fn free(p: *mut u8) {
    // SAFETY: the caller's contract above is exactly GC_free's precondition (NULL is a no-op).
    unsafe { GC_free(p as *mut c_void) }
}

/// Whether `p` is the start of a collector object (used to validate words).
pub fn is_object_start(p: *const u8) -> bool {
    // SAFETY: GC_base accepts any address: it only looks it up in the collector's own block
    // tables and returns NULL for one outside the heap, so no memory at `p` is read.
    unsafe { GC_base(p as *mut c_void) == p as *mut c_void }
}

/// Runs `f(obj)` when `obj` becomes unreachable (on the finalizer thread).
///
/// # Safety
/// `obj` is the start of a live object of this collector (e.g. just made by
/// `new_obj`), and `f` may be called with it on the finalizer thread at any
/// later time (it stays valid: the library is never unloaded).
pub unsafe fn register_finalizer(obj: *mut u8, f: FinalizerProc) {
    start_finalizer_thread();
    // SAFETY: the caller's contract above is GC_register_finalizer_no_order's precondition on
    // `obj`; `f` is an `extern "C"` function of the finalizer signature; client data is NULL
    // and the old finalizer/data out-pointers are NULL, which the collector accepts as "not wanted".
    unsafe {
        GC_register_finalizer_no_order(
            obj as *mut c_void,
            Some(f),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

/// Drops `obj`'s finalizer (an explicit close made it moot). Cheap (~10 ns:
/// the collector's lock and a hash-table removal) next to what a registered
/// finalizer costs later (~300 ns per object: queued at a collection, kept
/// one more cycle, invoked on the finalizer thread). Only on a thread that
/// is registered (else the finalizer stays and finds the object closed):
/// the removal may grow the collector's table, an allocation that can start
/// a collection, and an unregistered thread's stack is not scanned.
///
/// # Safety
/// `obj` is the start of a live object of this collector that the caller keeps reachable.
pub unsafe fn unregister_finalizer(obj: *mut u8) {
    if !THREAD.try_with(|t| t.state.get() != NONE).unwrap_or(false) {
        return;
    }
    // SAFETY: `obj` is the start of a live collector object the caller keeps (its contract); a
    // null finalizer removes its registration, if any; null out-pointers are allowed by gc.h.
    unsafe {
        GC_register_finalizer_no_order(
            obj as *mut c_void,
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

static FIN_PENDING: Mutex<bool> = Mutex::new(false);
/// Held while finalizers run and are counted, so `rt_gc_collect` returns after every finalizer it made ready has run.
static FIN_RUN: Mutex<()> = Mutex::new(());
static FIN_CV: Condvar = Condvar::new();
static FIN_STARTED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn finalizer_notify() {
    if let Ok(mut p) = FIN_PENDING.lock() {
        *p = true;
        FIN_CV.notify_one();
    }
}

fn start_finalizer_thread() {
    // A load first: this runs on every handle's creation, and a swap would
    // write the shared line each time.
    if FIN_STARTED.load(Ordering::Acquire) || FIN_STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    let _ = std::thread::Builder::new().name("rt-finalizer".into()).spawn(|| {
        thread_enter();
        loop {
            {
                let mut p = match FIN_PENDING.lock() {
                    Ok(p) => p,
                    Err(e) => e.into_inner(),
                };
                while !*p {
                    p = match FIN_CV.wait(p) {
                        Ok(p) => p,
                        Err(e) => e.into_inner(),
                    };
                }
                *p = false;
            }
            run_finalizers();
        }
    });
}

/// Runs pending finalizers on the calling thread (after a forced collection).
pub fn run_finalizers() -> usize {
    thread_enter();
    let _g = FIN_RUN.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: no arguments; the calling thread is registered (`thread_enter`) and this is not
    // inside an allocation (finalize-on-demand mode), where GC_invoke_finalizers may run.
    let n = unsafe { GC_invoke_finalizers() }.max(0) as usize;
    FINALIZED.fetch_add(n, Ordering::Relaxed);
    n
}

/// Starts the collector; it also starts by itself when the library loads, so this only confirms it.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_gc_init() {
    init();
}

/// Allocates `size` zeroed bytes on the collector heap, scanned for pointers; NULL on failure.
#[rt_host]
pub fn rt_gc_malloc(size: usize) -> *mut c_void {
    alloc(size) as *mut c_void
}

/// Frees a block from `rt_gc_malloc` at once (optional: unreachable blocks are collected).
#[rt_host]
pub unsafe fn rt_gc_free(p: *mut c_void) {
    if !p.is_null() && is_object_start(p as *const u8) {
        free(p as *mut u8)
    }
}

/// Runs a full collection, then the finalizers it made ready.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(blocking, tier = "verified")]
pub fn rt_gc_collect() {
    thread_enter();
    // SAFETY: no arguments; a full collection from a registered thread (`thread_enter`),
    // holding no object lock, so stopping the other threads cannot deadlock on us.
    unsafe { GC_gcollect() };
    run_finalizers();
}

/// Stops automatic collections until `rt_gc_enable` (nests).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_gc_disable() {
    thread_enter();
    DISABLED.fetch_add(1, Ordering::AcqRel);
    // SAFETY: no arguments and no memory shared; GC_disable only increments the collector's
    // own disable counter, matched by GC_enable below.
    unsafe { GC_disable() };
}

/// Undoes one `rt_gc_disable`.
///
/// # Errors
/// - InvalidArgument: collections are not disabled
#[rt_fn(tier = "verified")]
pub fn rt_gc_enable() -> RtResult<()> {
    let prev = DISABLED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
    match prev {
        Ok(_) => {
            // SAFETY: no arguments; DISABLED was decremented from a non-zero count, so a
            // GC_disable from `rt_gc_disable` is outstanding and the collector's counter does
            // not go below zero.
            unsafe { GC_enable() };
            Ok(())
        }
        Err(_) => Err(Error::invalid(FN, "collections are not disabled", "disable count 0")),
    }
}

/// Collector statistics: heap_size, free_bytes, unmapped_bytes, total_allocated, bytes_since_gc, collections, finalized, disabled.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "dict", tier = "verified")]
pub fn rt_gc_stats() -> Value {
    let d = Value::dict();
    // SAFETY: argument-less getters that read the collector's counters (they take its
    // allocation lock themselves) and return plain integers; no memory is shared.
    unsafe {
        d.set("heap_size", Value::int(GC_get_heap_size() as i64));
        d.set("free_bytes", Value::int(GC_get_free_bytes() as i64));
        d.set("unmapped_bytes", Value::int(GC_get_unmapped_bytes() as i64));
        d.set("total_allocated", Value::int(GC_get_total_bytes() as i64));
        d.set("bytes_since_gc", Value::int(GC_get_bytes_since_gc() as i64));
        d.set("collections", Value::int(GC_get_gc_no() as i64));
    }
    d.set("finalized", Value::int(FINALIZED.load(Ordering::Relaxed) as i64));
    d.set("disabled", Value::int(DISABLED.load(Ordering::Relaxed) as i64));
    d
}
