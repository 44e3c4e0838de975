//! A small HTTP/1.1 server (tiny_http): Simple's `rt_http_server_*`,
//! `rt_http_request_*` and `rt_http_response_*`.
//!
//! Why tiny_http: it is synchronous and pull-based (`recv` hands out parsed
//! requests), which is exactly the shape of an FFI server whose handlers are
//! synchronous host callables (a Simple function, a Python callable) run on
//! threads registered with the collector. It brings no async runtime into the
//! cdylib, builds from four small crates, and serves keep-alive, chunked
//! bodies, `Expect: 100-continue` and HEAD itself. An async stack (hyper +
//! tokio) would add a runtime per process only to hand every request to a
//! blocking thread anyway (docs/bench/net.md has the figures).
//!
//! Two ways to serve, usable by any host:
//! - routes: `rt_http_server_route(server, method, path, handler)` with a
//!   callable (a registered function name or a Callback handle, e.g. a
//!   Python function) taking `(request)` or `(request, response)`; then
//!   `rt_http_server_start(server)` serves until `rt_http_server_stop` (from
//!   a handler or another thread), the thread's deadline or a cancel token;
//! - pull: `rt_http_server_next(server, opts)` returns the next request (a
//!   handle) and `rt_http_request_respond(request, response)` answers it.
//!
//! Capabilities: creating a server binds its address and needs `net.listen`
//! for `host:port=address` (as `rt_socket_bind`); static directories need
//! `fs.read` (checked when added, and for every file served).

use crate::addr;
use crate::socket::{self, Sock};
use ffi_sdk::callable::{Callable, LibraryThread};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long an idle serving thread waits before it looks at the stop flag again.
const IDLE_SLICE: Duration = Duration::from_millis(100);
pub const DEFAULT_MAX_BODY: u64 = 16 << 20;

struct Route {
    method: String,
    path: String,
    prefix: bool,
    handler: Callable,
}

struct StaticDir {
    prefix: String,
    root: PathBuf,
}

/// A listening server behind an `HttpServer` handle.
pub struct Server {
    srv: Arc<tiny_http::Server>,
    addr: SocketAddr,
    routes: RwLock<Vec<Route>>,
    statics: RwLock<Vec<StaticDir>>,
    stop: AtomicBool,
    serving: AtomicBool,
    threads: usize,
    max_body: u64,
    served: AtomicU64,
    handler_errors: AtomicU64,
    closed: AtomicBool,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Server {
    const NAME: &'static str = "HttpServer";
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One request: parsed and its body read; answered once.
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    remote: Option<SocketAddr>,
    /// Shared with the dispatching thread, which answers whatever the handler did not, so a
    /// request never waits on the collector to drop its handle.
    rq: Arc<Mutex<Option<tiny_http::Request>>>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Request {
    const NAME: &'static str = "HttpRequest";
}

/// A response being built.
#[derive(Clone)]
pub struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub struct Response(Mutex<Resp>);

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Response {
    const NAME: &'static str = "HttpResponse";
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- create / configure

fn server_opts() -> &'static [&'static str] {
    &["host", "threads", "max_body_bytes", "backlog"]
}

/// Simple's name: an HTTP server listening on `port` (0 = any free port; `rt_http_server_port` tells which) of
/// opts.host (default "127.0.0.1"; "0.0.0.0" / "::" for every interface). Needs `net.listen` for
/// `host:port=address`. An HttpServer handle; nothing is served before `rt_http_server_start` or
/// `rt_http_server_next`.
///
/// # Options
/// - host (text, default "127.0.0.1"): `rt_http_server_port` tells which) of opts.host (default "127.0.0.1"
/// - threads (int 1..=256, default 4): 1..=256 serving threads for `rt_http_server_start`
/// - max_body_bytes (int >= 0, default 16 MiB): request bodies over it are answered 413
/// - backlog (int 1..=65535, default 1024): backlog
///
/// # Errors
/// - InvalidArgument: malformed host; no … address for this host; an unknown option, or an option of the wrong kind or range
/// - NotFound: host name has no address; host name does not resolve
/// - Timeout: deadline passed
/// - Io: starting the server
/// - OutOfRange: port must be in 0..=65535
/// - Cancelled: cancelled (a cancel token bound to this thread was triggered)
#[rt_fn(cap = "net.listen", scoped, tier = "empirical", ret = "handle<HttpServer>")]
pub fn rt_http_server_create(port: i64, opts: Opts) -> RtResult<Value> {
    opts.only(server_opts())?;
    let port = addr::port(FN, port)?;
    let host = opts.text("host")?.unwrap_or("127.0.0.1");
    let threads = opts.int_in("threads", 1, 256)?.unwrap_or(4) as usize;
    let max_body = opts.int_in("max_body_bytes", 0, i64::MAX)?.map(|m| m as u64).unwrap_or(DEFAULT_MAX_BODY);
    let backlog = opts.int_in("backlog", 1, 65535)?.unwrap_or(1024) as i32;
    let addrs = addr::resolve(FN, host, port)?;
    let v6 = addrs[0].is_ipv6();
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| socket::io_err(FN, "socket", &e))?;
    s.set_reuse_address(true).map_err(|e| socket::io_err(FN, "SO_REUSEADDR", &e))?;
    let sock = Sock::new(s, false, v6);
    socket::bind_sock(FN, &sock, host, port)?;
    sock.s.listen(backlog).map_err(|e| socket::io_err(FN, "listen", &e))?;
    let Sock { s, .. } = sock;
    let listener: std::net::TcpListener = s.into();
    let local = listener.local_addr().map_err(|e| socket::io_err(FN, "getsockname", &e))?;
    let srv = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::new(Code::Io, FN, format!("starting the server: {e}"), quote(&format!("{host}:{port}"))))?;
    Ok(new_handle(Server {
        srv: Arc::new(srv),
        addr: local,
        routes: RwLock::new(Vec::new()),
        statics: RwLock::new(Vec::new()),
        stop: AtomicBool::new(false),
        serving: AtomicBool::new(false),
        threads,
        max_body,
        served: AtomicU64::new(0),
        handler_errors: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    }))
}

