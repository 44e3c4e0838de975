//! Simple's `sffi/net.spl` TCP API (`rt_io_tcp_*`), served over the same
//! Socket handles as `rt_socket_*` (Simple passes raw descriptors; here a
//! handle stands where it passes one). Addresses are `"host:port"` /
//! `"[v6]:port"` texts. Failures are Error values, never -1 or false.

use crate::addr;
use crate::socket::{self, Sock};

use ffi_sdk::prelude::*;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn new_tcp(func: &'static str, v6: bool) -> RtResult<Sock> {
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| socket::io_err(func, "socket", &e))?;
    Ok(Sock::new(s, false, v6))
}

fn family_for(func: &'static str, host: &str, port: u16, d: Option<Instant>) -> RtResult<bool> {
    let addrs = addr::resolve_until(func, host, port, d)?;
    Ok(!addrs.iter().any(SocketAddr::is_ipv4))
}

/// Simple's name: a TCP socket; `family` 4 or 2 (AF_INET) = IPv4, 6 or 10 (AF_INET6) = IPv6. A Socket handle.
///
/// # Errors
/// - InvalidArgument: family must be 4 (or AF_INET 2) or 6 (or AF_INET6 10)
/// - Io: an operating-system failure (details.errno)
#[rt_fn(tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_socket_create(family: i64) -> RtResult<Value> {
    let v6 = match family {
        2 | 4 => false,
        6 | 10 => true,
        _ => return Err(Error::invalid(FN, "family must be 4 (or AF_INET 2) or 6 (or AF_INET6 10)", family)),
    };
    Ok(new_handle(new_tcp(FN, v6)?))
}

/// Simple's name: a listening TCP socket on `addr` ("host:port"; SO_REUSEADDR, backlog 128). Needs `net.listen`.
///
/// # Errors
/// - InvalidArgument: `addr` is not host:port or [v6]:port, or the host has no address
/// - OutOfRange: the port is outside 0..=65535
/// - Io: the bind or listen failed (details.errno; EADDRINUSE...)
///
/// # Example
/// rt_io_tcp_bind("127.0.0.1:0") -> Socket handle
#[rt_fn(cap = "net.listen", scoped, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_bind(addr: &str) -> RtResult<Value> {
    let (h, p) = addr::split_addr(FN, addr)?;
    let s = new_tcp(FN, family_for(FN, &h, p, None)?)?;
    s.s.set_reuse_address(true).map_err(|e| socket::io_err(FN, "SO_REUSEADDR", &e))?;
    socket::bind_sock(FN, &s, &h, p)?;
    s.s.listen(128).map_err(|e| socket::io_err(FN, "listen", &e))?;
    Ok(new_handle(s))
}

/// Simple's name: binds a socket made by `rt_io_tcp_socket_create` to `addr`. True.
///
/// # Errors
/// - InvalidArgument: expected host:port or [v6]:port; malformed host; no … address for this host
/// - NotFound: host name has no address; host name does not resolve
/// - Timeout: deadline passed
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: port must be in 0..=65535
/// - Cancelled: cancelled (a cancel token bound to this thread was triggered)
#[rt_fn(cap = "net.listen", scoped, tier = "empirical")]
pub fn rt_io_tcp_bind_fd(fd: Handle<Sock>, addr: &str) -> RtResult<bool> {
    let (h, p) = addr::split_addr(FN, addr)?;
    socket::bind_sock(FN, &fd, &h, p)?;
    Ok(true)
}

/// Simple's name: listens on a bound socket (backlog 1..=65535). True.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: backlog must be in 1..=65535
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_listen(fd: Handle<Sock>, backlog: i64) -> RtResult<bool> {
    if !(1..=65535).contains(&backlog) {
        return Err(Error::new(Code::OutOfRange, FN, "backlog must be in 1..=65535", backlog));
    }
    fd.s.listen(backlog as i32).map_err(|e| socket::io_err(FN, "listen", &e))?;
    Ok(true)
}

/// Simple's name: accepts a connection (blocks): a Socket handle.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
#[rt_fn(blocking, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_accept(fd: Handle<Sock>) -> RtResult<Value> {
    Ok(new_handle(socket::accept_sock(FN, &fd, None)?.0))
}

/// Simple's name: accepts a connection within `ms` milliseconds: a Socket handle, or Error Timeout.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: ms must be >= 0
#[rt_fn(blocking, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_accept_timeout(fd: Handle<Sock>, ms: i64) -> RtResult<Value> {
    if ms < 0 {
        return Err(Error::new(Code::OutOfRange, FN, "ms must be >= 0", ms));
    }
    Ok(new_handle(socket::accept_sock(FN, &fd, addr::deadline(Some(ms)))?.0))
}

