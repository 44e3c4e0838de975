//! Bounded channels (the ring, src/ring.rs): many senders and receivers
//! through tiny capacities with every wait parking (no lost wake-up), in
//! both barrier modes; close and handle release waking parked threads;
//! values released with the handle although a thread's channel cache keeps
//! the channel; the per-thread cache never mixes channels up.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_concurrent::channel::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{close, dict, err, int, ok, NIL};
use ffi_sdk::{Code, Value};
use std::time::{Duration, Instant};

extern "C" {
    fn rt_value_pin_count(v: RtValue) -> u32;
}

fn timeout(ms: i64) -> RtValue {
    dict(&[("timeout_ms", Value::int(ms))])
}

/// `senders` x `per` ints through a channel of `cap` to `receivers`; every
/// value arrives exactly once. Receivers and senders outnumber the CPUs, so
/// both sides park in turn.
fn mpmc(cap: i64, senders: i64, receivers: i64, per: i64) {
    let ch = ok(rt_channel_create(int(cap))).raw();
    let total = senders * per;
    let rs: Vec<_> = (0..receivers)
        .map(|_| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let v = Value::from_raw(rt_channel_recv(ch, NIL));
                    match v.as_int() {
                        Some(i) => got.push(i),
                        None => {
                            assert_eq!(v.error().map(|e| e.0), Some(Code::Closed), "{}", v.describe());
                            return got;
                        }
                    }
                }
            })
        })
        .collect();
    let ss: Vec<_> = (0..senders)
        .map(|s| {
            std::thread::spawn(move || {
                for i in 0..per {
                    ok(rt_channel_send(ch, int(s * per + i), NIL));
                }
            })
        })
        .collect();
    ss.into_iter().for_each(|h| h.join().unwrap());
    ok(rt_channel_close(ch));
    let mut all: Vec<i64> = rs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all.len() as i64, total, "capacity {cap}: values lost or duplicated");
    assert!(all.iter().enumerate().all(|(k, &v)| k as i64 == v), "capacity {cap}: wrong values");
}

fn mpmc_all() {
    for cap in [1, 2, 3, 64] {
        mpmc(cap, 3, 3, 8_000);
        mpmc(cap, 1, 4, 5_000);
        mpmc(cap, 4, 1, 5_000);
    }
}

#[test]
fn ring_many_senders_and_receivers() {
    mpmc_all();
}

/// The same with `SIMPLE_RT_CHANNEL_FENCE=1` (SeqCst fences instead of membarrier), in a child.
#[test]
fn ring_many_senders_and_receivers_fence_mode() {
    const KEY: &str = "RT_RING_FENCE_CHILD";
    if std::env::var_os(KEY).is_some() {
        mpmc_all();
        return;
    }
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ring_many_senders_and_receivers_fence_mode", "--nocapture", "--test-threads=1"])
        .env(KEY, "1")
        .env("SIMPLE_RT_CHANNEL_FENCE", "1")
        .status()
        .unwrap();
    assert!(st.success(), "fence-mode child run failed");
}

/// FIFO order per sender, values intact, on one thread and across threads.
#[test]
fn ring_order_and_nested_values() {
    let ch = ok(rt_channel_create(int(8))).raw();
    let h = std::thread::spawn(move || {
        for i in 0..2000 {
            ok(rt_channel_send(ch, make_nested(i).raw(), NIL));
        }
    });
    for i in 0..2000 {
        let v = ok(rt_channel_recv(ch, NIL));
        assert!(nested_ok(v, i), "item {i}: {}", v.describe());
    }
    h.join().unwrap();
    assert_eq!(ok(rt_channel_len(ch)).as_int(), Some(0));
    for i in 0..8 {
        ok(rt_channel_send(ch, int(i), NIL));
        assert_eq!(ok(rt_channel_len(ch)).as_int(), Some(i + 1));
    }
    assert_eq!(err(rt_channel_send(ch, int(9), timeout(0))).0, Code::Timeout, "full");
    for i in 0..8 {
        assert_eq!(ok(rt_channel_try_recv(ch)).as_int(), Some(i));
    }
    assert_eq!(err(rt_channel_try_recv(ch)).0, Code::Timeout);
}