/// The port the server listens on (the one chosen when created with port 0).
///
/// # Errors
/// - Closed: `server` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_server_port(server: Handle<Server>) -> i64 {
    server.addr.port() as i64
}

/// The server's address: `{host, port}`.
///
/// # Errors
/// - Closed: `server` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_http_server_addr(server: Handle<Server>) -> Value {
    addr::addr_dict(&server.addr)
}

/// `{served, handler_errors, serving}`: requests answered so far, handler calls that returned an Error or an unusable value (answered 500), and whether `rt_http_server_start` is running.
///
/// # Errors
/// - Closed: `server` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_http_server_stats(server: Handle<Server>) -> Value {
    Value::dict()
        .set("served", Value::int(server.served.load(Ordering::Relaxed) as i64))
        .set("handler_errors", Value::int(server.handler_errors.load(Ordering::Relaxed) as i64))
        .set("serving", Value::bool(server.serving.load(Ordering::Relaxed)))
}

fn check_method(func: &'static str, m: &str) -> RtResult<String> {
    if m == "*" {
        return Ok("*".into());
    }
    if m.is_empty() || m.len() > 32 || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(Error::invalid(func, "method must be an HTTP method name or \"*\"", quote(m)));
    }
    Ok(m.to_ascii_uppercase())
}

fn check_prefix(func: &'static str, p: &str) -> RtResult<()> {
    if !p.starts_with('/') || p.contains(['\0', '?', '#', ' ', '\r', '\n']) {
        return Err(Error::invalid(func, "path must start with '/' and hold no '?', '#', spaces or control characters", quote(p)));
    }
    Ok(())
}

/// Simple's name: routes `method` ("GET", ..., or "*" for any) and `path` to `handler`, a callable (a registered function name or a Callback handle) taking `(request)` or `(request, response)`. `path` matches exactly, or as a prefix when it ends in "*" ("/api/*"). The handler returns the answer: an HttpResponse handle, a dict `{status, headers, body}`, text or bytes (200), an int (a status, empty body), or nil to send the `response` it was given (200 and empty unless it changed it). An Error or any other value is answered 500 and counted in `rt_http_server_stats`. Routes are tried in the order added. True.
///
/// # Errors
/// - InvalidArgument: the handler must take 1 (request) or 2 (request, response) arguments; method must be an HTTP method name or "*"; path must start with '/' and hold no '?', '#', spaces or control characters; argument … (<name>) names a host-surface function (C types), not a callable
/// - NotFound: argument … (<name>) names no registered function
/// - Closed: argument … (<name>) is a closed Callback handle; `server` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_server_route(server: Handle<Server>, method: &str, path: &str, handler: Value) -> RtResult<bool> {
    let method = check_method(FN, method)?;
    check_prefix(FN, path)?;
    let h = Callable::from_value(FN, 3, "handler", handler)?;
    if !(1..=2).contains(&h.arity()) {
        return Err(Error::invalid(FN, "the handler must take 1 (request) or 2 (request, response) arguments", h.describe()));
    }
    let (path, prefix) = match path.strip_suffix('*') {
        Some(p) => (p.to_string(), true),
        None => (path.to_string(), false),
    };
    server.routes.write().unwrap_or_else(|e| e.into_inner()).push(Route { method, path, prefix, handler: h });
    Ok(true)
}

