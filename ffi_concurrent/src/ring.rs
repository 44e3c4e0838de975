//! The buffer of a bounded channel: a ring of value words shared by any
//! number of senders and receivers, and the parking of the threads that wait
//! on it (docs/CONCURRENCY.md, "Channels").
//!
//! # The ring
//!
//! `cap` word cells; a free cell holds [`EMPTY`] (a word with tag `0b111`,
//! which no value has: senders refuse such words). Senders take the
//! senders' lock, write the word into the cell at their index if that cell
//! is free (else the ring is full) and advance the index; receivers take the
//! receivers' lock, take the word from the cell at their index if it is not
//! free (else the ring is empty), free the cell and advance theirs. Each
//! side's lock and index sit on a cache line only that side writes, and a
//! side reads the other side's progress only through the cells, so a sender
//! and a receiver running at once exchange cache lines only for cells (eight
//! words per line) instead of for every message on shared head and tail
//! counters (crossbeam's array channel). The locks are held for a few
//! instructions; with one sender and one receiver they are never contended.
//!
//! Cell writes are Release and reads Acquire: a receiver that takes a word
//! sees the value it names (and its pin) as the sender made it; a sender
//! that finds a cell free writes after the receiver read it.
//!
//! # Parking
//!
//! A thread that must wait (full ring for a sender, empty ring for a
//! receiver) parks on a futex word, `room` (senders) or `data` (receivers):
//! bit 0 says "someone may sleep on this word", the bits above count wakes.
//! The sleeper sets bit 0 (`fetch_or`), runs the heavy barrier, tries once
//! more, and sleeps with `FUTEX_WAIT` on the value it saw (so a wake that
//! comes in between makes the wait return at once). A sender that wrote a
//! word (a receiver that freed a cell) runs the light barrier and reads the
//! other side's word; only if bit 0 is set does it bump the count (clearing
//! the bit) and `FUTEX_WAKE` every sleeper, who try again. The barriers are a
//! Dekker pair: either the sleeper's last try sees the new word (free cell),
//! or the other side's read sees bit 0. As in ffi_core's handle borrows, the
//! light barrier is a compiler fence and the heavy one `membarrier(2)`
//! (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`) where the kernel has it, else both
//! are `fence(SeqCst)`: the common path (no sleeper) costs one load of a
//! read-mostly word and no fence. If membarrier fails after all (it should
//! not once registered), the process switches to fences for good and the
//! sleeps of that moment are bounded (1 ms) so that no wake is lost.
//!
//! Close sets the channel's flag, then bumps both words and wakes every
//! sleeper (SeqCst throughout, so a sleeper that read the flag as open sleeps
//! on a word value that the close changes).

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// The word of a free cell: tag `0b111`, which no value word has.
pub const EMPTY: u64 = 0b111;

/// Whether `w` can be stored in a ring (every value word can; tags `0b1xx` are no values).
#[inline(always)]
pub fn storable(w: u64) -> bool {
    w & 0b100 == 0
}

#[repr(align(128))]
struct Side {
    lock: AtomicBool,
    /// Next cell (guarded by `lock`).
    idx: Cell<usize>,
    /// Set by [`Ring::release`] (guarded by `lock`): no cell is touched any more.
    dead: Cell<bool>,
    /// Words moved so far (written under `lock`, read by `len`).
    count: AtomicUsize,
}

#[repr(align(128))]
struct Park(AtomicU32);

/// A bounded MPMC ring of value words (see the module docs).
pub struct Ring {
    /// Replaced by an empty slice only by `release`, under both locks.
    cells: UnsafeCell<Box<[AtomicU64]>>,
    cap: usize,
    senders: Side,
    receivers: Side,
    /// Senders waiting for room sleep here.
    room: Park,
    /// Receivers waiting for a word sleep here.
    data: Park,
}

