//! `rt_readline` (rustyline on a terminal, a plain line read otherwise),
//! its history, and `rt_password_read`.
//!
//! The history is process-wide (this library's own state), at most 1,000
//! entries. End of input is nil; Ctrl-C is Error Interrupted. Needs the
//! `tty` capability.

use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::io::{self, Read, Write};
use std::sync::Mutex;

static HISTORY: Mutex<Vec<String>> = Mutex::new(Vec::new());
const HISTORY_MAX: usize = 1000;

fn push_history(line: &str) {
    let mut h = HISTORY.lock().unwrap_or_else(|e| e.into_inner());
    if line.is_empty() || h.last().map(String::as_str) == Some(line) {
        return;
    }
    h.push(line.to_string());
    let n = h.len();
    if n > HISTORY_MAX {
        h.drain(..n - HISTORY_MAX);
    }
}

pub fn interrupted(func: &'static str) -> Error {
    Error::plain(Code::Interrupted, func, "interrupted (Ctrl-C)").with("signal", "SIGINT")
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty takes a descriptor by value and only queries it; any value is allowed
    // (a closed or non-terminal fd gives 0 with errno set), no memory is shared.
    unsafe { libc::isatty(fd) == 1 }
}

/// One line from fd 0, read a byte at a time (nothing read past the newline); None at end of input.
fn plain_line(func: &'static str) -> RtResult<Option<String>> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        // The thread's deadline / cancel token (docs/DEADLINES.md) stop the wait for input; what
        // was read of the line already goes back in the Error's details (`partial`).
        if ffi_sdk::deadline::active() {
            if let Err(e) = ffi_sdk::deadline::poll_fd(func, 0, libc::POLLIN, None) {
                return Err(if out.is_empty() { e } else { e.with("partial", String::from_utf8_lossy(&out).into_owned()) });
            }
        }
        match io::stdin().lock().read(&mut b) {
            Ok(0) => break,
            Ok(_) => {
                if b[0] == b'\n' {
                    if out.last() == Some(&b'\r') {
                        out.pop();
                    }
                    return String::from_utf8(out).map(Some).map_err(|_| Error::parse(func, "input line is not UTF-8", "stdin"));
                }
                out.push(b[0]);
                if out.len() > 16 << 20 {
                    return Err(Error::new(Code::LimitExceeded, func, "input line longer than 16 MiB", "stdin"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(func, "stdin", &e)),
        }
    }
    if out.is_empty() {
        Ok(None)
    } else {
        String::from_utf8(out).map(Some).map_err(|_| Error::parse(func, "input line is not UTF-8", "stdin"))
    }
}

/// Reads a line: on a terminal with line editing (arrows, Home/End, Ctrl-A/E/K/U/W, history with Up/Down and
/// Ctrl-R), otherwise a plain line from stdin (prompt written to stdout). The line without its newline; nil at
/// end of input (Ctrl-D on an empty line); Ctrl-C is Error Interrupted.
///
/// # Options
/// - history (bool, default true): add the line to the history, true
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: input line is not UTF-8
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - LimitExceeded: input line longer than 16 MiB
/// - Busy: the resource is held by someone else
/// - Interrupted: interrupted (Ctrl-C)
#[rt_fn(cap = "tty", blocking, tier = "empirical")]
pub fn rt_readline(prompt: &str, opts: Opts) -> RtResult<Option<String>> {
    opts.only(&["history"])?;
    let add = opts.bool("history")?.unwrap_or(true);
    let line = if is_tty(0) && is_tty(1) {
        use rustyline::error::ReadlineError;
        let cfg = rustyline::Config::builder().auto_add_history(false).max_history_size(HISTORY_MAX).map_err(|e| Error::internal(FN, e))?.build();
        let mut ed: rustyline::DefaultEditor = rustyline::Editor::with_config(cfg).map_err(|e| Error::new(Code::Io, FN, e, "terminal"))?;
        for h in HISTORY.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = ed.add_history_entry(h.as_str());
        }
        match ed.readline(prompt) {
            Ok(l) => Some(l),
            Err(ReadlineError::Eof) => None,
            Err(ReadlineError::Interrupted) => return Err(interrupted(FN)),
            Err(ReadlineError::Io(e)) => return Err(Error::io(FN, "terminal", &e)),
            Err(e) => return Err(Error::new(Code::Io, FN, e, "terminal")),
        }
    } else {
        if !prompt.is_empty() {
            let mut o = io::stdout().lock();
            let _ = o.write_all(prompt.as_bytes());
            let _ = o.flush();
        }
        plain_line(FN)?
    };
    if add {
        if let Some(l) = &line {
            push_history(l);
        }
    }
    Ok(line)
}

/// Adds a line to the history (empty lines and a repeat of the last entry are skipped; at most 1,000 kept). Nil.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_readline_add_history(line: &str) {
    push_history(line);
}

/// The history, oldest first (array of text).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_readline_history() -> Vec<String> {
    HISTORY.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Empties the history. Nil.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical")]
