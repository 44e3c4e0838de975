//! Channels of values: bounded (a ring of value words shared by senders and
//! receivers, [`crate::ring`]), rendezvous (capacity 0) and unbounded
//! (crossbeam-channel). A value in the channel is pinned until it is received.

use crate::ring::{storable, Ring};
use crate::slot::Slot;
use crate::{Backoff, FastOpts};
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender, TryRecvError, TrySendError};
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::prelude::*;
use ffi_sdk::FromArg;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest bounded capacity (larger buffers: use an unbounded channel).
pub const MAX_CAPACITY: i64 = 1 << 24;

/// A channel; both ends live in the one handle.
pub struct Channel {
    closed: AtomicBool,
    capacity: Option<usize>,
    flavor: Flavor,
}

// The ring's two sides sit on cache lines of their own (hence its size); the
// enum lives once, inside the channel's one allocation.
#[allow(clippy::large_enum_variant)]
enum Flavor {
    /// Bounded, capacity 1 or more: words pinned by `Slot::into_raw`.
    Ring(Ring),
    /// Rendezvous and unbounded.
    Cb(Cb),
}

/// A crossbeam channel and its close signal.
struct Cb {
    tx: Sender<Slot>,
    rx: Receiver<Slot>,
    /// Dropped by close: wakes every blocked send and recv.
    close_tx: Mutex<Option<Sender<()>>>,
    close_rx: Receiver<()>,
}

