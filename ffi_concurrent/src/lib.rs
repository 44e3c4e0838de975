//! ffi_concurrent: threads, locks, channels, atomics, thread locals and
//! parallel map over runtime values (docs/CONCURRENCY.md).
//!
//! Memory (SPEC §4): every value this library keeps in Rust-owned memory
//! (a channel buffer, a mutex's or rwlock's content, a thread's argument and
//! result, a thread-local) is held in a [`slot::Slot`], which pins it while
//! it is held and unpins it when it is taken out. Parallel map passes only
//! indexes through rayon: its items are read from the input array and its
//! results stored straight into the (collector-allocated) output array.
//! Every thread the library starts is registered with the collector for its
//! whole life before it touches a value ([`ffi_sdk::callable::LibraryThread`]).
//! A thread that takes a value out of a slot is registered before the pin
//! drops ([`slot::hand_out`]): a consumer that never allocated would not be.
//!
//! - `thread`: spawn / join / ids / sleep (capability `thread` for spawning).
//! - `sync`: mutex and rwlock holding one value each.
//! - `channel`: bounded, rendezvous and unbounded channels of values;
//!   `ring`: the buffer and parking of bounded channels (pinned words,
//!   `Slot::into_raw`).
//! - `parallel`: parallel map and for-each on a rayon pool (capability `thread`).
//! - `atomic`: atomic ints and bools; `tls`: thread-local values.

#![deny(clippy::undocumented_unsafe_blocks)]

/// The registry entry of an export written by hand rather than by
/// `#[rt_fn]` (the channel's send and receive, whose fast path returns the
/// word directly): the same entry `#[rt_fn]` would generate, added when the
/// library loads.
macro_rules! register_export {
    ($name:ident, doc = $doc:expr, blocking = $blocking:expr, params = [$(($pname:expr, $pty:ty)),*], ret = $ret:expr) => {
        const _: () = {
            static ENTRY: ::ffi_sdk::abi::Entry = ::ffi_sdk::abi::Entry {
                name: stringify!($name),
                domain: "concurrent",
                doc: $doc,
                cap: "",
                scoped: false,
                tier: "empirical",
                blocking: $blocking,
                host: false,
                params: &[$(::ffi_sdk::abi::Param { name: $pname, ty: <$pty as ::ffi_sdk::FromArg<'static>>::TY, ctype: "" }),*],
                ret: $ret,
                c_ret: "",
                addr: $name as *const (),
            };
            #[used]
            #[link_section = ".init_array"]
            static INIT: extern "C" fn() = {
                extern "C" fn register() {
                    ::ffi_sdk::registry::register(&ENTRY);
                }
                register
            };
        };
    };
}

/// Runs the body of a hand-written export inside the panic boundary (a panic becomes Error Panic, as for `#[rt_fn]`).
#[inline(always)]
pub(crate) fn boundary(func: &'static str, f: impl FnOnce() -> ffi_sdk::abi::RtValue) -> ffi_sdk::abi::RtValue {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(w) => w,
        Err(p) => <ffi_sdk::abi::RtValue as ffi_sdk::boundary::OnPanic>::on_panic(func, p),
    }
}

pub mod actor;
pub mod atomic;
pub mod channel;
pub mod parallel;
pub mod ring;
pub mod slot;
pub mod sync;
pub mod thread;
pub mod tls;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static MY_ID: Cell<u64> = const { Cell::new(0) };
}

/// A new thread id (process-unique, never 0).
pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The calling thread's id (assigned on first use; threads the library
/// spawns get theirs at spawn time).
pub fn current_id() -> u64 {
    MY_ID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let id = new_id();
        c.set(id);
        id
    })
}

pub(crate) fn set_current_id(id: u64) {
    MY_ID.with(|c| c.set(id));
}

/// A timeout option in milliseconds: None = wait forever; Some(0) = do not wait.
pub(crate) fn timeout_opt(o: &ffi_sdk::Opts) -> ffi_sdk::RtResult<Option<std::time::Duration>> {
    Ok(o.int_in("timeout_ms", 0, i64::MAX / 1_000_000)?.map(|ms| std::time::Duration::from_millis(ms as u64)))
}

/// An options argument (registry type: optional dict, as [`ffi_sdk::Opts`])
/// that costs nothing when nil: the hot paths of channels and locks are
/// called with nil options, and a nil `Opts` would still look `timeout_ms` up
/// through the core on every call.
pub struct FastOpts(Option<ffi_sdk::Opts>);

impl<'a> ffi_sdk::FromArg<'a> for FastOpts {
    const TY: ffi_sdk::abi::TypeDesc = <ffi_sdk::Opts as ffi_sdk::FromArg<'a>>::TY;
    #[inline]
    fn from_arg(v: u64, func: &'static str, idx: usize, name: &'static str) -> ffi_sdk::RtResult<Self> {
        if v == ffi_sdk::abi::NIL {
            Ok(FastOpts(None))
        } else {
            <ffi_sdk::Opts as ffi_sdk::FromArg<'a>>::from_arg(v, func, idx, name).map(|o| FastOpts(Some(o)))
        }
    }
}

impl FastOpts {
    /// Error InvalidArgument naming the first key not in `known`.
    #[inline]
    pub(crate) fn only(&self, known: &[&str]) -> ffi_sdk::RtResult<()> {
        match &self.0 {
            None => Ok(()),
            Some(o) => o.only(known),
        }
    }
    /// The `timeout_ms` option ([`timeout_opt`]).
    #[inline]
    pub(crate) fn timeout(&self) -> ffi_sdk::RtResult<Option<std::time::Duration>> {
        match &self.0 {
            None => Ok(None),
            Some(o) => timeout_opt(o),
        }
    }
}

/// Spins, then yields, between tries of a non-blocking operation before a
/// blocking wait (as crossbeam's own `recv` and `send` do): a peer thread
/// that is about to send or receive usually does so within this window, and
/// the blocking path (a select over the data and the close signal) costs
/// both sides far more.
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(0)
    }
    /// Waits a little longer each time; false once the budget is spent.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        const SPIN_LIMIT: u32 = 6;
        const YIELD_LIMIT: u32 = 10;
        if self.0 > YIELD_LIMIT {
            return false;
        }
        if self.0 <= SPIN_LIMIT {
            for _ in 0..1u32 << self.0 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        self.0 += 1;
        true
    }
}
