//! WebSocket (tungstenite): Simple's `rt_ws_connect` / `_send` / `_receive`
//! / `_close`, plus ping, full messages and the server side of a socket
//! accepted with `rt_socket_accept`.
//!
//! The socket is non-blocking under tungstenite (whose state machine resumes
//! after WouldBlock), and every wait is a poll(2) on it through
//! `ffi_sdk::deadline::poll_fd`: each call has its own `timeout_ms` and also
//! honours the thread's deadline and cancel tokens (nothing half-done: a
//! message is either returned or still queued; a send stopped midway keeps
//! its frame queued and the next send or receive flushes it). A receive
//! waits without holding the connection's lock, so another thread can send
//! meanwhile. `wss://` is TLS through rustls with the platform's verifier or
//! opts.ca_file. Connecting needs `net.connect` for every address of the
//! host (as `rt_socket_connect`).

use crate::addr;
use crate::socket::{self, Sock};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// A plain or TLS connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.sock.as_raw_fd(),
        }
    }
    fn wants_write(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.conn.wants_write())
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A WebSocket behind a handle.
pub struct Ws {
    ws: Mutex<Option<WebSocket<Stream>>>,
    fd: RawFd,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Ws {
    const NAME: &'static str = "WebSocket";
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits for the socket: readable (and writable when TLS has output pending).
/// Ok(false) when `end` passed first.
fn wait(func: &'static str, fd: RawFd, write: bool, end: Option<Instant>) -> RtResult<bool> {
    let own = end.map(|e| e.saturating_duration_since(Instant::now()));
    let ev = if write { libc::POLLOUT } else { libc::POLLIN };
    ffi_sdk::deadline::poll_fd(func, fd, ev | libc::POLLIN, own)
}

fn timed_out(func: &'static str, what: &str) -> Error {
    Error::plain(Code::Timeout, func, format!("timed out waiting to {what}"))
}

fn map_err(func: &'static str, e: tungstenite::Error) -> Error {
    use tungstenite::Error as E;
    match e {
        E::ConnectionClosed | E::AlreadyClosed => Error::plain(Code::Closed, func, "the WebSocket is closed"),
        E::Io(e) => {
            if let Some(r) = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
                return Error::plain(Code::Io, func, format!("TLS error: {r}")).with("tls", 1);
            }
            Error::io(func, "WebSocket", &e)
        }
        E::Capacity(c) => Error::plain(Code::LimitExceeded, func, format!("message too large: {c}")),
        E::Protocol(p) => Error::plain(Code::Parse, func, format!("WebSocket protocol error: {p}")),
        E::Http(r) => {
            let s = r.status().as_u16();
            Error::plain(Code::Io, func, format!("the server refused the WebSocket upgrade with HTTP status {s}")).with("status", s as i64)
        }
        E::Url(u) => Error::plain(Code::InvalidArgument, func, format!("malformed WebSocket URL: {u}")),
        E::Utf8(_) => Error::plain(Code::Parse, func, "a text message is not UTF-8"),
        other => Error::plain(Code::Io, func, format!("WebSocket error: {other}")),
    }
}

fn is_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(x) if x.kind() == io::ErrorKind::WouldBlock)
}

fn config(func: &'static str, opts: &Opts) -> RtResult<WebSocketConfig> {
    let max = opts.int_in("max_message_bytes", 1, 1 << 40)?.unwrap_or(64 << 20) as usize;
    let _ = func;
    Ok(WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max)))
}

fn tls_config(func: &'static str, ca_file: Option<&str>) -> RtResult<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::plain(Code::Internal, func, format!("TLS setup: {e}")))?;
    let cfg = match ca_file {
        Some(p) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::http::load_ca(func, p)? {
                roots
                    .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .map_err(|e| Error::parse(func, format!("ca_file certificate rejected: {e}"), quote(p)))?;
            }
            b.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let v = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| Error::plain(Code::Internal, func, format!("TLS platform verifier: {e}")))?;
            b.dangerous().with_custom_certificate_verifier(Arc::new(v)).with_no_client_auth()
        }
    };
    Ok(Arc::new(cfg))
}

