//! Parallel map and for-each on a rayon pool whose threads are registered
//! with the collector for their whole life. Only indexes go through rayon:
//! each worker reads item i from the input array (kept reachable by the
//! caller's stack) and stores its result straight into slot i of the
//! output array (collector memory), so no value sits in Rust-owned memory.

use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::callable::{library_thread_exit, library_thread_start, Callable};
use ffi_sdk::prelude::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

static POOL: OnceLock<Result<rayon::ThreadPool, String>> = OnceLock::new();

/// The library's worker pool (one thread per available CPU), started on first use.
pub fn pool(func: &str) -> RtResult<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("rt-worker-{i}"))
            .start_handler(|_| library_thread_start())
            .exit_handler(|_| library_thread_exit())
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::internal(func, format!("cannot start the worker pool: {e}")))
}

/// Word pointers shared with the workers (collector memory kept alive by the caller's stack).
#[derive(Clone, Copy)]
struct Words(*mut RtValue);
// SAFETY: the pointer names collector memory (an array's item block) that the calling thread's
// stack keeps alive until every worker has returned (`p.scope` joins them before `run`
// returns); it is not tied to the thread that made it.
unsafe impl Send for Words {}
// SAFETY: workers only read input items (relaxed atomic loads) and write output items at
// distinct indices (each index claimed once through `next`), so sharing it races on nothing.
unsafe impl Sync for Words {}

struct Failure {
    index: usize,
    err: Error,
}

fn workers(func: &'static str, opts: &Opts, n: usize) -> RtResult<usize> {
    opts.only(&["threads"])?;
    let p = pool(func)?;
    let cap = opts.int_in("threads", 1, 4096)?.map_or(usize::MAX, |t| t as usize);
    Ok(p.current_num_threads().min(cap).min(n).max(1))
}

/// Items a worker claims at a time: one atomic add per claim on the shared
/// counter (a cache line the workers bounce between them when every item
/// took one), small enough that the last claim finishes about with the
/// others: at least 32 claims per worker, at most 256 items each.
fn claim_size(n: usize, k: usize) -> usize {
    (n / (k * 32)).clamp(1, 256)
}

/// Runs `callable` on every item (on `k` workers); `out` receives results when given.
fn run(func: &'static str, c: &Callable, items: *const RtValue, n: usize, out: Option<Words>, k: usize) -> RtResult<()> {
    // The input (and output) arrays are kept alive by the calling thread's
    // stack while it waits: the collector must scan it (a thread that only
    // ever received values is not registered yet; see slot.rs).
    // SAFETY: core's `void rt__thread_enter(void)`: no arguments, registers the calling thread.
    unsafe { abi::rt__thread_enter() };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first: Mutex<Option<Failure>> = Mutex::new(None);
    let input = Words(items as *mut RtValue);
    let claim = claim_size(n, k);
    // A registered function of arity 1 is called straight through its address.
    let direct: Option<extern "C" fn(RtValue) -> RtValue> = match c {
        // SAFETY: a `Function` comes only from `rt__callable_lookup`, which returns `#[rt_fn]`
        // entries: with arity 1 the address is an `extern "C" fn(RtValue) -> RtValue`.
        Callable::Function { addr, arity: 1, .. } => Some(unsafe { std::mem::transmute::<*const (), extern "C" fn(RtValue) -> RtValue>(*addr) }),
        _ => None,
    };
    let work = || {
        // The whole `Words` (Sync), not its raw pointer field, is captured.
        #[allow(clippy::redundant_locals)]
        let input = input;
        loop {
            let start = next.fetch_add(claim, Ordering::Relaxed);
            if start >= n {
                break;
            }
            for i in start..(start + claim).min(n) {
                // The caller's deadline / cancel token, installed on this worker (docs/DEADLINES.md).
                if failed.load(Ordering::Relaxed) || ffi_sdk::deadline::status().is_some() {
                    failed.store(true, Ordering::Relaxed);
                    return;
                }
                // SAFETY: `i < n`, and the input block (read with its length under the array's lock,
                // `items_ptr`) holds at least `n` 8-aligned words, alive while the caller's stack
                // keeps `items` (a grown array gets a new block; the old one is not freed). A
                // callback may replace an item in place meanwhile (core's rt_array_set, under the
                // lock), so the word is read with a relaxed atomic load, as in `Items::item`.
                let item = unsafe { AtomicU64::from_ptr(input.0.add(i)) }.load(Ordering::Relaxed);
                let w = match direct {
                    Some(f) => f(item),
                    None => c.call(func, &[item]),
                };
                let v = Value::from_raw(w);
                if v.is_error() {
                    let mut f = first.lock();
                    if f.is_none() {
                        *f = Some(Failure { index: i, err: Error::from_value(v) });
                    }
                    failed.store(true, Ordering::Relaxed);
                    return;
                }
                if let Some(o) = out {
                    // SAFETY: `o` is the item block of the fresh `n`-item output array, which no
                    // other code sees until `rt_parallel_map` returns it (kept on its stack); `i < n`
                    // was claimed by this worker alone, so this is the only access to slot i; the
                    // block is collector-scanned, so the stored word is seen from now on.
                    unsafe { std::ptr::write_volatile(o.0.add(i), w) };
                }
            }
        }
    };
    let p = pool(func)?;
    let work = &work;
    // Each worker runs under the caller's scope for this map, then gets its own back (captured
    // here: `scope`'s closure already runs on a pool thread).
    let mut scopes: Vec<ffi_sdk::deadline::Captured> = (0..k).map(|_| ffi_sdk::deadline::Captured::capture()).collect();
    p.scope(|s| {
        for scope in scopes.drain(..) {
            s.spawn(move |_| {
                let _in = scope.enter();
                work()
            });
        }
    });
    ffi_sdk::deadline::check(func)?;
    if let Some(f) = first.into_inner() {
        let msg = f.err.message.clone();
        return Err(Error::plain(f.err.code, func, format!("element {} failed: {msg}", f.index))
            .with("index", f.index)
            .with("error", msg));
    }
    Ok(())
}

