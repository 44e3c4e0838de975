//! Handles: native resources behind values (SPEC §2, §4). Close is
//! idempotent; use after close is Error Closed; the collector closes
//! unreachable handles on the finalizer thread.
//!
//! # The per-call path: borrows announced in per-thread hazard slots
//!
//! A handle owns one owner of its resource (`data`, an `Arc` made by
//! ffi_sdk). A call that gets a handle argument does not take a second owner
//! (an atomic increment and decrement on a line every thread using the handle
//! writes): it *borrows* the handle's owner for the call and announces the
//! borrow in a hazard slot of its own thread ([`Rec`]: a few slots on a cache
//! line only that thread writes). Close defers dropping the owner while any
//! slot names the handle; the last borrower to leave drops it. A call thus
//! costs two plain stores to a thread-private line and two loads of the
//! handle's (read-mostly, shared) state: no read-modify-write on a shared
//! line, so two threads hammering one channel no longer bounce its lines.
//!
//! State of a handle (`HandleObj.closed`, used atomically): `OPEN` (0),
//! `CLOSING` (1: closed for new calls; the closer's barrier is not done yet),
//! `CLOSED` (2: barrier done; a scan of the slots now sees every borrow that
//! saw the handle open). `data` is non-null until the owner is dropped; it is
//! only nulled under the header lock, in state `CLOSED`, by a scan that found
//! no slot naming the handle ([`finalize_if_free`]).
//!
//! Borrow (user thread U): `slot := h`; fence F_U; read state; if `OPEN`,
//! read `data` and use it; else clear the slot, run [`finalize_if_free`],
//! return Closed.
//! Unborrow: `slot := null`; fence F_U; read state; if not `OPEN`, run
//! [`finalize_if_free`] (ffi_sdk inlines this, `rt__handle_unborrow_slow`).
//! Close (thread C): `OPEN -> CLOSING` (a compare-exchange; else: already
//! closed, return 3); if the handle was never lent, drop the owner now (next
//! section); else heavy fence F_C; under the lock `-> CLOSED` and
//! [`finalize_if_free`].
//!
//! The fences are a Dekker pair: F_U is `fence(SeqCst)` and F_C another one
//! ("fence" mode), or F_U is a compiler fence and F_C is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which runs a full barrier
//! on every thread of the process that is running ("membarrier" mode, chosen
//! at first use when the kernel supports it; the asymmetric fence of folly's
//! hazard pointers and liburcu). Either way, for a user's store to its slot
//! followed by its read of the state, and the closer's store of `CLOSING`
//! followed (after F_C) by a scan: the user reads `CLOSING`/`CLOSED`, or the
//! scan sees the user's store. Hence:
//!
//! 1. **No use after free.** A borrower that read `OPEN` stored its slot
//!    before; every scan runs after F_C (in state `CLOSED`, reached only
//!    after F_C, read under the lock), so it sees that slot until the
//!    borrower clears it, and leaves `data` alone. Scans by a third thread
//!    (an unborrower, under the lock, seeing `CLOSED`) are ordered after F_C
//!    through the lock, so they see the slot as well.
//! 2. **No leak.** Say a scan saw slot S of user U naming h (so it kept the
//!    owner). U's later clear of S is followed by F_U and a read of the
//!    state; by the Dekker pair (the scan follows F_C), U reads
//!    `CLOSING`/`CLOSED` and runs [`finalize_if_free`] itself: under the
//!    lock, if the state is `CLOSED` it scans again (and drops the owner when
//!    no slot names h); if it is still `CLOSING`, the closer's own
//!    `-> CLOSED` + scan comes later under the same lock and sees U's clear.
//!    So the last borrower out (or the closer) always drops the owner. A
//!    borrow that read a closed state clears its slot and runs the same
//!    step (its transient slot may have made a scan keep the owner).
//! 3. **Close's effects do not wait on idle threads.** Only borrows in
//!    flight (calls that have not returned) keep the owner, as before;
//!    nothing caches an owner past a call.
//! 4. Use after close is Error Closed (the state is read on every borrow);
//!    close is idempotent (`OPEN -> CLOSING` once, a compare-exchange); the
//!    collector's finalizer is a close without the heavy fence (below); the
//!    type is checked from the vtable's name before any of this (Error
//!    TypeMismatch).
//!
//! # Close without a barrier: handles never lent, or lent by the closer only
//!
//! The barrier (a membarrier syscall, ~0.5 us) is only needed when a borrow
//! by *another* thread may be in flight. Most handles are made, passed to
//! calls on the thread that made them, and closed there or dropped; many are
//! never an argument at all. So each handle has a lender word `lent`
//! (`HandleObj._pad`, used atomically, 0 at creation) that only moves
//! `0 -> id -> MANY`: the first borrow or owner (`rt__handle_borrow`,
//! `rt__handle_acquire`) of a thread records it before reading the state
//! ([`lend`]: load `lent`; if it is neither the thread's record id nor
//! `MANY`, compare-exchange `0 -> id` or else store `MANY`; then load the
//! state; all SeqCst). Close does `OPEN -> CLOSING` (a SeqCst exchange; the
//! loser of two closes gets 3), then loads `lent` (SeqCst). In the single
//! total order S of SeqCst operations:
//!
//! - close read 0: every write to `lent` comes after that load in S, so
//!   after `CLOSING`; a borrower's state load follows its write, or its load
//!   of a value some write put there, so it sees the handle closed and
//!   touches nothing. Close drops the owner at once ([`release_unlent`]): no
//!   lock, no fence, no scan.
//! - close read its own thread's id: any other thread's write (`MANY`; its
//!   own id cannot replace a non-zero value) comes after that load, so that
//!   thread returns Closed as above; this thread's own borrows are ordered
//!   with the close by program order, and a previous holder of the same
//!   record ended all of its borrows (records are handed over only with
//!   every slot clear, Release/Acquire on `taken`). Close skips the barrier
//!   and runs the scan (which sees this thread's own borrows in flight).
//! - otherwise, the protocol above in full. A borrow that saw `OPEN` wrote
//!   `lent` or read a value written before, so close cannot have read 0 or
//!   its own id while another thread's borrow was possible.
//!
//! An explicit close also drops the handle's finalizer
//! (`gc::unregister_finalizer`): a registered finalizer costs the collector
//! ~300 ns per object later, removing it ~10 ns now.
//!
//! # Closing an unreachable handle
//!
//! The collector's finalizer ([`close_collected`]) skips the heavy fence: a
//! call in flight keeps its handle argument on the stack of its (registered)
//! thread or pinned (SPEC §4), so the handle is reachable and not finalized;
//! no new borrow can start on an unreachable handle (nothing holds its
//! word); and the collection that found it unreachable stopped every
//! registered thread (a signal handshake, a full barrier on each), so every
//! slot store and clear made before is visible to the finalizer's scan,
//! which still runs (a slot naming the handle keeps the owner for the last
//! borrower out, as above).
//!
//! If membarrier fails at close time (it should not once registered), it is
//! registered again and retried, then `MEMBARRIER_CMD_GLOBAL` is tried; if
//! no barrier can be had, the owner is leaked rather than dropped (never a
//! use after free). `SIMPLE_RT_HANDLE_FENCE=1` (read once) forces fence mode
//! (the tests run both).
//!
//! Slots are per thread ([`Rec`], `SLOTS` of them for nested borrows and
//! calls with several handle arguments). When a thread has no free slot (or
//! is exiting), the call takes an owner instead (`rt__handle_acquire`: an
//! `Arc` increment under the lock, after marking the handle lent; close takes
//! the lock too before dropping the owner). Records live in
//! one global list, are never freed, and are reused by later threads (a
//! thread releases its record at exit, when no borrow of it is in flight).

