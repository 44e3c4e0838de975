//! ffi_cli: line editing (rustyline), password input, signals (the
//! process's one signal mechanism: polled events, and Simple's latched
//! `rt_signal_install` / `rt_signal_check`), and file watching (notify).
//!
//! Interrupts: Ctrl-C in `rt_readline` / `rt_password_read` is Error
//! Interrupted (details `{signal: "SIGINT"}`), told apart from end of input (nil).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod readline;
pub mod signal;
pub mod watch;
