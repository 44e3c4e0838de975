//! Mutex and rwlock holding one value each. The lock is logical: held
//! between two calls (lock ... unlock) by one thread, which the library
//! checks, so an unlock from another thread is an Error, never UB.

use crate::slot::Slot;
use ffi_sdk::prelude::*;
use parking_lot::{Condvar, Mutex, MutexGuard};
use crate::FastOpts;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Waits on `cv` while `blocked(state)`; Err(()) when the deadline passes first.
fn wait_while<T>(
    cv: &Condvar,
    g: &mut MutexGuard<'_, T>,
    deadline: Option<Instant>,
    mut blocked: impl FnMut(&T) -> bool,
) -> Result<(), ()> {
    while blocked(g) {
        // The thread's deadline / cancel token (docs/DEADLINES.md) end the wait like a timeout
        // (`timeout_error` then says Timeout / Cancelled); nothing was taken. Waits are cut to the
        // deadline, and to deadline::slice()s while a token is bound (a condvar cannot poll it).
        if ffi_sdk::deadline::status().is_some() {
            return Err(());
        }
        let cut = ffi_sdk::deadline::slice(None).map(|t| Instant::now() + t);
        match (deadline, cut) {
            (None, None) => cv.wait(g),
            (Some(d), _) if Instant::now() >= d => return Err(()),
            (d, c) => {
                let until = match (d, c) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => unreachable!(),
                };
                cv.wait_until(g, until);
            }
        }
    }
    Ok(())
}

fn timeout_error(func: &str, what: &str, d: Option<Duration>) -> Error {
    if let Some(c) = ffi_sdk::deadline::status() {
        return ffi_sdk::deadline::error(func, c);
    }
    let ms = d.unwrap_or_default().as_millis() as i64;
    Error::new(Code::Timeout, func, format!("{what} is held by another thread"), format!("timeout_ms {ms}")).with("timeout_ms", ms)
}

fn deadline(func: &'static str, opts: &Opts) -> RtResult<(Option<Duration>, Option<Instant>)> {
    let _ = func;
    opts.only(&["timeout_ms"])?;
    let t = crate::timeout_opt(opts)?;
    Ok((t, t.map(|d| Instant::now() + d)))
}

// ---------------- mutex ----------------

/// A mutex around one value. The logical lock is one atomic word, `owner`
/// (the holding thread's id, 0 when free): an uncontended lock is one CAS and
/// an unlock one swap, as for parking_lot. Threads that must wait count
/// themselves in `waiters` and sleep on `cv` (under `gate`); an unlock wakes
/// one when the count is not zero. The swap and the count's increment are
/// SeqCst, as is the waiter's CAS after it, so an unlock either sees the
/// waiter or the waiter's CAS sees the free lock (no lost wake-up).
/// `value` is read and replaced only by the holder (the CAS acquires what
/// the previous holder's swap released).
pub struct RtMutex {
    owner: AtomicU64,
    waiters: AtomicU32,
    value: UnsafeCell<Slot>,
    gate: Mutex<()>,
    cv: Condvar,
}

// SAFETY: the only non-Sync field is `value`, touched only by the thread whose process-unique
// id is in `owner` (`held`, the replace in `rt_mutex_unlock`) or by `Drop` (no sharers left).
// Ownership passes by the holder's SeqCst swap to 0 and the next holder's SeqCst CAS, which
// orders one holder's accesses before the next one's. The other fields are Sync.
unsafe impl Sync for RtMutex {}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for RtMutex {
    const NAME: &'static str = "Mutex";
}