use crate::gc;
use crate::value::{new_obj, oom, word};
use ffi_sdk::abi::{self, HandleObj, HandleVTable, Header, RtValue};
use ffi_sdk::lock::lock;
use ffi_sdk::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU8, Ordering};

const OPEN: u32 = 0;
const CLOSING: u32 = 1;
const CLOSED: u32 = 2;

/// Hazard slots per thread.
const SLOTS: usize = 6;

/// One thread's hazard slots: written (non-null) only by that thread, read by
/// scans. 128-byte aligned: adjacent-line prefetch pairs 64-byte lines.
#[repr(C, align(128))]
struct Rec {
    slots: [AtomicPtr<HandleObj>; SLOTS],
    taken: AtomicBool,
    /// This record's lender token (1.., below `MANY`), for `HandleObj._pad`.
    id: u32,
    next: *const Rec,
}

static RECS: AtomicPtr<Rec> = AtomicPtr::new(std::ptr::null_mut());
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The thread's record: null before first use, `DEAD` once released at exit.
const DEAD: *const Rec = std::ptr::dangling();

thread_local! {
    static MY_REC: Cell<*const Rec> = const { Cell::new(std::ptr::null()) };
    static REC_GUARD: RecGuard = const { RecGuard };
}

struct RecGuard;
impl Drop for RecGuard {
    fn drop(&mut self) {
        let _ = MY_REC.try_with(|c| {
            let r = c.replace(DEAD);
            if !r.is_null() && r != DEAD {
                // SAFETY: neither null nor DEAD, so `r` was set by `claim_rec` to a record of the
                // global list: a leaked `Box<Rec>`, never freed, so a `'static` shared borrow is valid.
                let r = unsafe { &*r };
                // A slot still set (cannot happen: borrows end with their call)
                // keeps the record out of reuse.
                if r.slots.iter().all(|s| s.load(Ordering::Relaxed).is_null()) {
                    r.taken.store(false, Ordering::Release);
                }
            }
        });
    }
}

