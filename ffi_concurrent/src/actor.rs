//! Actors (docs/CONCURRENCY.md, *Actors*): a thread running a callable,
//! with a mailbox it reads with `rt_actor_recv`.
//!
//! The mailbox is an unbounded channel of this crate (`rt_channel_create(nil)`),
//! used through its exports: its values are pinned while queued, as in any
//! channel, and its waits honour `timeout_ms` and the thread's deadline and
//! cancel token the same way. The actor keeps the channel's handle pinned in a
//! [`Slot`] for its whole life. Releasing the Actor handle (`rt_handle_close`,
//! or the collector) closes the mailbox: `rt_channel_close` first (a blocked
//! `rt_actor_recv` wakes with Error Closed), then the channel handle's close
//! (the values still queued are unpinned). So does the handler's return.
//!
//! A running actor keeps its own handle pinned (a running thread keeps its
//! callable alive too): the collector never closes the mailbox under an actor
//! that is still receiving; explicit close does.

use crate::slot::Slot;
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::callable::{Callable, LibraryThread};
use ffi_sdk::prelude::*;
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Outcome {
    done: bool,
    joined: bool,
    result: Option<Slot>,
}

/// An actor: its id, mailbox (a Channel handle, pinned), outcome and join handle.
pub struct Actor {
    id: u64,
    mailbox: Slot,
    /// Set by the first `close_mailbox`.
    mailbox_closed: AtomicBool,
    state: Mutex<Outcome>,
    cv: Condvar,
    join: Mutex<Option<std::thread::JoinHandle<()>>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Actor {
    const NAME: &'static str = "Actor";
}

impl Actor {
    /// The mailbox's Channel handle word (pinned by `self`).
    fn mailbox(&self) -> RtValue {
        self.mailbox.get().raw()
    }
    /// Closes the mailbox: later sends fail, a blocked receive wakes, the
    /// values still queued are unpinned (at once, or when the receive in
    /// flight returns). Idempotent.
    fn close_mailbox(&self) {
        if self.mailbox_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let m = self.mailbox();
        // Wakes a receiver waiting on the (unbounded) channel: its wait holds a borrow of the
        // channel handle, which the handle's release below waits for.
        let _ = crate::channel::rt_channel_close(m);
        // SAFETY: `m` is a Channel handle word kept alive by `self.mailbox`'s pin; core's close is
        // idempotent and thread-safe, and never frees the channel under a borrow in flight.
        unsafe { abi::rt__handle_close(m) };
    }
}

// The handle's vtable: as `new_handle`'s, except that releasing the handle's
// owner also closes the mailbox (the thread keeps its own owner).
unsafe extern "C" fn actor_acquire(p: *const ()) {
    Arc::increment_strong_count(p as *const Actor);
}
unsafe extern "C" fn actor_release(p: *const ()) {
    let a = Arc::from_raw(p as *const Actor);
    let _ = catch_unwind(AssertUnwindSafe(|| a.close_mailbox()));
    drop(a);
}
static ACTOR_VT: abi::HandleVTable = abi::HandleVTable { type_name: <Actor as HandleType>::NAME, acquire: actor_acquire, release: actor_release };

thread_local! {
    /// The actor whose handler runs on this thread (set for the handler's call).
    static CURRENT: RefCell<Option<Arc<Actor>>> = const { RefCell::new(None) };
}

fn current() -> Option<Arc<Actor>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// An Error the mailbox's channel returned, restated for `func` and the actor.
fn restate(func: &'static str, actor: &Actor, w: RtValue, timeout: Option<Duration>) -> Error {
    let (code, msg) = Value::from_raw(w).error().unwrap_or((Code::Internal, String::new()));
    if matches!(code, Code::Timeout | Code::Cancelled) {
        if let Some(c) = ffi_sdk::deadline::status() {
            return ffi_sdk::deadline::error(func, c).with("actor", actor.id as i64);
        }
        if let (Code::Timeout, Some(d)) = (code, timeout) {
            let ms = d.as_millis() as i64;
            return Error::new(Code::Timeout, func, "the mailbox stayed empty", format!("actor {}, timeout_ms {ms}", actor.id))
                .with("timeout_ms", ms)
                .with("actor", actor.id as i64);
        }
    }
    if code == Code::Closed {
        let what = if actor.state.lock().done { "the actor has finished" } else { "the actor's mailbox is closed (its handle was closed)" };
        return Error::new(Code::Closed, func, what, format!("actor {}", actor.id)).with("actor", actor.id as i64);
    }
    let rest = msg.split_once(": ").map_or(msg.as_str(), |(_, r)| r);
    Error::new(code, func, rest, format!("actor {}", actor.id)).with("actor", actor.id as i64)
}

/// Starts an actor: `handler(context)` on a new thread with a mailbox;
/// returns an Actor handle. Capability `thread`.
///
/// `handler` is a callable as for `rt_thread_spawn`: a registered
/// function's name (arity 1, or 0 with `context` nil) or a Callback handle;
/// it reads its mailbox with `rt_actor_recv`; others use `rt_actor_send`,
/// `rt_actor_join`, `rt_actor_id`, `rt_actor_is_alive`. `context` (Simple
/// passes an array of captures) stays pinned until the handler returns. The
/// thread runs under the caller's deadline and cancel tokens. The mailbox
/// closes when the handler returns or the handle is closed (the messages
/// still in it are dropped).
///
/// # Errors
/// - NotFound: when `handler` names no registered function
/// - InvalidArgument: when `handler` names a host-surface function, or its arity is not 1 (or 0 with `context` nil)
/// - Closed: when `handler` is a closed Callback handle
/// - Io: when the operating system refuses a new thread
#[rt_fn(cap = "thread", ret = "handle<Actor>", tier = "empirical")]
pub fn rt_actor_spawn(handler: Value, context: Value) -> RtResult<Value> {
    let callable = Callable::from_value(FN, 0, "handler", handler)?;
    let args = match callable.arity() {
        1 => vec![Slot::new(context)],
        0 if context.is_nil() => Vec::new(),
        0 => {
            return Err(Error::invalid(
                FN,
                "the handler takes no argument but context is not nil",
                format!("{} takes 0", callable.describe()),
            ))
        }
        n => {
            return Err(Error::invalid(
                FN,
                "the handler must take 1 argument (or 0 with context nil)",
                format!("{} takes {n}", callable.describe()),
            ))
        }
    };
    let mailbox = Value::from_raw(crate::channel::rt_channel_create(abi::NIL));
    if let Some((code, msg)) = mailbox.error() {
        return Err(Error { code, message: format!("{FN}: creating the mailbox: {msg}"), details: Vec::new() });
    }
    let actor = Arc::new(Actor {
        id: crate::new_id(),
        mailbox: Slot::new(mailbox),
        mailbox_closed: AtomicBool::new(false),
        state: Mutex::new(Outcome { done: false, joined: false, result: None }),
        cv: Condvar::new(),
        join: Mutex::new(None),
    });
    // On failure (out of memory) the core releases the owner (closing the mailbox) and returns an Error value.
    // SAFETY: `ACTOR_VT` is a `'static` vtable whose acquire/release are those of `Arc<Actor>`
    // under the name `Actor` (so `Handle<Actor>` reads the data back as that type); the data is
    // one strong count from `Arc::into_raw`, moved into the handle.
    let h = Value::from_raw(unsafe { abi::rt__handle_new(&ACTOR_VT, Arc::into_raw(actor.clone()) as *const ()) });
    if h.is_error() {
        return Ok(h);
    }
    // The running actor keeps its handle (and so its mailbox) alive (module doc).
    let own = Slot::new(h);
    let mine = actor.clone();
    // The new thread runs under the caller's deadline and cancel tokens (docs/DEADLINES.md).
    let scope = ffi_sdk::deadline::Captured::capture();
    let spawned = std::thread::Builder::new().spawn(move || {
        let _reg = LibraryThread::enter();
        crate::set_current_id(mine.id);
        scope.install();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(mine.clone()));
        let raw: Vec<RtValue> = args.iter().map(|s| s.get().raw()).collect();
        let w = match catch_unwind(AssertUnwindSafe(|| callable.call(FN, &raw))) {
            Ok(w) => w,
            Err(_) => Error::plain(Code::Panic, FN, "the actor's handler panicked").into_value().raw(),
        };
        let res = Slot::new(Value::from_raw(w));
        drop(raw);
        drop(args);
        drop(callable);
        let _ = CURRENT.try_with(|c| c.borrow_mut().take());
        {
            let mut st = mine.state.lock();
            st.result = Some(res);
            st.done = true;
        }
        // Sends fail from now on (`done`); what is still queued is unpinned.
        mine.close_mailbox();
        mine.cv.notify_all();
        drop(own);
    });
    match spawned {
        Ok(jh) => {
            *actor.join.lock() = Some(jh);
            Ok(h)
        }
        Err(e) => {
            // SAFETY: `h` is the handle word made above, alive on this stack; close is idempotent.
            unsafe { abi::rt__handle_close(h.raw()) };
            Err(Error::io(FN, "spawning the actor's thread", &e))
        }
    }
}