const CONNECT_OPTS: &[&str] = &["headers", "timeout_ms", "ca_file", "protocols", "max_message_bytes"];

/// Simple's name: opens a WebSocket to a `ws://` or `wss://` URL (TLS through rustls: the platform's roots, or
/// opts.ca_file). Needs `net.connect` for every address of the host. A WebSocket handle; a refused upgrade is
/// Error Io with details.status.
///
/// # Options
/// - timeout_ms (int >= 0): connect + handshake
/// - headers (dict of text): dict
/// - protocols: array of subprotocol names
/// - ca_file (text): the platform's roots, or opts.ca_file
/// - max_message_bytes (int >= 1, default 64 MiB): 64 MiB; a larger message is Error LimitExceeded
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL; malformed header name; malformed header value; malformed protocol names
/// - NotFound: host name has no address; host name does not resolve
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8; ca_file certificate rejected; ca_file is not valid PEM
/// - Unsupported: only ws and wss URLs are supported
/// - Closed: the WebSocket is closed
/// - LimitExceeded: message too large
#[rt_fn(cap = "net.connect", scoped, blocking, tier = "empirical", ret = "handle<WebSocket>")]
pub fn rt_ws_connect(url: &str, opts: Opts) -> RtResult<Value> {
    use tungstenite::client::IntoClientRequest;
    opts.only(CONNECT_OPTS)?;
    let end = addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?);
    let bad = |why: &str| Error::invalid(FN, format!("malformed WebSocket URL: {why}"), crate::http::redact(url));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected ws:// or wss://"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "ws" => false,
        "wss" => true,
        _ => return Err(Error::new(Code::Unsupported, FN, "only ws and wss URLs are supported", crate::http::redact(url))),
    };
    let auth = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if auth.contains('@') {
        return Err(bad("user-info is not supported (send an Authorization header)"));
    }
    let port_text = match auth.rfind(']') {
        Some(i) => auth[i + 1..].strip_prefix(':'),
        None => auth.rsplit_once(':').map(|x| x.1),
    };
    if port_text.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(bad("port must be a number in 0..=65535"));
    }
    let uri: ureq::http::Uri = url.parse().map_err(|e: ureq::http::uri::InvalidUri| bad(&e.to_string()))?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let mut req = url.into_client_request().map_err(|e| map_err(FN, e))?;
    for (k, v) in opts.text_map("headers")?.unwrap_or_default() {
        let name = ureq::http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| Error::invalid(FN, "malformed header name", quote(&k)))?;
        let val = ureq::http::HeaderValue::from_str(&v).map_err(|_| Error::invalid(FN, "malformed header value", quote(&k)))?;
        req.headers_mut().insert(name, val);
    }
    if let Some(p) = opts.texts("protocols")? {
        let v = ureq::http::HeaderValue::from_str(&p.join(", ")).map_err(|_| Error::invalid(FN, "malformed protocol names", "protocols"))?;
        req.headers_mut().insert("sec-websocket-protocol", v);
    }
    let cfg = config(FN, &opts)?;
    let tlscfg = if tls { Some(tls_config(FN, opts.text("ca_file")?)?) } else { None };

    // TCP: resolved, checked against net.connect, connected under the deadline and token.
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = addr::resolve_until(FN, h, port, end)?; // timeout_ms bounds the lookup too
    let v6 = addrs.iter().all(|a| a.is_ipv6());
    let s = socket2::Socket::new(
        if v6 { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 },
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(|e| socket::io_err(FN, "socket", &e))?;
    let sock = Sock::new(s, false, v6);
    socket::connect_sock(FN, &sock, h, port, end)?;
    let Sock { s, .. } = sock;
    let tcp: TcpStream = s.into();
    tcp.set_nodelay(true).map_err(|e| socket::io_err(FN, "TCP_NODELAY", &e))?;
    tcp.set_nonblocking(true).map_err(|e| socket::io_err(FN, "O_NONBLOCK", &e))?;
    let stream = match tlscfg {
        None => Stream::Plain(tcp),
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from(h.to_string()).map_err(|_| bad("host is not a valid TLS server name"))?;
            let conn = rustls::ClientConnection::new(c, name).map_err(|e| Error::plain(Code::Io, FN, format!("TLS error: {e}")).with("tls", 1))?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    };
    let fd = stream.fd();
    let mut hs = tungstenite::client::client_with_config(req, stream, Some(cfg));
    loop {
        match hs {
            Ok((ws, _resp)) => return Ok(new_handle(Ws { ws: Mutex::new(Some(ws)), fd })),
            Err(HandshakeError::Failure(e)) => return Err(map_err(FN, e)),
            Err(HandshakeError::Interrupted(mid)) => {
                let w = mid.get_ref().get_ref().wants_write();
                if !wait(FN, fd, w, end)? {
                    return Err(timed_out(FN, "complete the WebSocket handshake"));
                }
                hs = mid.handshake();
            }
        }
    }
}