impl RtMutex {
    #[inline]
    fn try_take(&self, me: u64) -> bool {
        self.owner.compare_exchange(0, me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }
    /// The value; the calling thread holds the lock.
    #[inline]
    fn held(&self) -> Value {
        // SAFETY: the calling thread holds the lock (this method's contract: both callers just
        // won the CAS on `owner`), so no other thread writes `value` while it is read; the Slot's
        // pin keeps the value alive and `get` registers this thread before handing it out.
        unsafe { (*self.value.get()).get() }
    }
    /// Waits until the lock is taken for `me`; Err(()) when the deadline passes first.
    #[cold]
    fn wait_take(&self, me: u64, deadline: Option<Instant>) -> Result<(), ()> {
        let mut g = self.gate.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            if self.try_take(me) {
                break Ok(());
            }
            // Deadline / cancel token: as in `wait_while` (no lock taken).
            if ffi_sdk::deadline::status().is_some() {
                break Err(());
            }
            let cut = ffi_sdk::deadline::slice(None).map(|t| Instant::now() + t);
            match (deadline, cut) {
                (None, None) => self.cv.wait(&mut g),
                (Some(d), _) if Instant::now() >= d => break Err(()),
                (d, c) => {
                    let until = match (d, c) {
                        (Some(a), Some(b)) => a.min(b),
                        (Some(a), None) => a,
                        (None, Some(b)) => b,
                        (None, None) => unreachable!(),
                    };
                    self.cv.wait_until(&mut g, until);
                }
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

/// A mutex holding `initial` (kept pinned while held).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "handle<Mutex>", tier = "empirical")]
pub fn rt_mutex_new(initial: Value) -> Value {
    new_handle(RtMutex {
        owner: AtomicU64::new(0),
        waiters: AtomicU32::new(0),
        value: UnsafeCell::new(Slot::new(initial)),
        gate: Mutex::new(()),
        cv: Condvar::new(),
    })
}

/// Locks the mutex for the calling thread and returns the value it holds. Locking a mutex the calling thread
/// holds is Error InvalidArgument (it would deadlock).
///
/// # Options
/// - timeout_ms: 0: do not wait : Error Timeout when another thread holds it that long
///
/// # Errors
/// - InvalidArgument: the calling thread holds this mutex already (would deadlock); an unknown option, or an option of the wrong kind or range
/// - Closed: `mutex` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_mutex_lock(mutex: Handle<RtMutex>, opts: FastOpts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let me = crate::current_id();
    if mutex.try_take(me) {
        return Ok(mutex.held());
    }
    if mutex.owner.load(Ordering::Relaxed) == me {
        return Err(Error::invalid(FN, "the calling thread holds this mutex already (would deadlock)", format!("thread {me}")));
    }
    let t = opts.timeout()?;
    let d = t.map(|d| Instant::now() + d);
    mutex.wait_take(me, d).map_err(|_| timeout_error(FN, "the mutex", t))?;
    Ok(mutex.held())
}

/// Unlocks the mutex the calling thread holds; a non-nil `new_value` replaces the value first (nil keeps it).
///
/// # Errors
/// - InvalidArgument: the calling thread does not hold it
/// - Closed: `mutex` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_mutex_unlock(mutex: Handle<RtMutex>, new_value: Option<Value>) -> RtResult<()> {
    let me = crate::current_id();
    // Only the holder changes `owner` away from its own id.
    let owner = mutex.owner.load(Ordering::Relaxed);
    if owner != me {
        let who = if owner == 0 { "nobody".to_string() } else { format!("thread {owner}") };
        return Err(Error::invalid(FN, "the calling thread does not hold this mutex", format!("held by {who}")));
    }
    // SAFETY: `owner == me` and only the holder moves `owner` away from its own id, so this
    // thread holds the lock: it alone touches `value` until the swap below releases it, so the
    // `&mut` is unique for the replace.
    let old = new_value.map(|v| std::mem::replace(unsafe { &mut *mutex.value.get() }, Slot::new(v)));
    mutex.owner.swap(0, Ordering::SeqCst);
    if mutex.waiters.load(Ordering::SeqCst) != 0 {
        let _g = mutex.gate.lock();
        mutex.cv.notify_one();
    }
    drop(old);
    Ok(())
}

/// Whether some thread holds the mutex now (a snapshot).
///
/// # Errors
/// - Closed: `mutex` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_mutex_is_locked(mutex: Handle<RtMutex>) -> bool {
    mutex.owner.load(Ordering::Acquire) != 0
}

// ---------------- rwlock ----------------

struct RwState {
    writer: u64,
    /// (thread id, read locks it holds).
    readers: Vec<(u64, u32)>,
    waiting_writers: u32,
    value: Slot,
}

impl RwState {
    fn reads_of(&self, me: u64) -> u32 {
        self.readers.iter().find(|r| r.0 == me).map_or(0, |r| r.1)
    }
    fn add_reader(&mut self, me: u64) {
        match self.readers.iter_mut().find(|r| r.0 == me) {
            Some(r) => r.1 += 1,
            None => self.readers.push((me, 1)),
        }
    }
    /// A reader must wait: a writer holds it, or one waits and `me` holds no read lock yet (writers first).
    fn read_blocked(&self, me: u64) -> bool {
        self.writer != 0 || (self.waiting_writers > 0 && self.reads_of(me) == 0)
    }
}

/// A readers-writer lock around one value (writers are preferred over new readers).
pub struct RtRwLock {
    st: Mutex<RwState>,
    cv: Condvar,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for RtRwLock {
    const NAME: &'static str = "RwLock";
}

/// A readers-writer lock holding `initial` (kept pinned while held).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "handle<RwLock>", tier = "empirical")]
pub fn rt_rwlock_new(initial: Value) -> Value {
    new_handle(RtRwLock {
        st: Mutex::new(RwState { writer: 0, readers: Vec::new(), waiting_writers: 0, value: Slot::new(initial) }),
        cv: Condvar::new(),
    })
}

fn read_lock(func: &'static str, rw: &RtRwLock, d: Option<Instant>, t: Option<Duration>) -> RtResult<Value> {
    let me = crate::current_id();
    let mut g = rw.st.lock();
    if g.writer == me {
        return Err(Error::invalid(func, "the calling thread holds the write lock (would deadlock)", format!("thread {me}")));
    }
    wait_while(&rw.cv, &mut g, d, |s| s.read_blocked(me)).map_err(|_| timeout_error(func, "the rwlock", t))?;
    g.add_reader(me);
    Ok(g.value.get())
}

fn write_lock(func: &'static str, rw: &RtRwLock, d: Option<Instant>, t: Option<Duration>) -> RtResult<Value> {
    let me = crate::current_id();
    let mut g = rw.st.lock();
    if g.writer == me || g.reads_of(me) > 0 {
        return Err(Error::invalid(func, "the calling thread holds this rwlock already (would deadlock)", format!("thread {me}")));
    }
    g.waiting_writers += 1;
    let r = wait_while(&rw.cv, &mut g, d, |s| s.writer != 0 || !s.readers.is_empty());
    g.waiting_writers -= 1;
    if r.is_err() {
        drop(g);
        rw.cv.notify_all(); // readers held back by this writer may go on
        return Err(timeout_error(func, "the rwlock", t));
    }
    g.writer = me;
    Ok(g.value.get())
}

/// Takes a read lock for the calling thread (several threads may read at once; one thread may nest reads) and
/// returns the value.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout
///
/// # Errors
/// - InvalidArgument: the calling thread holds the write lock; an unknown option, or an option of the wrong kind or range
/// - Closed: `rwlock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_rwlock_read_lock(rwlock: Handle<RtRwLock>, opts: Opts) -> RtResult<Value> {
    let (t, d) = deadline(FN, &opts)?;
    read_lock(FN, &rwlock, d, t)
}

/// Releases one read lock of the calling thread.
///
/// # Errors
/// - InvalidArgument: it holds none
/// - Closed: `rwlock` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_rwlock_read_unlock(rwlock: Handle<RtRwLock>) -> RtResult<()> {
    let me = crate::current_id();
    let mut g = rwlock.st.lock();
    let Some(i) = g.readers.iter().position(|r| r.0 == me) else {
        return Err(Error::invalid(FN, "the calling thread holds no read lock on this rwlock", format!("thread {me}")));
    };
    g.readers[i].1 -= 1;
    if g.readers[i].1 == 0 {
        g.readers.swap_remove(i);
    }
    let wake = g.readers.is_empty();
    drop(g);
    if wake {
        rwlock.cv.notify_all();
    }
    Ok(())
}

