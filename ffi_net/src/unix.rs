//! Unix domain stream sockets, as Socket handles (so `rt_socket_send` /
//! `_recv` / `_accept`, `rt_io_tcp_read` / `_write` / `_read_line` work on
//! them).
//!
//! Capability: a Unix socket is a file, and connecting to one is writing to
//! it (connect(2) needs write permission on the socket file), so both
//! connect and listen need `fs.write` for the socket's path, checked by the
//! same path policy as file writes (`beneath`: canonical path, symlinks
//! resolved). The path is reached without trusting its text a second time:
//! connect opens the socket file itself with O_PATH|O_NOFOLLOW below the
//! directory descriptor the policy walk gave, checks it is a socket, and
//! connects through `/proc/self/fd/N` (no rename or symlink swap after the
//! check redirects it); listen binds through the directory descriptor
//! (`/proc/self/fd/DIR/name`). Abstract-namespace names are not served.

use crate::socket::{self, Sock};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use socket2::{Domain, SockAddr, Socket, Type};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// The longest sun_path (including the NUL).
const SUN_PATH: usize = 108;

fn sock_addr(func: &'static str, p: &str) -> RtResult<SockAddr> {
    if p.len() + 1 > SUN_PATH {
        return Err(Error::invalid(func, "socket file name too long for a Unix socket address", quote(p)));
    }
    SockAddr::unix(p).map_err(|e| Error::io(func, quote(p), &e))
}

fn check_path(func: &'static str, path: &str) -> RtResult<()> {
    if path.starts_with('@') || path.starts_with('\0') {
        return Err(Error::new(Code::Unsupported, func, "abstract Unix socket names are not served; use a path", quote(path)));
    }
    Ok(())
}

fn connect_addr(func: &'static str, sock: &Socket, a: &SockAddr, path: &str, end: Option<Instant>) -> RtResult<()> {
    // Non-blocking connect, waited in poll with the own timeout, the deadline and the token.
    sock.set_nonblocking(true).map_err(|e| socket::io_err(func, "O_NONBLOCK", &e))?;
    let r = match sock.connect(a) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.raw_os_error() == Some(libc::EAGAIN) => {
            let own = end.map(|d| d.saturating_duration_since(Instant::now()));
            match ffi_sdk::deadline::poll_fd(func, sock.as_raw_fd(), libc::POLLOUT, own) {
                Ok(true) => match sock.take_error() {
                    Ok(None) => Ok(()),
                    Ok(Some(e)) | Err(e) => Err(Error::io(func, quote(path), &e)),
                },
                Ok(false) => Err(Error::plain(Code::Timeout, func, "timed out waiting to connect")),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(Error::io(func, quote(path), &e)),
    };
    sock.set_nonblocking(false).map_err(|e| socket::io_err(func, "O_NONBLOCK", &e))?;
    r
}

fn new_unix(func: &'static str) -> RtResult<Socket> {
    Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| socket::io_err(func, "socket", &e))
}

fn connect(func: &'static str, path: &str, end: Option<Instant>) -> RtResult<Value> {
    check_path(func, path)?;
    let t = beneath::resolve(func, "fs.write", path, beneath::Follow::Yes)?;
    let s = new_unix(func)?;
    // The socket file itself, never followed if it is a link now.
    let nofollow = if t.scoped() { libc::O_NOFOLLOW } else { 0 };
    let fd = beneath::openat(t.dirfd(), t.name(), libc::O_PATH | nofollow | libc::O_CLOEXEC, 0).map_err(|e| t.err(&e))?;
    let st = beneath::fstat(fd.as_raw_fd()).map_err(|e| t.err(&e))?;
    if !beneath::is(&st, libc::S_IFSOCK) {
        return Err(Error::invalid(func, "not a Unix socket", quote(path)));
    }
    // Connecting is writing to the socket file (fs.write), so a socket with other hard
    // links is refused under a scoped fs.write unless the policy holds fs.hardlink, as
    // writing through a multiply-linked regular file is (docs/SECURITY.md, "Hard links"):
    // a link planted in the scope to a socket outside it would reach a listener the
    // policy never allowed.
    if t.scoped() {
        beneath::refuse_links(func, path, &st)?;
    }
    let a = sock_addr(func, &format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    connect_addr(func, &s, &a, path, end)?;
    drop(fd);
    Ok(new_handle(Sock::new(s, false, false)))
}

/// Simple's name: connects to the Unix stream socket at `path`: a Socket handle (use `rt_socket_send` / `_recv`,
/// `rt_io_tcp_read` / `_write` / `_read_line`, `rt_socket_close`). Needs `fs.write` for the path (connecting is
/// writing to the socket file).
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: it is no socket; an unknown option, or an option of the wrong kind or range
/// - NotFound: no file is there, Io (ECONNREFUSED) when nothing listens
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: abstract Unix socket names are not served; use a path
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_unix_socket_connect(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let end = crate::addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?);
    connect(FN, path, end)
}