/// The server side: performs the WebSocket handshake on a TCP socket accepted with `rt_socket_accept` (the
/// request must be a WebSocket upgrade; a bad one is Error Parse and the socket is answered 400 by tungstenite).
/// A WebSocket handle sharing the connection: close the WebSocket, not the Socket (closing the Socket shuts the
/// connection down).
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
/// - max_message_bytes (int >= 1, default 64 MiB): max message bytes
///
/// # Errors
/// - InvalidArgument: a UDP socket cannot carry a WebSocket; malformed WebSocket URL; an unknown option, or an option of the wrong kind or range
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Closed: the WebSocket is closed; `sock` was closed
/// - LimitExceeded: message too large
#[rt_fn(blocking, tier = "empirical", ret = "handle<WebSocket>")]
pub fn rt_ws_accept(sock: Handle<Sock>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms", "max_message_bytes"])?;
    if sock.udp {
        return Err(Error::invalid(FN, "a UDP socket cannot carry a WebSocket", "udp"));
    }
    let end = addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?);
    let cfg = config(FN, &opts)?;
    let dup = sock.s.try_clone().map_err(|e| socket::io_err(FN, "dup", &e))?;
    let tcp: TcpStream = dup.into();
    tcp.set_nonblocking(true).map_err(|e| socket::io_err(FN, "O_NONBLOCK", &e))?;
    let fd = tcp.as_raw_fd();
    let mut hs = tungstenite::accept_with_config(Stream::Plain(tcp), Some(cfg));
    loop {
        match hs {
            Ok(ws) => return Ok(new_handle(Ws { ws: Mutex::new(Some(ws)), fd })),
            Err(HandshakeError::Failure(e)) => return Err(map_err(FN, e)),
            Err(HandshakeError::Interrupted(mid)) => {
                if !wait(FN, fd, false, end)? {
                    return Err(timed_out(FN, "complete the WebSocket handshake"));
                }
                hs = mid.handshake();
            }
        }
    }
}

/// Writes queued frames until done: waits for POLLOUT without the lock.
fn flush(func: &'static str, w: &Ws, end: Option<Instant>) -> RtResult<()> {
    loop {
        {
            let mut g = lock(&w.ws);
            let ws = g.as_mut().ok_or_else(|| Error::plain(Code::Closed, func, "the WebSocket is closed"))?;
            match ws.flush() {
                Ok(()) => return Ok(()),
                Err(e) if is_block(&e) => {}
                Err(e) => return Err(map_err(func, e)),
            }
        }
        if !wait(func, w.fd, true, end)? {
            return Err(timed_out(func, "send"));
        }
    }
}

fn send(func: &'static str, w: &Ws, m: Message, end: Option<Instant>) -> RtResult<bool> {
    {
        let mut g = lock(&w.ws);
        let ws = g.as_mut().ok_or_else(|| Error::plain(Code::Closed, func, "the WebSocket is closed"))?;
        match ws.send(m) {
            Ok(()) => return Ok(true),
            // Queued: the frame is in the write buffer; flush it below.
            Err(e) if is_block(&e) => {}
            Err(e) => return Err(map_err(func, e)),
        }
    }
    flush(func, w, end)?;
    Ok(true)
}