/// The calling thread's record, or None when it is exiting (its record released).
#[inline]
fn my_rec() -> Option<&'static Rec> {
    let r = MY_REC.try_with(|c| c.get()).unwrap_or(DEAD);
    if r.is_null() {
        return claim_rec();
    }
    if r == DEAD {
        return None;
    }
    // SAFETY: neither null nor DEAD: a record `claim_rec` took from the global list, a leaked
    // `Box<Rec>` that is never freed (records are only reused), so `'static` is right.
    Some(unsafe { &*r })
}

#[cold]
fn claim_rec() -> Option<&'static Rec> {
    // Register the release at exit first; a thread already tearing down gets none.
    REC_GUARD.try_with(|_| ()).ok()?;
    let mut p = RECS.load(Ordering::Acquire) as *const Rec;
    let rec: &'static Rec = loop {
        if p.is_null() {
            let r: &'static mut Rec = Box::leak(Box::new(Rec {
                slots: Default::default(),
                taken: AtomicBool::new(true),
                // Unique, never 0; past 2^32-2 records (never: records are reused) MANY, no token.
                id: NEXT_ID
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(1)))
                    .unwrap_or(MANY),
                next: std::ptr::null(),
            }));
            let mut head = RECS.load(Ordering::Acquire);
            loop {
                r.next = head;
                match RECS.compare_exchange_weak(head, r, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(h) => head = h,
                }
            }
            break r;
        }
        // SAFETY: `p` is non-null and came from `RECS` or a `next` link: every record in the list
        // is a leaked `Box<Rec>`, never freed, whose `next` was written before the AcqRel CAS
        // that published it (and is never written again); we read it after an Acquire load.
        let r = unsafe { &*p };
        if !r.taken.load(Ordering::Relaxed)
            && r.taken.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            break r;
        }
        p = r.next;
    };
    MY_REC.try_with(|c| c.set(rec)).ok()?;
    Some(rec)
}

// ---------------- fences ----------------

const MODE_UNSET: u8 = 0;
const MODE_MEMBARRIER: u8 = 1;
const MODE_FENCE: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);

const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 16;

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier(2) takes integer arguments only (command, flags 0, cpu 0) and touches no
    // memory of ours; an unsupported command just fails with an error code.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

#[inline]
fn mode() -> u8 {
    let m = MODE.load(Ordering::Acquire);
    if m != MODE_UNSET {
        return m;
    }
    init_mode()
}

#[cold]
fn init_mode() -> u8 {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let forced = std::env::var_os("SIMPLE_RT_HANDLE_FENCE").is_some_and(|v| v == "1");
        let m = if !forced && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
            MODE_MEMBARRIER
        } else {
            MODE_FENCE
        };
        MODE.store(m, Ordering::Release);
    });
    MODE.load(Ordering::Acquire)
}