fn connect(func: &'static str, a: &str, d: Option<Instant>) -> RtResult<Value> {
    let (h, p) = addr::split_addr(func, a)?;
    let s = new_tcp(func, family_for(func, &h, p, d)?)?;
    socket::connect_sock(func, &s, &h, p, d)?;
    Ok(new_handle(s))
}

/// Simple's name: connects to `addr` ("host:port"): a Socket handle. Needs `net.connect` for every address of the
/// host.
///
/// # Errors
/// - InvalidArgument: `addr` is not host:port or [v6]:port
/// - OutOfRange: the port is outside 0..=65535
/// - NotFound: the host name does not resolve
/// - Io: every address refused or failed (details.errno)
///
/// # Example
/// rt_io_tcp_connect("127.0.0.1:8080") -> Socket handle
#[rt_fn(cap = "net.connect", scoped, blocking, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_connect(addr: &str) -> RtResult<Value> {
    connect(FN, addr, None)
}

/// Simple's name: connects within `ms` milliseconds, else Error Timeout.
///
/// # Errors
/// - InvalidArgument: expected host:port or [v6]:port; no … address for this host
/// - NotFound: host name has no address; host name does not resolve
/// - OutOfRange: ms must be >= 0; port must be in 0..=65535
#[rt_fn(cap = "net.connect", scoped, blocking, tier = "empirical", ret = "handle<Socket>")]
pub fn rt_io_tcp_connect_timeout(addr: &str, ms: i64) -> RtResult<Value> {
    if ms < 0 {
        return Err(Error::new(Code::OutOfRange, FN, "ms must be >= 0", ms));
    }
    connect(FN, addr, addr::deadline(Some(ms)))
}

/// Simple's name: reads up to `size` bytes (1..=64 MiB); nil at end of stream.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: size must be in 1..=67108864
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_io_tcp_read(fd: Handle<Sock>, size: i64) -> RtResult<Option<Vec<u8>>> {
    if !(1..=(64 << 20)).contains(&size) {
        return Err(Error::new(Code::OutOfRange, FN, "size must be in 1..=67108864", size));
    }
    let b = socket::recv_some(FN, &fd, size as usize, None)?;
    Ok(if b.is_empty() { None } else { Some(b) })
}

/// Reads through the next "\n" (at most 1 MiB): the line without "\n" / "\r\n", or the rest at end of stream; nil when nothing is left.
fn line(func: &'static str, fd: &Sock) -> RtResult<Option<Vec<u8>>> {
    const MAX: usize = 1 << 20;
    loop {
        {
            let mut rb = fd.rbuf.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = rb.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = rb.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(Some(l));
            }
            if rb.len() > MAX {
                return Err(Error::new(Code::LimitExceeded, func, "line longer than 1 MiB", rb.len()));
            }
        }
        let mut buf = vec![0u8; 8192];
        let n = loop {
            // Honours the thread's deadline / cancel token (nothing consumed when it stops).
            socket::wait(func, std::os::fd::AsRawFd::as_raw_fd(&fd.s), libc::POLLIN, None, "receive")?;
            match std::io::Read::read(&mut &fd.s, &mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(Error::plain(Code::Timeout, func, "timed out waiting to receive"))
                }
                Err(e) => return Err(socket::io_err(func, "receive", &e)),
            }
        };
        let mut rb = fd.rbuf.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            return Ok(if rb.is_empty() { None } else { Some(std::mem::take(&mut *rb)) });
        }
        rb.extend_from_slice(&buf[..n]);
    }
}

/// Simple's name: reads one line (through "\n", which is dropped with a "\r" before it); nil at end of stream.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Parse: not UTF-8
/// - Closed: `fd` was closed
/// - LimitExceeded: line longer than 1 MiB
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_io_tcp_read_line(fd: Handle<Sock>) -> RtResult<Option<String>> {
    match line(FN, &fd)? {
        None => Ok(None),
        Some(l) => String::from_utf8(l).map(Some).map_err(|_| Error::parse(FN, "line is not UTF-8", "socket")),
    }
}

/// Simple's name: reads and discards one line; the number of bytes discarded (-1 at end of stream).
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - LimitExceeded: line longer than 1 MiB
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_io_tcp_drain_line(fd: Handle<Sock>) -> RtResult<i64> {
    Ok(line(FN, &fd)?.map(|l| l.len() as i64).unwrap_or(-1))
}