/// Simple's name: serves the files under directory `dir` at URL prefix `path` ("/static"): GET and HEAD, a directory's index.html, Content-Type by extension, 404 for what is missing or outside `dir` (no "..", symlinks leading out of `dir` refused). Needs `fs.read` for `dir` now and for every file served. Routes are tried first. True.
///
/// # Errors
/// - InvalidArgument: not a directory; path must start with '/' and hold no '?', '#', spaces or control characters; path names '/', '.' or '..', not an entry: name the directory itself; path is empty
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `server` was closed
/// - Busy: the resource is held by someone else
#[rt_fn(cap = "fs.read", scoped, tier = "empirical")]
pub fn rt_http_server_static(server: Handle<Server>, path: &str, dir: &str) -> RtResult<bool> {
    check_prefix(FN, path)?;
    let t = beneath::resolve(FN, "fs.read", dir, beneath::Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    if !beneath::is(&st, libc::S_IFDIR) {
        return Err(Error::invalid(FN, "not a directory", quote(dir)));
    }
    let root = match t.canonical() {
        Some(c) => c.to_path_buf(),
        None => std::fs::canonicalize(dir).map_err(|e| Error::io(FN, quote(dir), &e))?,
    };
    let prefix = path.trim_end_matches('/').to_string();
    server.statics.write().unwrap_or_else(|e| e.into_inner()).push(StaticDir { prefix, root });
    Ok(true)
}

// ---------------------------------------------------------------- serving

/// Takes the next request from the queue, reading its body (413 when too large).
fn take(func: &'static str, server: &Server, wait: Duration) -> RtResult<Option<Request>> {
    let rq = match server.srv.recv_timeout(wait) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => return Err(Error::io(func, "accepting", &e)),
    };
    Ok(read_request(server, rq))
}

fn read_request(server: &Server, mut rq: tiny_http::Request) -> Option<Request> {
    let headers: Vec<(String, String)> = rq.headers().iter().map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string())).collect();
    let too_big = |rq: tiny_http::Request| {
        server.served.fetch_add(1, Ordering::Relaxed);
        let _ = rq.respond(tiny_http::Response::from_string("Payload Too Large").with_status_code(413));
    };
    if rq.body_length().is_some_and(|n| n as u64 > server.max_body) {
        too_big(rq);
        return None;
    }
    let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0));
    let r = rq.as_reader().take(server.max_body + 1).read_to_end(&mut body);
    if r.is_err() {
        // The client went away mid-body: nothing to answer.
        return None;
    }
    if body.len() as u64 > server.max_body {
        too_big(rq);
        return None;
    }
    Some(Request {
        method: rq.method().as_str().to_ascii_uppercase(),
        url: rq.url().to_string(),
        headers,
        body,
        remote: rq.remote_addr().copied(),
        rq: Arc::new(Mutex::new(Some(rq))),
    })
}

/// How long one wait of a serving loop may last: the idle slice, cut to the
/// thread's deadline and to 10 ms slices while a cancel token is bound.
fn wait_slice(own: Option<Instant>) -> Duration {
    let own = own.map(|d| d.saturating_duration_since(Instant::now()));
    let b = ffi_sdk::deadline::slice(Some(own.map_or(IDLE_SLICE, |o| o.min(IDLE_SLICE))));
    b.unwrap_or(IDLE_SLICE)
}

