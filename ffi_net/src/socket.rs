//! Sockets (socket2): TCP and UDP over IPv4 and IPv6, as Socket handles.
//!
//! Capabilities: connecting and sending to an address need `net.connect`
//! for `host:port=address`, binding needs `net.listen` for it. Timeouts
//! (`opts.timeout_ms`) are waited with poll(2) before the operation, so a
//! blocking socket never hangs past its deadline.

use crate::addr::{self, addr_dict};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::Instant;

/// A socket behind a handle. `rbuf` holds bytes read ahead by line reads.
pub struct Sock {
    pub s: Socket,
    pub udp: bool,
    pub v6: bool,
    pub rbuf: Mutex<Vec<u8>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Sock {
    const NAME: &'static str = "Socket";
}

impl Sock {
    pub fn new(s: Socket, udp: bool, v6: bool) -> Sock {
        Sock { s, udp, v6, rbuf: Mutex::new(Vec::new()) }
    }
}

/// Waits until `fd` is ready for `events` (POLLIN / POLLOUT) or the deadline passes.
/// Also honours the thread's deadline and cancel token (docs/DEADLINES.md): Error Timeout /
/// Cancelled, the socket untouched (a socket in non-blocking mode is not waited for).
pub fn wait(func: &'static str, fd: i32, events: i16, deadline: Option<Instant>, what: &str) -> RtResult<()> {
    if ffi_sdk::deadline::active() {
        // SAFETY: F_GETFL takes no third argument and only reads the descriptor's flags; `fd` is
        // passed by value (a bad one gives -1, which has O_NONBLOCK set and only skips the wait).
        if deadline.is_none() && unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_NONBLOCK != 0 {
            return Ok(());
        }
        let own = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        return match ffi_sdk::deadline::poll_fd(func, fd, events, own)? {
            true => Ok(()),
            false => Err(Error::plain(Code::Timeout, func, format!("timed out waiting to {what}"))),
        };
    }
    if deadline.is_none() {
        return Ok(());
    }
    loop {
        let mut p = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: `&mut p` is one live pollfd on this stack and the count passed is 1.
        let n = unsafe { libc::poll(&mut p, 1, addr::ms_left(deadline)) };
        if n > 0 {
            return Ok(());
        }
        if n == 0 {
            return Err(Error::plain(Code::Timeout, func, format!("timed out waiting to {what}")));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(Error::io(func, what, &e));
        }
    }
}

pub fn io_err(func: &'static str, what: &str, e: &io::Error) -> Error {
    Error::io(func, what, e)
}

fn timeout_opt(func: &'static str, opts: &Opts) -> RtResult<Option<Instant>> {
    let _ = func;
    Ok(addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?))
}

fn parse_family(func: &'static str, v: Value) -> RtResult<bool> {
    if let Some(i) = v.as_int() {
        return match i {
            4 => Ok(false),
            6 => Ok(true),
            _ => Err(Error::invalid(func, "family must be 4, 6, \"ipv4\" or \"ipv6\"", i)),
        };
    }
    match v.as_text() {
        Some("ipv4" | "inet" | "v4" | "4") => Ok(false),
        Some("ipv6" | "inet6" | "v6" | "6") => Ok(true),
        Some(t) => Err(Error::invalid(func, "family must be \"ipv4\" or \"ipv6\" (or 4, 6)", quote(t))),
        None => Err(ffi_sdk::args::kind_error(func, 0, "family", "text or int", v)),
    }
}

/// Creates a socket. `family`: "ipv4" / "ipv6" (or 4 / 6); `type`: "tcp" / "udp" (or "stream" / "dgram"). Close-on-exec. A Socket handle.
///
/// # Errors
/// - InvalidArgument: type must be "tcp" or "udp"; family must be 4, 6, "ipv4" or "ipv6"; family must be "ipv4" or "ipv6" (or 4, 6)
/// - Io: an operating-system failure (details.errno)
#[rt_fn(tier = "empirical", ret = "handle<Socket>")]
pub fn rt_socket_create(family: Value, kind: &str) -> RtResult<Value> {
    let v6 = parse_family(FN, family)?;
    let udp = match kind {
        "tcp" | "stream" => false,
        "udp" | "dgram" | "datagram" => true,
        _ => return Err(Error::invalid(FN, "type must be \"tcp\" or \"udp\"", quote(kind))),
    };
    let (ty, proto) = if udp { (Type::DGRAM, Protocol::UDP) } else { (Type::STREAM, Protocol::TCP) };
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, ty, Some(proto))
        .map_err(|e| io_err(FN, "socket", &e))?;
    Ok(new_handle(Sock::new(s, udp, v6)))
}