/// Takes the write lock for the calling thread and returns the value.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout
///
/// # Errors
/// - InvalidArgument: the calling thread holds a read or the write lock (no upgrade); an unknown option, or an option of the wrong kind or range
/// - Closed: `rwlock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_rwlock_write_lock(rwlock: Handle<RtRwLock>, opts: Opts) -> RtResult<Value> {
    let (t, d) = deadline(FN, &opts)?;
    write_lock(FN, &rwlock, d, t)
}

/// Releases the write lock the calling thread holds; a non-nil `new_value` replaces the value first.
///
/// # Errors
/// - InvalidArgument: it does not hold it
/// - Closed: `rwlock` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_rwlock_write_unlock(rwlock: Handle<RtRwLock>, new_value: Option<Value>) -> RtResult<()> {
    let me = crate::current_id();
    let old;
    {
        let mut g = rwlock.st.lock();
        if g.writer != me {
            return Err(Error::invalid(FN, "the calling thread does not hold the write lock", format!("thread {me}")));
        }
        old = new_value.map(|v| std::mem::replace(&mut g.value, Slot::new(v)));
        g.writer = 0;
    }
    rwlock.cv.notify_all();
    drop(old);
    Ok(())
}

/// Simple's name: the value under a read lock taken and released at once (waits for a writer; the value itself when the calling thread holds the write lock).
///
/// # Errors
/// - Closed: `rwlock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_rwlock_read(rwlock: Handle<RtRwLock>) -> RtResult<Value> {
    let me = crate::current_id();
    let mut g = rwlock.st.lock();
    if g.writer != me {
        wait_while(&rwlock.cv, &mut g, None, |s| s.writer != 0).map_err(|_| timeout_error(FN, "the rwlock", None))?;
    }
    Ok(g.value.get())
}