/// Simple's name: sends all of `data`; the count sent.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_io_tcp_write(fd: Handle<Sock>, data: &[u8]) -> RtResult<i64> {
    Ok(socket::send_all(FN, &fd, data, None)? as i64)
}

/// Simple's name: sends all of a text (UTF-8); the count sent.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_io_tcp_write_text(fd: Handle<Sock>, data: &str) -> RtResult<i64> {
    Ok(socket::send_all(FN, &fd, data.as_bytes(), None)? as i64)
}

/// Simple's name: nothing is buffered on the sending side; true.
///
/// # Errors
/// - Closed: `fd` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_flush(fd: Handle<Sock>) -> RtResult<bool> {
    let _ = &fd;
    Ok(true)
}

macro_rules! flag {
    ($name:ident, $opt:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// # Errors
        /// - Closed: `fd` was closed
        /// - Io: the socket refused the setting (details.errno)
        #[rt_fn(tier = "empirical")]
        pub fn $name(fd: Handle<Sock>, enabled: bool) -> RtResult<bool> {
            socket::set_option(FN, &fd, $opt, if enabled { Value::TRUE } else { Value::FALSE })?;
            Ok(true)
        }
    };
}
flag!(rt_io_tcp_set_nodelay, "nodelay", "Simple's name: TCP_NODELAY on or off. True.");
flag!(rt_io_tcp_set_nonblocking, "nonblocking", "Simple's name: non-blocking mode on or off (reads then fail with Error Timeout instead of waiting). True.");
flag!(rt_io_tcp_set_reuseaddr, "reuseaddr", "Simple's name: SO_REUSEADDR on or off. True.");
flag!(rt_io_tcp_set_reuseport, "reuseport", "Simple's name: SO_REUSEPORT on or off. True.");

fn set_timeout(func: &'static str, fd: &Sock, ms: i64, read: bool) -> RtResult<bool> {
    if ms < 0 {
        return Err(Error::new(Code::OutOfRange, func, "ms must be >= 0 (0 = none)", ms));
    }
    let d = if ms == 0 { None } else { Some(Duration::from_millis(ms as u64)) };
    let r = if read { fd.s.set_read_timeout(d) } else { fd.s.set_write_timeout(d) };
    r.map_err(|e| socket::io_err(func, "timeout", &e))?;
    Ok(true)
}

/// Simple's name: reads wait at most `ms` milliseconds (0 = forever), then Error Timeout. True.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: ms must be >= 0 (0 = none)
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_set_read_timeout(fd: Handle<Sock>, ms: i64) -> RtResult<bool> {
    set_timeout(FN, &fd, ms, true)
}

/// Simple's name: writes wait at most `ms` milliseconds (0 = forever), then Error Timeout. True.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
/// - OutOfRange: ms must be >= 0 (0 = none)
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_set_write_timeout(fd: Handle<Sock>, ms: i64) -> RtResult<bool> {
    set_timeout(FN, &fd, ms, false)
}

/// Simple's name: shuts down reading (0), writing (1) or both (2). True.
///
/// # Errors
/// - InvalidArgument: how must be 0 (read), 1 (write) or 2 (both); how must be "read", "write" or "both"
/// - Io: an operating-system failure (details.errno)
/// - Closed: `fd` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_shutdown(fd: Handle<Sock>, how: i64) -> RtResult<bool> {
    let h = match how {
        0 => "read",
        1 => "write",
        2 => "both",
        _ => return Err(Error::invalid(FN, "how must be 0 (read), 1 (write) or 2 (both)", how)),
    };
    fd.s.shutdown(socket::parse_how(FN, h)?).map_err(|e| socket::io_err(FN, h, &e))?;
    Ok(true)
}

fn addr_text(a: std::io::Result<socket2::SockAddr>) -> Option<String> {
    a.ok().and_then(|a| a.as_socket()).map(|a| a.to_string())
}

/// Simple's name: the local address as "host:port" ("[v6]:port"); nil when unbound.
///
/// # Errors
/// - Closed: `fd` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_local_addr(fd: Handle<Sock>) -> Option<String> {
    addr_text(fd.s.local_addr())
}

/// Simple's name: the peer's address as "host:port"; nil when not connected.
///
/// # Errors
/// - Closed: `fd` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_peer_addr(fd: Handle<Sock>) -> Option<String> {
    addr_text(fd.s.peer_addr())
}

/// Simple's name: closes the socket (idempotent). True.
///
/// # Errors
/// - Closed: the handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_io_tcp_close(fd: Value) -> RtResult<bool> {
    socket::close_value(FN, fd)
}