/// Addresses of `host` usable by this socket's family (IPv4 addresses map into an IPv6 socket).
fn family_addrs(func: &'static str, sock: &Sock, host: &str, addrs: Vec<SocketAddr>) -> RtResult<Vec<SocketAddr>> {
    let v: Vec<SocketAddr> = addrs
        .into_iter()
        .filter_map(|a| match (sock.v6, a) {
            (false, SocketAddr::V4(_)) | (true, SocketAddr::V6(_)) => Some(a),
            (true, SocketAddr::V4(v4)) => Some(SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())),
            (false, SocketAddr::V6(_)) => None,
        })
        .collect();
    if v.is_empty() {
        return Err(Error::invalid(func, format!("no {} address for this host", if sock.v6 { "IPv6" } else { "IPv4" }), quote(host)));
    }
    Ok(v)
}

pub fn connect_sock(func: &'static str, sock: &Sock, host: &str, port: u16, deadline: Option<Instant>) -> RtResult<()> {
    // The own timeout bounds the name lookup too, not only the connect.
    let addrs = addr::resolve_until(func, host, port, deadline)?;
    let addrs = family_addrs(func, sock, host, addrs)?;
    addr::check_all(func, "net.connect", host, &addrs)?;
    let mut last = None;
    for a in &addrs {
        if ffi_sdk::deadline::active() {
            // Non-blocking connect waited in poll with the thread's deadline and cancel token; a
            // stopped attempt closes nothing the caller owns (the socket stays unconnected).
            match connect_honouring(func, sock, a, deadline) {
                Ok(()) => return Ok(()),
                Err(Ok(e)) => return Err(e),
                Err(Err(e)) => {
                    last = Some(e);
                    continue;
                }
            }
        }
        let r = match deadline {
            None => sock.s.connect(&SockAddr::from(*a)),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(Code::Timeout, func, "timed out connecting", quote(&format!("{host}:{port}"))));
                }
                sock.s.connect_timeout(&SockAddr::from(*a), left)
            }
        };
        match r {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address"));
    Err(Error::io(func, quote(&format!("{host}:{port}")), &e))
}

/// Connects to `host`:`port` (name resolved by the system resolver; each address tried in turn, each checked
/// against `net.connect`). Nil, or Error Timeout / Io (connection refused: details.errno) / NotFound (name does
/// not resolve) / CapabilityDenied.
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: malformed host; no … address for this host; an unknown option, or an option of the wrong kind or range
/// - NotFound: host name has no address; host name does not resolve
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
/// - OutOfRange: port must be in 0..=65535
#[rt_fn(cap = "net.connect", scoped, blocking, tier = "empirical")]
pub fn rt_socket_connect(sock: Handle<Sock>, host: &str, port: i64, opts: Opts) -> RtResult<()> {
    opts.only(&["timeout_ms"])?;
    let port = addr::port(FN, port)?;
    let d = timeout_opt(FN, &opts)?;
    connect_sock(FN, &sock, host, port, d)
}

pub fn bind_sock(func: &'static str, sock: &Sock, host: &str, port: u16) -> RtResult<()> {
    let addrs = addr::resolve(func, host, port)?;
    let addrs = family_addrs(func, sock, host, addrs)?;
    let a = addrs[0];
    addr::check_all(func, "net.listen", host, &[a])?;
    sock.s.bind(&SockAddr::from(a)).map_err(|e| Error::io(func, quote(&format!("{host}:{port}")), &e))
}

/// Binds to `host`:`port` (port 0 = any free port; "0.0.0.0" / "::" = every interface). Needs `net.listen` for the address. Nil.
///
/// # Errors
/// - InvalidArgument: malformed host; no … address for this host
/// - NotFound: host name has no address; host name does not resolve
/// - Timeout: deadline passed
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
/// - OutOfRange: port must be in 0..=65535
/// - Cancelled: cancelled (a cancel token bound to this thread was triggered)
#[rt_fn(cap = "net.listen", scoped, tier = "empirical")]
pub fn rt_socket_bind(sock: Handle<Sock>, host: &str, port: i64) -> RtResult<()> {
    let port = addr::port(FN, port)?;
    bind_sock(FN, &sock, host, port)
}