impl Channel {
    /// The handle released its resource (closed, or collected): the channel
    /// closes, every waiter wakes, and the values still in it are unpinned
    /// now, even while a thread's cache (below) keeps the struct itself.
    fn release(&self) {
        self.closed.store(true, Ordering::SeqCst);
        match &self.flavor {
            Flavor::Ring(r) => {
                let left = r.release();
                r.wake_all();
                for w in left {
                    // SAFETY: every non-EMPTY cell word was stored by a send from
                    // `Slot::into_raw` (still pinned); `Ring::release` took the cells away under
                    // both locks, so each word comes back here once and nowhere else.
                    drop(unsafe { Slot::from_raw(w) });
                }
            }
            Flavor::Cb(c) => {
                drop(c.close_tx.lock().take());
                while let Ok(s) = c.rx.try_recv() {
                    drop(s);
                }
            }
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Flavor::Ring(r) = &mut self.flavor {
            for w in r.drain() {
                // SAFETY: a cell word is a pinned `Slot::into_raw` word of a send not yet received
                // (`release`, if it ran, emptied the cells); `&mut self` makes this the only taker.
                drop(unsafe { Slot::from_raw(w) });
            }
        }
    }
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Channel {
    const NAME: &'static str = "Channel";
}

// The handle's vtable: as `new_handle`'s, except that releasing the handle's
// owner also releases the channel's values (`Channel::release`).
unsafe extern "C" fn chan_acquire(p: *const ()) {
    Arc::increment_strong_count(p as *const Channel);
}
unsafe extern "C" fn chan_release(p: *const ()) {
    let a = Arc::from_raw(p as *const Channel);
    a.release();
    drop(a);
}
static CHANNEL_VT: abi::HandleVTable =
    abi::HandleVTable { type_name: <Channel as HandleType>::NAME, acquire: chan_acquire, release: chan_release };

/// A channel of values: `capacity` 0 = rendezvous (a send waits for a receiver), n = bounded (0..=16777216), nil = unbounded.
///
/// # Errors
/// - OutOfRange: capacity must be in 0..=… or nil (unbounded)
#[rt_fn(ret = "handle<Channel>", tier = "empirical")]
pub fn rt_channel_create(capacity: Option<i64>) -> RtResult<Value> {
    let cb = |(tx, rx): (Sender<Slot>, Receiver<Slot>)| {
        let (ctx, crx) = bounded(0);
        Flavor::Cb(Cb { tx, rx, close_tx: Mutex::new(Some(ctx)), close_rx: crx })
    };
    let flavor = match capacity {
        None => cb(unbounded()),
        Some(0) => cb(bounded(0)),
        Some(c) if (1..=MAX_CAPACITY).contains(&c) => Flavor::Ring(Ring::new(c as usize)),
        Some(c) => return Err(Error::new(Code::OutOfRange, FN, format!("capacity must be in 0..={MAX_CAPACITY} or nil (unbounded)"), c)),
    };
    let ch = Arc::new(Channel { closed: AtomicBool::new(false), capacity: capacity.map(|c| c as usize), flavor });
    // On failure (out of memory) the core releases the owner and returns an Error value.
    // SAFETY: `CHANNEL_VT` is a `'static` vtable whose acquire/release are those of `Arc<Channel>`
    // under the name `Channel` (so `Handle<Channel>` reads the data back as that type); the data is
    // one strong count from `Arc::into_raw`, moved into the handle.
    Ok(Value::from_raw(unsafe { abi::rt__handle_new(&CHANNEL_VT, Arc::into_raw(ch) as *const ()) }))
}

// ---- the per-thread channel cache ----
//
// Each thread remembers the last few bounded channels it used (`WAYS`, for
// a thread that receives from one channel and sends to another: each entry
// a handle object's address and one owner of its channel), so that the
// next call on one of them skips the handle borrow (a call into the core
// that announces the borrow in a hazard slot and clears it after). A hit
// checks, on the handle object the caller passes (which the caller keeps
// alive): that it is a handle, that its resource is still the remembered
// channel (an owner is held, so that address cannot name another channel),
// and that it is open: then the call uses the remembered owner. A call that
// starts after the handle was closed gets Error Closed, as with a borrow; a
// call in flight while it closes finishes on its own owner. Releasing the
// handle releases the channel's values at once (`Channel::release`); only
// the channel's struct (a few hundred bytes, its cells freed) stays until
// the thread has used `WAYS` other bounded channels since, or exits.

const WAYS: usize = 4;

struct Cache {
    /// (handle object address, one owner from `Arc::into_raw` or null).
    ways: [Cell<(usize, *const Channel)>; WAYS],
    /// The way the next new channel replaces (round robin).
    next: Cell<usize>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for w in &self.ways {
            let (_, p) = w.replace((0, std::ptr::null()));
            if !p.is_null() {
                // SAFETY: a non-null way holds one owner from `Arc::into_raw` (`remember`); the
                // way is nulled as it is read, so the owner is dropped once.
                drop(unsafe { Arc::from_raw(p) });
            }
        }
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache { ways: [const { Cell::new((0, std::ptr::null())) }; WAYS], next: Cell::new(0) }
    };
}

/// The remembered channel, if `channel` is its (open) handle.
#[inline(always)]
fn cached<'a>(channel: RtValue) -> Option<&'a Channel> {
    if channel & abi::TAG_MASK != abi::TAG_HEAP || channel < 4096 {
        return None;
    }
    let obj = (channel & !abi::TAG_MASK) as usize;
    let p = CACHE
        .try_with(|c| c.ways.iter().map(Cell::get).find(|w| w.0 == obj).map_or(std::ptr::null(), |w| w.1))
        .ok()?;
    if p.is_null() {
        return None;
    }
    // The caller keeps `channel` reachable: the object is live. Its header
    // says what it is; only a handle holds a channel's address as its data,
    // and only this channel's handle holds this one (we own it).
    let h = obj as *const abi::HandleObj;
    // SAFETY: `channel` is the call's argument, a live runtime heap word (`Value` contract), so
    // the header at `obj` is readable; `data`/`closed` are read only once it says HK_HANDLE, and
    // core only accesses them atomically, so the atomic views are fine. `p` is an owner this
    // thread's cache holds (from `Arc::into_raw`), so `*p` is alive until that way is replaced
    // (`remember`) or the thread exits: each export resolves one channel and calls `remember`
    // before this lookup, never after, so the reference stays valid for the call that uses it.
    unsafe {
        if (*h).h.kind != abi::HEAP_MAGIC | abi::HK_HANDLE {
            return None;
        }
        let data = &*(std::ptr::addr_of!((*h).data) as *const AtomicPtr<()>);
        let state = &*(std::ptr::addr_of!((*h).closed) as *const AtomicU32);
        if data.load(Ordering::Relaxed) as *const Channel != p || state.load(Ordering::Acquire) != 0 {
            return None;
        }
        Some(&*p)
    }
}

/// Remembers `h` for the calling thread if it is a bounded channel; whether it did.
#[cold]
#[inline(never)]
fn remember(channel: RtValue, h: &Handle<Channel>) -> bool {
    if !matches!(h.flavor, Flavor::Ring(_)) {
        return false;
    }
    let obj = (channel & !abi::TAG_MASK) as usize;
    let a = Arc::into_raw(h.arc());
    let old = CACHE.try_with(|c| {
        // The way holding this handle object already (a stale entry: its
        // channel was released, or the object's address was reused), else the next one.
        let i = c.ways.iter().position(|w| w.get().0 == obj).unwrap_or_else(|| {
            let i = c.next.get();
            c.next.set((i + 1) % WAYS);
            i
        });
        c.ways[i].replace((obj, a)).1
    });
    match old {
        Ok(old) => {
            if !old.is_null() {
                // SAFETY: `old` was the way's owner (from `Arc::into_raw`), just swapped out of the
                // cache, so it is dropped here once. No `Chan::Cached` of this thread refers to it:
                // `remember` runs before the call's one `cached` lookup.
                drop(unsafe { Arc::from_raw(old) });
            }
            true
        }
        Err(_) => {
            // SAFETY: the cache is gone (thread exiting), so `a`, from `Arc::into_raw` above, was
            // never stored: this takes that one owner back.
            drop(unsafe { Arc::from_raw(a) });
            false
        }
    }
}

/// The channel of this call: a bounded channel through the calling
/// thread's cache (remembered now if it was not), so that nothing of the
/// call, a wait included, holds a handle borrow, and releasing the handle
/// wakes it; other channels through a borrow.
enum Chan<'a> {
    Cached(&'a Channel),
    Borrowed(Handle<Channel>),
}

impl std::ops::Deref for Chan<'_> {
    type Target = Channel;
    #[inline(always)]
    fn deref(&self) -> &Channel {
        match self {
            Chan::Cached(c) => c,
            Chan::Borrowed(h) => h,
        }
    }
}