/// Senders parked on a full ring and receivers parked on an empty one wake on close.
#[test]
fn ring_close_wakes_parked_threads() {
    let full = ok(rt_channel_create(int(1))).raw();
    ok(rt_channel_send(full, int(1), NIL));
    let empty = ok(rt_channel_create(int(1))).raw();
    let ss: Vec<_> = (0..3).map(|_| std::thread::spawn(move || err(rt_channel_send(full, int(2), NIL)).0)).collect();
    let rs: Vec<_> = (0..3).map(|_| std::thread::spawn(move || err(rt_channel_recv(empty, NIL)).0)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    ok(rt_channel_close(full));
    ok(rt_channel_close(empty));
    for h in ss.into_iter().chain(rs) {
        assert_eq!(h.join().unwrap(), Code::Closed);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "woke late: {:?}", t.elapsed());
    // Drained, then Closed.
    assert_eq!(ok(rt_channel_recv(full, NIL)).as_int(), Some(1));
    assert_eq!(err(rt_channel_recv(full, NIL)).0, Code::Closed);
}

/// Timeouts on a parked wait, both ways.
#[test]
fn ring_timeouts() {
    let ch = ok(rt_channel_create(int(1))).raw();
    let t = Instant::now();
    let (c, m) = err(rt_channel_recv(ch, timeout(40)));
    assert_eq!(c, Code::Timeout, "{m}");
    assert!(t.elapsed() >= Duration::from_millis(40));
    ok(rt_channel_send(ch, int(1), NIL));
    let t = Instant::now();
    let (c, m) = err(rt_channel_send(ch, int(2), timeout(40)));
    assert_eq!((c, m.as_str()), (Code::Timeout, "rt_channel_send: the channel stayed full (timeout_ms 40)"));
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!(ok(rt_channel_recv(ch, NIL)).as_int(), Some(1), "the timed-out value was not sent");
}

/// A word that is no value (tag 0b1xx) is refused, not stored.
#[test]
fn ring_refuses_words_that_are_no_values() {
    let ch = ok(rt_channel_create(int(4))).raw();
    for w in [0b100u64, 0b111, 0x1234_5677] {
        assert_eq!(err(rt_channel_send(ch, w, NIL)).0, Code::TypeMismatch, "{w:#x}");
    }
    assert_eq!(ok(rt_channel_len(ch)).as_int(), Some(0));
}

/// Closing the handle (rt_handle_close) of a bounded channel this thread
/// just used (so its cache holds the channel) unpins the values still in
/// it at once, wakes a receiver parked on it (through the cache), and later
/// calls get Error Closed.
#[test]
fn ring_handle_release_frees_values_despite_the_cache() {
    let ch = ok(rt_channel_create(int(4))).raw();
    let v = make_nested(7);
    ok(rt_channel_send(ch, v.raw(), NIL));
    // SAFETY: core's `uint32_t rt_value_pin_count(RtValue)`, declared with that signature; `v` is
    // a live value on this test's stack, and the call only reads its pin count.
    assert_eq!(unsafe { rt_value_pin_count(v.raw()) }, 1, "pinned while in the channel");
    close(ch);
    // SAFETY: as above; `v` is still on this stack (only its pin was dropped).
    assert_eq!(unsafe { rt_value_pin_count(v.raw()) }, 0, "unpinned when the handle was released");
    assert_eq!(err(rt_channel_send(ch, int(1), NIL)).0, Code::Closed);
    assert_eq!(err(rt_channel_recv(ch, NIL)).0, Code::Closed);
    assert_eq!(err(rt_channel_try_recv(ch)).0, Code::Closed);

    // Parked receivers and senders wake when the handle is released: one
    // that used the channel before, one whose first call parks, one parked
    // through the generic path (options), a sender parked on a full ring.
    let ch = ok(rt_channel_create(int(1))).raw();
    let full = ok(rt_channel_create(int(1))).raw();
    ok(rt_channel_send(full, int(1), NIL));
    let ts = vec![
        std::thread::spawn(move || {
            assert_eq!(err(rt_channel_try_recv(ch)).0, Code::Timeout);
            err(rt_channel_recv(ch, NIL)).0
        }),
        std::thread::spawn(move || err(rt_channel_recv(ch, NIL)).0),
        std::thread::spawn(move || err(rt_channel_recv(ch, timeout(60_000))).0),
        std::thread::spawn(move || err(rt_channel_send(full, int(2), NIL)).0),
    ];
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    close(ch);
    close(full);
    for h in ts {
        assert_eq!(h.join().unwrap(), Code::Closed);
    }
    assert!(t.elapsed() < Duration::from_secs(5), "woke late: {:?}", t.elapsed());
}

/// One thread alternating between channels, and channels made and released
/// in a loop (handle objects and channel structs are reused), never gets a
/// value of another channel.
#[test]
fn ring_cache_never_mixes_channels() {
    let a = ok(rt_channel_create(int(2))).raw();
    let b = ok(rt_channel_create(int(2))).raw();
    for i in 0..1000 {
        ok(rt_channel_send(a, int(i), NIL));
        ok(rt_channel_send(b, int(-i), NIL));
        assert_eq!(ok(rt_channel_recv(a, NIL)).as_int(), Some(i));
        assert_eq!(ok(rt_channel_recv(b, NIL)).as_int(), Some(-i));
    }
    // More channels than the cache holds, round robin.
    let chans: Vec<RtValue> = (0..6).map(|_| ok(rt_channel_create(int(2))).raw()).collect();
    for i in 0..600 {
        for (k, &c) in chans.iter().enumerate() {
            ok(rt_channel_send(c, int(i * 10 + k as i64), NIL));
        }
        for (k, &c) in chans.iter().enumerate().rev() {
            assert_eq!(ok(rt_channel_recv(c, NIL)).as_int(), Some(i * 10 + k as i64));
        }
    }
    for i in 0..3000 {
        let ch = ok(rt_channel_create(int(1))).raw();
        assert_eq!(err(rt_channel_try_recv(ch)).0, Code::Timeout, "round {i}: a new channel is empty");
        ok(rt_channel_send(ch, int(i), NIL));
        assert_eq!(ok(rt_channel_recv(ch, NIL)).as_int(), Some(i));
        ok(rt_channel_send(ch, int(i), NIL));
        if i % 2 == 0 {
            close(ch);
        }
        if i % 500 == 0 {
            // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
            // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
            // a registered stack or pinned).
            unsafe { rt_gc_collect() };
        }
    }
}
