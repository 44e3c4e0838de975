//! ffi_core: the one library with process state (SPEC §5).
//!
//! - `gc`: the system Boehm collector, thread registration, finalizers, `rt_gc_*`.
//! - `pin`: counted pins (the object lock protocol is `ffi_sdk::lock`).
//! - `value` / `dict`: the host surface for building and reading values.
//! - `error`: Error values and the code table.
//! - `handle`: native resources behind values.
//! - `registry`: every loaded library's functions, `rt_registry_*`.
//! - `caps`: the capability policy (SPEC §7), `rt_cap_*`.
//! - `deadline`: per-thread deadlines and cancel tokens, `rt_deadline_*`, `rt_cancel_*`.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod callback;
pub mod caps;
pub mod deadline;
pub mod dict;
pub mod error;
pub mod gc;
pub mod handle;
pub mod pin;
pub mod registry;
pub mod value;

/// Runs when the library is loaded: start the collector on the loading thread.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = {
    extern "C" fn init() {
        gc::init();
    }
    init
};
