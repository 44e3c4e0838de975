//! Actors (docs/CONCURRENCY.md, "Actors"): ping-pong between two actors,
//! fresh messages under forced collections, recv outside an actor, send
//! after finish and after close, join results and Errors, capability
//! denial (in a child process), bad input.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_concurrent::actor::*;
use ffi_concurrent::sync::*;
use ffi_concurrent::thread::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{close, details, dict, err, in_child, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn timeout(ms: i64) -> RtValue {
    dict(&[("timeout_ms", Value::int(ms))])
}

/// An Error value for a callback to return.
fn fail(what: String) -> RtValue {
    ffi_sdk::Error::plain(Code::InvalidArgument, "test", what).into_value().raw()
}

// ---------------- ping-pong ----------------

/// Replies n + 1 to [reply_to, n] until it receives -1; returns how many it answered.
unsafe extern "C" fn ponger(_: *mut c_void, _ctx: RtValue) -> RtValue {
    let mut answered = 0;
    loop {
        let m = Value::from_raw(rt_actor_recv(NIL));
        if m.is_error() {
            return m.raw();
        }
        if m.as_int() == Some(-1) {
            return Value::int(answered).raw();
        }
        if !m.is_array() || m.len() != 2 {
            return fail(format!("ponger: unexpected message {}", m.describe()));
        }
        let n = m.at(1).as_int().unwrap_or(-100);
        // A fresh value for every reply.
        let reply = Value::array(2).push(Value::int(n + 1)).push(Value::text(&format!("pong-{}", n + 1)));
        let r = Value::from_raw(rt_actor_send(m.at(0).raw(), reply.raw()));
        if r.is_error() {
            return r.raw();
        }
        answered += 1;
    }
}

/// Context [ponger, rounds]; its first message is its own handle. Sends
/// [self, i] and expects i + 1 back, `rounds` times; then stops the ponger.
unsafe extern "C" fn pinger(_: *mut c_void, ctx: RtValue) -> RtValue {
    let ctx = Value::from_raw(ctx);
    let (pong, rounds) = (ctx.at(0), ctx.at(1).as_int().unwrap_or(0));
    let me = Value::from_raw(rt_actor_recv(NIL));
    if me.is_error() {
        return me.raw();
    }
    for i in 0..rounds {
        let m = Value::array(2).push(me).push(Value::int(i));
        let r = Value::from_raw(rt_actor_send(pong.raw(), m.raw()));
        if r.is_error() {
            return r.raw();
        }
        let back = Value::from_raw(rt_actor_recv(timeout(10_000)));
        if back.is_error() {
            return back.raw();
        }
        let want = format!("pong-{}", i + 1);
        if back.at(0).as_int() != Some(i + 1) || back.at(1).as_text() != Some(want.as_str()) {
            return fail(format!("pinger: round {i} got {}", back.describe()));
        }
    }
    let r = Value::from_raw(rt_actor_send(pong.raw(), int(-1)));
    if r.is_error() {
        return r.raw();
    }
    Value::int(rounds).raw()
}

#[test]
fn ping_pong_between_two_actors() {
    let pong = ok(rt_actor_spawn(cb1(ponger, 0).raw(), NIL));
    let ctx = Value::array(2).push(pong).push(Value::int(500));
    let ping = ok(rt_actor_spawn(cb1(pinger, 0).raw(), ctx.raw()));
    assert_ne!(ok(rt_actor_id(ping.raw())).as_int(), ok(rt_actor_id(pong.raw())).as_int());
    ok(rt_actor_send(ping.raw(), ping.raw()));
    assert_eq!(ok(rt_actor_join(ping.raw(), timeout(60_000))).as_int(), Some(500));
    assert_eq!(ok(rt_actor_join(pong.raw(), timeout(60_000))).as_int(), Some(500));
    assert_eq!(ok(rt_actor_is_alive(pong.raw())).as_bool(), Some(false));
}

#[test]
fn a_registered_function_as_handler() {
    // rt_actor_recv itself (arity 1: opts = the context, nil) returns the first message.
    let a = ok(rt_actor_spawn(text("rt_actor_recv"), NIL));
    ok(rt_actor_send(a.raw(), text("hello")));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_text(), Some("hello"));
    // Arity 0 with context nil.
    let a = ok(rt_actor_spawn(text("rt_thread_local_new"), NIL));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).kind(), ffi_sdk::abi::Kind::Handle);
    // The context is the handler's options: timeout_ms.
    let a = ok(rt_actor_spawn(text("rt_actor_recv"), timeout(20)));
    let id = ok(rt_actor_id(a.raw())).as_int().unwrap();
    let e = rt_actor_join(a.raw(), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::Timeout);
    assert_eq!(m, format!("rt_actor_recv: the mailbox stayed empty (actor {id}, timeout_ms 20)"));
    assert_eq!(details(e).get("timeout_ms").as_int(), Some(20));
}