fn end_of(opts: &Opts) -> RtResult<Option<Instant>> {
    Ok(addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?))
}

/// Simple's name: sends a message: text as a text frame, bytes as a binary frame. True.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout when the peer does not take it in time; the frame stays queued and goes with the next send or receive
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL; an unknown option, or an option of the wrong kind or range
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the WebSocket is closed; `ws` was closed
/// - LimitExceeded: message too large
/// - Busy: the resource is held by someone else
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_ws_send(ws: Handle<Ws>, message: Value, opts: Opts) -> RtResult<bool> {
    opts.only(&["timeout_ms"])?;
    let m = if let Some(t) = message.as_text() {
        Message::text(t)
    } else if let Some(b) = message.as_bytes() {
        Message::binary(b.to_vec())
    } else {
        return Err(ffi_sdk::args::kind_error(FN, 1, "message", "text or bytes", message));
    };
    send(FN, &ws, m, end_of(&opts)?)
}

/// Sends a ping with `payload` (text or bytes, at most 125 bytes; nil = empty); the peer's pong is seen by `rt_ws_receive_message`. True.
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Closed: the WebSocket is closed; `ws` was closed
/// - LimitExceeded: a ping payload is at most 125 bytes; message too large
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_ws_ping(ws: Handle<Ws>, payload: Value) -> RtResult<bool> {
    let b = if payload.is_nil() {
        Vec::new()
    } else {
        payload.as_text_or_bytes().ok_or_else(|| ffi_sdk::args::kind_error(FN, 1, "payload", "text, bytes or nil", payload))?.to_vec()
    };
    if b.len() > 125 {
        return Err(Error::new(Code::LimitExceeded, FN, "a ping payload is at most 125 bytes", b.len()));
    }
    send(FN, &ws, Message::Ping(b.into()), None)
}

/// The next message of any kind (pings are answered by tungstenite as they arrive).
fn next(func: &'static str, w: &Ws, end: Option<Instant>) -> RtResult<Option<Message>> {
    loop {
        let wants_write = {
            let mut g = lock(&w.ws);
            let ws = match g.as_mut() {
                Some(ws) => ws,
                None => return Err(Error::plain(Code::Closed, func, "the WebSocket is closed")),
            };
            match ws.read() {
                Ok(m) => return Ok(Some(m)),
                Err(e) if is_block(&e) => ws.get_ref().wants_write(),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(None),
                Err(e) => return Err(map_err(func, e)),
            }
        };
        if !wait(func, w.fd, wants_write, end)? {
            return Err(timed_out(func, "receive"));
        }
    }
}

/// Simple's name: the next data message: text for a text message, bytes for a binary one; nil once the peer
/// closed the connection (its close is answered). Pings and pongs are handled and skipped. Honours the thread's
/// deadline and cancel token.
///
/// # Options
/// - timeout_ms (int >= 0): Error Timeout, nothing consumed
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL; an unknown option, or an option of the wrong kind or range
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Closed: the WebSocket is closed; `ws` was closed
/// - LimitExceeded: message too large
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_ws_receive(ws: Handle<Ws>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let end = end_of(&opts)?;
    loop {
        match next(FN, &ws, end)? {
            None | Some(Message::Close(_)) => return Ok(Value::NIL),
            Some(Message::Text(t)) => return Ok(Value::text(t.as_str())),
            Some(Message::Binary(b)) => return Ok(Value::bytes(&b)),
            Some(_) => continue,
        }
    }
}