pub fn rt_readline_clear_history() {
    HISTORY.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Appends the lines of a history file (one entry per line, as Python's readline writes them) to the history; the number loaded. Needs `fs.read` there.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "empirical")]
pub fn rt_readline_history_load(path: &str) -> RtResult<i64> {
    let t = beneath::resolve(FN, "fs.read", path, beneath::Follow::Yes)?;
    let mut f = t.open_read().map_err(|e| t.err(&e))?;
    let mut s = Vec::new();
    Read::by_ref(&mut f).take(64 << 20).read_to_end(&mut s).map_err(|e| t.err(&e))?;
    let s = String::from_utf8_lossy(&s);
    let mut n = 0;
    for l in s.lines() {
        if !l.is_empty() {
            push_history(l);
            n += 1;
        }
    }
    Ok(n)
}

/// Writes the history to a file, one entry per line (replaced atomically; the file is created 0600). The number written. Needs `fs.write` there.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "empirical")]
pub fn rt_readline_history_save(path: &str) -> RtResult<i64> {
    let h = HISTORY.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let t = beneath::resolve(FN, "fs.write", path, beneath::Follow::Yes)?;
    let mode = beneath::WriteMode { mode: 0o600, ..beneath::WriteMode::REPLACE };
    let mut f = t.open_write(mode)?;
    let mut out = String::new();
    for l in &h {
        out.push_str(l);
        out.push('\n');
    }
    f.write_all(out.as_bytes()).map_err(|e| t.err(&e))?;
    Ok(h.len() as i64)
}

/// Restores terminal settings when dropped.
struct Termios(i32, libc::termios);
impl Drop for Termios {
    fn drop(&mut self) {
        // SAFETY: `self.1` is the termios that tcgetattr filled for `self.0`, a live reference read during
        // the call; restoring it on a descriptor that went away only fails (result ignored).
        unsafe { libc::tcsetattr(self.0, libc::TCSAFLUSH, &self.1) };
    }
}

/// Reads a password with no echo on the terminal (prompt on stderr). Backspace and Ctrl-U edit; Enter ends; Ctrl-C is Error Interrupted; Ctrl-D on an empty line is nil. Without a terminal it is Error Unsupported unless opts.stdin is true (then one plain line is read from stdin). The password is never part of a message.
///
/// # Options
/// - stdin (bool, default false): Without a terminal it is Error Unsupported unless opts.stdin is true (then one plain line is read from stdin)
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Parse: password is not UTF-8; input line is not UTF-8
/// - Unsupported: stdin is not a terminal (set opts.stdin to read a password from it)
/// - LimitExceeded: input line longer than 16 MiB
/// - Interrupted: interrupted (Ctrl-C)
#[rt_fn(cap = "tty", blocking, tier = "empirical")]
pub fn rt_password_read(prompt: &str, opts: Opts) -> RtResult<Option<String>> {
    opts.only(&["stdin"])?;
    let mut err = io::stderr().lock();
    if !is_tty(0) {
        if !opts.bool("stdin")?.unwrap_or(false) {
            return Err(Error::unsupported(FN, "stdin is not a terminal (set opts.stdin to read a password from it)"));
        }
        return plain_line(FN);
    }
    // SAFETY: termios is a plain C struct of integers and arrays, for which all-zero bytes are a
    // valid value; tcgetattr overwrites it next.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `&mut t` is a live, writable termios on this stack, the out-parameter tcgetattr fills;
    // fd 0 is passed by value (a non-terminal only fails).
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return Err(Error::io(FN, "terminal", &io::Error::last_os_error()));
    }
    let _restore = Termios(0, t);
    let mut raw = t;
    raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: `&raw` is a live termios on this stack, only read during the call; the original
    // settings are restored by `_restore` on every path out.
    if unsafe { libc::tcsetattr(0, libc::TCSAFLUSH, &raw) } != 0 {
        return Err(Error::io(FN, "terminal", &io::Error::last_os_error()));
    }
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    let mut pw: Vec<u8> = Vec::new();
    let result = loop {
        let mut b = [0u8; 1];
        // Deadline / cancel token: stop waiting for a key (the terminal is restored by `_restore`).
        if ffi_sdk::deadline::active() {
            if let Err(e) = ffi_sdk::deadline::poll_fd(FN, 0, libc::POLLIN, None) {
                break Err(e);
            }
        }
        // SAFETY: `b` is a live 1-byte stack buffer and exactly 1 byte is asked for, so read writes
        // in bounds.
        let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Err(Error::io(FN, "terminal", &e));
        }
        if n == 0 {
            break Ok(if pw.is_empty() { None } else { Some(()) });
        }
        match b[0] {
            b'\r' | b'\n' => break Ok(Some(())),
            3 => break Err(interrupted(FN)),
            4 if pw.is_empty() => break Ok(None),
            0x7f | 8 => {
                // Drop one UTF-8 character.
                while let Some(c) = pw.pop() {
                    if c & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => pw.clear(),
            c => pw.push(c),
        }
    };
    let _ = err.write_all(b"\n");
    let _ = err.flush();
    let r = match result? {
        None => Ok(None),
        Some(()) => String::from_utf8(std::mem::take(&mut pw)).map(Some).map_err(|_| Error::parse(FN, "password is not UTF-8", quote(""))),
    };
    // Best effort: do not leave the password's bytes behind.
    for b in pw.iter_mut() {
        // SAFETY: `b` is a `&mut u8` from `iter_mut`: valid, aligned and exclusive for the write; volatile
        // only so the zeroing is not optimised away.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    r
}