// SAFETY: the non-Sync parts are the `Cell`s of each side, read and written only while holding
// that side's spin lock (Acquire on taking, Release on leaving, so the holders are ordered), and
// the `UnsafeCell` of `cells`: shared access (`cell`) only under one side's lock with the side
// not dead, replacement (`release`) only under both locks, so no `&` outlives a `&mut`. The
// cells themselves are atomics.
unsafe impl Sync for Ring {}
// SAFETY: every field is owned data (a boxed slice of atomics, atomics, `Cell`s of plain
// values); nothing is tied to the creating thread.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring of `cap` cells (1 or more).
    pub fn new(cap: usize) -> Ring {
        init_mode();
        let side = || Side { lock: AtomicBool::new(false), idx: Cell::new(0), dead: Cell::new(false), count: AtomicUsize::new(0) };
        let cap = cap.max(1);
        Ring {
            cells: UnsafeCell::new((0..cap).map(|_| AtomicU64::new(EMPTY)).collect()),
            cap,
            senders: side(),
            receivers: side(),
            room: Park(AtomicU32::new(0)),
            data: Park(AtomicU32::new(0)),
        }
    }

    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.cap {
            0
        } else {
            i + 1
        }
    }

    /// Cell `i` (< cap); only while holding a side's lock and the side is not dead.
    #[inline(always)]
    unsafe fn cell(&self, i: usize) -> &AtomicU64 {
        // Sound under the contract above: `release` (which replaces `cells` under both locks) is
        // not running, so no `&mut` to it exists, and `cells` still has `cap` entries.
        (&*self.cells.get()).get_unchecked(i)
    }

    /// Stores `w` (a storable word) if there is room (and the ring was not
    /// released); wakes sleeping receivers.
    #[inline(always)]
    pub fn try_push(&self, w: u64) -> bool {
        debug_assert!(storable(w));
        let s = &self.senders;
        lock(&s.lock);
        if s.dead.get() {
            s.lock.store(false, Ordering::Release);
            return false;
        }
        let i = s.idx.get();
        // SAFETY: we hold the senders' lock and the side is not dead (checked above); `i` is its
        // `idx`, which starts at 0 and wraps at `cap` (`next`), so `i < cap`.
        let cell = unsafe { self.cell(i) };
        let free = cell.load(Ordering::Acquire) == EMPTY;
        if free {
            cell.store(w, Ordering::Release);
            s.idx.set(self.next(i));
            s.count.store(s.count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        s.lock.store(false, Ordering::Release);
        if free {
            notify(&self.data.0);
        }
        free
    }

    /// Takes the oldest word if there is one; wakes sleeping senders.
    #[inline(always)]
    pub fn try_pop(&self) -> Option<u64> {
        let r = &self.receivers;
        lock(&r.lock);
        if r.dead.get() {
            r.lock.store(false, Ordering::Release);
            return None;
        }
        let i = r.idx.get();
        // SAFETY: we hold the receivers' lock and the side is not dead (checked above); `i` is its
        // `idx`, which starts at 0 and wraps at `cap` (`next`), so `i < cap`.
        let cell = unsafe { self.cell(i) };
        let w = cell.load(Ordering::Acquire);
        let got = w != EMPTY;
        if got {
            cell.store(EMPTY, Ordering::Release);
            r.idx.set(self.next(i));
            r.count.store(r.count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        r.lock.store(false, Ordering::Release);
        if got {
            notify(&self.room.0);
            Some(w)
        } else {
            None
        }
    }

    /// Number of words in the ring (a snapshot).
    pub fn len(&self) -> usize {
        let sent = self.senders.count.load(Ordering::Acquire);
        let got = self.receivers.count.load(Ordering::Acquire);
        sent.wrapping_sub(got).min(self.cap)
    }

    /// Whether the ring holds no word (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Announces a sender about to sleep for room: try once more, then [`Ring::sleep_room`].
    pub fn prepare_room(&self) -> u32 {
        prepare(&self.room.0)
    }
    /// Announces a receiver about to sleep for a word: try once more, then [`Ring::sleep_data`].
    pub fn prepare_data(&self) -> u32 {
        prepare(&self.data.0)
    }
    /// Sleeps until a receiver frees a cell, a close, `max` or a spurious wake.
    pub fn sleep_room(&self, seen: u32, max: Option<Duration>) {
        sleep(&self.room.0, seen, max)
    }
    /// Sleeps until a sender writes a word, a close, `max` or a spurious wake.
    pub fn sleep_data(&self, seen: u32, max: Option<Duration>) {
        sleep(&self.data.0, seen, max)
    }

    /// Wakes every sleeper (after the channel's closed flag was set, SeqCst).
    pub fn wake_all(&self) {
        for p in [&self.room.0, &self.data.0] {
            p.fetch_add(2, Ordering::SeqCst);
            futex_wake_all(p);
        }
    }

    /// Ends the ring for good (its handle was released; the caller set the
    /// channel's closed flag and wakes the sleepers): later pushes and pops
    /// find nothing to do, and the words left (still pinned) are returned.
    /// The cells are freed.
    pub fn release(&self) -> Vec<u64> {
        lock(&self.senders.lock);
        lock(&self.receivers.lock);
        self.senders.dead.set(true);
        self.receivers.dead.set(true);
        // SAFETY: we hold both sides' locks, so no `cell` borrow is live (each is used only under
        // a lock) and none can start: the `&mut` is unique for this one `take`. The `dead` flags,
        // set first, keep later holders of either lock from indexing the empty slice.
        let cells = std::mem::take(unsafe { &mut *self.cells.get() });
        self.receivers.lock.store(false, Ordering::Release);
        self.senders.lock.store(false, Ordering::Release);
        cells.iter().map(|c| c.load(Ordering::Relaxed)).filter(|&w| w != EMPTY).collect()
    }

    /// Takes every word left (the ring is being dropped).
    pub fn drain(&mut self) -> Vec<u64> {
        self.cells.get_mut().iter_mut().map(|c| *c.get_mut()).filter(|&w| w != EMPTY).collect()
    }
}

#[inline(always)]
fn lock(l: &AtomicBool) {
    if l.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        lock_contended(l);
    }
}

#[cold]
#[inline(never)]
fn lock_contended(l: &AtomicBool) {
    let mut spins = 0u32;
    loop {
        if !l.load(Ordering::Relaxed) && l.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
        } else {
            // The holder was preempted inside its few instructions.
            std::thread::yield_now();
        }
    }
}

// ---------------- parking ----------------

const MODE_UNSET: u8 = 0;
const MODE_MEMBARRIER: u8 = 1;
const MODE_FENCE: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 16;

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier(2) takes integer arguments only (command, flags 0, cpu 0) and touches no
    // memory of ours; an unsupported command just fails with an error code.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// Picks the barrier mode once (before the first ring exists, so every
/// operation on a ring sees the mode its sleepers use).
/// `SIMPLE_RT_CHANNEL_FENCE=1` forces fence mode (the tests run both).
fn init_mode() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let forced = std::env::var_os("SIMPLE_RT_CHANNEL_FENCE").is_some_and(|v| v == "1");
        let m = if !forced && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) { MODE_MEMBARRIER } else { MODE_FENCE };
        MODE.store(m, Ordering::SeqCst);
    });
}