/// Starts listening on a bound TCP socket (backlog 1..=65535; 128 is usual). Nil.
///
/// # Errors
/// - InvalidArgument: a UDP socket cannot listen
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
/// - OutOfRange: backlog must be in 1..=65535
#[rt_fn(tier = "empirical")]
pub fn rt_socket_listen(sock: Handle<Sock>, backlog: i64) -> RtResult<()> {
    if !(1..=65535).contains(&backlog) {
        return Err(Error::new(Code::OutOfRange, FN, "backlog must be in 1..=65535", backlog));
    }
    if sock.udp {
        return Err(Error::invalid(FN, "a UDP socket cannot listen", "udp"));
    }
    sock.s.listen(backlog as i32).map_err(|e| io_err(FN, "listen", &e))
}

pub fn accept_sock(func: &'static str, sock: &Sock, d: Option<Instant>) -> RtResult<(Sock, SocketAddr)> {
    loop {
        wait(func, sock.s.as_raw_fd(), libc::POLLIN, d, "accept")?;
        match sock.s.accept() {
            Ok((s, a)) => {
                let a = a.as_socket().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                return Ok((Sock::new(s, false, sock.v6), a));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(func, "accept", &e)),
        }
    }
}

/// One connect attempt waited with [`wait`]: Err(Ok(_)) ends the connect (Timeout, Cancelled),
/// Err(Err(_)) tries the next address.
fn connect_honouring(func: &'static str, sock: &Sock, a: &SocketAddr, deadline: Option<Instant>) -> Result<(), Result<Error, io::Error>> {
    sock.s.set_nonblocking(true).map_err(Err)?;
    let r = match sock.s.connect(&SockAddr::from(*a)) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {
            // Polled here, not through `wait`: the socket is non-blocking only for this connect.
            let own = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match ffi_sdk::deadline::poll_fd(func, sock.s.as_raw_fd(), libc::POLLOUT, own) {
                Ok(true) => match sock.s.take_error() {
                    Ok(None) => Ok(()),
                    Ok(Some(e)) | Err(e) => Err(Err(e)),
                },
                Ok(false) => Err(Ok(Error::plain(Code::Timeout, func, "timed out waiting to connect"))),
                Err(e) => Err(Ok(e)),
            }
        }
        Err(e) => Err(Err(e)),
    };
    let _ = sock.s.set_nonblocking(false);
    r
}

/// Accepts a connection on a listening socket: `{socket, host, port}` (the peer).
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout when none arrives in time
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
#[rt_fn(blocking, tier = "empirical", ret = "dict")]
pub fn rt_socket_accept(sock: Handle<Sock>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let d = timeout_opt(FN, &opts)?;
    let (s, a) = accept_sock(FN, &sock, d)?;
    Ok(addr_dict(&a).set("socket", new_handle(s)))
}

pub fn send_all(func: &'static str, sock: &Sock, data: &[u8], d: Option<Instant>) -> RtResult<usize> {
    let mut off = 0;
    // Under a deadline or cancel token (docs/DEADLINES.md) each send takes only what fits now
    // (MSG_DONTWAIT) and the rest is waited for in poll; a stop reports `details.sent`.
    // SAFETY: F_GETFL on the socket's own descriptor (open while `sock` is borrowed) takes no
    // third argument and only reads its flags.
    let honour = ffi_sdk::deadline::active() && unsafe { libc::fcntl(sock.s.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK == 0;
    let flags = if honour { libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT } else { libc::MSG_NOSIGNAL };
    while off < data.len() {
        wait(func, sock.s.as_raw_fd(), libc::POLLOUT, d, "send").map_err(|e| if honour { e.with("sent", off) } else { e })?;
        match sock.s.send_with_flags(&data[off..], flags) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if honour && e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::plain(Code::Timeout, func, "timed out waiting to send"))
            }
            Err(e) => return Err(io_err(func, "send", &e)),
        }
    }
    Ok(off)
}

/// Sends all of `data` (bytes or text) on a connected socket; the count sent. A peer that closed is Error Io
/// (EPIPE), never a SIGPIPE.
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_socket_send(sock: Handle<Sock>, data: Value, opts: Opts) -> RtResult<i64> {
    opts.only(&["timeout_ms"])?;
    let b = data.as_text_or_bytes().ok_or_else(|| ffi_sdk::args::kind_error(FN, 1, "data", "bytes or text", data))?;
    let d = timeout_opt(FN, &opts)?;
    Ok(send_all(FN, &sock, b, d)? as i64)
}

