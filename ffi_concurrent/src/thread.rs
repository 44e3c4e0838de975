//! Threads running a callable (docs/CONCURRENCY.md).

use crate::slot::Slot;
use ffi_sdk::abi::RtValue;
use ffi_sdk::callable::{Callable, LibraryThread};
use ffi_sdk::prelude::*;
use parking_lot::{Condvar, Mutex};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Smallest and largest stack a spawned thread may ask for.
pub const MIN_STACK: i64 = 64 << 10;
pub const MAX_STACK: i64 = 1 << 30;

struct Outcome {
    done: bool,
    joined: bool,
    result: Option<Slot>,
}

/// A thread the library started: its id, name, outcome and join handle.
pub struct Thread {
    id: u64,
    name: String,
    state: Mutex<Outcome>,
    cv: Condvar,
    join: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts a thread that calls `callable` with `args` (pinned until the call returns).
fn start(func: &'static str, callable: Callable, args: Vec<Slot>, opts: Opts) -> RtResult<Value> {
    opts.only(&["name", "stack_size"])?;
    let name = opts.text("name")?.map(str::to_string);
    if let Some(n) = &name {
        if n.contains('\0') {
            return Err(Error::invalid(func, "option name must not contain NUL", error_quote(n)));
        }
    }
    let stack = opts.int_in("stack_size", MIN_STACK, MAX_STACK)?;
    let id = crate::new_id();
    let t = std::sync::Arc::new(Thread {
        id,
        name: name.clone().unwrap_or_default(),
        state: Mutex::new(Outcome { done: false, joined: false, result: None }),
        cv: Condvar::new(),
        join: Mutex::new(None),
    });
    let mine = t.clone();
    let mut b = std::thread::Builder::new();
    if let Some(n) = name {
        b = b.name(n);
    }
    if let Some(s) = stack {
        b = b.stack_size(s as usize);
    }
    // The new thread runs under the caller's deadline and cancel tokens (docs/DEADLINES.md).
    let scope = ffi_sdk::deadline::Captured::capture();
    let jh = b
        .spawn(move || {
            let _reg = LibraryThread::enter();
            crate::set_current_id(mine.id);
            scope.install();
            let raw: Vec<RtValue> = args.iter().map(|s| s.get().raw()).collect();
            let w = match catch_unwind(AssertUnwindSafe(|| callable.call(func, &raw))) {
                Ok(w) => w,
                Err(_) => Error::plain(Code::Panic, func, "the thread's callable panicked").into_value().raw(),
            };
            let res = Slot::new(Value::from_raw(w));
            drop(raw);
            drop(args);
            drop(callable);
            let mut st = mine.state.lock();
            st.result = Some(res);
            st.done = true;
            drop(st);
            mine.cv.notify_all();
        })
        .map_err(|e| Error::io(func, "spawning a thread", &e))?;
    *t.join.lock() = Some(jh);
    Ok(new_handle(ArcThread(t)))
}

fn error_quote(s: &str) -> String {
    ffi_sdk::error::quote(s)
}

/// The handle's resource: shares the thread's state with the thread itself.
pub struct ArcThread(std::sync::Arc<Thread>);
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for ArcThread {
    const NAME: &'static str = "Thread";
}
impl std::ops::Deref for ArcThread {
    type Target = Thread;
    fn deref(&self) -> &Thread {
        &self.0
    }
}

fn spawn_args(func: &'static str, callable: &Callable, arg: Value) -> RtResult<Vec<Slot>> {
    match callable.arity() {
        1 => Ok(vec![Slot::new(arg)]),
        0 if arg.is_nil() => Ok(Vec::new()),
        0 => Err(Error::invalid(
            func,
            "the callable takes no argument but arg is not nil",
            format!("{} takes 0", callable.describe()),
        )),
        n => Err(Error::invalid(func, "the callable must take 1 argument (or 0 with arg nil)", format!("{} takes {n}", callable.describe()))),
    }
}

/// Runs `callable(arg)` on a new thread; returns a Thread handle for `rt_thread_join`. `callable`: a registered
/// function's name (arity 1, or 0 with `arg` nil) or a Callback handle. `arg` stays pinned until the call
/// returns.
///
/// # Options
/// - name (text): the thread's name (no NUL)
/// - stack_size (int 65536..=1 GiB): the thread's stack, in bytes
///
/// # Errors
/// - NotFound: `callable` names no registered function
/// - InvalidArgument: the callable's arity does not fit `arg`, an unknown option, or a bad name or stack_size
/// - Closed: the Callback handle was closed
/// - Io: the thread could not be created (details.errno)
#[rt_fn(cap = "thread", ret = "handle<Thread>", tier = "empirical")]
pub fn rt_thread_spawn(callable: Value, arg: Value, opts: Opts) -> RtResult<Value> {
    let c = Callable::from_value(FN, 0, "callable", callable)?;
    let args = spawn_args(FN, &c, arg)?;
    start(FN, c, args, opts)
}

/// Simple's name: `rt_thread_spawn(closure, nil, nil)` (the callable takes 0 or 1 argument; 1 gets nil). Capability `thread`.
///
/// # Errors
/// - InvalidArgument: the callable must take 0 or 1 argument; argument … (<name>) names a host-surface function (C types), not a callable; option name must not contain NUL
/// - NotFound: argument … (<name>) names no registered function
/// - Io: an operating-system failure (details.errno)
/// - Closed: argument … (<name>) is a closed Callback handle
#[rt_fn(cap = "thread", ret = "handle<Thread>", tier = "empirical")]
pub fn rt_thread_spawn_isolated(closure: Value) -> RtResult<Value> {
    let c = Callable::from_value(FN, 0, "closure", closure)?;
    let args = match c.arity() {
        0 => Vec::new(),
        1 => vec![Slot::new(Value::NIL)],
        n => return Err(Error::invalid(FN, "the callable must take 0 or 1 argument", format!("{} takes {n}", c.describe()))),
    };
    start(FN, c, args, Opts::new(FN, Value::NIL))
}

/// Simple's name: runs `closure(data1, data2)` on a new thread (a callable of arity 2, e.g. from `rt_callback_new2`); both stay pinned until the call returns. Capability `thread`.
///
/// # Errors
/// - InvalidArgument: argument … (<name>) names a host-surface function (C types), not a callable; option name must not contain NUL
/// - NotFound: argument … (<name>) names no registered function
/// - Io: an operating-system failure (details.errno)
/// - Closed: argument … (<name>) is a closed Callback handle
#[rt_fn(cap = "thread", ret = "handle<Thread>", tier = "empirical")]
pub fn rt_thread_spawn_isolated2(closure: Value, data1: Value, data2: Value) -> RtResult<Value> {
    let c = Callable::from_value(FN, 0, "closure", closure)?;
    c.expect_arity(FN, 2)?;
    start(FN, c, vec![Slot::new(data1), Slot::new(data2)], Opts::new(FN, Value::NIL))
}

/// Waits for the thread and returns its callable's result (or that Error). Joining a second time is Error
/// InvalidArgument.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout when it passes (the thread keeps running, the handle stays valid, join again later)
///
/// # Errors
/// - InvalidArgument: a thread cannot join itself; the thread was joined already; an unknown option, or an option of the wrong kind or range
/// - Closed: `thread` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_thread_join(thread: Handle<ArcThread>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let timeout = crate::timeout_opt(&opts)?;
    if thread.id == crate::current_id() {
        return Err(Error::invalid(FN, "a thread cannot join itself", format!("thread {}", thread.id)));
    }
    let deadline = timeout.map(|d| Instant::now() + d);
    let mut st = thread.state.lock();
    if st.joined {
        return Err(Error::invalid(FN, "the thread was joined already", format!("thread {}", thread.id)));
    }
    while !st.done {
        // The caller's deadline / cancel token (docs/DEADLINES.md): Error Timeout / Cancelled, the
        // thread running on and the handle still joinable, as for timeout_ms. Waits are cut to the
        // deadline, and to deadline::slice()s while a token is bound (a condvar cannot poll it).
        if let Some(c) = ffi_sdk::deadline::status() {
            return Err(ffi_sdk::deadline::error(FN, c).with("thread", thread.id as i64));
        }
        let cut = ffi_sdk::deadline::slice(None).map(|t| Instant::now() + t);
        if let Some(u) = cut.filter(|u| deadline.is_none_or(|d| *u < d)) {
            thread.cv.wait_until(&mut st, u);
            continue;
        }
        match deadline {
            None => thread.cv.wait(&mut st),
            Some(d) => {
                if thread.cv.wait_until(&mut st, d).timed_out() && !st.done {
                    let ms = timeout.unwrap_or(Duration::ZERO).as_millis();
                    return Err(Error::new(Code::Timeout, FN, "the thread is still running", format!("thread {}, timeout_ms {ms}", thread.id))
                        .with("timeout_ms", ms as i64));
                }
            }
        }
    }
    st.joined = true;
    let res = st.result.take();
    drop(st);
    // The thread has stored its result and is returning: reclaim it.
    if let Some(jh) = thread.join.lock().take() {
        let _ = jh.join();
    }
    Ok(res.map(Slot::take).unwrap_or(Value::NIL))
}

