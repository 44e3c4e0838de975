//! ffi_cli: line editing (rustyline), password input, signals as polled
//! events, and file watching (notify).
//!
//! Interrupts: Ctrl-C in `rt_readline` / `rt_password_read` is Error
//! Interrupted (details `{signal: "SIGINT"}`), told apart from end of input (nil).

pub mod readline;
pub mod signal;
pub mod watch;