/// The next message of any kind as `{kind, data}`: kind "text" (data text), "binary", "ping", "pong" (data bytes)
/// or "close" (`code` and `reason` when the peer gave them; data nil); nil once the connection is closed.
///
/// # Options
/// - timeout_ms (int >= 0): how long to wait, in milliseconds (Error Timeout past it)
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL; an unknown option, or an option of the wrong kind or range
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Closed: the WebSocket is closed; `ws` was closed
/// - LimitExceeded: message too large
#[rt_fn(blocking, tier = "empirical", ret = "dict?")]
pub fn rt_ws_receive_message(ws: Handle<Ws>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let end = end_of(&opts)?;
    loop {
        let m = match next(FN, &ws, end)? {
            None => return Ok(Value::NIL),
            Some(m) => m,
        };
        let d = Value::dict();
        return Ok(match m {
            Message::Text(t) => d.set("kind", Value::text("text")).set("data", Value::text(t.as_str())),
            Message::Binary(b) => d.set("kind", Value::text("binary")).set("data", Value::bytes(&b)),
            Message::Ping(b) => d.set("kind", Value::text("ping")).set("data", Value::bytes(&b)),
            Message::Pong(b) => d.set("kind", Value::text("pong")).set("data", Value::bytes(&b)),
            Message::Close(f) => {
                let d = d.set("kind", Value::text("close")).set("data", Value::NIL);
                match f {
                    Some(f) => d.set("code", Value::int(u16::from(f.code) as i64)).set("reason", Value::text(f.reason.as_str())),
                    None => d,
                }
            }
            Message::Frame(_) => continue,
        });
    }
}

/// Simple's name: closes the WebSocket with a close frame (opts.code, default 1000; opts.reason) and waits up to opts.timeout_ms (default 1000) for the peer's close, then closes the connection. Idempotent. True.
///
/// # Options
/// - code (int 1000..=4999, default 1000): the close code sent
/// - reason (text, default ""): the close reason sent
/// - timeout_ms (int >= 0, default 1000): how long to wait for the peer's close frame
///
/// # Errors
/// - InvalidArgument: malformed WebSocket URL; an unknown option, or an option of the wrong kind or range
/// - Io: TLS error; the server refused the WebSocket upgrade with HTTP status <s>; WebSocket error
/// - Parse: WebSocket protocol error; a text message is not UTF-8
/// - Closed: the WebSocket is closed
/// - LimitExceeded: a close reason is at most 123 bytes; message too large
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_ws_close(ws: Value, opts: Opts) -> RtResult<bool> {
    opts.only(&["code", "reason", "timeout_ms"])?;
    let code = opts.int_in("code", 1000, 4999)?.unwrap_or(1000) as u16;
    let reason = opts.text("reason")?.unwrap_or("").to_string();
    if reason.len() > 123 {
        return Err(Error::new(Code::LimitExceeded, FN, "a close reason is at most 123 bytes", reason.len()));
    }
    let wait_ms = opts.int_in("timeout_ms", 0, i64::MAX / 4)?.unwrap_or(1000);
    let h = match <Handle<Ws> as ffi_sdk::FromArg>::from_arg(ws.raw(), FN, 0, "ws") {
        Ok(h) => h,
        Err(e) if e.code == Code::Closed => return Ok(true),
        Err(e) => return Err(e),
    };
    let end = Some(Instant::now() + Duration::from_millis(wait_ms as u64));
    let started = {
        let mut g = lock(&h.ws);
        match g.as_mut() {
            None => false,
            Some(w) => {
                let f = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                match w.close(Some(f)) {
                    Ok(()) => true,
                    Err(e) if is_block(&e) => true,
                    Err(_) => false,
                }
            }
        }
    };
    if started {
        // Flush ours and read until the peer's close (or the time is up); errors end the wait.
        let _ = flush(FN, &h, end);
        loop {
            match next(FN, &h, end) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) if matches!(e.code, Code::Cancelled) => {
                    drop_conn(&h);
                    return Err(e);
                }
                Err(_) => break,
            }
        }
    }
    drop_conn(&h);
    h.close();
    Ok(true)
}

fn drop_conn(h: &Ws) {
    if let Some(w) = lock(&h.ws).take() {
        let s = w.into_inner();
        let tcp = match &s {
            Stream::Plain(t) => t,
            Stream::Tls(t) => &t.sock,
        };
        let _ = tcp.shutdown(std::net::Shutdown::Both);
    }
}