/// Light barrier, then wakes the sleepers of `p` if bit 0 says there may be some.
#[inline(always)]
fn notify(p: &AtomicU32) {
    if MODE.load(Ordering::Relaxed) == MODE_MEMBARRIER {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
    if p.load(Ordering::Relaxed) & 1 != 0 {
        wake(p);
    }
}

#[cold]
#[inline(never)]
fn wake(p: &AtomicU32) {
    // Odd -> even: one more wake, and nobody announced since.
    p.fetch_add(1, Ordering::SeqCst);
    futex_wake_all(p);
}

/// Sets bit 0 of `p` and runs the heavy barrier; returns the value to sleep on.
fn prepare(p: &AtomicU32) -> u32 {
    let seen = p.fetch_or(1, Ordering::SeqCst) | 1;
    if MODE.load(Ordering::SeqCst) == MODE_MEMBARRIER {
        let ok = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
            || (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED));
        if !ok {
            // No barrier: fences from now on; this sleep (and those of
            // threads that prepared before the switch) are bounded by `sleep`.
            MODE.store(MODE_FENCE, Ordering::SeqCst);
            FENCE_SINCE_FAILURE.store(true, Ordering::SeqCst);
        }
    } else {
        fence(Ordering::SeqCst);
    }
    seen
}

/// Set once membarrier failed while in membarrier mode: sleeps are bounded from then on.
static FENCE_SINCE_FAILURE: AtomicBool = AtomicBool::new(false);

fn sleep(p: &AtomicU32, seen: u32, max: Option<Duration>) {
    let max = if FENCE_SINCE_FAILURE.load(Ordering::Relaxed) {
        Some(max.map_or(Duration::from_millis(1), |m| m.min(Duration::from_millis(1))))
    } else {
        max
    };
    let ts = max.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // EINTR (the collector stops threads with signals), EAGAIN (woken in between),
    // ETIMEDOUT: the caller tries again and re-checks its time.
    // SAFETY: `p.as_ptr()` is a live, 4-aligned u32 (borrowed for the call) that the kernel only
    // compares with `seen`; `tp` is null or points to the local `ts`, alive across the call, which
    // the kernel reads as a relative timeout; the remaining arguments are unused by FUTEX_WAIT.
    unsafe {
        libc::syscall(libc::SYS_futex, p.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, seen, tp, 0usize, 0u32);
    }
}

fn futex_wake_all(p: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses `p.as_ptr()` (a live, aligned u32 borrowed for the call) as the
    // key of the wait queue and never dereferences the zero pointer arguments.
    unsafe {
        libc::syscall(libc::SYS_futex, p.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX, 0usize, 0usize, 0u32);
    }
}