// ---------------- values under collections ----------------

const N: i64 = 1000;

/// Sleeps (the messages wait, pinned, in the mailbox), then receives N
/// messages, checking each, and returns them all in an array.
unsafe extern "C" fn gather(_: *mut c_void, _ctx: RtValue) -> RtValue {
    let _ = rt_thread_sleep_ms(int(100));
    let all = Value::array(N as usize);
    for i in 0..N {
        let m = Value::from_raw(rt_actor_recv(timeout(30_000)));
        if m.is_error() {
            return m.raw();
        }
        if !nested_ok(m, i) {
            return fail(format!("gather: message {i} damaged: {}", m.describe()));
        }
        // Some fresh garbage on this thread too.
        std::hint::black_box(make_nested(i + 5_000_000));
        all.push(m);
    }
    all.raw()
}

#[test]
fn a_thousand_fresh_messages_survive_collections() {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let (s, c) = (stop.clone(), count.clone());
    let collector = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            // SAFETY: core's `RtValue rt_gc_collect(void)`, declared in common with that signature:
            // no arguments; it only reclaims unreachable objects.
            unsafe { rt_gc_collect() };
            c.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let a = ok(rt_actor_spawn(cb1(gather, 0).raw(), NIL));
    for i in 0..N {
        // Only the mailbox holds the message once sent.
        ok(rt_actor_send(a.raw(), make_nested(i).raw()));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Garbage that would reuse the memory of lost messages.
    for i in 0..20_000 {
        std::hint::black_box(make_nested(i + 1_000_000));
    }
    let all = ok(rt_actor_join(a.raw(), timeout(120_000)));
    assert_eq!(all.len(), N as usize);
    for i in 0..20_000 {
        std::hint::black_box(make_nested(i + 2_000_000));
    }
    let lost = (0..N).filter(|&i| !nested_ok(all.at(i as usize), i)).count();
    stop.store(true, Ordering::Relaxed);
    collector.join().unwrap();
    assert_eq!(lost, 0, "values lost");
    assert!(count.load(Ordering::Relaxed) > 0);
}

// ---------------- recv outside an actor, send after finish / close ----------------

#[test]
fn recv_outside_an_actor() {
    let (c, m) = err(rt_actor_recv(NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("rt_actor_recv: not called from an actor thread (thread "), "{m}");
    // On a library thread that is no actor.
    let t = ok(rt_thread_spawn(text("rt_actor_recv"), NIL, NIL));
    let (c, m) = err(rt_thread_join(t.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("not called from an actor thread"), "{m}");
    // Options are checked first.
    let (c, m) = err(rt_actor_recv(dict(&[("bogus", Value::TRUE)])));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("bogus"), "{m}");
    assert_eq!(err(rt_actor_recv(timeout(-1))).0, Code::InvalidArgument);
    assert_eq!(err(rt_actor_recv(int(3))).0, Code::TypeMismatch);
}

static RECV_CODE: AtomicU32 = AtomicU32::new(u32::MAX);

/// Sleeps 100 ms, then receives once and records the Error code (0: a value).
unsafe extern "C" fn recv_once(_: *mut c_void, _ctx: RtValue) -> RtValue {
    let _ = rt_thread_sleep_ms(int(100));
    let r = Value::from_raw(rt_actor_recv(NIL));
    RECV_CODE.store(r.error().map_or(0, |(c, _)| c as u32), Ordering::SeqCst);
    r.raw()
}

#[test]
fn send_after_finish_and_after_close() {
    let a = ok(rt_actor_spawn(cb1(double, 0).raw(), int(1)));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_int(), Some(2));
    assert_eq!(ok(rt_actor_is_alive(a.raw())).as_bool(), Some(false));
    let id = ok(rt_actor_id(a.raw())).as_int().unwrap();
    let (c, m) = err(rt_actor_send(a.raw(), int(5)));
    assert_eq!(c, Code::Closed);
    assert_eq!(m, format!("rt_actor_send: the actor has finished (actor {id})"));

    // Closing the handle closes the mailbox: what was queued is dropped and
    // the actor's receive gets Error Closed.
    let b = ok(rt_actor_spawn(cb1(recv_once, 0).raw(), NIL));
    assert_eq!(ok(rt_actor_is_alive(b.raw())).as_bool(), Some(true));
    for i in 0..3 {
        ok(rt_actor_send(b.raw(), make_nested(i).raw()));
    }
    close(b.raw());
    assert_eq!(err(rt_actor_send(b.raw(), int(1))).0, Code::Closed);
    assert_eq!(err(rt_actor_join(b.raw(), NIL)).0, Code::Closed);
    assert_eq!(err(rt_actor_id(b.raw())).0, Code::Closed);
    assert_eq!(err(rt_actor_is_alive(b.raw())).0, Code::Closed);
    let t = Instant::now();
    while RECV_CODE.load(Ordering::SeqCst) == u32::MAX && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(RECV_CODE.load(Ordering::SeqCst), Code::Closed as u32);
}

// ---------------- join ----------------

/// Returns the actor thread's rt_thread_id(nil).
unsafe extern "C" fn my_thread_id(_: *mut c_void, _ctx: RtValue) -> RtValue {
    rt_thread_id(NIL)
}

/// Receives its own handle and joins it.
unsafe extern "C" fn join_self(_: *mut c_void, _ctx: RtValue) -> RtValue {
    let me = rt_actor_recv(NIL);
    rt_actor_join(me, NIL)
}

#[test]
fn join_result_and_error_propagation() {
    let a = ok(rt_actor_spawn(cb1(double, 0).raw(), int(21)));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_int(), Some(42));
    // The handler's Error, as it gave it; a second join is an Error.
    let a = ok(rt_actor_spawn(cb1(double, 0).raw(), int(-13)));
    let (c, m) = err(rt_actor_join(a.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert_eq!(m, "double: unlucky (-13)");
    let (c, m) = err(rt_actor_join(a.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("rt_actor_join: the actor was joined already"), "{m}");
    // Timeout leaves the actor running and joinable.
    let a = ok(rt_actor_spawn(text("rt_actor_recv"), NIL));
    let t = Instant::now();
    let e = rt_actor_join(a.raw(), timeout(20));
    assert_eq!(err(e).0, Code::Timeout);
    assert_eq!(details(e).get("timeout_ms").as_int(), Some(20));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(ok(rt_actor_is_alive(a.raw())).as_bool(), Some(true));
    ok(rt_actor_send(a.raw(), int(7)));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_int(), Some(7));
    assert_eq!(ok(rt_actor_is_alive(a.raw())).as_bool(), Some(false));
    // The actor's id is its thread's id.
    let a = ok(rt_actor_spawn(cb1(my_thread_id, 0).raw(), NIL));
    let id = ok(rt_actor_id(a.raw())).as_int().unwrap();
    assert!(id > 0);
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_int(), Some(id));
    // An actor cannot join itself.
    let a = ok(rt_actor_spawn(cb1(join_self, 0).raw(), NIL));
    ok(rt_actor_send(a.raw(), a.raw()));
    let (c, m) = err(rt_actor_join(a.raw(), NIL));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("rt_actor_join: an actor cannot join itself"), "{m}");
}