/// Argument `idx` (`name`) of `func` as a channel (errors as for a `Handle<Channel>` argument).
#[inline(always)]
fn chan<'a>(channel: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Chan<'a>> {
    if let Some(c) = cached(channel) {
        return Ok(Chan::Cached(c));
    }
    chan_slow(channel, func, idx, name)
}

#[cold]
#[inline(never)]
fn chan_slow<'a>(channel: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Chan<'a>> {
    let h = <Handle<Channel> as FromArg>::from_arg(channel, func, idx, name)?;
    if remember(channel, &h) {
        drop(h);
        if let Some(c) = cached(channel) {
            return Ok(Chan::Cached(c));
        }
        // Closed in between: the borrow says so.
        return <Handle<Channel> as FromArg>::from_arg(channel, func, idx, name).map(Chan::Borrowed);
    }
    Ok(Chan::Borrowed(h))
}

fn closed_error(func: &str) -> Error {
    Error::plain(Code::Closed, func, "the channel is closed")
}

fn timeout_error(func: &str, what: &str, d: Duration) -> Error {
    let ms = d.as_millis() as i64;
    Error::new(Code::Timeout, func, what, format!("timeout_ms {ms}")).with("timeout_ms", ms)
}

const SEND_DOC: &str = "Sends `value` (pinned while in the channel), waiting while a bounded channel is full.\n\n# Options\n- timeout_ms (int >= 0): how long to wait for room (Error Timeout past it)\n\n# Errors\n- Closed: the channel is closed (also when it closes while the send waits)\n- InvalidArgument: an unknown option, or timeout_ms not an int >= 0";
const RECV_DOC: &str = "Receives the next value, waiting while the channel is empty. On a closed channel the values still in it are received first.\n\n# Options\n- timeout_ms (int >= 0): how long to wait for a value, 0: do not wait (Error Timeout past it)\n\n# Errors\n- Closed: the channel is closed and drained\n- InvalidArgument: an unknown option, or timeout_ms not an int >= 0";
const TRY_RECV_DOC: &str = "Receives a value without waiting: `rt_channel_recv(channel, {timeout_ms: 0})`.\n\n# Errors\n- Timeout: the channel is empty\n- Closed: the channel is closed and drained";