/// F_U: the user side of the Dekker pair.
#[inline]
fn light_fence(m: u8) {
    if m == MODE_MEMBARRIER {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// F_C: the closer's side. False when no barrier could be had.
fn heavy_fence() -> bool {
    fence(Ordering::SeqCst);
    if mode() != MODE_MEMBARRIER {
        return true;
    }
    // After a fork the child may need to register again.
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        || (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        || membarrier(MEMBARRIER_CMD_GLOBAL)
}

// ---------------- the handle object ----------------

#[inline]
unsafe fn state<'a>(h: *const HandleObj) -> &'a AtomicU32 {
    &*(std::ptr::addr_of!((*h).closed) as *const AtomicU32)
}

/// `lent` value: lent by two or more threads (or by a thread without a record).
const MANY: u32 = u32::MAX;

/// The handle's lender word (`HandleObj._pad`, used atomically): 0 while no
/// borrow or owner was ever taken, the [`Rec`] id of the one thread that
/// took them, or `MANY` (see "Close without a barrier"). It only moves
/// `0 -> id -> MANY`.
#[inline]
unsafe fn lent<'a>(h: *const HandleObj) -> &'a AtomicU32 {
    &*(std::ptr::addr_of!((*h)._pad) as *const AtomicU32)
}

/// The calling thread's lender token: its record's id, or `MANY` without one.
#[inline]
fn my_token(rec: Option<&'static Rec>) -> u32 {
    rec.map_or(MANY, |r| r.id)
}

/// Records `tok` as a lender of `h` (first borrow or owner of this thread),
/// then reads its state: true when still `OPEN`. All SeqCst: the borrower's
/// half of the pair with [`close`]'s `OPEN -> CLOSING` then `lent` load.
#[inline]
unsafe fn lend(h: *const HandleObj, tok: u32) -> bool {
    let l = lent(h);
    let cur = l.load(Ordering::SeqCst);
    if cur != tok && cur != MANY {
        let now = if cur == 0 && tok != MANY {
            match l.compare_exchange(0, tok, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => tok,
                Err(v) => v,
            }
        } else {
            cur
        };
        if now != tok && now != MANY {
            l.store(MANY, Ordering::SeqCst);
        }
    }
    state(h).load(Ordering::SeqCst) == OPEN
}

#[inline]
unsafe fn data<'a>(h: *const HandleObj) -> &'a AtomicPtr<()> {
    &*(std::ptr::addr_of!((*h).data) as *const AtomicPtr<()>)
}

/// Internal: a handle owning one reference to `data`.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_new(vt: *const HandleVTable, data: *const ()) -> RtValue {
    let o = new_obj(abi::HK_HANDLE, std::mem::size_of::<HandleObj>(), false);
    if o.is_null() {
        ((*vt).release)(data);
        return oom("rt_handle_new", 56);
    }
    let h = o as *mut HandleObj;
    (*h).vt = vt;
    (*h).data = data;
    (*h).closed = OPEN;
    (*h)._pad = 0; // not lent
    // SAFETY: `o` is the start of the object `new_obj` just made (live: `o` is on this stack);
    // `finalize` takes any handle object and the library is never unloaded.
    unsafe { gc::register_finalizer(o as *mut u8, finalize) };
    word(o)
}

unsafe extern "C" fn finalize(obj: *mut libc::c_void, _cd: *mut libc::c_void) {
    let _ = std::panic::catch_unwind(|| close_collected(obj as *mut HandleObj));
}

/// Whether some thread's slot names `h` (a scan: run after F_C, under the lock).
fn borrowed(h: *const HandleObj) -> bool {
    let mut p = RECS.load(Ordering::Acquire) as *const Rec;
    while !p.is_null() {
        // SAFETY: as in `claim_rec`: a non-null list pointer (Acquire head, links written before
        // publication) names a leaked `Box<Rec>` that is never freed.
        let r = unsafe { &*p };
        if r.slots.iter().any(|s| std::ptr::eq(s.load(Ordering::SeqCst), h)) {
            return true;
        }
        p = r.next;
    }
    false
}

/// In state `CLOSED`, drops the handle's owner when no borrow of it is in flight.
unsafe fn finalize_if_free(h: *mut HandleObj) {
    let (vt, d) = {
        let _g = lock(h as *mut Header);
        if state(h).load(Ordering::SeqCst) != CLOSED {
            return; // CLOSING: the closer scans after its barrier
        }
        if data(h).load(Ordering::Relaxed).is_null() || borrowed(h) {
            return;
        }
        // A swap: the owner is taken out exactly once, whoever takes it.
        let d = data(h).swap(std::ptr::null_mut(), Ordering::AcqRel);
        if d.is_null() {
            return;
        }
        ((*h).vt, d)
    };
    ((*vt).release)(d);
}

/// Drops the owner of a handle that was never lent (no slot can name it):
/// the caller made it leave `OPEN` and saw `lent == 0` after (see [`close`]).
unsafe fn release_unlent(h: *mut HandleObj) {
    state(h).store(CLOSED, Ordering::Release);
    let d = data(h).swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !d.is_null() {
        ((*(*h).vt).release)(d);
    }
}

/// 0 closed now, 3 already closed. The owner is dropped now, or by the last borrower out.
unsafe fn close(h: *mut HandleObj) -> u32 {
    // OPEN -> CLOSING once (idempotent: a second close fails the exchange).
    if state(h).compare_exchange(OPEN, CLOSING, Ordering::SeqCst, Ordering::Relaxed).is_err() {
        return 3;
    }
    // Closed once, here: the collector need not finalize it (an explicit close is only made on a
    // reachable handle, so its finalizer is not queued or running).
    // SAFETY: `h` is a live handle object, the start of a collector object, kept reachable by
    // the caller (`close`'s contract).
    unsafe { gc::unregister_finalizer(h as *mut u8) };
    let l = lent(h).load(Ordering::SeqCst);
    if l == 0 {
        // Never lent: no borrow can be in flight or start (module docs), no barrier.
        release_unlent(h);
        return 0;
    }
    // Lent by this thread only: its borrows are ordered before this by program order, and no
    // other thread's can be in flight (module docs), so the scan needs no barrier either.
    let mine = l != MANY && l == my_token(my_rec());
    if !mine && !heavy_fence() {
        // No barrier: a borrow may be in flight unseen. Leak the owner (never a use after free).
        let _g = lock(h as *mut Header);
        state(h).store(CLOSED, Ordering::SeqCst);
        data(h).store(std::ptr::null_mut(), Ordering::Relaxed);
        return 0;
    }
    {
        let _g = lock(h as *mut Header);
        state(h).store(CLOSED, Ordering::SeqCst);
    }
    finalize_if_free(h);
    0
}

/// The collector's close of an unreachable handle: as [`close`] without the
/// heavy fence (module docs, "Closing an unreachable handle").
unsafe fn close_collected(h: *mut HandleObj) {
    if state(h).compare_exchange(OPEN, CLOSING, Ordering::SeqCst, Ordering::Relaxed).is_err() {
        return; // closed explicitly before
    }
    if lent(h).load(Ordering::SeqCst) == 0 {
        release_unlent(h);
        return;
    }
    fence(Ordering::SeqCst);
    {
        let _g = lock(h as *mut Header);
        state(h).store(CLOSED, Ordering::SeqCst);
    }
    finalize_if_free(h);
}

unsafe fn handle_obj(v: RtValue) -> Option<*mut HandleObj> {
    if abi::heap_kind(v) == abi::HK_HANDLE {
        Some(abi::heap_ptr(v) as *mut HandleObj)
    } else {
        None
    }
}

#[inline]
unsafe fn type_is(h: *const HandleObj, name: *const u8, n: usize) -> bool {
    let t = (*(*h).vt).type_name;
    if t.len() != n {
        return false;
    }
    // Names are short: compare in place rather than through memcmp.
    std::ptr::eq(t.as_ptr(), name) || t.as_bytes().iter().zip(std::slice::from_raw_parts(name, n)).all(|(a, b)| a == b)
}

/// Internal: a new owner of a handle's data: 0 ok, 1 not a handle, 2 other type, 3 closed.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_acquire(v: RtValue, name: *const u8, n: usize, out: *mut *const ()) -> u32 {
    let Some(h) = handle_obj(v) else { return 1 };
    if !type_is(h, name, n) {
        return 2;
    }
    if !lend(h, my_token(my_rec())) {
        return 3;
    }
    let _g = lock(h as *mut Header);
    // Lent and open: `data` is dropped only in state CLOSED, under this lock.
    if state(h).load(Ordering::Relaxed) != OPEN {
        return 3;
    }
    let d = data(h).load(Ordering::Relaxed);
    ((*(*h).vt).acquire)(d);
    *out = d;
    0
}

/// Internal: borrows a handle's data for the duration of a call (see the
/// module docs). Returns 0 borrowed (`*slot` set: clear it with a plain store
/// and a compiler fence, then read the state), 4 borrowed (clear `*slot`
/// with a SeqCst swap, then read the state with SeqCst), 5 an owner was
/// taken instead (`*slot` null: drop the owner), 1 not a handle, 2 other
/// type, 3 closed. After clearing, a state other than 0 means: call
/// `rt__handle_unborrow_slow`.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_borrow(
    v: RtValue,
    name: *const u8,
    n: usize,
    out: *mut *const (),
    slot: *mut *const AtomicPtr<HandleObj>,
) -> u32 {
    let Some(h) = handle_obj(v) else { return 1 };
    if !type_is(h, name, n) {
        return 2;
    }
    let st = state(h);
    let rec = my_rec();
    if !lend(h, my_token(rec)) {
        return 3;
    }
    let m = mode();
    let free = rec.and_then(|r| r.slots.iter().find(|s| s.load(Ordering::Relaxed).is_null()));
    let Some(s) = free else {
        *slot = std::ptr::null();
        return match rt__handle_acquire(v, name, n, out) {
            0 => 5,
            e => e,
        };
    };
    let open = if m == MODE_MEMBARRIER {
        s.store(h, Ordering::Relaxed);
        light_fence(m);
        st.load(Ordering::Acquire) == OPEN
    } else {
        s.swap(h, Ordering::SeqCst);
        st.load(Ordering::SeqCst) == OPEN
    };
    if !open {
        s.store(std::ptr::null_mut(), Ordering::Release);
        light_fence(m);
        finalize_if_free(h);
        return 3;
    }
    // Not null: it is nulled only in state CLOSED after a scan, which sees `s`.
    *out = data(h).load(Ordering::Relaxed);
    *slot = s;
    if m == MODE_MEMBARRIER {
        0
    } else {
        4
    }
}

