//! ffi_system: facts about the machine (capability `sys.info`).

pub mod args;
pub mod cpu;
pub mod hostname;
pub mod platform;