// ---- the exports ----
//
// Send and receive are written by hand rather than by `#[rt_fn]` (same
// registry entry, same checks, same errors): their common case (nil options,
// no deadline in the process, a live channel handle, room or a value ready)
// returns the word straight from a few inlined steps, where the generic
// wrapper moves a `Result<Value, Error>` through memory and converts the
// options. Everything else takes the generic path, `*_generic`, which is
// what `#[rt_fn(blocking)]` generates.

#[inline(always)]
fn unit(r: RtResult<()>) -> RtValue {
    match r {
        Ok(()) => abi::NIL,
        Err(e) => e.into_value().raw(),
    }
}

#[inline(always)]
fn word(r: RtResult<Value>) -> RtValue {
    match r {
        Ok(v) => v.raw(),
        Err(e) => e.into_value().raw(),
    }
}

#[doc = "Sends `value` (pinned while in the channel), waiting while a bounded channel is full. Option `timeout_ms`: Error Timeout. Error Closed on a closed channel (also when it closes while the send waits)."]
#[no_mangle]
pub extern "C" fn rt_channel_send(channel: RtValue, value: RtValue, opts: RtValue) -> RtValue {
    const FN: &str = "rt_channel_send";
    crate::boundary(FN, || {
        if opts == abi::NIL && !ffi_sdk::deadline::active() {
            if let Some(ch) = cached(channel) {
                if let Some(w) = send_now(FN, ch, value) {
                    return w;
                }
            } else if let Ok(ch) = chan_slow(channel, "", 0, "") {
                if let Some(w) = send_now(FN, &ch, value) {
                    return w;
                }
            }
        }
        send_generic(channel, value, opts)
    })
}
register_export!(rt_channel_send, doc = SEND_DOC, blocking = true, params = [("channel", Handle<Channel>), ("value", Value), ("opts", FastOpts)], ret = <() as ffi_sdk::IntoRet>::TY);

/// A send with nil options and no deadline in the process; None: the generic path decides.
#[inline(always)]
fn send_now(func: &'static str, ch: &Channel, value: RtValue) -> Option<RtValue> {
    if ch.closed.load(Ordering::Acquire) {
        return None;
    }
    Some(match &ch.flavor {
        Flavor::Ring(r) => {
            if !storable(value) {
                return None;
            }
            let w = Slot::new(Value::from_raw(value)).into_raw();
            if r.try_push(w) {
                abi::NIL
            } else {
                unit(ring_send_wait(func, ch, r, w, None))
            }
        }
        Flavor::Cb(c) => match c.tx.try_send(Slot::new(Value::from_raw(value))) {
            Ok(()) => abi::NIL,
            Err(TrySendError::Full(s)) => unit(cb_send_wait(func, ch, c, s, None)),
            Err(TrySendError::Disconnected(_)) => closed_error(func).into_value().raw(),
        },
    })
}

