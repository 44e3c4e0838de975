//! HTTP connections that honour the thread's deadline and cancel tokens in
//! every step (docs/DEADLINES.md): name resolution (on a helper thread, the
//! caller waiting in 10 ms slices), the TCP connect (non-blocking, polled),
//! the TLS handshake and every read and write of the exchange (a
//! non-blocking socket waited in poll(2) with the tokens' eventfds, so a
//! cancel wakes the wait at once). ureq's own timeouts (`timeout_ms`,
//! `connect_timeout_ms`) bound the same waits.
//!
//! A stopped step surfaces from ureq as an I/O error; `http::perform` asks
//! `deadline::status()` and reports Timeout / Cancelled.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};

/// The I/O error a stopped wait turns into (its message names the reason).
fn stopped(c: ffi_sdk::Code) -> io::Error {
    io::Error::other(ffi_sdk::deadline::error("rt_http", c).message)
}

/// Waits for `fd` with `events` until `limit`: Ok(true) ready, Ok(false) `limit` passed, Err a
/// deadline or cancel (or poll failing).
fn wait(fd: i32, events: i16, limit: Option<Duration>) -> io::Result<bool> {
    match ffi_sdk::deadline::poll_fd("rt_http", fd, events, limit) {
        Ok(r) => Ok(r),
        Err(e) => match ffi_sdk::deadline::status() {
            Some(c) => Err(stopped(c)),
            None => Err(io::Error::other(e.message)),
        },
    }
}

/// A lookup's result: the addresses with port 0, or the error's kind and text (io::Error is not Clone).
type Found = Result<Vec<SocketAddr>, (io::ErrorKind, String)>;

/// A lookup in flight on a helper thread: its result once getaddrinfo returns.
#[derive(Default)]
struct Lookup {
    done: Mutex<Option<Found>>,
    ready: Condvar,
}

/// The lookups in flight, by host name, and a signal when one ends (a slot frees).
#[derive(Default)]
struct InFlight {
    by_host: Mutex<HashMap<String, Arc<Lookup>>>,
    freed: Condvar,
}

/// At most this many helper threads wait on the system resolver at once (distinct host names);
/// a caller past it waits, under its deadline and tokens, for one to end.
const MAX_LOOKUPS: usize = 32;