/// Sends `message` to the actor's mailbox (pinned while queued; never waits:
/// the mailbox is unbounded). Messages from one sender arrive in order.
///
/// # Errors
/// - Closed: when the actor has finished (its handler returned) or its handle was closed
/// - Timeout, Cancelled: when the calling thread's deadline has passed or a cancel token bound to it was triggered (nothing was sent)
#[rt_fn(tier = "empirical")]
pub fn rt_actor_send(actor: Handle<Actor>, message: Value) -> RtResult<()> {
    if !crate::ring::storable(message.raw()) {
        return Err(ffi_sdk::args::kind_error(FN, 1, "message", "a value", message));
    }
    if actor.state.lock().done {
        return Err(Error::new(Code::Closed, FN, "the actor has finished", format!("actor {}", actor.id)).with("actor", actor.id as i64));
    }
    let w = crate::channel::rt_channel_send(actor.mailbox(), message.raw(), abi::NIL);
    if Value::from_raw(w).is_error() {
        return Err(restate(FN, &actor, w, None));
    }
    Ok(())
}

/// Receives the next message of the calling actor's own mailbox, waiting
/// while it is empty.
///
/// Called by an actor's handler (`rt_actor_spawn`), on the actor's thread.
/// Honours the thread's deadline and cancel token (docs/DEADLINES.md).
/// `opts` may be omitted (nil).
///
/// # Options
/// - timeout_ms (int, default none: wait until a message comes): Error Timeout when none came in time (0: do not wait)
///
/// # Errors
/// - InvalidArgument: when not called from an actor thread, or on an unknown option or a negative timeout_ms
/// - Closed: when the actor's handle was closed (the mailbox with it)
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_actor_recv(opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let timeout = crate::timeout_opt(&opts)?;
    let Some(me) = current() else {
        return Err(Error::invalid(FN, "not called from an actor thread", format!("thread {}", crate::current_id())));
    };
    let o = match timeout {
        None => Value::NIL,
        Some(d) => Value::dict().set("timeout_ms", Value::int(d.as_millis() as i64)),
    };
    let w = crate::channel::rt_channel_recv(me.mailbox(), o.raw());
    let v = Value::from_raw(w);
    if v.is_error() {
        return Err(restate(FN, &me, w, timeout));
    }
    Ok(v)
}