/// Pull mode: waits for the next request and returns it as an HttpRequest handle (answer it with `rt_http_request_respond`; one dropped unanswered is answered 500 when collected or closed), or nil when opts.timeout_ms passes first. Bodies over the server's max_body_bytes are answered 413 here and skipped. Honours the thread's deadline and cancel token (Error Timeout / Cancelled, no request taken).
///
/// # Options
/// - timeout_ms (int >= 0): one dropped unanswered is answered 500 when collected or closed, or nil when opts.timeout_ms passes first
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: an operating-system failure (details.errno)
/// - Closed: the server was destroyed; `server` was closed
#[rt_fn(blocking, tier = "empirical", ret = "handle<HttpRequest>?")]
pub fn rt_http_server_next(server: Handle<Server>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let end = addr::deadline(opts.int_in("timeout_ms", 0, i64::MAX / 4)?);
    loop {
        ffi_sdk::deadline::check(FN)?;
        if server.closed.load(Ordering::Relaxed) {
            return Err(Error::plain(Code::Closed, FN, "the server was destroyed"));
        }
        if let Some(r) = take(FN, &server, wait_slice(end))? {
            return Ok(new_handle(r));
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            return Ok(Value::NIL);
        }
    }
}

fn route_for<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| {
        (r.method == "*" || r.method == method || (r.method == "GET" && method == "HEAD"))
            && if r.prefix { path.starts_with(&r.path) } else { path == r.path }
    })
}

/// Answers one request: a route's handler, a static file, or 404.
fn dispatch(func: &'static str, server: &Server, req: Request) {
    let path = req.url.split(['?', '#']).next().unwrap_or("").to_string();
    let route = {
        let routes = server.routes.read().unwrap_or_else(|e| e.into_inner());
        route_for(&routes, &req.method, &path).map(|r| (r.handler.clone(), r.handler.arity()))
    };
    if let Some((h, arity)) = route {
        let slot = req.rq.clone();
        let reqv = new_handle(req);
        let respv = new_handle(Response(Mutex::new(Resp { status: 200, headers: Vec::new(), body: Vec::new() })));
        let args = [reqv.raw(), respv.raw()];
        let w = h.call(func, &args[..arity as usize]);
        let out = Value::from_raw(w);
        // Answered here unless the handler answered itself (rt_http_request_respond).
        let pending = lock(&slot).take();
        if let Some(rq) = pending {
            let resp = match resp_of(func, out, &respv) {
                Ok(x) => x,
                Err(_) => {
                    server.handler_errors.fetch_add(1, Ordering::Relaxed);
                    Resp { status: 500, headers: vec![("Content-Type".into(), "text/plain".into())], body: b"Internal Server Error".to_vec() }
                }
            };
            send(rq, resp);
        }
        if let Ok(r) = <Handle<Request> as ffi_sdk::FromArg>::from_arg(reqv.raw(), func, 0, "request") {
            r.close();
        }
        if let Ok(x) = <Handle<Response> as ffi_sdk::FromArg>::from_arg(respv.raw(), func, 0, "response") {
            x.close();
        }
        std::hint::black_box((&args, reqv, respv, out));
        server.served.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let rq = match lock(&req.rq).take() {
        Some(rq) => rq,
        None => return,
    };
    server.served.fetch_add(1, Ordering::Relaxed);
    let statics = server.statics.read().unwrap_or_else(|e| e.into_inner());
    for s in statics.iter() {
        let rest = match path.strip_prefix(&s.prefix) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => continue,
        };
        if req.method != "GET" && req.method != "HEAD" {
            let _ = rq.respond(tiny_http::Response::from_string("Method Not Allowed").with_status_code(405).with_header(hdr("Allow", "GET, HEAD")));
            return;
        }
        match static_file(func, &s.root, rest) {
            Some((f, ct)) => {
                let r = tiny_http::Response::from_file(f).with_header(hdr("Content-Type", ct));
                let _ = rq.respond(r);
            }
            None => {
                let _ = rq.respond(tiny_http::Response::from_string("Not Found").with_status_code(404));
            }
        }
        return;
    }
    let _ = rq.respond(tiny_http::Response::from_string("Not Found").with_status_code(404));
}

fn hdr(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap_or_else(|_| tiny_http::Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap())
}

fn send(rq: tiny_http::Request, r: Resp) {
    let mut resp = tiny_http::Response::from_data(r.body).with_status_code(r.status);
    for (k, v) in &r.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

const MIME: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("xml", "application/xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("woff2", "font/woff2"),
];

fn mime(p: &Path) -> &'static str {
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    MIME.iter().find(|(e, _)| *e == ext).map(|x| x.1).unwrap_or("application/octet-stream")
}