// ---------------- capability ----------------

#[test]
fn thread_capability_denied() {
    in_child("thread_capability_denied", || {
        ffi_sdk::testing::restrict("thread=false");
        let cb = cb1(double, 0); // starts the collector's finalizer thread
        let threads = thread_count();
        let (c, m) = err(rt_actor_spawn(cb.raw(), int(1)));
        assert_eq!(c, Code::CapabilityDenied, "{m}");
        assert_eq!(m, "rt_actor_spawn needs thread");
        let (c, _) = err(rt_actor_spawn(text("rt_actor_recv"), NIL));
        assert_eq!(c, Code::CapabilityDenied);
        assert_eq!(thread_count(), threads, "no thread was started");
    });
}

// ---------------- bad input ----------------

#[test]
fn spawn_bad_input() {
    let cases: Vec<(RtValue, RtValue, Code, &str)> = vec![
        (NIL, NIL, Code::TypeMismatch, "argument 1 (handler) must be a function name (text) or a Callback handle, got nil"),
        (int(5), NIL, Code::TypeMismatch, "got int 5"),
        (text("rt_no_such_fn"), NIL, Code::NotFound, "names no registered function (\"rt_no_such_fn\")"),
        (text("rt_value_pin"), NIL, Code::InvalidArgument, "names a host-surface function"),
        (text("rt_mutex_unlock"), int(1), Code::InvalidArgument, "takes 2"),
        (text("rt_thread_local_new"), int(1), Code::InvalidArgument, "takes no argument but context is not nil"),
        (cb2(add2, 0).raw(), int(1), Code::InvalidArgument, "callback takes 2"),
    ];
    for (h, ctx, code, frag) in cases {
        let (got, m) = err(rt_actor_spawn(h, ctx));
        assert_eq!(got, code, "{m}");
        assert!(m.starts_with("rt_actor_spawn: ") && m.contains(frag), "{m} lacks {frag}");
    }
    let cb = cb1(double, 0);
    close(cb.raw());
    assert_eq!(err(rt_actor_spawn(cb.raw(), int(1))).0, Code::Closed);
}