/// Waits for the actor's handler to return and returns its result; an Error
/// the handler returned is returned as it is (its code and message). Same
/// semantics as `rt_thread_join`: on Timeout the actor runs on and can be
/// joined later; a second join is an Error.
///
/// # Options
/// - timeout_ms (int, default none: wait until it returns): Error Timeout when it is still running then
///
/// # Errors
/// - InvalidArgument: when the actor was joined already, an actor joins itself, an unknown option or a negative timeout_ms
/// - Closed: when the actor's handle was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_actor_join(actor: Handle<Actor>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let timeout = crate::timeout_opt(&opts)?;
    if actor.id == crate::current_id() {
        return Err(Error::invalid(FN, "an actor cannot join itself", format!("actor {}", actor.id)));
    }
    let deadline = timeout.map(|d| Instant::now() + d);
    let mut st = actor.state.lock();
    if st.joined {
        return Err(Error::invalid(FN, "the actor was joined already", format!("actor {}", actor.id)));
    }
    while !st.done {
        // The caller's deadline / cancel token (docs/DEADLINES.md): Error Timeout / Cancelled, the
        // actor running on and the handle still joinable, as for timeout_ms (as rt_thread_join).
        if let Some(c) = ffi_sdk::deadline::status() {
            return Err(ffi_sdk::deadline::error(FN, c).with("actor", actor.id as i64));
        }
        let cut = ffi_sdk::deadline::slice(None).map(|t| Instant::now() + t);
        if let Some(u) = cut.filter(|u| deadline.is_none_or(|d| *u < d)) {
            actor.cv.wait_until(&mut st, u);
            continue;
        }
        match deadline {
            None => actor.cv.wait(&mut st),
            Some(d) => {
                if actor.cv.wait_until(&mut st, d).timed_out() && !st.done {
                    let ms = timeout.unwrap_or(Duration::ZERO).as_millis();
                    return Err(Error::new(Code::Timeout, FN, "the actor is still running", format!("actor {}, timeout_ms {ms}", actor.id))
                        .with("timeout_ms", ms as i64));
                }
            }
        }
    }
    st.joined = true;
    let res = st.result.take();
    drop(st);
    // The thread has stored its result and is returning: reclaim it.
    if let Some(jh) = actor.join.lock().take() {
        let _ = jh.join();
    }
    Ok(res.map(Slot::take).unwrap_or(Value::NIL))
}

/// The actor's id: a process-unique int from 1, the same as `rt_thread_id(nil)`
/// on the actor's thread.
///
/// # Errors
/// - Closed: when the actor's handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_actor_id(actor: Handle<Actor>) -> i64 {
    actor.id as i64
}

/// Whether the actor's handler is still running (false once it returned).
///
/// # Errors
/// - Closed: when the actor's handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_actor_is_alive(actor: Handle<Actor>) -> bool {
    !actor.state.lock().done
}