#[doc = "Receives the next value, waiting while the channel is empty. Option `timeout_ms` (0: do not wait): Error Timeout. On a closed channel the values still in it are received first, then Error Closed."]
#[no_mangle]
pub extern "C" fn rt_channel_recv(channel: RtValue, opts: RtValue) -> RtValue {
    const FN: &str = "rt_channel_recv";
    crate::boundary(FN, || {
        if opts == abi::NIL && !ffi_sdk::deadline::active() {
            if let Some(ch) = cached(channel) {
                return recv_now(FN, ch);
            } else if let Ok(ch) = chan_slow(channel, "", 0, "") {
                return recv_now(FN, &ch);
            }
        }
        recv_generic(FN, channel, opts)
    })
}
register_export!(rt_channel_recv, doc = RECV_DOC, blocking = true, params = [("channel", Handle<Channel>), ("opts", FastOpts)], ret = <Value as ffi_sdk::IntoRet>::TY);

/// A receive with nil options and no deadline in the process.
#[inline(always)]
fn recv_now(func: &'static str, ch: &Channel) -> RtValue {
    match &ch.flavor {
        Flavor::Ring(r) => match r.try_pop() {
            // SAFETY: a popped word is a send's `Slot::into_raw` word, handed out once (the pop
            // freed its cell under the receivers' lock).
            Some(w) => unsafe { Slot::from_raw(w) }.take().raw(),
            None => word(ring_recv_wait(func, ch, r, None)),
        },
        Flavor::Cb(c) => match c.rx.try_recv() {
            Ok(s) => s.take().raw(),
            Err(_) => word(cb_recv_wait(func, ch, c, None)),
        },
    }
}

#[doc = "Receives a value without waiting: `rt_channel_recv(channel, {timeout_ms: 0})` (Error Timeout when empty, Error Closed when closed and drained)."]
#[no_mangle]
pub extern "C" fn rt_channel_try_recv(channel: RtValue) -> RtValue {
    const FN: &str = "rt_channel_try_recv";
    crate::boundary(FN, || {
        if let Some(ch) = cached(channel) {
            if let Some(v) = try_take(ch) {
                return v.raw();
            }
        } else if let Ok(ch) = chan_slow(channel, "", 0, "") {
            if let Some(v) = try_take(&ch) {
                return v.raw();
            }
        }
        try_recv_generic(channel)
    })
}
register_export!(rt_channel_try_recv, doc = TRY_RECV_DOC, blocking = false, params = [("channel", Handle<Channel>)], ret = <Value as ffi_sdk::IntoRet>::TY);

/// A value if one is ready.
#[inline(always)]
fn try_take(ch: &Channel) -> Option<Value> {
    match &ch.flavor {
        // SAFETY: a popped word is a send's `Slot::into_raw` word, handed out once by the pop.
        Flavor::Ring(r) => r.try_pop().map(|w| unsafe { Slot::from_raw(w) }.take()),
        Flavor::Cb(c) => c.rx.try_recv().ok().map(Slot::take),
    }
}

/// `rt_channel_send` as `#[rt_fn(blocking)]` would run it.
#[inline(never)]
fn send_generic(channel: RtValue, value: RtValue, opts: RtValue) -> RtValue {
    const FN: &str = "rt_channel_send";
    ffi_sdk::boundary::call(FN, move || {
        ffi_sdk::deadline::check(FN)?;
        let channel = chan(channel, FN, 0, "channel")?;
        let value = <Value as FromArg>::from_arg(value, FN, 1, "value")?;
        let opts = <FastOpts as FromArg>::from_arg(opts, FN, 2, "opts")?;
        send(FN, &channel, value, opts).map(|()| Value::NIL)
    })
}

/// `rt_channel_recv` as `#[rt_fn(blocking)]` would run it.
#[inline(never)]
fn recv_generic(func: &'static str, channel: RtValue, opts: RtValue) -> RtValue {
    ffi_sdk::boundary::call(func, move || {
        ffi_sdk::deadline::check(func)?;
        let channel = chan(channel, func, 0, "channel")?;
        let opts = <FastOpts as FromArg>::from_arg(opts, func, 1, "opts")?;
        opts.only(&["timeout_ms"])?;
        let t = opts.timeout()?;
        recv(func, &channel, t)
    })
}

