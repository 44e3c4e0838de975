//! ffi_cli: line editing (rustyline), password input, signals as polled
//! events, and file watching (notify).
//!
//! Interrupts: Ctrl-C in `rt_readline` / `rt_password_read` is Error Io with
//! details `{interrupted: true, signal: "SIGINT"}` (the error-code table has
//! no Interrupted code; see the module docs of `readline`).

pub mod readline;
pub mod signal;
pub mod watch;