/// The file for URL path `rest` (after the prefix) under `root`, or None (404).
fn static_file(func: &'static str, root: &Path, rest: &str) -> Option<(std::fs::File, &'static str)> {
    let dec = crate::url::decode_bytes(rest.as_bytes());
    let dec = String::from_utf8(dec).ok()?;
    let mut p = root.to_path_buf();
    for seg in dec.split('/') {
        if seg.is_empty() || seg == "." {
            continue;
        }
        if seg == ".." || seg.contains(['\0', '\\']) {
            return None;
        }
        p.push(seg);
    }
    let open = |p: &Path| -> Option<(std::fs::File, libc::stat)> {
        let s = p.to_str()?;
        let t = beneath::resolve(func, "fs.read", s, beneath::Follow::Yes).ok()?;
        // Under allow-all the path is used as given: refuse what leads out of the root.
        if !t.scoped() {
            let c = std::fs::canonicalize(p).ok()?;
            if !c.starts_with(root) {
                return None;
            }
        }
        let f = t.open_read().ok()?;
        let st = beneath::fstat(std::os::fd::AsRawFd::as_raw_fd(&f)).ok()?;
        Some((f, st))
    };
    let (f, st) = open(&p)?;
    if beneath::is(&st, libc::S_IFDIR) {
        let idx = p.join("index.html");
        let (f, st) = open(&idx)?;
        return beneath::is(&st, libc::S_IFREG).then(|| (f, mime(&idx)));
    }
    beneath::is(&st, libc::S_IFREG).then(|| (f, mime(&p)))
}

/// Serving thread loop: until stop, the deadline or a cancel.
fn serve_loop(func: &'static str, server: &Server) -> RtResult<()> {
    loop {
        if server.stop.load(Ordering::SeqCst) || server.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        ffi_sdk::deadline::check(func)?;
        if let Some(r) = take(func, server, wait_slice(None))? {
            dispatch(func, server, r);
        }
    }
}

/// Simple's name: serves requests with the routes and static directories until `rt_http_server_stop` (from a handler or another thread) or `rt_http_server_destroy`: true. Runs the server's `threads` serving threads (this one included; handlers run on them concurrently, each thread registered with the collector and under this thread's deadline and cancel tokens); a passed deadline or a triggered token stops them all and is Error Timeout / Cancelled (requests already taken are answered first). Error Busy when the server is already being served.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the server was destroyed; `server` was closed
/// - Busy: the server is already being served
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_http_server_start(server: Handle<Server>) -> RtResult<bool> {
    if server.closed.load(Ordering::Relaxed) {
        return Err(Error::plain(Code::Closed, FN, "the server was destroyed"));
    }
    if server.serving.swap(true, Ordering::SeqCst) {
        return Err(Error::plain(Code::Busy, FN, "the server is already being served"));
    }
    server.stop.store(false, Ordering::SeqCst);
    // Handlers run on this thread too: registered with the collector for the whole run.
    let _reg = LibraryThread::enter();
    let me = server.arc();
    let mut workers = Vec::new();
    let started = AtomicUsize::new(0);
    for i in 1..me.threads {
        let s = me.clone();
        let scope = ffi_sdk::deadline::Captured::capture();
        let b = std::thread::Builder::new().name(format!("rt-http-{i}"));
        match b.spawn(move || {
            let _reg = LibraryThread::enter();
            scope.install();
            serve_loop("rt_http_server_start", &s)
        }) {
            Ok(j) => {
                workers.push(j);
                started.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                me.stop.store(true, Ordering::SeqCst);
                for w in workers {
                    let _ = w.join();
                }
                me.serving.store(false, Ordering::SeqCst);
                return Err(Error::io(FN, "spawning a serving thread", &e));
            }
        }
    }
    let r = serve_loop(FN, &me);
    // This thread stopped (stop, deadline or cancel): the others stop too.
    me.stop.store(true, Ordering::SeqCst);
    for _ in 0..workers.len() {
        me.srv.unblock();
    }
    for w in workers {
        let _ = w.join();
    }
    me.serving.store(false, Ordering::SeqCst);
    r.map(|_| true)
}

/// Simple's name: asks `rt_http_server_start` to return (it does once the requests in hand are answered; idempotent; callable from a handler). The server keeps listening: start again, or destroy it. True.
///
/// # Errors
/// - Closed: `server` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_server_stop(server: Handle<Server>) -> bool {
    server.stop.store(true, Ordering::SeqCst);
    for _ in 0..server.threads.max(1) {
        server.srv.unblock();
    }
    true
}