fn prepare(func: &'static str, callable: Value) -> RtResult<Callable> {
    let c = Callable::from_value(func, 0, "callable", callable)?;
    c.expect_arity(func, 1)?;
    Ok(c)
}

/// The items of `array` as a word pointer and length (a snapshot, see `Items`).
fn items_ptr(array: Value) -> (*const RtValue, usize) {
    // SAFETY: `array` comes from an `Array` argument, so it is a live array value and `heap_ptr`
    // gives its `ArrayObj`; `items` and `len` are read under the object's lock, so they agree.
    unsafe {
        let a = abi::heap_ptr(array.raw()) as *const abi::ArrayObj;
        let _g = ffi_sdk::lock::lock(a as *mut abi::Header);
        ((*a).items as *const RtValue, (*a).len)
    }
}

/// `[callable(x) for x in array]`, computed on the worker pool, in input order. `callable`: a registered
/// function's name of arity 1 or a Callback handle. The first Error a call returns stops the rest and is returned
/// (its code; message and details name the element's `index`). Capability `thread`.
///
/// # Options
/// - threads (int 1..=4096): at most this many workers (default: one per CPU)
///
/// # Errors
/// - InvalidArgument: argument … (<name>) names a host-surface function (C types), not a callable; an unknown option, or an option of the wrong kind or range
/// - NotFound: argument … (<name>) names no registered function
/// - Closed: argument … (<name>) is a closed Callback handle
#[rt_fn(cap = "thread", blocking, ret = "array", tier = "empirical")]
pub fn rt_parallel_map(callable: Value, array: Array, opts: Opts) -> RtResult<Value> {
    let c = prepare(FN, callable)?;
    let (items, n) = items_ptr(array.0);
    let k = workers(FN, &opts, n)?;
    let mut b = ffi_sdk::ArrayBuilder::new(n)?;
    for _ in 0..n {
        b.push(Value::NIL)?;
    }
    let out = b.finish();
    if n == 0 {
        return Ok(out);
    }
    // SAFETY: `out` is the array `ArrayBuilder` just made with `n > 0` items, so `heap_ptr` is its
    // non-null `ArrayObj` header; nobody else has it yet, so `items` cannot change meanwhile.
    let out_items = unsafe { (*(abi::heap_ptr(out.raw()) as *const abi::ArrayObj)).items };
    run(FN, &c, items, n, Some(Words(out_items)), k)?;
    // `array` and `out` stay on this stack until here.
    std::hint::black_box((array.0, items));
    Ok(out)
}

/// Calls `callable(x)` for every item on the worker pool (in no set order); nil, or the first Error (as
/// `rt_parallel_map`). Capability `thread`.
///
/// # Options
/// - threads (int 1..=4096): threads
///
/// # Errors
/// - InvalidArgument: argument … (<name>) names a host-surface function (C types), not a callable; an unknown option, or an option of the wrong kind or range
/// - NotFound: argument … (<name>) names no registered function
/// - Closed: argument … (<name>) is a closed Callback handle
#[rt_fn(cap = "thread", blocking, tier = "empirical")]
pub fn rt_parallel_for_each(callable: Value, array: Array, opts: Opts) -> RtResult<()> {
    let c = prepare(FN, callable)?;
    let (items, n) = items_ptr(array.0);
    let k = workers(FN, &opts, n)?;
    if n == 0 {
        return Ok(());
    }
    run(FN, &c, items, n, None, k)?;
    std::hint::black_box((array.0, items));
    Ok(())
}