/// Creates a listening Unix stream socket at `path` (the file must not exist, unless opts.replace and it is a
/// stale socket, which is removed first); accept with `rt_socket_accept` (the peer's address reads as port 0) or
/// `rt_io_tcp_accept`. Needs `fs.write` for the path. The socket file stays after close: remove it with
/// `rt_file_delete`. A Socket handle.
///
/// # Options
/// - backlog (int 1..=65535, default 128): 128
/// - replace (bool, default false): false
///
/// # Errors
/// - InvalidArgument: path is not UTF-8; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: a file that is not a socket is there; a file is already there (opts.replace removes a stale socket)
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: abstract Unix socket names are not served; use a path
#[rt_fn(cap = "fs.write", scoped, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_socket_unix_listen(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["backlog", "replace"])?;
    check_path(FN, path)?;
    let backlog = opts.int_in("backlog", 1, 65535)?.unwrap_or(128) as i32;
    let replace = opts.bool("replace")?.unwrap_or(false);
    let t = beneath::resolve(FN, "fs.write", path, beneath::Follow::No)?;
    if replace {
        if let Ok(st) = beneath::statat(t.dirfd(), t.name(), true) {
            if !beneath::is(&st, libc::S_IFSOCK) {
                return Err(Error::new(Code::AlreadyExists, FN, "a file that is not a socket is there", quote(path)));
            }
            // SAFETY: `t.dirfd()` is the open descriptor of the walked parent directory, owned by `t`, and
            // `t.name()` its live NUL-terminated final component; unlinkat only reads them.
            if unsafe { libc::unlinkat(t.dirfd(), t.name().as_ptr(), 0) } != 0 {
                return Err(t.err(&std::io::Error::last_os_error()));
            }
        }
    }
    let s = new_unix(FN)?;
    // Bound through the (walked) parent directory's descriptor: no second lookup of its path,
    // and no sun_path limit on the path's length.
    let (dir, name) = t.split().map_err(|e| t.err(&e))?;
    let name = name.to_str().map_err(|_| Error::invalid(FN, "path is not UTF-8", quote(path)))?;
    let where_ = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
    let a = sock_addr(FN, &where_)?;
    s.bind(&a).map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRINUSE) {
            Error::new(Code::AlreadyExists, FN, "a file is already there (opts.replace removes a stale socket)", quote(path))
        } else {
            Error::io(FN, quote(path), &e)
        }
    })?;
    s.listen(backlog).map_err(|e| socket::io_err(FN, "listen", &e))?;
    Ok(new_handle(Sock::new(s, false, false)))
}

/// A connected pair of Unix stream sockets (socketpair(2)): `[a, b]`, two Socket handles. No capability: nothing outside the process is reached.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "empirical", ret = "array")]
pub fn rt_socket_pair_create() -> RtResult<Value> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a live array of the 2 ints socketpair writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(Error::io(FN, "socketpair", &std::io::Error::last_os_error()));
    }
    // SAFETY: socketpair succeeded, so `fds[0]` is a new open descriptor that nothing else owns;
    // the OwnedFd takes sole ownership (closed once, by the Socket).
    let a = unsafe { Socket::from(OwnedFd::from_raw_fd(fds[0])) };
    // SAFETY: likewise `fds[1]`: the pair's other new descriptor, owned only by this Socket.
    let b = unsafe { Socket::from(OwnedFd::from_raw_fd(fds[1])) };
    Ok(Value::array(2).push(new_handle(Sock::new(a, false, false))).push(new_handle(Sock::new(b, false, false))))
}