/// Simple's name: stops serving and closes the server (the listening socket is closed once `rt_http_server_start` has returned; idempotent). Nil.
///
/// # Errors
/// - Closed: the handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_server_destroy(server: Value) -> RtResult<()> {
    match <Handle<Server> as ffi_sdk::FromArg>::from_arg(server.raw(), FN, 0, "server") {
        Ok(h) => {
            h.closed.store(true, Ordering::SeqCst);
            h.stop.store(true, Ordering::SeqCst);
            for _ in 0..h.threads.max(1) {
                h.srv.unblock();
            }
            h.close();
            Ok(())
        }
        Err(e) if e.code == Code::Closed => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- requests

/// Simple's name: the request's method ("GET", ...).
///
/// # Errors
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_method(request: Handle<Request>) -> String {
    request.method.clone()
}

/// Simple's name: the request's path as sent (no query; percent escapes kept).
///
/// # Errors
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_path(request: Handle<Request>) -> String {
    request.url.split(['?', '#']).next().unwrap_or("").to_string()
}

fn header_of(req: &Request, key: &str) -> Option<String> {
    let v: Vec<&str> = req.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str()).collect();
    if v.is_empty() {
        None
    } else {
        Some(v.join(", "))
    }
}

/// Simple's name: a request header (name case-insensitive; repeated headers joined with ", "), or nil.
///
/// # Errors
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_header(request: Handle<Request>, key: &str) -> Option<String> {
    header_of(&request, key)
}

/// Simple's name: the request body as text.
///
/// # Errors
/// - Parse: it is not UTF-8 (`rt_http_request_info` has the bytes)
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_body(request: Handle<Request>) -> RtResult<String> {
    String::from_utf8(request.body.clone())
        .map_err(|e| Error::parse(FN, "request body is not UTF-8", "body").with("position", e.utf8_error().valid_up_to() as i64))
}

/// The query string's pairs, decoded ('+' is a space, as in forms).
fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| String::from_utf8_lossy(&crate::url::decode_bytes(s.replace('+', " ").as_bytes())).into_owned();
            (d(k), d(v))
        })
        .collect()
}

/// Simple's name: a query parameter's value (decoded; the first when repeated), or nil.
///
/// # Errors
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_query(request: Handle<Request>, key: &str) -> Option<String> {
    let q = request.url.split_once('?').map(|x| x.1).unwrap_or("");
    let q = q.split('#').next().unwrap_or("");
    query_pairs(q).into_iter().find(|(k, _)| k == key).map(|x| x.1)
}

/// The whole request as a dict: `{method, url, path, query (dict, decoded; the last of a repeated key), headers (dict, names lower-case, repeats joined with ", "), body (bytes), remote ({host, port})}`.
///
/// # Errors
/// - Closed: `request` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_http_request_info(request: Handle<Request>) -> Value {
    let q = request.url.split_once('?').map(|x| x.1).unwrap_or("");
    let query = Value::dict();
    for (k, v) in query_pairs(q) {
        query.set(&k, Value::text(&v));
    }
    let headers = Value::dict();
    for (k, v) in &request.headers {
        let k = k.to_ascii_lowercase();
        let prev = headers.get(&k);
        match prev.as_text() {
            Some(p) => headers.set(&k, Value::text(&format!("{p}, {v}"))),
            None => headers.set(&k, Value::text(v)),
        };
    }
    Value::dict()
        .set("method", Value::text(&request.method))
        .set("url", Value::text(&request.url))
        .set("path", Value::text(request.url.split(['?', '#']).next().unwrap_or("")))
        .set("query", query)
        .set("headers", headers)
        .set("body", Value::bytes(&request.body))
        .set("remote", request.remote.map(|a| addr::addr_dict(&a)).unwrap_or(Value::NIL))
}

