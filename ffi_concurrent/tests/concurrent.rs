//! ffi_concurrent per function: happy path, bad input, capability denial
//! (in a child process), plus 10,000 spawn/join cycles without leaks.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_concurrent::atomic::*;
use ffi_concurrent::channel::*;
use ffi_concurrent::parallel::*;
use ffi_concurrent::sync::*;
use ffi_concurrent::thread::*;
use ffi_concurrent::tls::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{close, details, dict, err, in_child, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::{Duration, Instant};

fn timeout(ms: i64) -> RtValue {
    dict(&[("timeout_ms", Value::int(ms))])
}

/// 0..n with -13 at index 13 (`double` fails there).
fn ints_bad(n: i64) -> RtValue {
    let a = Value::array(n as usize);
    for i in 0..n {
        a.push(Value::int(if i == 13 { -13 } else { i }));
    }
    a.raw()
}

fn ints(n: i64) -> RtValue {
    let a = Value::array(n as usize);
    for i in 0..n {
        a.push(Value::int(i));
    }
    a.raw()
}

// ---------------- threads ----------------

#[test]
fn spawn_join_callback_and_function_name() {
    let h = ok(rt_thread_spawn(cb1(double, 0).raw(), int(21), NIL));
    assert_eq!(ok(rt_thread_join(h.raw(), NIL)).as_int(), Some(42));
    // A registered function by name, with the arity it declares.
    let h = ok(rt_thread_spawn(text("rt_mutex_new"), text("inside"), dict(&[("name", Value::text("worker-x"))])));
    assert_eq!(ok(rt_thread_name(h.raw())).as_text(), Some("worker-x"));
    let m = ok(rt_thread_join(h.raw(), NIL));
    assert_eq!(ok(rt_mutex_lock(m.raw(), NIL)).as_text(), Some("inside"));
    // Arity 0 with arg nil.
    let h = ok(rt_thread_spawn(text("rt_thread_local_new"), NIL, dict(&[("stack_size", Value::int(1 << 20))])));
    assert!(ok(rt_thread_join(h.raw(), NIL)).kind() == ffi_sdk::abi::Kind::Handle);
}

#[test]
fn join_returns_the_callables_error_and_joins_once() {
    let h = ok(rt_thread_spawn(cb1(double, 0).raw(), int(-13), NIL));
    let (c, m) = err(rt_thread_join(h.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("unlucky"), "{m}");
    let (c, m) = err(rt_thread_join(h.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("rt_thread_join: the thread was joined already"), "{m}");
}

#[test]
fn join_timeout_leaves_the_thread_running() {
    let h = ok(rt_thread_spawn(text("rt_thread_sleep_ms"), int(300), NIL));
    let t = Instant::now();
    let e = rt_thread_join(h.raw(), timeout(20));
    assert_eq!(err(e).0, Code::Timeout);
    assert!(t.elapsed() < Duration::from_millis(250));
    assert_eq!(details(e).get("timeout_ms").as_int(), Some(20));
    assert_eq!(ok(rt_thread_is_done(h.raw())).as_bool(), Some(false));
    assert!(ok(rt_thread_join(h.raw(), NIL)).is_nil());
    assert_eq!(ok(rt_thread_is_done(h.raw())).as_bool(), Some(true));
}

#[test]
fn spawn_bad_input() {
    let cases: Vec<(RtValue, RtValue, RtValue, Code, &str)> = vec![
        (NIL, NIL, NIL, Code::TypeMismatch, "argument 1 (callable) must be a function name (text) or a Callback handle, got nil"),
        (int(5), NIL, NIL, Code::TypeMismatch, "got int 5"),
        (text("rt_no_such_fn"), NIL, NIL, Code::NotFound, "names no registered function (\"rt_no_such_fn\")"),
        (text("rt_value_pin"), NIL, NIL, Code::InvalidArgument, "names a host-surface function"),
        (text("rt_mutex_unlock"), int(1), NIL, Code::InvalidArgument, "takes 2"),
        (text("rt_thread_local_new"), int(1), NIL, Code::InvalidArgument, "takes no argument but arg is not nil"),
        (cb1(double, 0).raw(), int(1), dict(&[("bogus", Value::TRUE)]), Code::InvalidArgument, "unknown option"),
        (cb1(double, 0).raw(), int(1), dict(&[("stack_size", Value::int(10))]), Code::InvalidArgument, "stack_size"),
        (cb1(double, 0).raw(), int(1), dict(&[("name", Value::int(1))]), Code::InvalidArgument, "option name must be text"),
        (cb1(double, 0).raw(), int(1), int(3), Code::TypeMismatch, "argument 3 (opts)"),
    ];
    for (c, a, o, code, frag) in cases {
        let (got, m) = err(rt_thread_spawn(c, a, o));
        assert_eq!(got, code, "{m}");
        assert!(m.starts_with("rt_thread_spawn: ") && m.contains(frag), "{m} lacks {frag}");
    }
    // Closed handles: a closed Callback, a closed Thread.
    let cb = cb1(double, 0);
    close(cb.raw());
    assert_eq!(err(rt_thread_spawn(cb.raw(), int(1), NIL)).0, Code::Closed);
    let h = ok(rt_thread_spawn(cb1(double, 0).raw(), int(1), NIL));
    ok(rt_thread_free(h.raw()));
    assert_eq!(err(rt_thread_join(h.raw(), NIL)).0, Code::Closed);
    // Wrong handle type, bad timeout.
    let m = ok(rt_mutex_new(NIL));
    assert_eq!(err(rt_thread_join(m.raw(), NIL)).0, Code::TypeMismatch);
    let h = ok(rt_thread_spawn(cb1(double, 0).raw(), int(1), NIL));
    assert_eq!(err(rt_thread_join(h.raw(), timeout(-1))).0, Code::InvalidArgument);
    assert_eq!(ok(rt_thread_join(h.raw(), NIL)).as_int(), Some(2));
}

#[test]
fn spawn_isolated_forms() {
    let h = ok(rt_thread_spawn_isolated(text("rt_thread_local_new")));
    assert!(!ok(rt_thread_join(h.raw(), NIL)).is_nil());
    unsafe extern "C" fn add(_: *mut std::ffi::c_void, a: RtValue, b: RtValue) -> RtValue {
        Value::int(Value::from_raw(a).as_int().unwrap_or(0) + Value::from_raw(b).as_int().unwrap_or(0)).raw()
    }
    let h = ok(rt_thread_spawn_isolated2(cb2(add, 0).raw(), int(40), int(2)));
    assert_eq!(ok(rt_thread_join(h.raw(), NIL)).as_int(), Some(42));
    assert_eq!(err(rt_thread_spawn_isolated2(cb1(double, 0).raw(), int(1), int(2))).0, Code::InvalidArgument);
    assert_eq!(err(rt_thread_spawn_isolated(text("rt_mutex_unlock"))).0, Code::InvalidArgument);
    assert_eq!(err(rt_thread_spawn_isolated(NIL)).0, Code::TypeMismatch);
}

#[test]
fn thread_ids_sleep_and_parallelism() {
    let me = ok(rt_thread_id(NIL)).as_int().unwrap();
    assert!(me >= 1);
    assert_eq!(ok(rt_thread_id(NIL)).as_int(), Some(me));
    let h = ok(rt_thread_spawn(text("rt_thread_id"), NIL, NIL));
    let id = ok(rt_thread_id(h.raw())).as_int().unwrap();
    assert_eq!(ok(rt_thread_join(h.raw(), NIL)).as_int(), Some(id), "the thread sees its own id");
    assert_ne!(id, me);
    let t = Instant::now();
    ok(rt_thread_sleep_ms(int(30)));
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(err(rt_thread_sleep_ms(int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_thread_sleep_ms(text("1"))).0, Code::TypeMismatch);
    let n = ok(rt_thread_available_parallelism()).as_int().unwrap();
    assert_eq!(n as usize, std::thread::available_parallelism().unwrap().get());
    assert_eq!(err(rt_thread_is_done(int(1))).0, Code::TypeMismatch);
}

#[test]
fn spawn_join_10000_cycles_leave_nothing_behind() {
    // Warm up (pool, first allocations), then measure.
    for i in 0..200 {
        let h = ok(rt_thread_spawn(cb1(double, 0).raw(), int(i), NIL));
        ok(rt_thread_join(h.raw(), NIL));
    }
    // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
    // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
    // a registered stack or pinned).
    unsafe { rt_gc_collect() };
    let threads0 = thread_count();
    let rss0 = rss_kib();
    let cb = cb1(double, 0);
    for i in 0..10_000i64 {
        let h = ok(rt_thread_spawn(cb.raw(), int(i), NIL));
        assert_eq!(ok(rt_thread_join(h.raw(), NIL)).as_int(), Some(2 * i));
        if i % 1000 == 0 {
            // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
            // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
            // a registered stack or pinned).
            unsafe { rt_gc_collect() };
        }
    }
    // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
    // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
    // a registered stack or pinned).
    unsafe { rt_gc_collect() };
    let threads1 = thread_count();
    let rss1 = rss_kib();
    // Other tests of this binary may run threads meanwhile: allow a few.
    assert!(threads1 <= threads0 + 4, "threads {threads0} -> {threads1}");
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} KiB -> {rss1} KiB after 10,000 spawn/join cycles");
}

// ---------------- mutex ----------------

#[test]
fn mutex_lock_unlock_and_ownership() {
    let m = ok(rt_mutex_new(text("v1")));
    assert_eq!(ok(rt_mutex_lock(m.raw(), NIL)).as_text(), Some("v1"));
    assert_eq!(ok(rt_mutex_is_locked(m.raw())).as_bool(), Some(true));
    let (c, msg) = err(rt_mutex_lock(m.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument, "relock by the holder: {msg}");
    // Another thread: times out, and may not unlock.
    let mw = m.raw();
    std::thread::spawn(move || {
        let (c, msg) = err(rt_mutex_lock(mw, timeout(20)));
        assert_eq!(c, Code::Timeout, "{msg}");
        let (c, msg) = err(rt_mutex_unlock(mw, NIL));
        assert_eq!(c, Code::InvalidArgument);
        assert!(msg.contains("does not hold"), "{msg}");
    })
    .join()
    .unwrap();
    ok(rt_mutex_unlock(m.raw(), text("v2")));
    assert_eq!(err(rt_mutex_unlock(m.raw(), NIL)).0, Code::InvalidArgument, "unlock twice");
    assert_eq!(ok(rt_mutex_lock(m.raw(), timeout(0))).as_text(), Some("v2"));
    ok(rt_mutex_unlock(m.raw(), NIL));
    assert_eq!(ok(rt_mutex_lock(m.raw(), NIL)).as_text(), Some("v2"), "nil keeps the value");
    ok(rt_mutex_unlock(m.raw(), NIL));
    close(m.raw());
    assert_eq!(err(rt_mutex_lock(m.raw(), NIL)).0, Code::Closed);
    assert_eq!(err(rt_mutex_lock(int(1), NIL)).0, Code::TypeMismatch);
    let m = ok(rt_mutex_new(int(0)));
    assert_eq!(err(rt_mutex_lock(m.raw(), dict(&[("timeout", Value::int(1))]))).0, Code::InvalidArgument);
}

#[test]
fn mutex_serialises_increments_from_library_threads() {
    let m = ok(rt_mutex_new(int(0)));
    unsafe extern "C" fn bump(_: *mut std::ffi::c_void, m: RtValue) -> RtValue {
        for _ in 0..500 {
            let v = ffi_concurrent::sync::rt_mutex_lock(m, NIL);
            let n = Value::from_raw(v).as_int().unwrap();
            let r = ffi_concurrent::sync::rt_mutex_unlock(m, Value::int(n + 1).raw());
            if Value::from_raw(r).is_error() {
                return r;
            }
        }
        NIL
    }
    let hs: Vec<Value> = (0..4).map(|_| ok(rt_thread_spawn(cb1(bump, 0).raw(), m.raw(), NIL))).collect();
    for h in hs {
        assert!(ok(rt_thread_join(h.raw(), NIL)).is_nil());
    }
    assert_eq!(ok(rt_mutex_lock(m.raw(), NIL)).as_int(), Some(2000));
    ok(rt_mutex_unlock(m.raw(), NIL));
}

// ---------------- rwlock ----------------

#[test]
fn rwlock_readers_writer_and_simple_names() {
    let rw = ok(rt_rwlock_new(text("a")));
    assert_eq!(ok(rt_rwlock_read_lock(rw.raw(), NIL)).as_text(), Some("a"));
    assert_eq!(ok(rt_rwlock_read_lock(rw.raw(), NIL)).as_text(), Some("a"), "reads nest");
    assert_eq!(err(rt_rwlock_write_lock(rw.raw(), NIL)).0, Code::InvalidArgument, "no upgrade");
    let w = rw.raw();
    std::thread::spawn(move || {
        // Readers share; a writer waits.
        assert_eq!(ok(rt_rwlock_read_lock(w, timeout(50))).as_text(), Some("a"));
        ok(rt_rwlock_read_unlock(w));
        assert_eq!(err(rt_rwlock_write_lock(w, timeout(20))).0, Code::Timeout);
        assert_eq!(err(rt_rwlock_try_write(w)).0, Code::Busy);
        assert_eq!(err(rt_rwlock_read_unlock(w)).0, Code::InvalidArgument);
    })
    .join()
    .unwrap();
    ok(rt_rwlock_read_unlock(rw.raw()));
    ok(rt_rwlock_read_unlock(rw.raw()));
    assert_eq!(err(rt_rwlock_read_unlock(rw.raw())).0, Code::InvalidArgument);
    assert_eq!(ok(rt_rwlock_write_lock(rw.raw(), NIL)).as_text(), Some("a"));
    assert_eq!(ok(rt_rwlock_read(rw.raw())).as_text(), Some("a"), "the writer may read");
    std::thread::spawn(move || {
        assert_eq!(err(rt_rwlock_read_lock(w, timeout(20))).0, Code::Timeout);
        assert_eq!(err(rt_rwlock_try_read(w)).0, Code::Busy);
        assert_eq!(err(rt_rwlock_write_unlock(w, NIL)).0, Code::InvalidArgument);
    })
    .join()
    .unwrap();
    ok(rt_rwlock_write_unlock(rw.raw(), text("b")));
    assert_eq!(ok(rt_rwlock_read(rw.raw())).as_text(), Some("b"));
    assert_eq!(ok(rt_rwlock_try_read(rw.raw())).as_text(), Some("b"));
    assert_eq!(ok(rt_rwlock_set(rw.raw(), text("c"))).as_text(), Some("b"), "set returns the old value");
    assert_eq!(ok(rt_rwlock_write(rw.raw())).as_text(), Some("c"));
    assert_eq!(err(rt_rwlock_try_write(rw.raw())).0, Code::InvalidArgument);
    ok(rt_rwlock_write_unlock(rw.raw(), NIL));
    assert_eq!(ok(rt_rwlock_try_write(rw.raw())).as_text(), Some("c"));
    ok(rt_rwlock_write_unlock(rw.raw(), NIL));
    close(rw.raw());
    assert_eq!(err(rt_rwlock_read(rw.raw())).0, Code::Closed);
    assert_eq!(err(rt_rwlock_read(NIL)).0, Code::TypeMismatch);
}

// ---------------- channels ----------------

#[test]
fn channel_bounded_unbounded_rendezvous() {
    for cap in [NIL, int(4), int(0)] {
        let ch = ok(rt_channel_create(cap));
        let c = ch.raw();
        let h = std::thread::spawn(move || {
            for i in 0..100 {
                ok(rt_channel_send(c, make_nested(i).raw(), NIL));
            }
            ok(rt_channel_close(c));
        });
        for i in 0..100 {
            let v = ok(rt_channel_recv(ch.raw(), NIL));
            assert!(nested_ok(v, i), "item {i}: {}", v.describe());
        }
        h.join().unwrap();
        assert_eq!(err(rt_channel_recv(ch.raw(), NIL)).0, Code::Closed);
        assert_eq!(ok(rt_channel_is_closed(ch.raw())).as_bool(), Some(true));
    }
    let ch = ok(rt_channel_create(NIL));
    assert!(ok(rt_channel_capacity(ch.raw())).is_nil());
    let ch = ok(rt_channel_create(int(2)));
    assert_eq!(ok(rt_channel_capacity(ch.raw())).as_int(), Some(2));
}

#[test]
fn channel_close_drains_then_closed_and_wakes_waiters() {
    let ch = ok(rt_channel_create(int(2)));
    ok(rt_channel_send(ch.raw(), int(1), NIL));
    ok(rt_channel_send(ch.raw(), text("two"), NIL));
    assert_eq!(ok(rt_channel_len(ch.raw())).as_int(), Some(2));
    let (c, m) = err(rt_channel_send(ch.raw(), int(3), timeout(20)));
    assert_eq!(c, Code::Timeout, "{m}");
    assert_eq!(ok(rt_channel_close(ch.raw())).as_bool(), Some(true));
    assert_eq!(ok(rt_channel_close(ch.raw())).as_bool(), Some(false), "idempotent");
    let (c, m) = err(rt_channel_send(ch.raw(), int(4), NIL));
    assert_eq!(c, Code::Closed);
    assert_eq!(m, "rt_channel_send: the channel is closed");
    assert_eq!(ok(rt_channel_recv(ch.raw(), NIL)).as_int(), Some(1));
    assert_eq!(ok(rt_channel_try_recv(ch.raw())).as_text(), Some("two"));
    assert_eq!(err(rt_channel_recv(ch.raw(), NIL)).0, Code::Closed);
    assert_eq!(err(rt_channel_try_recv(ch.raw())).0, Code::Closed);

    // A blocked receiver and a blocked sender wake on close.
    let ch = ok(rt_channel_create(int(0)));
    let c = ch.raw();
    let r = std::thread::spawn(move || err(rt_channel_recv(c, NIL)).0);
    std::thread::sleep(Duration::from_millis(50));
    ok(rt_channel_close(ch.raw()));
    assert_eq!(r.join().unwrap(), Code::Closed);
    let ch = ok(rt_channel_create(int(0)));
    let c = ch.raw();
    let s = std::thread::spawn(move || err(rt_channel_send(c, int(1), NIL)).0);
    std::thread::sleep(Duration::from_millis(50));
    ok(rt_channel_close(ch.raw()));
    assert_eq!(s.join().unwrap(), Code::Closed);
}

#[test]
fn channel_bad_input() {
    assert_eq!(err(rt_channel_create(int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_channel_create(int(1 << 40))).0, Code::OutOfRange);
    assert_eq!(err(rt_channel_create(text("4"))).0, Code::TypeMismatch);
    let ch = ok(rt_channel_create(int(1)));
    assert_eq!(err(rt_channel_try_recv(ch.raw())).0, Code::Timeout, "empty");
    let t = Instant::now();
    assert_eq!(err(rt_channel_recv(ch.raw(), timeout(30))).0, Code::Timeout);
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(err(rt_channel_recv(ch.raw(), dict(&[("wait", Value::TRUE)]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_channel_send(int(3), NIL, NIL)).0, Code::TypeMismatch);
    close(ch.raw());
    assert_eq!(err(rt_channel_send(ch.raw(), NIL, NIL)).0, Code::Closed);
    assert_eq!(err(rt_channel_recv(ch.raw(), NIL)).0, Code::Closed);
    assert_eq!(err(rt_channel_is_closed(ch.raw())).0, Code::Closed);
}

// ---------------- parallel ----------------

#[test]
fn parallel_map_keeps_order() {
    let out = ok(rt_parallel_map(cb1(double, 0).raw(), ints(10_000), NIL));
    assert_eq!(out.len(), 10_000);
    for i in 0..10_000 {
        assert_eq!(out.at(i).as_int(), Some(2 * i as i64));
    }
    let out = ok(rt_parallel_map(cb1(nested, 0).raw(), ints(500), dict(&[("threads", Value::int(2))])));
    for i in 0..500 {
        assert!(nested_ok(out.at(i), i as i64));
    }
    assert_eq!(ok(rt_parallel_map(cb1(double, 0).raw(), Value::array(0).raw(), NIL)).len(), 0);
    // By name: each item becomes a Mutex holding it.
    let out = ok(rt_parallel_map(text("rt_mutex_new"), ints(8), NIL));
    assert_eq!(ok(rt_mutex_lock(out.at(5).raw(), NIL)).as_int(), Some(5));
}

#[test]
fn parallel_map_first_error_wins_with_its_index() {
    let e = rt_parallel_map(cb1(double, 0).raw(), ints_bad(100), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("rt_parallel_map: element 13 failed: double: unlucky (-13)"), "{m}");
    assert_eq!(details(e).get("index").as_int(), Some(13));
    let (c, m) = err(rt_parallel_for_each(cb1(double, 0).raw(), ints_bad(20), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("element 13"), "{m}");
    // A callback that returns a word that is no value.
    let (c, m) = err(rt_parallel_map(cb1(garbage, 0).raw(), ints(3), NIL));
    assert_eq!(c, Code::Internal);
    assert!(m.contains("invalid value word"), "{m}");
}

#[test]
fn parallel_for_each_runs_every_item() {
    let counter = ok(rt_atomic_int_new(int(0)));
    unsafe extern "C" fn add(_: *mut std::ffi::c_void, a: RtValue) -> RtValue {
        // The item is [counter, n].
        let v = Value::from_raw(a);
        ffi_concurrent::atomic::rt_atomic_int_fetch_add(v.at(0).raw(), v.at(1).raw())
    }
    let items = Value::array(0);
    for i in 1..=1000 {
        items.push(Value::array(2).push(counter).push(Value::int(i)));
    }
    assert!(ok(rt_parallel_for_each(cb1(add, 0).raw(), items.raw(), dict(&[("threads", Value::int(3))]))).is_nil());
    assert_eq!(ok(rt_atomic_int_load(counter.raw())).as_int(), Some(500_500));
}

#[test]
fn parallel_bad_input() {
    let f = |c: RtValue, a: RtValue, o: RtValue| err(rt_parallel_map(c, a, o));
    assert_eq!(f(NIL, ints(2), NIL).0, Code::TypeMismatch);
    assert_eq!(f(text("rt_nope"), ints(2), NIL).0, Code::NotFound);
    let (c, m) = f(text("rt_mutex_unlock"), ints(2), NIL);
    assert_eq!(c, Code::InvalidArgument);
    assert_eq!(m, "rt_parallel_map: the callable must take 1 argument (rt_mutex_unlock takes 2)");
    unsafe extern "C" fn two(_: *mut std::ffi::c_void, a: RtValue, _b: RtValue) -> RtValue {
        a
    }
    let (c, m) = f(cb2(two, 0).raw(), ints(2), NIL);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("callback takes 2"), "{m}");
    assert_eq!(f(cb1(double, 0).raw(), int(3), NIL).0, Code::TypeMismatch);
    assert_eq!(f(cb1(double, 0).raw(), ints(2), dict(&[("threads", Value::int(0))])).0, Code::InvalidArgument);
    assert_eq!(f(cb1(double, 0).raw(), ints(2), dict(&[("chunk", Value::int(1))])).0, Code::InvalidArgument);
    let cb = cb1(double, 0);
    close(cb.raw());
    assert_eq!(f(cb.raw(), ints(2), NIL).0, Code::Closed);
    assert_eq!(err(rt_parallel_for_each(NIL, ints(1), NIL)).0, Code::TypeMismatch);
}

// ---------------- atomics and thread locals ----------------

#[test]
fn atomics() {
    let a = ok(rt_atomic_int_new(int(10))).raw();
    assert_eq!(ok(rt_atomic_int_fetch_add(a, int(5))).as_int(), Some(10));
    assert_eq!(ok(rt_atomic_int_fetch_sub(a, int(3))).as_int(), Some(15));
    assert_eq!(ok(rt_atomic_int_load(a)).as_int(), Some(12));
    assert_eq!(ok(rt_atomic_int_fetch_and(a, int(0b1000))).as_int(), Some(12));
    assert_eq!(ok(rt_atomic_int_fetch_or(a, int(0b0011))).as_int(), Some(8));
    assert_eq!(ok(rt_atomic_int_fetch_xor(a, int(0b1111))).as_int(), Some(11));
    assert_eq!(ok(rt_atomic_int_swap(a, int(i64::MAX))).as_int(), Some(4));
    assert_eq!(ok(rt_atomic_int_fetch_add(a, int(1))).as_int(), Some(i64::MAX), "wraps");
    assert_eq!(ok(rt_atomic_int_load(a)).as_int(), Some(i64::MIN));
    assert_eq!(ok(rt_atomic_int_compare_exchange(a, int(0), int(1))).as_bool(), Some(false));
    assert_eq!(ok(rt_atomic_int_compare_exchange(a, int(i64::MIN), int(7))).as_bool(), Some(true));
    ok(rt_atomic_int_store(a, int(-2)));
    assert_eq!(ok(rt_atomic_int_load(a)).as_int(), Some(-2));
    assert_eq!(err(rt_atomic_int_fetch_add(a, NIL)).0, Code::TypeMismatch);
    ok(rt_atomic_int_free(a));
    assert_eq!(err(rt_atomic_int_load(a)).0, Code::Closed);
    assert_eq!(err(rt_atomic_int_new(text("1"))).0, Code::TypeMismatch);
    let b = ok(rt_atomic_bool_new(Value::FALSE.raw())).raw();
    assert_eq!(ok(rt_atomic_bool_swap(b, Value::TRUE.raw())).as_bool(), Some(false));
    assert_eq!(ok(rt_atomic_bool_load(b)).as_bool(), Some(true));
    ok(rt_atomic_bool_store(b, Value::FALSE.raw()));
    assert_eq!(ok(rt_atomic_bool_load(b)).as_bool(), Some(false));
    assert_eq!(err(rt_atomic_int_load(b)).0, Code::TypeMismatch, "an AtomicBool is no AtomicInt");
    assert_eq!(err(rt_atomic_bool_new(int(1))).0, Code::TypeMismatch);
    ok(rt_atomic_bool_free(b));
    assert_eq!(err(rt_atomic_bool_load(b)).0, Code::Closed);
    // Contended increments from four threads.
    let a = ok(rt_atomic_int_new(int(0))).raw();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    ok(rt_atomic_int_fetch_add(a, int(1)));
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(ok(rt_atomic_int_load(a)).as_int(), Some(40_000));
}

#[test]
fn thread_locals_are_per_thread() {
    let t = ok(rt_thread_local_new()).raw();
    assert!(ok(rt_thread_local_get(t)).is_nil());
    ok(rt_thread_local_set(t, text("main")));
    std::thread::spawn(move || {
        assert!(ok(rt_thread_local_get(t)).is_nil());
        ok(rt_thread_local_set(t, text("other")));
        // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
        // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
        // a registered stack or pinned).
        unsafe { rt_gc_collect() };
        assert_eq!(ok(rt_thread_local_get(t)).as_text(), Some("other"));
    })
    .join()
    .unwrap();
    // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
    // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
    // a registered stack or pinned).
    unsafe { rt_gc_collect() };
    assert_eq!(ok(rt_thread_local_get(t)).as_text(), Some("main"));
    ok(rt_thread_local_set(t, NIL));
    assert!(ok(rt_thread_local_get(t)).is_nil());
    assert_eq!(err(rt_thread_local_get(int(1))).0, Code::TypeMismatch);
    close(t);
    assert_eq!(err(rt_thread_local_set(t, int(1))).0, Code::Closed);
}

// ---------------- capability ----------------

#[test]
fn thread_capability_denied_before_anything_starts() {
    in_child("thread_capability_denied_before_anything_starts", || {
        ffi_sdk::testing::restrict("thread=false");
        let cb = cb1(double, 0); // starts the collector's finalizer thread
        let threads = thread_count();
        let all = [
            ("rt_thread_spawn", rt_thread_spawn(cb.raw(), int(1), NIL)),
            ("rt_thread_spawn_isolated", rt_thread_spawn_isolated(cb.raw())),
            ("rt_thread_spawn_isolated2", rt_thread_spawn_isolated2(cb.raw(), NIL, NIL)),
            ("rt_parallel_map", rt_parallel_map(cb.raw(), ints(4), NIL)),
            ("rt_parallel_for_each", rt_parallel_for_each(cb.raw(), ints(4), NIL)),
        ];
        for (name, r) in all {
            let (c, m) = err(r);
            assert_eq!(c, Code::CapabilityDenied, "{m}");
            assert_eq!(m, format!("{name} needs thread"));
        }
        assert_eq!(thread_count(), threads, "no thread was started");
        // Locks, channels and atomics need no capability.
        let m = ok(rt_mutex_new(int(1)));
        assert_eq!(ok(rt_mutex_lock(m.raw(), NIL)).as_int(), Some(1));
        ok(rt_channel_create(NIL));
        ok(rt_atomic_int_new(int(1)));
    });
}