/// `rt_channel_try_recv` as `#[rt_fn]` would run it.
#[inline(never)]
fn try_recv_generic(channel: RtValue) -> RtValue {
    const FN: &str = "rt_channel_try_recv";
    ffi_sdk::boundary::call(FN, move || {
        let channel = chan(channel, FN, 0, "channel")?;
        recv(FN, &channel, Some(Duration::ZERO))
    })
}

fn send(func: &'static str, ch: &Channel, value: Value, opts: FastOpts) -> RtResult<()> {
    opts.only(&["timeout_ms"])?;
    let timeout = opts.timeout()?;
    if !storable(value.raw()) {
        return Err(ffi_sdk::args::kind_error(func, 1, "value", "a value", value));
    }
    if ch.closed.load(Ordering::Acquire) {
        return Err(closed_error(func));
    }
    match &ch.flavor {
        Flavor::Ring(r) => {
            let w = Slot::new(value).into_raw();
            if r.try_push(w) {
                return Ok(());
            }
            ring_send_wait(func, ch, r, w, timeout)
        }
        Flavor::Cb(c) => match c.tx.try_send(Slot::new(value)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(s)) => cb_send_wait(func, ch, c, s, timeout),
            Err(TrySendError::Disconnected(_)) => Err(closed_error(func)),
        },
    }
}

fn recv(func: &'static str, ch: &Channel, timeout: Option<Duration>) -> RtResult<Value> {
    match &ch.flavor {
        Flavor::Ring(r) => ring_recv_wait(func, ch, r, timeout),
        Flavor::Cb(c) => cb_recv_wait(func, ch, c, timeout),
    }
}

// ---- waiting on a ring (bounded channels) ----

/// One round of a ring wait, before it parks: Error Timeout / Cancelled from the thread's deadline /
/// cancel token (docs/DEADLINES.md), Error Timeout (`stayed`) once the call's own `timeout` (ending
/// at `end`) has passed; else how long the park may last (cut to the deadline, and to
/// deadline::slice()s while a token is bound).
#[inline]
fn ring_round(func: &'static str, end: Option<Instant>, timeout: Option<Duration>, stayed: &str) -> RtResult<Option<Duration>> {
    ffi_sdk::deadline::check(func)?;
    let own = end.map(|e| e.saturating_duration_since(Instant::now()));
    if let (Some(o), Some(d)) = (own, timeout) {
        if o.is_zero() {
            return Err(timeout_error(func, stayed, d));
        }
    }
    Ok(ffi_sdk::deadline::slice(own))
}

/// The rest of a send after a first try found the ring full: retries, then
/// parks until room, close, the timeout or the thread's deadline. `w` is
/// pinned (`Slot::into_raw`); unless it is stored, it is unpinned here.
#[inline(never)]
fn ring_send_wait(func: &'static str, ch: &Channel, r: &Ring, w: RtValue, timeout: Option<Duration>) -> RtResult<()> {
    let outcome = (|| {
        let full = |d: Duration| Err(timeout_error(func, "the channel stayed full", d));
        if let Some(d) = timeout.filter(|d| d.is_zero()) {
            return full(d);
        }
        let mut backoff = Backoff::new();
        while backoff.snooze() {
            if ch.closed.load(Ordering::Acquire) {
                return Err(closed_error(func));
            }
            if r.try_push(w) {
                return Ok(());
            }
        }
        let end = timeout.map(|d| Instant::now() + d);
        loop {
            // On Timeout / Cancelled nothing was sent.
            let cut = ring_round(func, end, timeout, "the channel stayed full")?;
            let seen = r.prepare_room();
            if ch.closed.load(Ordering::SeqCst) {
                return Err(closed_error(func));
            }
            if r.try_push(w) {
                return Ok(());
            }
            r.sleep_room(seen, cut);
        }
    })();
    if outcome.is_err() {
        // SAFETY: `w` is the caller's `Slot::into_raw` word, and no `try_push` stored it (every
        // error path returns before a successful push), so this is its one taker.
        drop(unsafe { Slot::from_raw(w) });
    }
    outcome
}

