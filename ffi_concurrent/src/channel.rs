//! Channels of values (crossbeam-channel): bounded, rendezvous (capacity 0)
//! and unbounded. A value in the channel is pinned until it is received.

use crate::slot::Slot;
use crate::{Backoff, FastOpts};
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender, TryRecvError, TrySendError};
use ffi_sdk::prelude::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest bounded capacity (larger buffers: use an unbounded channel).
pub const MAX_CAPACITY: i64 = 1 << 24;

/// A channel; both ends live in the one handle.
pub struct Channel {
    tx: Sender<Slot>,
    rx: Receiver<Slot>,
    closed: AtomicBool,
    /// Dropped by close: wakes every blocked send and recv.
    close_tx: Mutex<Option<Sender<()>>>,
    close_rx: Receiver<()>,
    capacity: Option<usize>,
}

impl HandleType for Channel {
    const NAME: &'static str = "Channel";
}

/// A channel of values: `capacity` 0 = rendezvous (a send waits for a receiver), n = bounded (0..=16777216), nil = unbounded.
#[rt_fn(ret = "handle<Channel>", tier = "empirical")]
pub fn rt_channel_create(capacity: Option<i64>) -> RtResult<Value> {
    let (tx, rx) = match capacity {
        None => unbounded(),
        Some(c) if (0..=MAX_CAPACITY).contains(&c) => bounded(c as usize),
        Some(c) => return Err(Error::new(Code::OutOfRange, FN, format!("capacity must be in 0..={MAX_CAPACITY} or nil (unbounded)"), c)),
    };
    let (ctx, crx) = bounded(0);
    Ok(new_handle(Channel {
        tx,
        rx,
        closed: AtomicBool::new(false),
        close_tx: Mutex::new(Some(ctx)),
        close_rx: crx,
        capacity: capacity.map(|c| c as usize),
    }))
}

fn closed_error(func: &str) -> Error {
    Error::plain(Code::Closed, func, "the channel is closed")
}

fn timeout_error(func: &str, what: &str, d: Duration) -> Error {
    let ms = d.as_millis() as i64;
    Error::new(Code::Timeout, func, what, format!("timeout_ms {ms}")).with("timeout_ms", ms)
}

/// Sends `value` (pinned while in the channel), waiting while a bounded channel is full. Option `timeout_ms`: Error Timeout. Error Closed on a closed channel (also when it closes while the send waits).
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_channel_send(channel: Handle<Channel>, value: Value, opts: FastOpts) -> RtResult<()> {
    opts.only(&["timeout_ms"])?;
    if channel.closed.load(Ordering::Acquire) {
        return Err(closed_error(FN));
    }
    let mut slot = Slot::new(value);
    // A rendezvous needs a waiting receiver: no point in retrying before blocking.
    let mut backoff = Backoff::new();
    loop {
        slot = match channel.tx.try_send(slot) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(s)) => s,
            Err(TrySendError::Disconnected(_)) => return Err(closed_error(FN)),
        };
        if channel.capacity == Some(0) || !backoff.snooze() {
            break;
        }
    }
    let timeout = opts.timeout()?;
    let ch = &*channel;
    if ffi_sdk::deadline::active() {
        // The thread's deadline / cancel token (docs/DEADLINES.md): waits cut to the deadline, and
        // to deadline::slice()s while a token is bound; on Timeout / Cancelled the value was not sent.
        let end = timeout.map(|d| Instant::now() + d);
        loop {
            ffi_sdk::deadline::check(FN)?;
            let own = end.map(|e| e.saturating_duration_since(Instant::now()));
            if let (Some(o), Some(d)) = (own, timeout) {
                if o.is_zero() {
                    return Err(timeout_error(FN, "the channel stayed full", d));
                }
            }
            match ffi_sdk::deadline::slice(own) {
                None => {
                    return select! {
                        send(ch.tx, slot) -> r => r.map_err(|_| closed_error(FN)),
                        recv(ch.close_rx) -> _ => Err(closed_error(FN)),
                    }
                }
                Some(cut) => select! {
                    send(ch.tx, slot) -> r => return r.map_err(|_| closed_error(FN)),
                    recv(ch.close_rx) -> _ => return Err(closed_error(FN)),
                    default(cut) => {}
                },
            }
        }
    }
    match timeout {
        None => select! {
            send(ch.tx, slot) -> r => r.map_err(|_| closed_error(FN)),
            recv(ch.close_rx) -> _ => Err(closed_error(FN)),
        },
        Some(d) => select! {
            send(ch.tx, slot) -> r => r.map_err(|_| closed_error(FN)),
            recv(ch.close_rx) -> _ => Err(closed_error(FN)),
            default(d) => Err(timeout_error(FN, "the channel stayed full", d)),
        },
    }
}

