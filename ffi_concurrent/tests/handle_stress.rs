//! The per-call handle path (ffi_core/src/handle.rs) under a concurrent
//! close, in a loop: worker threads borrow one handle as fast as they can
//! (single and nested borrows, nesting past the per-thread hazard slots so
//! the owner fallback runs too) while another thread closes it. Asserted:
//! a borrow never sees the resource dropped (its Drop sets a flag the users
//! check, and scrubs a magic word) — no use after free; every borrow that
//! starts after close returned is Error Closed; close is idempotent; the
//! resource is dropped once the last borrower leaves (no leak); a handle of
//! another type is a kind error. Run in both fence modes: membarrier (the
//! default where the kernel has it) and `SIMPLE_RT_HANDLE_FENCE=1` (SeqCst
//! fences, in a child run of this binary).

#![deny(clippy::undocumented_unsafe_blocks)]

// Links libffi_core.so through the library (the core's symbols).
use ffi_concurrent as _;
use ffi_sdk::abi;
use ffi_sdk::{new_handle, Code, FromArg, Handle, HandleType};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

#[path = "common/probe.rs"]
mod probe;
use probe::*;

struct Other;
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Other {
    const NAME: &'static str = "StressOther";
}

/// One round: `workers` threads borrow while the main thread closes after `delay` spins.
fn round(workers: usize, delay: u32, nest: bool) -> usize {
    let probe = Arc::new(Probe::default());
    let h = new_res(&probe);
    // SAFETY: `h` is the handle just made, still in this frame, so live; the pin keeps it alive
    // for the workers (whose stacks are not the collector's business) until the unpin below.
    unsafe { abi::rt_value_pin(h) };
    let closed_done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(workers + 1));
    let borrows = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (probe, closed_done, start, borrows) = (probe.clone(), closed_done.clone(), start.clone(), borrows.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut closed_seen = 0;
                let mut i = 0u64;
                while closed_seen < 3 {
                    i += 1;
                    let after_close = closed_done.load(SeqCst);
                    match borrow(h) {
                        Ok(b) => {
                            assert!(!after_close, "a borrow that started after close returned succeeded");
                            borrows.fetch_add(1, SeqCst);
                            check(&b, &probe);
                            if nest && (i + w as u64).is_multiple_of(7) {
                                // Past the hazard slots: the inner ones take owners.
                                let inner: Vec<_> = (0..9).filter_map(|_| borrow(h).ok()).collect();
                                for x in &inner {
                                    check(x, &probe);
                                }
                                check(&b, &probe);
                            }
                            for _ in 0..(i % 16) {
                                std::hint::spin_loop();
                            }
                            check(&b, &probe);
                            if i.is_multiple_of(64) {
                                // An owner kept past the borrow (as a spawned thread does).
                                let a = b.arc();
                                drop(b);
                                assert_eq!(a.magic, MAGIC);
                                assert!(!probe.dropped.load(SeqCst));
                            }
                        }
                        Err(Code::Closed) => closed_seen += 1,
                        Err(c) => panic!("unexpected {c:?}"),
                    }
                }
            })
        })
        .collect();
    close_after(h, delay, &start, &closed_done);
    for t in threads {
        t.join().expect("worker");
    }
    assert_released(h, &probe);
    assert_eq!(Handle::<Other>::from_arg(h, "probe", 0, "h").err().map(|e| e.code), Some(Code::TypeMismatch));
    // SAFETY: drops the one pin taken at the start of the round; the workers were joined, so
    // nothing uses `h` afterwards.
    unsafe { abi::rt_value_unpin(h) };
    borrows.load(SeqCst)
}

fn stress(rounds: u32) {
    let mut total = 0;
    for r in 0..rounds {
        total += round(3, (r * 37) % 4000, r % 2 == 0);
    }
    assert!(total > rounds as usize, "the workers barely ran ({total} borrows)");
}

#[test]
fn close_while_borrowed_default_mode() {
    stress(300);
}

#[test]
fn close_while_borrowed_fence_mode() {
    in_fence_mode("close_while_borrowed_fence_mode", || stress(300));
}

/// A call that closes its own handle keeps the resource until it returns;
/// wrong kinds and non-handles are kind errors.
#[test]
fn close_inside_the_call_and_kinds() {
    let probe = Arc::new(Probe::default());
    let h = new_res(&probe);
    let b = borrow(h).unwrap();
    assert!(b.close());
    assert!(!b.close(), "second close");
    check(&b, &probe);
    assert_eq!(borrow(h).err(), Some(Code::Closed));
    drop(b);
    assert!(probe.dropped.load(SeqCst));
    assert_eq!(borrow(ffi_sdk::Value::int(5).raw()).err(), Some(Code::TypeMismatch));
    assert_eq!(borrow(abi::NIL).err(), Some(Code::TypeMismatch));
    let o = new_handle(Other).raw();
    assert_eq!(borrow(o).err(), Some(Code::TypeMismatch));
}

/// Threads come and go: their hazard records are reused, and a borrow on a
/// new thread works after many threads exited.
#[test]
fn records_are_reused() {
    let probe = Arc::new(Probe::default());
    let h = new_res(&probe);
    // SAFETY: `h` is the handle just made, live in this frame; pinned for the threads below.
    unsafe { abi::rt_value_pin(h) };
    for _ in 0..2000 {
        let probe = probe.clone();
        std::thread::spawn(move || {
            let b = borrow(h).unwrap();
            check(&b, &probe);
        })
        .join()
        .unwrap();
    }
    // SAFETY: `h` is a live handle word, pinned above.
    assert_eq!(unsafe { abi::rt__handle_close(h) }, 0);
    assert!(probe.dropped.load(SeqCst));
    // SAFETY: drops the pin taken above; every thread using `h` was joined.
    unsafe { abi::rt_value_unpin(h) };
}