fn in_flight() -> &'static InFlight {
    static I: OnceLock<InFlight> = OnceLock::new();
    I.get_or_init(InFlight::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Publishes a helper's result and takes its lookup out of the in-flight table when the helper
/// ends, also if it panicked (then the waiters get an error instead of waiting on).
struct Ending {
    host: String,
    lookup: Arc<Lookup>,
    found: Option<Found>,
}

impl Drop for Ending {
    fn drop(&mut self) {
        let r = self.found.take().unwrap_or_else(|| Err((io::ErrorKind::Other, "resolver thread failed".into())));
        *lock(&self.lookup.done) = Some(r);
        self.lookup.ready.notify_all();
        let fl = in_flight();
        let mut m = lock(&fl.by_host);
        if m.get(&self.host).is_some_and(|x| Arc::ptr_eq(x, &self.lookup)) {
            m.remove(&self.host);
        }
        drop(m);
        fl.freed.notify_all();
    }
}

/// How long the next wait may sleep: Err when a deadline or cancel stopped the caller, or `end`
/// (its own limit) passed.
fn next_slice(end: Option<Instant>) -> io::Result<Duration> {
    if let Some(c) = ffi_sdk::deadline::status() {
        return Err(stopped(c));
    }
    let left = end.map(|e| e.saturating_duration_since(Instant::now()));
    if left.is_some_and(|l| l.is_zero()) {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out resolving the host name"));
    }
    Ok(ffi_sdk::deadline::slice(left).unwrap_or(Duration::from_millis(100)).max(Duration::from_millis(1)))
}

/// Resolves `host:port` through the system resolver. While the thread has a deadline or a bound
/// token (or `limit` is given) the lookup runs on a helper thread and the caller waits in slices,
/// so a cancel (or the deadline, or `limit`) returns at once; the helper finishes the lookup on
/// its own and exits.
///
/// getaddrinfo cannot be interrupted: an abandoned helper stays blocked, holding the resolver's
/// socket, until the resolver answers or times out (resolv.conf `timeout` x `attempts` per
/// server; 5 s x 2 by default). One helper per stopped call made threads and descriptors grow
/// with every call that gave up while the resolver was slow (tests/dns_cancel.rs: 20 cancelled
/// calls left 20 threads and 20 sockets), so callers asking for the same name while a lookup of
/// it is in flight share that lookup instead of starting another, and at most MAX_LOOKUPS run at
/// once: the abandoned helpers are bounded by the distinct names being resolved, not by calls.
pub fn resolve(host: &str, port: u16, limit: Option<Duration>) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    if !ffi_sdk::deadline::active() && limit.is_none() {
        return (host, port).to_socket_addrs().map(|i| i.collect());
    }
    let end = limit.map(|l| Instant::now() + l);
    let fl = in_flight();
    let lookup = {
        let mut m = lock(&fl.by_host);
        loop {
            if let Some(l) = m.get(host) {
                break l.clone();
            }
            if m.len() < MAX_LOOKUPS {
                let l = Arc::new(Lookup::default());
                m.insert(host.to_string(), l.clone());
                let (h, mine) = (host.to_string(), l.clone());
                let spawned = std::thread::Builder::new().name("rt-resolve".into()).spawn(move || {
                    let mut end = Ending { host: h, lookup: mine, found: None };
                    // The port is set by each caller: the query does not depend on it.
                    end.found = Some(
                        (end.host.as_str(), 0).to_socket_addrs().map(|i| i.collect::<Vec<_>>()).map_err(|e| (e.kind(), e.to_string())),
                    );
                });
                if let Err(e) = spawned {
                    m.remove(host);
                    return Err(e);
                }
                break l;
            }
            let s = next_slice(end)?;
            m = fl.freed.wait_timeout(m, s).unwrap_or_else(|e| e.into_inner()).0;
        }
    };
    let mut g = lock(&lookup.done);
    loop {
        if let Some(r) = &*g {
            return match r {
                Ok(v) => Ok(v.iter().map(|a| SocketAddr::new(a.ip(), port)).collect()),
                Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            };
        }
        let s = next_slice(end)?;
        g = lookup.ready.wait_timeout(g, s).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Opens TCP connections with a non-blocking connect waited in poll.
#[derive(Debug, Default)]
pub struct PollTcpConnector;

impl<In: Transport> Connector<In> for PollTcpConnector {
    type Out = Either<In, PollTcp>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            return Ok(chained.map(Either::A));
        }
        let limit = details.timeout.not_zero().map(|t| *t);
        let start = Instant::now();
        let mut last: Option<ureq::Error> = None;
        for a in details.addrs.iter() {
            let left = limit.map(|l| l.saturating_sub(start.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(ureq::Error::Timeout(details.timeout.reason));
            }
            match connect_one(a, left) {
                Ok(s) => {
                    if details.config.no_delay() {
                        s.set_nodelay(true)?;
                    }
                    let s = Arc::new(s);
                    (details.register_shutdown)(Arc::downgrade(&s) as Weak<dyn ShutdownHandle>)?;
                    let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
                    return Ok(Some(Either::B(PollTcp { s, buffers })));
                }
                Err(ConnErr::Timeout) => return Err(ureq::Error::Timeout(details.timeout.reason)),
                Err(ConnErr::Stop(e)) => return Err(ureq::Error::Io(e)),
                Err(ConnErr::Addr(e)) => last = Some(ureq::Error::Io(e)),
            }
        }
        Err(last.unwrap_or_else(|| ureq::Error::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"))))
    }
}

enum ConnErr {
    /// This address failed: try the next.
    Addr(io::Error),
    /// The connect timeout passed.
    Timeout,
    /// A deadline or cancel.
    Stop(io::Error),
}

fn connect_one(a: &SocketAddr, limit: Option<Duration>) -> Result<TcpStream, ConnErr> {
    let dom = if a.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let s = socket2::Socket::new(dom, socket2::Type::STREAM, Some(socket2::Protocol::TCP)).map_err(ConnErr::Addr)?;
    s.set_nonblocking(true).map_err(ConnErr::Addr)?;
    match s.connect(&(*a).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {
            match wait(s.as_raw_fd(), libc::POLLOUT, limit) {
                Ok(true) => {}
                Ok(false) => return Err(ConnErr::Timeout),
                Err(e) => return Err(ConnErr::Stop(e)),
            }
            match s.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return Err(ConnErr::Addr(e)),
            }
        }
        Err(e) => return Err(ConnErr::Addr(e)),
    }
    Ok(s.into())
}

/// A non-blocking TCP connection whose reads and writes wait in poll.
pub struct PollTcp {
    s: Arc<TcpStream>,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for PollTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollTcp").field("peer", &self.s.peer_addr().ok()).finish()
    }
}

fn limit_of(t: &NextTimeout) -> Option<Duration> {
    t.not_zero().map(|d| *d)
}

impl Transport for PollTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let end = limit_of(&timeout).map(|l| Instant::now() + l);
        let fd = self.s.as_raw_fd();
        let mut off = 0;
        while off < amount {
            match (&*self.s).write(&self.buffers.output()[off..amount]) {
                Ok(0) => return Err(ureq::Error::Io(io::Error::new(io::ErrorKind::WriteZero, "connection closed while sending"))),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = end.map(|e| e.saturating_duration_since(Instant::now()));
                    if !wait(fd, libc::POLLOUT, left)? {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                }
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let end = limit_of(&timeout).map(|l| Instant::now() + l);
        let fd = self.s.as_raw_fd();
        loop {
            let input = self.buffers.input_append_buf();
            match (&*self.s).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = end.map(|e| e.saturating_duration_since(Instant::now()));
                    if !wait(fd, libc::POLLIN, left)? {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                }
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
    }

    fn is_open(&mut self) -> bool {
        // Idle in the pool: open when a read would block (no EOF, no stray bytes).
        let mut b = [0u8; 1];
        matches!((&*self.s).read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}