/// Internal: the slow end of a borrow, after its slot was cleared and the
/// handle read as closed: drops the owner when no other borrow is in flight.
///
/// # Safety
/// Internal surface for ffi_sdk: `v` is a handle the caller keeps reachable.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_unborrow_slow(v: RtValue) {
    if let Some(h) = handle_obj(v) {
        finalize_if_free(h);
    }
}

/// Internal: closes a handle: 0 closed now, 1 not a handle, 3 already closed.
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__handle_close(v: RtValue) -> u32 {
    match handle_obj(v) {
        Some(h) => close(h),
        None => 1,
    }
}

/// Closes any handle now (releases its resource once calls in flight return); true if it was open, false if
/// already closed.
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_handle_close(rt_regex_new("[0-9]+")) -> true
#[rt_fn(tier = "verified")]
pub fn rt_handle_close(handle: Value) -> RtResult<bool> {
    // SAFETY: `handle` is this call's argument, a live runtime word (`Value` contract), the one
    // precondition of `rt__handle_close`; a non-handle gives 1.
    match unsafe { rt__handle_close(handle.raw()) } {
        0 => Ok(true),
        3 => Ok(false),
        _ => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}

/// The type name of a handle (`Regex`, `FileLock`, `Child`, ...).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_handle_type(handle: Value) -> RtResult<String> {
    // SAFETY: `handle` is this call's argument, a live runtime word (`Value` contract), so
    // `handle_obj` reads a live header.
    match unsafe { handle_obj(handle.raw()) } {
        // SAFETY: `h` is a live handle object (kept by the caller); `vt` was set before the handle
        // was published and never changes, and points to a `'static` vtable of the library that
        // made the handle, whose `type_name` is `&'static str`.
        Some(h) => Ok(unsafe { (*(*h).vt).type_name.to_string() }),
        None => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}

/// Whether a handle is still open.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_handle_is_open(handle: Value) -> RtResult<bool> {
    // SAFETY: `handle` is this call's argument, a live runtime word (`Value` contract), so
    // `handle_obj` reads a live header.
    match unsafe { handle_obj(handle.raw()) } {
        // SAFETY: `h` is a live handle object (kept reachable by the caller); its `closed` field
        // is only accessed atomically once published, so `state` may view it as an `AtomicU32`.
        Some(h) => Ok(unsafe { state(h).load(Ordering::Acquire) } == OPEN),
        None => Err(ffi_sdk::args::kind_error(FN, 0, "handle", "handle", handle)),
    }
}