/// A response from a handler's result or `rt_http_request_respond`'s argument.
fn resp_of(func: &'static str, v: Value, default: &Value) -> RtResult<Resp> {
    if v.is_error() {
        return Err(Error::from_value(v));
    }
    if v.is_nil() || v.as_bool().is_some() {
        return resp_of(func, *default, &Value::NIL);
    }
    if let Ok(h) = <Handle<Response> as ffi_sdk::FromArg>::from_arg(v.raw(), func, 1, "response") {
        return Ok(lock(&h.0).clone());
    }
    if let Some(i) = v.as_int() {
        return Ok(Resp { status: status(func, i)?, headers: Vec::new(), body: Vec::new() });
    }
    if let Some(t) = v.as_text() {
        return Ok(Resp { status: 200, headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())], body: t.as_bytes().to_vec() });
    }
    if let Some(b) = v.as_bytes() {
        return Ok(Resp { status: 200, headers: vec![("Content-Type".into(), "application/octet-stream".into())], body: b.to_vec() });
    }
    if v.is_dict() {
        let o = Opts::new(func, v);
        o.only(&["status", "headers", "body", "json"])?;
        let mut r = Resp { status: status(func, o.int("status")?.unwrap_or(200))?, headers: Vec::new(), body: Vec::new() };
        if !o.get("json").is_nil() {
            r.body = crate::http::to_json(func, o.get("json"), 0)?.to_string().into_bytes();
            r.headers.push(("Content-Type".into(), "application/json".into()));
        } else {
            let (b, ct) = crate::http::body_of(func, o.get("body"))?;
            r.body = b.unwrap_or_default();
            if let Some(ct) = ct {
                r.headers.push(("Content-Type".into(), ct.into()));
            }
        }
        for (k, val) in o.text_map("headers")?.unwrap_or_default() {
            set_header(func, &mut r, &k, &val)?;
        }
        return Ok(r);
    }
    Err(ffi_sdk::args::kind_error(func, 1, "response", "HttpResponse, dict, text, bytes, int or nil", v))
}

fn status(func: &'static str, s: i64) -> RtResult<u16> {
    if !(100..=999).contains(&s) {
        return Err(Error::new(Code::OutOfRange, func, "status must be in 100..=999", s));
    }
    Ok(s as u16)
}

/// Answers a request taken with `rt_http_server_next` (or a handler's own request, which is then not answered
/// again): `response` is an HttpResponse handle, a dict `{status, headers, body}` (body text, bytes, or a
/// dict/array sent as JSON; or `json`), text or bytes (200), or an int status. True. The request handle is
/// closed.
///
/// # Errors
/// - InvalidArgument: NaN and infinity have no JSON form; JSON object keys must be text; body cannot be sent as JSON; malformed header name
/// - Closed: the request was already answered; `request` was closed
/// - OutOfRange: status must be in 100..=999
/// - LimitExceeded: body nests deeper than 512
#[rt_fn(tier = "empirical")]
pub fn rt_http_request_respond(request: Handle<Request>, response: Value) -> RtResult<bool> {
    let r = resp_of(FN, response, &Value::NIL)?;
    let rq = lock(&request.rq).take().ok_or_else(|| Error::plain(Code::Closed, FN, "the request was already answered"))?;
    send(rq, r);
    Ok(true)
}

// ---------------------------------------------------------------- responses

/// Simple's name: a response with `status` (100..=999) and `body` (text, bytes, a dict/array sent as JSON, or nil). An HttpResponse handle for `rt_http_response_*`, a route handler's result or `rt_http_request_respond`.
///
/// # Errors
/// - InvalidArgument: NaN and infinity have no JSON form; JSON object keys must be text; body cannot be sent as JSON
/// - OutOfRange: status must be in 100..=999
/// - LimitExceeded: body nests deeper than 512
#[rt_fn(tier = "empirical", ret = "handle<HttpResponse>")]
pub fn rt_http_response_create(status_code: i64, body: Value) -> RtResult<Value> {
    let s = status(FN, status_code)?;
    let (b, ct) = crate::http::body_of(FN, body)?;
    let mut headers = Vec::new();
    if let Some(ct) = ct {
        headers.push(("Content-Type".to_string(), ct.to_string()));
    }
    Ok(new_handle(Response(Mutex::new(Resp { status: s, headers, body: b.unwrap_or_default() }))))
}

fn set_header(func: &'static str, r: &mut Resp, key: &str, value: &str) -> RtResult<()> {
    if ureq::http::HeaderName::from_bytes(key.as_bytes()).is_err() || !key.is_ascii() {
        return Err(Error::invalid(func, "malformed header name", quote(key)));
    }
    if !value.is_ascii() || value.contains(['\r', '\n', '\0']) {
        return Err(Error::invalid(func, "malformed header value (ASCII without CR, LF or NUL)", quote(key)));
    }
    if !key.eq_ignore_ascii_case("set-cookie") {
        r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
    r.headers.push((key.to_string(), value.to_string()));
    Ok(())
}

/// Simple's name: sets a response header (replacing one of the same name; Set-Cookie adds). True.
///
/// # Errors
/// - InvalidArgument: malformed header name; malformed header value (ASCII without CR, LF or NUL)
/// - Closed: `response` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_response_set_header(response: Handle<Response>, key: &str, value: &str) -> RtResult<bool> {
    set_header(FN, &mut lock(&response.0), key, value)?;
    Ok(true)
}