/// Simple's name: as `rt_rwlock_read` without waiting:
///
/// # Errors
/// - Closed: `rwlock` was closed
/// - Busy: while another thread holds the write lock
#[rt_fn(tier = "empirical")]
pub fn rt_rwlock_try_read(rwlock: Handle<RtRwLock>) -> RtResult<Value> {
    let me = crate::current_id();
    let g = rwlock.st.lock();
    if g.writer != 0 && g.writer != me {
        return Err(Error::new(Code::Busy, FN, "another thread holds the write lock", format!("thread {}", g.writer)));
    }
    Ok(g.value.get())
}

/// Simple's name: `rt_rwlock_write_lock(rwlock, nil)` (the write lock stays held until `rt_rwlock_write_unlock`).
///
/// # Errors
/// - InvalidArgument: the calling thread holds this rwlock already (would deadlock)
/// - Closed: `rwlock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_rwlock_write(rwlock: Handle<RtRwLock>) -> RtResult<Value> {
    write_lock(FN, &rwlock, None, None)
}

/// Simple's name: the write lock without waiting (held until `rt_rwlock_write_unlock`).
///
/// # Errors
/// - InvalidArgument: the calling thread holds this rwlock already (would deadlock)
/// - Closed: `rwlock` was closed
/// - Busy: any other thread holds a lock
#[rt_fn(tier = "empirical")]
pub fn rt_rwlock_try_write(rwlock: Handle<RtRwLock>) -> RtResult<Value> {
    let me = crate::current_id();
    let mut g = rwlock.st.lock();
    if g.writer == me || g.reads_of(me) > 0 {
        return Err(Error::invalid(FN, "the calling thread holds this rwlock already (would deadlock)", format!("thread {me}")));
    }
    if g.writer != 0 || !g.readers.is_empty() {
        return Err(Error::plain(Code::Busy, FN, "another thread holds a lock on this rwlock"));
    }
    g.writer = me;
    Ok(g.value.get())
}

/// Simple's name: replaces the value under the write lock (taken and released at once, waiting as needed) and
/// returns the old value.
///
/// # Errors
/// - InvalidArgument: the calling thread holds a read lock
/// - Closed: `rwlock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_rwlock_set(rwlock: Handle<RtRwLock>, new_value: Value) -> RtResult<Value> {
    let me = crate::current_id();
    let mut g = rwlock.st.lock();
    if g.writer != me {
        if g.reads_of(me) > 0 {
            return Err(Error::invalid(FN, "the calling thread holds a read lock (would deadlock)", format!("thread {me}")));
        }
        wait_while(&rwlock.cv, &mut g, None, |s| s.writer != 0 || !s.readers.is_empty())
            .map_err(|_| timeout_error(FN, "the rwlock", None))?;
    }
    let old = std::mem::replace(&mut g.value, Slot::new(new_value));
    drop(g);
    Ok(old.take())
}