/// Whether the thread's callable has returned.
///
/// # Errors
/// - Closed: `thread` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_is_done(thread: Handle<ArcThread>) -> bool {
    thread.state.lock().done
}

/// Releases a Thread handle without joining (the thread runs on, detached; its result is dropped). Same as `rt_handle_close`.
///
/// # Errors
/// - Closed: `thread` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_free(thread: Handle<ArcThread>) {
    thread.close();
}

/// The id of a Thread handle's thread, or with nil the calling thread's id (process-unique ints from 1, not OS ids).
///
/// # Errors
/// - Closed: `thread` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_id(thread: Option<Handle<ArcThread>>) -> i64 {
    match thread {
        Some(t) => t.id as i64,
        None => crate::current_id() as i64,
    }
}

/// The name a Thread was spawned with ("" when none).
///
/// # Errors
/// - Closed: `thread` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_thread_name(thread: Handle<ArcThread>) -> String {
    thread.name.clone()
}

/// Sleeps the calling thread for `ms` milliseconds (0..=2^31).
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: ms must be in 0..=2147483648
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_thread_sleep_ms(ms: i64) -> RtResult<()> {
    if !(0..=(1i64 << 31)).contains(&ms) {
        return Err(Error::new(Code::OutOfRange, FN, "ms must be in 0..=2147483648", ms));
    }
    // Wakes early with Error Timeout / Cancelled (docs/DEADLINES.md).
    ffi_sdk::deadline::sleep(FN, Duration::from_millis(ms as u64))
}

/// How many threads can run at once (`std::thread::available_parallelism`; cgroup and affinity aware); 1 when unknown.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_thread_available_parallelism() -> i64 {
    std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1)
}