/// A receive on a ring: the value, or waits (retries, then parks) until one
/// comes, close (then Error Closed once drained), the timeout (0: none) or
/// the thread's deadline.
#[inline(never)]
fn ring_recv_wait(func: &'static str, ch: &Channel, r: &Ring, timeout: Option<Duration>) -> RtResult<Value> {
    // SAFETY: applied only to words `try_pop` returned: a send's `Slot::into_raw` word, handed
    // out once by the pop.
    let take = |w: RtValue| unsafe { Slot::from_raw(w) }.take();
    if let Some(w) = r.try_pop() {
        return Ok(take(w));
    }
    let closed = || r.try_pop().map(take).ok_or_else(|| closed_error(func));
    if ch.closed.load(Ordering::Acquire) {
        // A send may have landed just before the close.
        return closed();
    }
    if let Some(d) = timeout.filter(|d| d.is_zero()) {
        return Err(timeout_error(func, "the channel is empty", d));
    }
    let mut backoff = Backoff::new();
    while backoff.snooze() {
        if let Some(w) = r.try_pop() {
            return Ok(take(w));
        }
        if ch.closed.load(Ordering::Acquire) {
            return closed();
        }
    }
    let end = timeout.map(|d| Instant::now() + d);
    loop {
        // On Timeout / Cancelled a value is either received or still queued.
        let cut = ring_round(func, end, timeout, "the channel stayed empty")?;
        let seen = r.prepare_data();
        if let Some(w) = r.try_pop() {
            return Ok(take(w));
        }
        if ch.closed.load(Ordering::SeqCst) {
            return closed();
        }
        r.sleep_data(seen, cut);
    }
}

// ---- waiting on crossbeam (rendezvous and unbounded channels) ----

/// The rest of a send after a first try found the channel full (or no receiver waiting): retries, then blocks.
#[inline(never)]
fn cb_send_wait(func: &'static str, ch: &Channel, c: &Cb, mut slot: Slot, timeout: Option<Duration>) -> RtResult<()> {
    // A rendezvous needs a waiting receiver: no point in retrying before blocking.
    if ch.capacity != Some(0) {
        let mut backoff = Backoff::new();
        while backoff.snooze() {
            slot = match c.tx.try_send(slot) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(s)) => s,
                Err(TrySendError::Disconnected(_)) => return Err(closed_error(func)),
            };
        }
    }
    if ffi_sdk::deadline::active() {
        // The thread's deadline / cancel token (docs/DEADLINES.md): waits cut to the deadline, and
        // to deadline::slice()s while a token is bound; on Timeout / Cancelled the value was not sent.
        let end = timeout.map(|d| Instant::now() + d);
        loop {
            ffi_sdk::deadline::check(func)?;
            let own = end.map(|e| e.saturating_duration_since(Instant::now()));
            if let (Some(o), Some(d)) = (own, timeout) {
                if o.is_zero() {
                    return Err(timeout_error(func, "the channel stayed full", d));
                }
            }
            match ffi_sdk::deadline::slice(own) {
                None => {
                    return select! {
                        send(c.tx, slot) -> r => r.map_err(|_| closed_error(func)),
                        recv(c.close_rx) -> _ => Err(closed_error(func)),
                    }
                }
                Some(cut) => select! {
                    send(c.tx, slot) -> r => return r.map_err(|_| closed_error(func)),
                    recv(c.close_rx) -> _ => return Err(closed_error(func)),
                    default(cut) => {}
                },
            }
        }
    }
    match timeout {
        None => select! {
            send(c.tx, slot) -> r => r.map_err(|_| closed_error(func)),
            recv(c.close_rx) -> _ => Err(closed_error(func)),
        },
        Some(d) => select! {
            send(c.tx, slot) -> r => r.map_err(|_| closed_error(func)),
            recv(c.close_rx) -> _ => Err(closed_error(func)),
            default(d) => Err(timeout_error(func, "the channel stayed full", d)),
        },
    }
}