pub fn recv_some(func: &'static str, sock: &Sock, max: usize, d: Option<Instant>) -> RtResult<Vec<u8>> {
    {
        let mut rb = sock.rbuf.lock().unwrap_or_else(|e| e.into_inner());
        if !rb.is_empty() {
            let n = max.min(rb.len());
            return Ok(rb.drain(..n).collect());
        }
    }
    let mut buf = vec![0u8; max];
    loop {
        wait(func, sock.s.as_raw_fd(), libc::POLLIN, d, "receive")?;
        match io::Read::read(&mut &sock.s, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::plain(Code::Timeout, func, "timed out waiting to receive"))
            }
            Err(e) => return Err(io_err(func, "receive", &e)),
        }
    }
}

fn max_arg(func: &'static str, max: i64) -> RtResult<usize> {
    if !(1..=(64 << 20)).contains(&max) {
        return Err(Error::new(Code::OutOfRange, func, "max must be in 1..=67108864", max));
    }
    Ok(max as usize)
}

/// Receives up to `max` bytes (1..=64 MiB) from a connected socket; empty bytes at end of stream.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout when nothing arrives in time
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
/// - OutOfRange: max must be in 1..=67108864
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_socket_recv(sock: Handle<Sock>, max: i64, opts: Opts) -> RtResult<Vec<u8>> {
    opts.only(&["timeout_ms"])?;
    let max = max_arg(FN, max)?;
    let d = timeout_opt(FN, &opts)?;
    recv_some(FN, &sock, max, d)
}

/// Sends one datagram to `host`:`port` (needs `net.connect` for every address of the host; the first is used); the count sent.
///
/// # Errors
/// - InvalidArgument: malformed host; no … address for this host
/// - NotFound: host name has no address; host name does not resolve
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `sock` was closed
/// - OutOfRange: port must be in 0..=65535
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "net.connect", scoped, blocking, tier = "empirical")]
pub fn rt_socket_send_to(sock: Handle<Sock>, data: Value, host: &str, port: i64) -> RtResult<i64> {
    let b = data.as_text_or_bytes().ok_or_else(|| ffi_sdk::args::kind_error(FN, 1, "data", "bytes or text", data))?;
    let port = addr::port(FN, port)?;
    let addrs = addr::resolve(FN, host, port)?;
    let addrs = family_addrs(FN, &sock, host, addrs)?;
    addr::check_all(FN, "net.connect", host, &addrs)?;
    let n = sock
        .s
        .send_to_with_flags(b, &SockAddr::from(addrs[0]), libc::MSG_NOSIGNAL)
        .map_err(|e| Error::io(FN, quote(&format!("{host}:{port}")), &e))?;
    Ok(n as i64)
}

