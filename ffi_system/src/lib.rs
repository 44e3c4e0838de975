//! ffi_system: facts about the machine (capability `sys.info`).

pub mod cpu;
pub mod hostname;
pub mod platform;
