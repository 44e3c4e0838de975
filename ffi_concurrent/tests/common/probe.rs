//! The probed handle resource of handle_stress.rs and handle_close_paths.rs
//! (`#[path]`-included there): its Drop sets a flag and scrubs a magic word,
//! so a borrow can check it never sees its resource dropped (no use after
//! free) and a test can count the drops (no leak, no double drop).

use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::{Code, FromArg, Handle, HandleType};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

pub const MAGIC: u64 = 0x5AFE_C0DE_1234_5678;

#[derive(Default)]
pub struct Probe {
    pub dropped: AtomicBool,
    pub drops: AtomicUsize,
}

pub struct Res {
    pub probe: Arc<Probe>,
    pub magic: u64,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Res {
    const NAME: &'static str = "ProbeRes";
}

impl Drop for Res {
    fn drop(&mut self) {
        self.magic = 0;
        self.probe.dropped.store(true, SeqCst);
        self.probe.drops.fetch_add(1, SeqCst);
    }
}

/// A handle of `Res` over `probe` (its raw word).
pub fn new_res(probe: &Arc<Probe>) -> RtValue {
    ffi_sdk::new_handle(Res { probe: probe.clone(), magic: MAGIC }).raw()
}

pub fn borrow(v: RtValue) -> Result<Handle<Res>, Code> {
    Handle::<Res>::from_arg(v, "probe", 0, "h").map_err(|e| e.code)
}

#[track_caller]
pub fn check(b: &Handle<Res>, probe: &Probe) {
    assert!(!probe.dropped.load(SeqCst), "use after free: the resource was dropped during a borrow");
    assert_eq!(b.magic, MAGIC, "use after free: the resource's memory was scrubbed during a borrow");
}

/// The closing side of a round: waits for the workers at `start`, spins `delay` times, closes `h`
/// (a handle word the caller keeps pinned for the round), tells `closed_done`, and checks that a
/// second close is a no-op.
pub fn close_after(h: RtValue, delay: u32, start: &Barrier, closed_done: &AtomicBool) {
    start.wait();
    for _ in 0..delay {
        std::hint::spin_loop();
    }
    // SAFETY: `h` is a live handle word, pinned by the caller until the end of the round.
    assert_eq!(unsafe { abi::rt__handle_close(h) }, 0, "first close");
    closed_done.store(true, SeqCst);
    // SAFETY: as above: `h` is still pinned (a closed handle stays a valid object).
    assert_eq!(unsafe { abi::rt__handle_close(h) }, 3, "close is idempotent");
}

/// After the last borrower left: the resource was dropped exactly once, and `h` is Closed.
#[track_caller]
pub fn assert_released(h: RtValue, probe: &Probe) {
    assert!(probe.dropped.load(SeqCst), "the resource was not released after the last borrower left");
    assert_eq!(probe.drops.load(SeqCst), 1);
    assert_eq!(borrow(h).err(), Some(Code::Closed));
}

/// Runs `body` in a child run of this test binary (`test_name`, as libtest prints it) with
/// `SIMPLE_RT_HANDLE_FENCE=1`: SeqCst fences instead of membarrier.
pub fn in_fence_mode(test_name: &str, body: impl FnOnce()) {
    const KEY: &str = "RT_HANDLE_FENCE_CHILD";
    if std::env::var(KEY).ok().as_deref() == Some(test_name) {
        body();
        return;
    }
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(KEY, test_name)
        .env("SIMPLE_RT_HANDLE_FENCE", "1")
        .status()
        .unwrap();
    assert!(st.success(), "fence-mode child run of {test_name} failed");
}