/// Sets the response status (100..=999). True.
///
/// # Errors
/// - Closed: `response` was closed
/// - OutOfRange: status must be in 100..=999
#[rt_fn(tier = "empirical")]
pub fn rt_http_response_set_status(response: Handle<Response>, status_code: i64) -> RtResult<bool> {
    lock(&response.0).status = status(FN, status_code)?;
    Ok(true)
}

/// Sets the response body: text, bytes, or a dict/array sent as JSON (Content-Type set unless one is). True.
///
/// # Errors
/// - InvalidArgument: NaN and infinity have no JSON form; JSON object keys must be text; body cannot be sent as JSON
/// - Closed: `response` was closed
/// - LimitExceeded: body nests deeper than 512
#[rt_fn(tier = "empirical")]
pub fn rt_http_response_set_body(response: Handle<Response>, body: Value) -> RtResult<bool> {
    let (b, ct) = crate::http::body_of(FN, body)?;
    let mut r = lock(&response.0);
    r.body = b.unwrap_or_default();
    if let Some(ct) = ct {
        if !r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            r.headers.push(("Content-Type".into(), ct.into()));
        }
    }
    Ok(true)
}

/// Simple's name: makes `json` the body with Content-Type application/json: a JSON text (checked: True.
///
/// # Errors
/// - InvalidArgument: NaN and infinity have no JSON form; JSON object keys must be text; body cannot be sent as JSON
/// - Parse: malformed) or a dict/array (serialised)
/// - Closed: `response` was closed
/// - LimitExceeded: body nests deeper than 512
#[rt_fn(tier = "empirical")]
pub fn rt_http_response_json(response: Handle<Response>, json: Value) -> RtResult<bool> {
    let body = if let Some(t) = json.as_text() {
        serde_json::from_str::<serde_json::Value>(t).map_err(|e| Error::parse(FN, format!("not JSON: {e}"), "json"))?;
        t.as_bytes().to_vec()
    } else {
        crate::http::to_json(FN, json, 0)?.to_string().into_bytes()
    };
    let mut r = lock(&response.0);
    r.body = body;
    r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    r.headers.push(("Content-Type".into(), "application/json".into()));
    Ok(true)
}

/// `{status, headers, body}` of a response (headers a dict, body bytes).
///
/// # Errors
/// - Closed: `response` was closed
#[rt_fn(tier = "empirical", ret = "dict")]
pub fn rt_http_response_info(response: Handle<Response>) -> Value {
    let r = lock(&response.0).clone();
    let h = Value::dict();
    for (k, v) in &r.headers {
        h.set(k, Value::text(v));
    }
    Value::dict().set("status", Value::int(r.status as i64)).set("headers", h).set("body", Value::bytes(&r.body))
}

// ---------------------------------------------------------------- JSON (Simple's names)

fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::NIL,
        J::Bool(b) => Value::bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::text(s),
        J::Array(a) => {
            let out = Value::array(a.len());
            for x in a {
                out.push(from_json(x));
            }
            out
        }
        J::Object(m) => {
            let out = Value::dict();
            for (k, x) in m {
                out.set(k, from_json(x));
            }
            out
        }
    }
}

/// Simple's name: parses JSON text into values (objects as dicts in order, arrays, text, ints, floats, bools, nil); Error Parse with details.line / column when malformed (nesting limit 128, serde_json's). The same conversion as ffi_serde's `rt_json_parse`, under the name http_ffi.spl declares.
///
/// # Errors
/// - Parse: malformed JSON
#[rt_fn(tier = "empirical", ret = "any")]
pub fn rt_http_parse_json(json: &str) -> RtResult<Value> {
    let j: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::parse(FN, format!("malformed JSON: {e}"), "json").with("line", e.line() as i64).with("column", e.column() as i64))?;
    Ok(from_json(&j))
}

/// Simple's name: JSON text of a value (dict, array, text, number, bool, nil; NaN and infinity are Errors), compact.
///
/// # Errors
/// - InvalidArgument: NaN and infinity have no JSON form; JSON object keys must be text; body cannot be sent as JSON
/// - LimitExceeded: body nests deeper than 512
#[rt_fn(tier = "empirical")]
pub fn rt_http_stringify_json(obj: Value) -> RtResult<String> {
    Ok(crate::http::to_json(FN, obj, 0)?.to_string())
}
