//! ffi_data: data structures for compilers and tools (plan §4.1).
//!
//! - [`regex`]: regular expressions behind a `Regex` handle, compiled once per
//!   pattern and options (a bounded, thread-safe LRU cache of compiled programs).
//!   [`regex_quick`] serves the names Simple's `io/regex_ffi.spl` declares.
//! - [`intern`]: process-wide string interning (lasso `ThreadedRodeo`): text to
//!   a small int symbol and back.
//! - [`arena`]: a bump arena of zeroed byte buffers freed together on close
//!   (typed-arena), addressed by int ids (and raw addresses for C hosts).
//! - [`collections`]: a concurrent hash map (dashmap) and an insertion-ordered
//!   map (indexmap behind a lock) holding values.
//!
//! Collector safety (SPEC §4): every value kept in Rust memory here (map values,
//! interned texts, constant dict keys) is held as a pinned [`ffi_sdk::Root`];
//! results are built directly in collector memory.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arena;
pub mod collections;
pub mod intern;
pub mod regex;
pub mod regex_quick;