/// A receive on crossbeam: the value, or waits (retries, then blocks).
#[inline(never)]
fn cb_recv_wait(func: &'static str, ch: &Channel, c: &Cb, timeout: Option<Duration>) -> RtResult<Value> {
    match c.rx.try_recv() {
        Ok(s) => return Ok(s.take()),
        Err(TryRecvError::Disconnected) => return Err(closed_error(func)),
        Err(TryRecvError::Empty) => {}
    }
    if ch.closed.load(Ordering::Acquire) {
        // A send may have landed just before the close.
        return c.rx.try_recv().map(Slot::take).map_err(|_| closed_error(func));
    }
    if let Some(d) = timeout.filter(|d| d.is_zero()) {
        return Err(timeout_error(func, "the channel is empty", d));
    }
    let mut backoff = Backoff::new();
    while backoff.snooze() {
        match c.rx.try_recv() {
            Ok(s) => return Ok(s.take()),
            Err(TryRecvError::Disconnected) => return Err(closed_error(func)),
            Err(TryRecvError::Empty) => {}
        }
        if ch.closed.load(Ordering::Acquire) {
            break;
        }
    }
    let after_close = || c.rx.try_recv().map(Slot::take).map_err(|_| closed_error(func));
    if ffi_sdk::deadline::active() {
        // The thread's deadline / cancel token (docs/DEADLINES.md): waits cut to the deadline, and
        // to deadline::slice()s while a token is bound; a value is either received or still queued.
        let end = timeout.map(|d| Instant::now() + d);
        loop {
            ffi_sdk::deadline::check(func)?;
            let own = end.map(|e| e.saturating_duration_since(Instant::now()));
            if let (Some(o), Some(d)) = (own, timeout) {
                if o.is_zero() {
                    return Err(timeout_error(func, "the channel stayed empty", d));
                }
            }
            match ffi_sdk::deadline::slice(own) {
                None => {
                    return select! {
                        recv(c.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
                        recv(c.close_rx) -> _ => after_close(),
                    }
                }
                Some(cut) => select! {
                    recv(c.rx) -> r => return r.map(Slot::take).map_err(|_| closed_error(func)),
                    recv(c.close_rx) -> _ => return after_close(),
                    default(cut) => {}
                },
            }
        }
    }
    match timeout {
        None => select! {
            recv(c.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
            recv(c.close_rx) -> _ => after_close(),
        },
        Some(d) => select! {
            recv(c.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
            recv(c.close_rx) -> _ => after_close(),
            default(d) => Err(timeout_error(func, "the channel stayed empty", d)),
        },
    }
}

/// Closes the channel: sends fail with Error Closed from now on, receivers drain what is left and then get Error Closed; blocked senders and receivers wake. True if it was open (idempotent).
///
/// # Errors
/// - Closed: `channel` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_channel_close(channel: Handle<Channel>) -> bool {
    let was_open = !channel.closed.swap(true, Ordering::SeqCst);
    match &channel.flavor {
        Flavor::Ring(r) => r.wake_all(),
        Flavor::Cb(c) => drop(c.close_tx.lock().take()),
    }
    was_open
}

/// Whether `rt_channel_close` was called on the channel.
///
/// # Errors
/// - Closed: `channel` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_channel_is_closed(channel: Handle<Channel>) -> bool {
    channel.closed.load(Ordering::Acquire)
}

/// Number of values waiting in the channel (a snapshot).
///
/// # Errors
/// - Closed: `channel` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_channel_len(channel: Handle<Channel>) -> i64 {
    match &channel.flavor {
        Flavor::Ring(r) => r.len() as i64,
        Flavor::Cb(c) => c.rx.len() as i64,
    }
}

/// The channel's capacity: an int, or nil for an unbounded channel.
///
/// # Errors
/// - Closed: `channel` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_channel_capacity(channel: Handle<Channel>) -> Option<i64> {
    channel.capacity.map(|c| c as i64)
}
