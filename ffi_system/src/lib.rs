//! ffi_system: facts about the machine (capability `sys.info`).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod args;
pub mod cpu;
pub mod hostname;
pub mod platform;