unsafe extern "C" fn add2(_: *mut c_void, a: RtValue, b: RtValue) -> RtValue {
    Value::int(Value::from_raw(a).as_int().unwrap_or(0) + Value::from_raw(b).as_int().unwrap_or(0)).raw()
}

#[test]
fn handle_bad_input() {
    let mutex = ok(rt_mutex_new(NIL));
    for bad in [int(1), NIL, text("actor"), mutex.raw()] {
        for (name, r) in [
            ("rt_actor_send", rt_actor_send(bad, int(1))),
            ("rt_actor_join", rt_actor_join(bad, NIL)),
            ("rt_actor_id", rt_actor_id(bad)),
            ("rt_actor_is_alive", rt_actor_is_alive(bad)),
        ] {
            let (c, m) = err(r);
            assert_eq!(c, Code::TypeMismatch, "{m}");
            assert!(m.starts_with(&format!("{name}: argument 1 (actor)")), "{m}");
        }
    }
    let a = ok(rt_actor_spawn(text("rt_actor_recv"), NIL));
    // A word that is no value.
    let (c, m) = err(rt_actor_send(a.raw(), 0x4));
    assert_eq!(c, Code::TypeMismatch, "{m}");
    assert!(m.starts_with("rt_actor_send: argument 2 (message)"), "{m}");
    // Join options.
    let (c, m) = err(rt_actor_join(a.raw(), dict(&[("bogus", Value::TRUE)])));
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("bogus"), "{m}");
    assert_eq!(err(rt_actor_join(a.raw(), timeout(-1))).0, Code::InvalidArgument);
    assert_eq!(err(rt_actor_join(a.raw(), int(2))).0, Code::TypeMismatch);
    ok(rt_actor_send(a.raw(), int(9)));
    assert_eq!(ok(rt_actor_join(a.raw(), NIL)).as_int(), Some(9));
    // Closed handles.
    close(a.raw());
    assert_eq!(err(rt_actor_send(a.raw(), int(1))).0, Code::Closed);
    assert_eq!(err(rt_actor_join(a.raw(), NIL)).0, Code::Closed);
    assert_eq!(err(rt_actor_id(a.raw())).0, Code::Closed);
    assert_eq!(err(rt_actor_is_alive(a.raw())).0, Code::Closed);
}