/// Receives one datagram of up to `max` bytes: `{data, host, port}` (the sender).
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
/// - OutOfRange: max must be in 1..=67108864
#[rt_fn(blocking, tier = "empirical", ret = "dict")]
pub fn rt_socket_recv_from(sock: Handle<Sock>, max: i64, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let max = max_arg(FN, max)?;
    let d = timeout_opt(FN, &opts)?;
    let mut buf = vec![0u8; max];
    loop {
        wait(FN, sock.s.as_raw_fd(), libc::POLLIN, d, "receive")?;
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the reborrow is the only
        // access to `buf` while it lives. Every byte is initialised already (`vec![0; max]`), and
        // socket2's recv_from only writes received (initialised) bytes, never uninit, so `buf`
        // stays fully initialised for the `&buf[..n]` read after.
        let ubuf = unsafe { &mut *(buf.as_mut_slice() as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
        match sock.s.recv_from(ubuf) {
            Ok((n, a)) => {
                let a = a.as_socket().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                return Ok(addr_dict(&a).set("data", Value::bytes(&buf[..n])));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(FN, "receive", &e)),
        }
    }
}

pub fn parse_how(func: &'static str, how: &str) -> RtResult<Shutdown> {
    match how {
        "read" => Ok(Shutdown::Read),
        "write" => Ok(Shutdown::Write),
        "both" => Ok(Shutdown::Both),
        _ => Err(Error::invalid(func, "how must be \"read\", \"write\" or \"both\"", quote(how))),
    }
}

/// Shuts down the reading side, the writing side (the peer then reads end of stream) or both: `how` is "read", "write" or "both". Nil.
///
/// # Errors
/// - InvalidArgument: how must be "read", "write" or "both"
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_socket_shutdown(sock: Handle<Sock>, how: &str) -> RtResult<()> {
    let h = parse_how(FN, how)?;
    sock.s.shutdown(h).map_err(|e| io_err(FN, how, &e))
}

pub fn set_option(func: &'static str, sock: &Sock, name: &str, v: Value) -> RtResult<()> {
    let b = || v.as_bool().ok_or_else(|| Error::invalid(func, format!("option {name} takes a bool"), v.describe()));
    let ms = || match v.as_int() {
        Some(i) if i >= 0 => Ok(if i == 0 { None } else { Some(std::time::Duration::from_millis(i as u64)) }),
        _ => Err(Error::invalid(func, format!("option {name} takes milliseconds >= 0 (0 = none)"), v.describe())),
    };
    let size = || match v.as_int() {
        Some(i) if (1..=(256 << 20)).contains(&i) => Ok(i as usize),
        _ => Err(Error::invalid(func, format!("option {name} takes a size in bytes"), v.describe())),
    };
    let r = match name {
        "reuseaddr" => sock.s.set_reuse_address(b()?),
        "reuseport" => sock.s.set_reuse_port(b()?),
        "nodelay" => sock.s.set_tcp_nodelay(b()?),
        "keepalive" => sock.s.set_keepalive(b()?),
        "broadcast" => sock.s.set_broadcast(b()?),
        "ipv6_only" => sock.s.set_only_v6(b()?),
        "nonblocking" => sock.s.set_nonblocking(b()?),
        "recv_buffer" => sock.s.set_recv_buffer_size(size()?),
        "send_buffer" => sock.s.set_send_buffer_size(size()?),
        "read_timeout_ms" => sock.s.set_read_timeout(ms()?),
        "write_timeout_ms" => sock.s.set_write_timeout(ms()?),
        _ => {
            return Err(Error::invalid(
                func,
                "unknown socket option (known: reuseaddr, reuseport, nodelay, keepalive, broadcast, ipv6_only, nonblocking, recv_buffer, send_buffer, read_timeout_ms, write_timeout_ms)",
                quote(name),
            ))
        }
    };
    r.map_err(|e| io_err(func, name, &e))
}

/// Sets a socket option: reuseaddr, reuseport, nodelay, keepalive, broadcast, ipv6_only, nonblocking (bool); recv_buffer, send_buffer (bytes); read_timeout_ms, write_timeout_ms (0 = none). Nil.
///
/// # Errors
/// - InvalidArgument: option <name> takes a bool; option <name> takes milliseconds >= 0 (0 = none); option <name> takes a size in bytes; unknown socket option (known: reuseaddr, reuseport, nodelay, keepalive, broadcast, ipv6_only, nonblocking, recv_buffer, send_buffer, read_timeout_ms, write_timeout_ms)
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_socket_set_option(sock: Handle<Sock>, name: &str, value: Value) -> RtResult<()> {
    set_option(FN, &sock, name, value)
}

/// The socket's own address: `{host, port}` (after bind or connect).
///
/// # Errors
/// - InvalidArgument: not an IP socket
/// - Io: an operating-system failure (details.errno)
/// - Closed: `sock` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_socket_local_addr(sock: Handle<Sock>) -> RtResult<Value> {
    let a = sock.s.local_addr().map_err(|e| io_err(FN, "getsockname", &e))?;
    let a = a.as_socket().ok_or_else(|| Error::invalid(FN, "not an IP socket", "socket"))?;
    Ok(addr_dict(&a))
}

/// The connected peer's address: `{host, port}`.
///
/// # Errors
/// - InvalidArgument: not an IP socket
/// - Io: not connected (ENOTCONN)
/// - Closed: `sock` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_socket_peer_addr(sock: Handle<Sock>) -> RtResult<Value> {
    let a = sock.s.peer_addr().map_err(|e| io_err(FN, "getpeername", &e))?;
    let a = a.as_socket().ok_or_else(|| Error::invalid(FN, "not an IP socket", "socket"))?;
    Ok(addr_dict(&a))
}

/// Closes a socket (idempotent): shuts it down first, so a call blocked on it in another thread returns. True.
///
/// # Errors
/// - Closed: the handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_socket_close(sock: Value) -> RtResult<bool> {
    close_value(FN, sock)
}

pub fn close_value(func: &'static str, sock: Value) -> RtResult<bool> {
    match <Handle<Sock> as ffi_sdk::FromArg>::from_arg(sock.raw(), func, 0, "sock") {
        Ok(h) => {
            let _ = h.s.shutdown(Shutdown::Both);
            h.close();
            Ok(true)
        }
        // Closing again is not an error.
        Err(e) if e.code == Code::Closed => Ok(true),
        Err(e) => Err(e),
    }
}