fn recv(func: &'static str, ch: &Channel, timeout: Option<Duration>) -> RtResult<Value> {
    match ch.rx.try_recv() {
        Ok(s) => return Ok(s.take()),
        Err(TryRecvError::Disconnected) => return Err(closed_error(func)),
        Err(TryRecvError::Empty) => {}
    }
    if ch.closed.load(Ordering::Acquire) {
        // A send may have landed just before the close.
        return ch.rx.try_recv().map(Slot::take).map_err(|_| closed_error(func));
    }
    if let Some(d) = timeout.filter(|d| d.is_zero()) {
        return Err(timeout_error(func, "the channel is empty", d));
    }
    let mut backoff = Backoff::new();
    while backoff.snooze() {
        match ch.rx.try_recv() {
            Ok(s) => return Ok(s.take()),
            Err(TryRecvError::Disconnected) => return Err(closed_error(func)),
            Err(TryRecvError::Empty) => {}
        }
        if ch.closed.load(Ordering::Acquire) {
            break;
        }
    }
    let after_close = || ch.rx.try_recv().map(Slot::take).map_err(|_| closed_error(func));
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
                        recv(ch.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
                        recv(ch.close_rx) -> _ => after_close(),
                    }
                }
                Some(cut) => select! {
                    recv(ch.rx) -> r => return r.map(Slot::take).map_err(|_| closed_error(func)),
                    recv(ch.close_rx) -> _ => return after_close(),
                    default(cut) => {}
                },
            }
        }
    }
    match timeout {
        Some(d) if d.is_zero() => Err(timeout_error(func, "the channel is empty", d)),
        None => select! {
            recv(ch.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
            recv(ch.close_rx) -> _ => after_close(),
        },
        Some(d) => select! {
            recv(ch.rx) -> r => r.map(Slot::take).map_err(|_| closed_error(func)),
            recv(ch.close_rx) -> _ => after_close(),
            default(d) => Err(timeout_error(func, "the channel stayed empty", d)),
        },
    }
}

/// Receives the next value, waiting while the channel is empty. Option `timeout_ms` (0: do not wait): Error Timeout. On a closed channel the values still in it are received first, then Error Closed.
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_channel_recv(channel: Handle<Channel>, opts: FastOpts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let t = opts.timeout()?;
    recv(FN, &channel, t)
}

/// Receives a value without waiting: `rt_channel_recv(channel, {timeout_ms: 0})` (Error Timeout when empty, Error Closed when closed and drained).
#[rt_fn(tier = "empirical")]
pub fn rt_channel_try_recv(channel: Handle<Channel>) -> RtResult<Value> {
    recv(FN, &channel, Some(Duration::ZERO))
}

/// Closes the channel: sends fail with Error Closed from now on, receivers drain what is left and then get Error Closed; blocked senders and receivers wake. True if it was open (idempotent).
#[rt_fn(tier = "empirical")]
pub fn rt_channel_close(channel: Handle<Channel>) -> bool {
    let was_open = !channel.closed.swap(true, Ordering::AcqRel);
    drop(channel.close_tx.lock().take());
    was_open
}

/// Whether `rt_channel_close` was called on the channel.
#[rt_fn(tier = "empirical")]
pub fn rt_channel_is_closed(channel: Handle<Channel>) -> bool {
    channel.closed.load(Ordering::Acquire)
}

/// Number of values waiting in the channel (a snapshot).
#[rt_fn(tier = "empirical")]
pub fn rt_channel_len(channel: Handle<Channel>) -> i64 {
    channel.rx.len() as i64
}

/// The channel's capacity: an int, or nil for an unbounded channel.
#[rt_fn(tier = "empirical")]
pub fn rt_channel_capacity(channel: Handle<Channel>) -> Option<i64> {
    channel.capacity.map(|c| c as i64)
}
