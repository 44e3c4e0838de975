//! HTTP(S) client (ureq 3 + rustls): `rt_http_get` / `post` / `request` /
//! `download`, Simple's verbs and `rt_http_client_*`.
//!
//! Redirects are followed here one hop at a time (opts.max_redirects,
//! default 10); ureq's resolver hook checks `net.http` for every address of
//! every hop (`host:port=address`), so no redirect and no DNS answer reaches
//! a host the policy denies. While the policy is allow-all one agent (with
//! its keep-alive pool) is shared by every call; under a policy each call
//! gets its own agent, so no connection checked under an older policy is
//! reused. Proxies from the environment are ignored. Every step (name
//! resolution, connect, TLS handshake, body reads and writes) honours the
//! thread's deadline and cancel tokens (crate::transport).

use crate::addr;
use ffi_sdk::atomic_file::AtomicFile;
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use ureq::config::AutoHeaderValue;
use ureq::http;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Connector, NextTimeout, RustlsConnector};
use ureq::{Agent, RequestExt};

/// A capability denial carried through ureq's resolver error.
#[derive(Debug)]
struct Denied(Error);
impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}
impl std::error::Error for Denied {}

/// The system resolver, then `net.http` for every address.
#[derive(Debug)]
struct Checking {
    func: &'static str,
}

impl Resolver for Checking {
    fn resolve(&self, uri: &http::Uri, _config: &ureq::config::Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().filter(|h| !h.is_empty()).ok_or(ureq::Error::HostNotFound)?;
        let h = host.trim_start_matches('[').trim_end_matches(']');
        let port = port_of(uri);
        let limit = timeout.not_zero().map(|d| *d);
        // Through our resolver: a deadline or cancel stops the wait at once (crate::transport).
        let found = match h.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
            Err(_) => crate::transport::resolve(h, port, limit).map_err(|e| {
                if ffi_sdk::deadline::status().is_some() {
                    ureq::Error::Io(e)
                } else if e.kind() == io::ErrorKind::TimedOut {
                    ureq::Error::Timeout(timeout.reason)
                } else {
                    ureq::Error::HostNotFound
                }
            })?,
        };
        let mut addrs = self.empty();
        for a in found.into_iter().take(16) {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        if addrs.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        if !cap::allow_all() {
            for a in addrs.iter() {
                cap::check(self.func, "net.http", &addr::resource(host, a.port(), a.ip()))
                    .map_err(|e| ureq::Error::Io(io::Error::new(io::ErrorKind::PermissionDenied, Denied(e))))?;
            }
        }
        Ok(addrs)
    }
}

fn new_agent(func: &'static str, ca: Option<Vec<Certificate<'static>>>) -> Agent {
    let roots = match ca {
        Some(c) => RootCerts::Specific(Arc::new(c)),
        None => RootCerts::PlatformVerifier,
    };
    let tls = TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(roots).build();
    let cfg = Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .accept_encoding(AutoHeaderValue::None)
        .user_agent(concat!("simple-rt/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build();
    // TCP connect, TLS handshake, reads and writes all wait in poll with the thread's deadline
    // and cancel tokens (crate::transport); TLS by ureq's rustls connector over that.
    let conn = ().chain(crate::transport::PollTcpConnector).chain(RustlsConnector::default());
    Agent::with_parts(cfg, conn, Checking { func })
}

fn shared_agent() -> &'static Agent {
    static A: OnceLock<Agent> = OnceLock::new();
    A.get_or_init(|| new_agent("rt_http", None))
}

/// A URL for messages: scheme, host, port and path, never user-info or the query.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return quote(url.split(['?', '#']).next().unwrap_or("")),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
    let path = rest[end..].split(['?', '#']).next().unwrap_or("");
    quote(&format!("{scheme}://{auth}{path}"))
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses an http(s) URL; user-info becomes a Basic Authorization header.
fn parse_url(func: &'static str, url: &str) -> RtResult<(http::Uri, Option<String>)> {
    let bad = |why: &str| Error::invalid(func, format!("malformed URL: {why}"), redact(url));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http:// or https://"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Error::new(Code::Unsupported, func, "only http and https URLs are supported", redact(url)));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or("");
    let (userinfo, hostport) = match auth.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, auth),
    };
    if hostport.is_empty() || hostport.starts_with(':') {
        return Err(bad("no host"));
    }
    let port_text = match hostport.rfind(']') {
        Some(i) => hostport[i + 1..].strip_prefix(':'),
        None => hostport.rsplit_once(':').map(|x| x.1),
    };
    if let Some(p) = port_text {
        if p.parse::<u16>().is_err() {
            return Err(bad("port must be a number in 0..=65535"));
        }
    }
    let uri: http::Uri = format!("{scheme}://{hostport}{tail}").parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    if uri.host().is_none_or(|h| h.is_empty()) {
        return Err(bad("no host"));
    }
    let basic = userinfo.map(|u| {
        let dec = crate::url::decode_bytes(u.as_bytes());
        format!("Basic {}", b64(&dec))
    });
    Ok((uri, basic))
}

fn port_of(u: &http::Uri) -> u16 {
    u.port_u16().unwrap_or(if u.scheme_str() == Some("https") { 443 } else { 80 })
}

/// Resolves a redirect's Location against the URL it came from.
fn join(base: &http::Uri, loc: &str) -> String {
    let scheme = base.scheme_str().unwrap_or("http");
    let auth = base.authority().map(|a| a.as_str()).unwrap_or("");
    if loc.contains("://") {
        loc.to_string()
    } else if let Some(r) = loc.strip_prefix("//") {
        format!("{scheme}://{r}")
    } else if loc.starts_with('/') {
        format!("{scheme}://{auth}{loc}")
    } else if loc.starts_with('?') {
        format!("{scheme}://{auth}{}{loc}", base.path())
    } else {
        let p = base.path();
        let dir = &p[..p.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{scheme}://{auth}{}{loc}", if dir.is_empty() { "/" } else { dir })
    }
}

/// Everything a request needs, from arguments and opts.
pub struct Req {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_redirects: u32,
    pub max_bytes: Option<u64>,
    pub text: bool,
    pub error_status: bool,
    pub decompress: bool,
    pub ca: Option<Vec<Certificate<'static>>>,
}

pub const OPTS: &[&str] = &[
    "headers", "query", "body", "content_type", "timeout_ms", "connect_timeout_ms", "max_redirects", "max_bytes",
    "text", "error_status", "decompress", "ca_file", "multipart",
];

pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// Converts a value to JSON (dict and array bodies).
pub fn to_json(func: &'static str, v: Value, depth: usize) -> RtResult<serde_json::Value> {
    use serde_json::Value as J;
    if depth > 512 {
        return Err(Error::new(Code::LimitExceeded, func, "body nests deeper than 512", "body"));
    }
    if v.is_nil() {
        return Ok(J::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(J::Bool(b));
    }
    if let Some(i) = v.as_int() {
        return Ok(J::from(i));
    }
    if let Some(f) = v.as_float() {
        return serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| Error::invalid(func, "NaN and infinity have no JSON form", f));
    }
    if let Some(t) = v.as_text() {
        return Ok(J::String(t.to_string()));
    }
    if v.is_array() {
        return v.items().map(|x| to_json(func, x, depth + 1)).collect::<RtResult<Vec<_>>>().map(J::Array);
    }
    if v.is_dict() {
        let mut m = serde_json::Map::new();
        for (k, x) in v.entries() {
            let k = k.as_text().ok_or_else(|| Error::invalid(func, "JSON object keys must be text", k.describe()))?;
            m.insert(k.to_string(), to_json(func, x, depth + 1)?);
        }
        return Ok(J::Object(m));
    }
    Err(Error::invalid(func, "body cannot be sent as JSON", v.describe()))
}

/// A body argument: text or bytes as is, a dict or array as JSON (content type set).
pub fn body_of(func: &'static str, v: Value) -> RtResult<(Option<Vec<u8>>, Option<&'static str>)> {
    if v.is_nil() {
        return Ok((None, None));
    }
    if let Some(t) = v.as_text() {
        return Ok((Some(t.as_bytes().to_vec()), Some("text/plain; charset=utf-8")));
    }
    if let Some(b) = v.as_bytes() {
        return Ok((Some(b.to_vec()), Some("application/octet-stream")));
    }
    if v.is_dict() || v.is_array() {
        let j = to_json(func, v, 0)?;
        return Ok((Some(j.to_string().into_bytes()), Some("application/json")));
    }
    Err(ffi_sdk::args::kind_error(func, 1, "body", "text, bytes, dict or array", v))
}

fn ms(func: &'static str, opts: &Opts, key: &str) -> RtResult<Option<Duration>> {
    let _ = func;
    Ok(opts.int_in(key, 1, i64::MAX / 4)?.map(|m| Duration::from_millis(m as u64)))
}

pub fn load_ca(func: &'static str, path: &str) -> RtResult<Vec<Certificate<'static>>> {
    let t = beneath::resolve(func, "fs.read", path, beneath::Follow::Yes)?;
    let mut f = t.open_read().map_err(|e| t.err(&e))?;
    let mut pem = Vec::new();
    f.read_to_end(&mut pem).map_err(|e| t.err(&e))?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::parse(func, format!("ca_file is not valid PEM: {e}"), quote(path))),
        }
    }
    if out.is_empty() {
        return Err(Error::parse(func, "ca_file holds no certificate", quote(path)));
    }
    Ok(out)
}

impl Req {
    pub fn new(func: &'static str, method: &str, url: &str, opts: &Opts) -> RtResult<Req> {
        opts.only(OPTS)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err(Error::invalid(func, "malformed HTTP method", quote(method)));
        }
        let (mut body, ct) = body_of(func, opts.get("body"))?;
        let mut ct = ct.map(str::to_string);
        let mp = opts.get("multipart");
        if !mp.is_nil() {
            if body.is_some() {
                return Err(Error::invalid(func, "opts.body and opts.multipart exclude each other", "multipart"));
            }
            let (b, t) = multipart(func, mp)?;
            body = Some(b);
            ct = Some(t);
        }
        Ok(Req {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: opts.text_map("headers")?.unwrap_or_default(),
            query: opts.text_map("query")?.unwrap_or_default(),
            body,
            content_type: opts.text("content_type")?.map(str::to_string).or(ct),
            timeout: ms(func, opts, "timeout_ms")?,
            connect_timeout: ms(func, opts, "connect_timeout_ms")?,
            max_redirects: opts.int_in("max_redirects", 0, 100)?.unwrap_or(10) as u32,
            max_bytes: opts.int_in("max_bytes", 0, i64::MAX)?.map(|m| m as u64),
            text: opts.bool("text")?.unwrap_or(false),
            error_status: opts.bool("error_status")?.unwrap_or(false),
            decompress: opts.bool("decompress")?.unwrap_or(true),
            ca: match opts.text("ca_file")? {
                Some(p) => Some(load_ca(func, p)?),
                None => None,
            },
        })
    }
}

/// A `multipart/form-data` body (RFC 7578) from an array of parts `{name,
/// filename?, content_type?, data | path}`: data text or bytes, or the file
/// at `path` (read under `fs.read`; its base name is the filename unless one
/// is given). Built in memory. Names and filenames are escaped as browsers
/// do (`"` as %22, CR and LF as %0D / %0A). The body and its content type.
pub fn multipart(func: &'static str, parts: Value) -> RtResult<(Vec<u8>, String)> {
    if !parts.is_array() || parts.is_empty() {
        return Err(Error::invalid(func, "opts.multipart must be a non-empty array of part dicts", parts.describe()));
    }
    let mut rnd = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut rnd)
        .map_err(|_| Error::internal(func, "no randomness for a multipart boundary"))?;
    let boundary = format!("----simple-rt-{}", hex(&rnd));
    let esc = |s: &str| s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A");
    let mut out = Vec::new();
    for (i, p) in parts.items().enumerate() {
        if !p.is_dict() {
            return Err(Error::invalid(func, format!("multipart part {i} must be a dict"), p.describe()));
        }
        let o = Opts::new(func, p);
        o.only(&["name", "filename", "content_type", "data", "path"])?;
        let name = o.text("name")?.ok_or_else(|| Error::invalid(func, format!("multipart part {i} needs a name"), "name"))?;
        let (data, path) = (o.get("data"), o.text("path")?);
        let (bytes, mut filename, is_file): (Vec<u8>, Option<String>, bool) = match (data.is_nil(), path) {
            (false, None) => {
                let b = data.as_text_or_bytes().ok_or_else(|| Error::invalid(func, format!("multipart part {i}: data must be text or bytes"), data.describe()))?;
                (b.to_vec(), None, data.as_bytes().is_some())
            }
            (true, Some(path)) => {
                let t = beneath::resolve(func, "fs.read", path, beneath::Follow::Yes)?;
                let mut f = t.open_read().map_err(|e| t.err(&e))?;
                let mut b = Vec::new();
                f.read_to_end(&mut b).map_err(|e| t.err(&e))?;
                let base = std::path::Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned());
                (b, base, true)
            }
            _ => return Err(Error::invalid(func, format!("multipart part {i} needs exactly one of data and path"), "data, path")),
        };
        if let Some(f) = o.text("filename")? {
            filename = Some(f.to_string());
        }
        let ct = match o.text("content_type")? {
            Some(c) if c.contains(['\r', '\n']) => return Err(Error::invalid(func, "malformed content_type", quote(c))),
            Some(c) => Some(c.to_string()),
            None if is_file || filename.is_some() => Some("application/octet-stream".to_string()),
            None => None,
        };
        out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", esc(name)).as_bytes());
        if let Some(f) = &filename {
            out.extend_from_slice(format!("; filename=\"{}\"", esc(f)).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(c) = ct {
            out.extend_from_slice(format!("Content-Type: {c}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((out, format!("multipart/form-data; boundary={boundary}")))
}

/// Maps a ureq error to an Error value's parts.
fn map_err(func: &'static str, url: &str, e: ureq::Error) -> Error {
    let u = redact(url);
    match e {
        ureq::Error::Io(ioe) => io_error(func, &u, ioe),
        ureq::Error::Timeout(t) => Error::new(Code::Timeout, func, format!("timed out ({t})"), u),
        ureq::Error::HostNotFound => Error::not_found(func, "host name does not resolve", u),
        ureq::Error::BadUri(m) => Error::invalid(func, format!("malformed URL: {m}"), u),
        ureq::Error::Http(m) => Error::invalid(func, format!("malformed request: {m}"), u),
        ureq::Error::Tls(m) => Error::new(Code::Io, func, format!("TLS error: {m}"), u).with("tls", 1),
        ureq::Error::Rustls(r) => tls_error(func, &u, &r),
        ureq::Error::Pem(p) => Error::parse(func, format!("PEM: {p}"), u),
        ureq::Error::LargeResponseHeader(n, max) => {
            Error::new(Code::LimitExceeded, func, format!("response headers larger than {max} bytes ({n})"), u)
        }
        ureq::Error::Protocol(p) => Error::new(Code::Parse, func, format!("malformed HTTP: {p}"), u),
        ureq::Error::ConnectionFailed => Error::new(Code::Io, func, "connection failed", u),
        other => Error::new(Code::Io, func, other.to_string(), u),
    }
}

fn tls_error(func: &'static str, u: &str, r: &rustls::Error) -> Error {
    let what = match r {
        rustls::Error::InvalidCertificate(c) => format!("TLS certificate rejected: {c:?}"),
        rustls::Error::NoCertificatesPresented => "TLS certificate missing".to_string(),
        other => format!("TLS error: {other}"),
    };
    Error::new(Code::Io, func, what, u).with("tls", 1)
}

fn io_error(func: &'static str, u: &str, e: io::Error) -> Error {
    if let Some(d) = e.get_ref().and_then(|x| x.downcast_ref::<Denied>()) {
        return d.0.clone();
    }
    if let Some(r) = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
        return tls_error(func, u, r);
    }
    if let Some(inner) = e.get_ref().and_then(|x| x.downcast_ref::<ureq::Error>()) {
        if let ureq::Error::Timeout(t) = inner {
            return Error::new(Code::Timeout, func, format!("timed out ({t})"), u);
        }
        let msg = inner.to_string();
        let code = if msg.contains("imeout") { Code::Timeout } else { Code::Io };
        return Error::new(code, func, msg, u);
    }
    let mut err = Error::io(func, u, &e);
    if e.kind() == io::ErrorKind::UnexpectedEof {
        err.message = format!("{func}: connection closed before the end of the body ({u})");
    }
    err
}

pub struct Reply {
    pub status: u16,
    pub headers: Value,
    pub url: String,
    pub reader: Box<dyn Read + Send>,
    pub length: Option<u64>,
    pub deadline: Option<Instant>,
}

fn send<S: ureq::AsSendBody>(
    agent: &Agent,
    r: http::Request<S>,
    total: Option<Duration>,
    connect: Option<Duration>,
) -> Result<http::Response<ureq::Body>, ureq::Error> {
    let mut cfg = r.with_agent(agent).configure();
    if total.is_some() {
        cfg = cfg.timeout_global(total);
    }
    if connect.is_some() {
        cfg = cfg.timeout_connect(connect);
    }
    cfg.build().run()
}

fn origin(u: &http::Uri) -> (String, String, u16) {
    (u.scheme_str().unwrap_or("").to_ascii_lowercase(), u.host().unwrap_or("").to_ascii_lowercase(), port_of(u))
}

/// Sends the request, following redirects; the response with an undecoded body reader.
pub fn perform(func: &'static str, mut req: Req) -> RtResult<Reply> {
    let start = Instant::now();
    // The thread's deadline (docs/DEADLINES.md) bounds the whole exchange like timeout_ms: the
    // shorter wins; its expiry, or a triggered token seen between steps, is Timeout / Cancelled.
    let own = req.timeout.map(|t| start + t);
    let deadline = match (own, ffi_sdk::deadline::remaining().map(|r| start + r)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let fresh;
    let agent: &Agent = if req.ca.is_none() && cap::allow_all() {
        shared_agent()
    } else {
        fresh = new_agent(func, req.ca.take());
        &fresh
    };
    let mut url = req.url.clone();
    let mut hops = 0u32;
    loop {
        let (uri, basic) = parse_url(func, &url)?;
        let uri: http::Uri = if req.query.is_empty() || hops > 0 {
            uri
        } else {
            let mut s = uri.to_string();
            let q = crate::url::form_encode(&req.query);
            s.push(if uri.query().is_some() { '&' } else { '?' });
            s.push_str(&q);
            s.parse().map_err(|e: http::uri::InvalidUri| Error::invalid(func, format!("malformed query: {e}"), redact(&url)))?
        };
        let mut b = http::Request::builder().method(req.method.as_str()).uri(uri.clone());
        let has = |name: &str| req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if let Some(a) = basic {
            if !has("authorization") {
                b = b.header("authorization", a);
            }
        }
        if req.decompress && !has("accept-encoding") {
            b = b.header("accept-encoding", "gzip, deflate");
        }
        if req.body.is_some() && !has("content-type") {
            if let Some(ct) = &req.content_type {
                b = b.header("content-type", ct.as_str());
            }
        }
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        ffi_sdk::deadline::check(func)?;
        let left = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(Code::Timeout, func, "timed out", redact(&url)));
                }
                Some(left)
            }
            None => None,
        };
        let bad = |e: http::Error| Error::invalid(func, format!("malformed request: {e}"), redact(&url));
        let resp = match &req.body {
            None => send(agent, b.body(()).map_err(bad)?, left, req.connect_timeout),
            Some(v) => send(agent, b.body(v.as_slice()).map_err(bad)?, left, req.connect_timeout),
        }
        .map_err(|e| match ffi_sdk::deadline::status() {
            Some(c) => ffi_sdk::deadline::error(func, c),
            None => map_err(func, &url, e),
        })?;
        let status = resp.status().as_u16();
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        if matches!(status, 301 | 302 | 303 | 307 | 308) && req.max_redirects > 0 {
            if let Some(loc) = loc {
                if hops >= req.max_redirects {
                    return Err(Error::new(
                        Code::LimitExceeded,
                        func,
                        format!("more than {} redirects", req.max_redirects),
                        redact(&req.url),
                    ));
                }
                let next = join(&uri, &loc);
                let (nu, _) = parse_url(func, &next)?;
                if origin(&nu) != origin(&uri) {
                    req.headers.retain(|(k, _)| {
                        !["authorization", "cookie", "proxy-authorization"].contains(&k.to_ascii_lowercase().as_str())
                    });
                }
                if status == 303 || (matches!(status, 301 | 302) && req.method == "POST") {
                    if req.method != "HEAD" {
                        req.method = "GET".into();
                    }
                    req.body = None;
                    req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length"));
                }
                hops += 1;
                url = next;
                continue;
            }
        }
        let headers = Value::dict();
        for (k, v) in resp.headers() {
            let v = String::from_utf8_lossy(v.as_bytes());
            let prev = headers.get(k.as_str());
            match prev.as_text() {
                Some(p) => headers.set(k.as_str(), Value::text(&format!("{p}, {v}"))),
                None => headers.set(k.as_str(), Value::text(&v)),
            };
        }
        let length = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let enc = resp.headers().get("content-encoding").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_ascii_lowercase());
        let raw: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        let reader: Box<dyn Read + Send> = match (req.decompress, enc.as_deref()) {
            (true, Some("gzip" | "x-gzip")) => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            (true, Some("deflate")) => deflate_reader(raw),
            _ => raw,
        };
        if req.error_status && status >= 400 {
            return Err(Error::new(Code::Io, func, format!("HTTP status {status}"), redact(&url)).with("status", status as i64));
        }
        return Ok(Reply { status, headers, url: redact_plain(&url), reader, length: if enc.is_some() { None } else { length }, deadline });
    }
}

fn redact_plain(url: &str) -> String {
    // The final URL without user-info (the query is kept: it is part of the address).
    match url.split_once("://") {
        Some((s, r)) => {
            let end = r.find(['/', '?', '#']).unwrap_or(r.len());
            let auth = &r[..end];
            let auth = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
            format!("{s}://{auth}{}", &r[end..])
        }
        None => url.to_string(),
    }
}

/// "deflate" is zlib-wrapped by the RFC, raw deflate by some servers: look at the first bytes.
fn deflate_reader(raw: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    let mut br = BufReader::new(raw);
    let zlib = match br.fill_buf() {
        Ok(b) if b.len() >= 2 => b[0] & 0x0F == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0,
        _ => true,
    };
    if zlib {
        Box::new(flate2::read::ZlibDecoder::new(br))
    } else {
        Box::new(flate2::read::DeflateDecoder::new(br))
    }
}

/// Reads a whole body under a byte limit.
pub fn read_body(func: &'static str, r: &mut Reply, max: u64, url: &str) -> RtResult<Vec<u8>> {
    if let Some(n) = r.length {
        if n > max {
            return Err(Error::new(Code::LimitExceeded, func, format!("response body of {n} bytes is over the limit of {max}"), redact(url))
                .with("limit", max as i64));
        }
    }
    let mut out = Vec::with_capacity(r.length.unwrap_or(0).min(max).min(64 << 20) as usize);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        ffi_sdk::deadline::check(func)?;
        let n = match r.reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(body_err(func, url, e, r.deadline)),
        };
        if out.len() as u64 + n as u64 > max {
            return Err(Error::new(Code::LimitExceeded, func, format!("response body is over the limit of {max} bytes"), redact(url))
                .with("limit", max as i64));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn body_err(func: &'static str, url: &str, e: io::Error, deadline: Option<Instant>) -> Error {
    if let Some(c) = ffi_sdk::deadline::status() {
        return ffi_sdk::deadline::error(func, c);
    }
    let err = io_error(func, &redact(url), e);
    if deadline.is_some_and(|d| Instant::now() >= d) && err.code != Code::Timeout {
        return Error::new(Code::Timeout, func, "timed out reading the body", redact(url));
    }
    err
}

/// Runs a request and builds `{status, headers, body, url}`.
pub fn exchange(func: &'static str, req: Req) -> RtResult<Value> {
    let (text, max, url) = (req.text, req.max_bytes.unwrap_or(DEFAULT_MAX_BYTES), req.url.clone());
    let head = req.method == "HEAD";
    let mut r = perform(func, req)?;
    let body = if head { Vec::new() } else { read_body(func, &mut r, max, &url)? };
    let body = if text {
        match String::from_utf8(body) {
            Ok(s) => Value::text(&s),
            Err(e) => {
                return Err(Error::parse(func, "response body is not UTF-8 text", redact(&url))
                    .with("position", e.utf8_error().valid_up_to() as i64))
            }
        }
    } else {
        Value::bytes(&body)
    };
    Ok(Value::dict()
        .set("status", Value::int(r.status as i64))
        .set("headers", r.headers)
        .set("body", body)
        .set("url", Value::text(&r.url)))
}

/// HTTP GET: `{status, headers, body, url}` (body bytes, or text with opts.text). A status >= 400 is a result
/// unless opts.error_status. Needs `net.http` for every address of every hop.
///
/// # Options
/// - headers (dict of text): request headers
/// - query (dict of text): query parameters added to the URL
/// - timeout_ms (int >= 1): the whole exchange, redirects included (Error Timeout past it)
/// - connect_timeout_ms (int >= 1): each connection attempt
/// - max_redirects (int 0..=100, default 10): redirects followed; a hop to a denied host is CapabilityDenied
/// - max_bytes (int >= 0, default 256 MiB): the largest body accepted, checked while reading
/// - text (bool, default false): the body as text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status
/// - decompress (bool, default true): decode gzip/deflate bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - body (text, bytes, dict or array): a request body (text or bytes as is, a dict or array as JSON)
/// - content_type (text): the body's content type
/// - multipart (array of dicts): parts {name, filename?, content_type?, data | path} sent as multipart/form-data
///
/// # Errors
/// - InvalidArgument: a malformed URL, method, header or query, an unknown option, or body and multipart together
/// - NotFound: the host name does not resolve
/// - Io: the connection failed or broke (details.errno), or a status >= 400 with error_status (details.status)
/// - Parse: a malformed response, a body that is not UTF-8 with text, or a ca_file that is not PEM
/// - LimitExceeded: more than max_redirects redirects, or a body over max_bytes
/// - Unsupported: a URL scheme other than http and https
///
/// # Example
/// rt_http_get("https://example.com/", {timeout_ms: 5000}) -> {status: 200, headers: {...}, body: b"<!doctype html>...", url: "https://example.com/"}
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_get(url: &str, opts: Opts) -> RtResult<Value> {
    exchange(FN, Req::new(FN, "GET", url, &opts)?)
}

/// Options or, as Simple passes, a content type.
fn opts_or_type(func: &'static str, v: Value) -> RtResult<(Opts, Option<String>)> {
    if let Some(t) = v.as_text() {
        return Ok((Opts::new(func, Value::NIL), Some(t.to_string())));
    }
    if v.is_nil() || v.is_dict() {
        return Ok((Opts::new(func, v), None));
    }
    Err(ffi_sdk::args::kind_error(func, 2, "opts", "dict, nil or a content type", v))
}

fn with_body(func: &'static str, method: &str, url: &str, body: Value, opts: Value) -> RtResult<Value> {
    let (opts, ct) = opts_or_type(func, opts)?;
    if !opts.get("body").is_nil() {
        return Err(Error::invalid(func, "the body is an argument here, not an option", "opts.body"));
    }
    let mut req = Req::new(func, method, url, &opts)?;
    if req.body.is_some() {
        // opts.multipart made the body.
        if !body.is_nil() {
            return Err(Error::invalid(func, "pass a nil body with opts.multipart", "body"));
        }
        if ct.is_some() {
            return Err(Error::invalid(func, "a multipart body has its own content type", "content_type"));
        }
        return exchange(func, req);
    }
    let (b, bct) = body_of(func, body)?;
    req.body = Some(b.unwrap_or_default());
    req.content_type = ct.or(req.content_type.take()).or(bct.map(str::to_string));
    exchange(func, req)
}

/// HTTP POST of `body`: text or bytes as is, a dict or array as JSON (content type application/json). The third argument is an options dict as for `rt_http_get` (plus content_type, and multipart with a nil body: an array of parts `{name, filename?, content_type?, data | path}` sent as multipart/form-data) or, as Simple passes it, a content-type text. Result as `rt_http_get`.
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: HTTP POST of `body`: text or bytes as is, a dict or array as JSON (content type application/json)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: the body is an argument here, not an option; pass a nil body with opts.multipart; a multipart body has its own content type; malformed HTTP method
/// - NotFound: what it names does not exist
/// - Io: HTTP status <status>
/// - Parse: ca_file is not valid PEM; ca_file holds no certificate; response body is not UTF-8 text
/// - LimitExceeded: more than … redirects; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_post(url: &str, body: Value, opts: Value) -> RtResult<Value> {
    with_body(FN, "POST", url, body, opts)
}

/// HTTP PUT; arguments and result as `rt_http_post`.
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: the body is an argument here, not an option; pass a nil body with opts.multipart; a multipart body has its own content type; malformed HTTP method
/// - Io: HTTP status <status>
/// - Parse: ca_file is not valid PEM; ca_file holds no certificate; response body is not UTF-8 text
/// - LimitExceeded: more than … redirects; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_put(url: &str, body: Value, opts: Value) -> RtResult<Value> {
    with_body(FN, "PUT", url, body, opts)
}

/// HTTP PATCH; arguments and result as `rt_http_post`.
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: the body is an argument here, not an option; pass a nil body with opts.multipart; a multipart body has its own content type; malformed HTTP method
/// - Io: HTTP status <status>
/// - Parse: ca_file is not valid PEM; ca_file holds no certificate; response body is not UTF-8 text
/// - LimitExceeded: more than … redirects; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_patch(url: &str, body: Value, opts: Value) -> RtResult<Value> {
    with_body(FN, "PATCH", url, body, opts)
}

/// HTTP DELETE; options and result as `rt_http_get`.
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: malformed query; malformed request; malformed URL; malformed HTTP method
/// - NotFound: host name does not resolve
/// - Io: HTTP status <status>; TLS error; connection failed
/// - Parse: response body is not UTF-8 text; PEM; malformed HTTP; ca_file is not valid PEM
/// - Unsupported: only http and https URLs are supported
/// - LimitExceeded: more than … redirects; response headers larger than <max> bytes; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_delete(url: &str, opts: Opts) -> RtResult<Value> {
    exchange(FN, Req::new(FN, "DELETE", url, &opts)?)
}

/// HTTP HEAD; options and result as `rt_http_get` (body empty).
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: malformed query; malformed request; malformed URL; malformed HTTP method
/// - NotFound: host name does not resolve
/// - Io: HTTP status <status>; TLS error; connection failed
/// - Parse: response body is not UTF-8 text; PEM; malformed HTTP; ca_file is not valid PEM
/// - Unsupported: only http and https URLs are supported
/// - LimitExceeded: more than … redirects; response headers larger than <max> bytes; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_head(url: &str, opts: Opts) -> RtResult<Value> {
    exchange(FN, Req::new(FN, "HEAD", url, &opts)?)
}

/// Any HTTP method (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`, `HEAD`, `OPTIONS`, ...): opts as `rt_http_get` plus body (text, bytes, or a dict/array sent as JSON), content_type, and multipart (instead of body: an array of parts `{name, filename?, content_type?, data | path}`, sent as multipart/form-data; a part's path is read under `fs.read`). Result as `rt_http_get`.
///
/// # Options
/// - headers (dict of text): request headers (dict of text)
/// - query (dict of text): query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type (text): the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects (int 0..=100, default 10): redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes (int >= 0): the most bytes read (Error LimitExceeded past it)
/// - text (bool, default false): decode the output as UTF-8 text instead of bytes
/// - error_status (bool, default false): a status >= 400 is Error Io with details.status instead of a result
/// - decompress (bool, default true): decode gzip/deflate response bodies
/// - ca_file (text): PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: malformed query; malformed request; malformed URL; malformed HTTP method
/// - NotFound: host name does not resolve
/// - Io: HTTP status <status>; TLS error; connection failed
/// - Parse: response body is not UTF-8 text; PEM; malformed HTTP; ca_file is not valid PEM
/// - Unsupported: only http and https URLs are supported
/// - LimitExceeded: more than … redirects; response headers larger than <max> bytes; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_request(method: &str, url: &str, opts: Opts) -> RtResult<Value> {
    exchange(FN, Req::new(FN, method, url, &opts)?)
}

/// Simple's name: uploads the file at `file_path` as the multipart/form-data field `field_name` (filename its base name, application/octet-stream) in a POST to `url`. Options as `rt_http_get` (plus content_type for the part). Needs `net.http` and `fs.read` for the file. Result as `rt_http_get`.
///
/// # Options
/// - content_type: the request body's content type
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - headers: request headers (dict of text)
/// - query: query parameters (dict of text)
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects: redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes: the most bytes read (Error LimitExceeded past it)
/// - text: decode the output as UTF-8 text instead of bytes
/// - error_status: a status >= 400 is Error Io with details.status instead of a result
/// - decompress: decode gzip/deflate response bodies
/// - ca_file: PEM roots to trust instead of the platform's
///
/// # Errors
/// - InvalidArgument: the upload makes the body: no opts.body or opts.multipart; malformed query; malformed request; malformed URL
/// - NotFound: host name does not resolve
/// - Io: HTTP status <status>; TLS error; connection failed
/// - Parse: response body is not UTF-8 text; PEM; malformed HTTP; ca_file is not valid PEM
/// - Unsupported: only http and https URLs are supported
/// - LimitExceeded: more than … redirects; response headers larger than <max> bytes; response body of <n> bytes is over the limit of <max>; response body is over the limit of <max> bytes
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_upload(url: &str, file_path: &str, field_name: &str, opts: Opts) -> RtResult<Value> {
    let part = Value::dict().set("name", Value::text(field_name)).set("path", Value::text(file_path));
    opts.only(OPTS)?;
    let o = Value::dict();
    for k in OPTS {
        let v = opts.get(k);
        if v.is_nil() {
            continue;
        }
        if *k == "content_type" {
            part.set("content_type", v);
        } else {
            o.set(k, v);
        }
    }
    if !o.get("multipart").is_nil() || !o.get("body").is_nil() {
        return Err(Error::invalid(FN, "the upload makes the body: no opts.body or opts.multipart", "opts"));
    }
    o.set("multipart", Value::array(1).push(part));
    exchange(FN, Req::new(FN, "POST", url, &Opts::new(FN, o))?)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One buffer of a download; [`DL_BUFS`] of them at most, so memory is flat for any size.
const DL_BUF: usize = 256 << 10;
const DL_BUFS: usize = 8;
/// Writeback of the temporary file is started every this many bytes (see [`Writeback`]), so the
/// fsync before the rename waits for the tail only, not for the whole body.
const DL_FLUSH: u64 = 32 << 20;

/// The SHA-256 of a download, computed beside the socket reads and the file writes: each full
/// buffer (already written to the file) goes to a helper thread that hashes it, hands it back and
/// moves the file's [`Writeback`] on, so hashing and the disk writes overlap the transfer.
/// A body under one buffer, or a thread that cannot start, is hashed inline. Dropped early (an
/// error, a cancel), the helper sees its channel close and ends after the buffer in hand.
struct StreamHash {
    /// A second descriptor of the temporary file, for the writeback (none: fsync does it all).
    file: Option<std::fs::File>,
    inline: Option<ring::digest::Context>,
    pipe: Option<HashPipe>,
    made: usize,
}

/// The helper thread: buffers (and their byte counts) go in, hashed buffers come back.
struct HashPipe {
    tx: std::sync::mpsc::SyncSender<(Vec<u8>, usize)>,
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: std::thread::JoinHandle<ring::digest::Digest>,
}

impl StreamHash {
    fn new(file: &std::fs::File) -> StreamHash {
        StreamHash { file: file.try_clone().ok(), inline: None, pipe: None, made: 1 }
    }

    /// Hashes `buf[..n]` (the caller's full buffer) and returns the buffer to fill next.
    fn push(&mut self, buf: Vec<u8>, n: usize) -> RtResult<Vec<u8>> {
        if self.pipe.is_none() && self.inline.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(DL_BUFS);
            let (back_tx, back) = std::sync::mpsc::sync_channel::<Vec<u8>>(DL_BUFS);
            let file = self.file.take();
            let spawned = std::thread::Builder::new().name("rt-sha256".into()).spawn(move || {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                let mut wb = Writeback { file, tx: None, sent: 0 };
                let mut done = 0u64;
                for (b, n) in rx {
                    ctx.update(&b[..n]);
                    let _ = back_tx.send(b);
                    done += n as u64;
                    wb.advance(done);
                }
                ctx.finish()
            });
            match spawned {
                Ok(worker) => self.pipe = Some(HashPipe { tx, back, worker }),
                Err(_) => self.inline = Some(ring::digest::Context::new(&ring::digest::SHA256)),
            }
        }
        if let Some(ctx) = self.inline.as_mut() {
            ctx.update(&buf[..n]);
            return Ok(buf);
        }
        let worker_failed = || Error::new(Code::Io, "rt_http_download", "the sha256 thread failed", "");
        let pipe = self.pipe.as_ref().ok_or_else(worker_failed)?;
        pipe.tx.send((buf, n)).map_err(|_| worker_failed())?;
        if self.made < DL_BUFS {
            self.made += 1;
            return Ok(vec![0u8; DL_BUF]);
        }
        pipe.back.recv().map_err(|_| worker_failed())
    }

    /// Hashes the last `buf[..n]` and returns the digest as hex.
    fn finish(mut self, buf: Vec<u8>, n: usize) -> RtResult<String> {
        let worker_failed = || Error::new(Code::Io, "rt_http_download", "the sha256 thread failed", "");
        match self.pipe.take() {
            Some(HashPipe { tx, back, worker }) => {
                if n > 0 {
                    tx.send((buf, n)).map_err(|_| worker_failed())?;
                }
                drop((tx, back));
                Ok(hex(worker.join().map_err(|_| worker_failed())?.as_ref()))
            }
            None => {
                let mut ctx = self.inline.take().unwrap_or_else(|| ring::digest::Context::new(&ring::digest::SHA256));
                ctx.update(&buf[..n]);
                Ok(hex(ctx.finish().as_ref()))
            }
        }
    }
}

/// Early writeback of a download's temporary file, on a thread of its own started at the first
/// [`DL_FLUSH`] bytes: sync_file_range can block for milliseconds while it queues the I/O, and
/// neither the socket reads nor the hashing should wait for that. Best effort: without the
/// thread, the fsync before the rename does it all.
struct Writeback {
    file: Option<std::fs::File>,
    tx: Option<std::sync::mpsc::SyncSender<u64>>,
    /// The bytes handed to the thread so far.
    sent: u64,
}

impl Writeback {
    /// The first `done` bytes of the file are written: start their writeback once another
    /// [`DL_FLUSH`] have come (skipped while the thread is still busy with the last range).
    fn advance(&mut self, done: u64) {
        if done - self.sent < DL_FLUSH {
            return;
        }
        if self.tx.is_none() {
            let Some(f) = self.file.take() else { return };
            let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1);
            let spawned = std::thread::Builder::new().name("rt-writeback".into()).spawn(move || {
                let mut from = 0;
                for upto in rx {
                    start_writeback(&f, from, upto - from);
                    from = upto;
                }
            });
            if spawned.is_err() {
                return;
            }
            self.tx = Some(tx);
        }
        if self.tx.as_ref().is_some_and(|tx| tx.try_send(done).is_ok()) {
            self.sent = done;
        }
    }
}

/// Starts writeback of `len` bytes of `f` from `off` without waiting for it (Linux; elsewhere the
/// final fsync does it all). Best effort: a failure here surfaces in that fsync.
fn start_writeback(f: &std::fs::File, off: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
            // SAFETY: `f` is an open file for the whole call; sync_file_range takes no pointers.
        unsafe { libc::sync_file_range(f.as_raw_fd(), off as libc::off64_t, len as libc::off64_t, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, off, len);
}

/// Downloads `url` to `path`: streams into a temporary file beside it (constant memory) and renames it over `path` only when the whole body arrived (and matched opts.sha256, hex); on any failure or timeout no file is left. A status >= 400 is Error Io (details.status) and writes nothing. `{status, bytes, sha256, url}`. Options as `rt_http_get` (max_bytes: no limit unless given) plus sha256. Needs `net.http` and `fs.write` for `path`.
///
/// # Options
/// - sha256: and matched opts.sha256, hex
/// - headers: request headers (dict of text)
/// - query: query parameters (dict of text)
/// - body: the request body: text or bytes as is, a dict or array as JSON (rt_http_request; the other methods take it as an argument)
/// - content_type: the request body's content type
/// - timeout_ms: how long to wait, in milliseconds (Error Timeout past it)
/// - connect_timeout_ms: how long connecting may take, in milliseconds
/// - max_redirects: redirects followed (a hop to a denied host is CapabilityDenied)
/// - max_bytes: the most bytes read (Error LimitExceeded past it)
/// - text: decode the output as UTF-8 text instead of bytes
/// - error_status: a status >= 400 is Error Io with details.status instead of a result
/// - decompress: decode gzip/deflate response bodies
/// - ca_file: PEM roots to trust instead of the platform's
/// - multipart: an array of parts {name, filename?, content_type?, data | path} sent as multipart/form-data (with a nil body)
///
/// # Errors
/// - InvalidArgument: option sha256 must be 64 hex digits; the destination is a directory, not a file; path has a NUL; malformed HTTP method; opts.body and opts.multipart exclude each other
/// - NotFound: host name does not resolve
/// - Io: HTTP status …; could not create a temporary file; connection closed after <total> of <n> bytes; sha256 of the download does not match
/// - Parse: ca_file is not valid PEM; ca_file holds no certificate; PEM; malformed HTTP
/// - Unsupported: only http and https URLs are supported
/// - LimitExceeded: response body of <n> bytes is over the limit of <m>; download is over the limit of … bytes; body nests deeper than 512; more than … redirects
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_download(url: &str, path: &str, opts: Opts) -> RtResult<Value> {
    use std::io::Write;
    let d = opts.get("sha256");
    let mut known: Vec<&str> = OPTS.to_vec();
    known.push("sha256");
    opts.only(&known)?;
    let want = match d.as_text() {
        Some(h) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
        None if d.is_nil() => None,
        _ => return Err(Error::invalid(FN, "option sha256 must be 64 hex digits", d.describe())),
    };
    let mut req = {
        // Req::new checks the known keys; sha256 is ours.
        let o = Value::dict();
        for k in OPTS {
            let v = opts.get(k);
            if !v.is_nil() {
                o.set(k, v);
            }
        }
        Req::new(FN, "GET", url, &Opts::new(FN, o))?
    };
    req.text = false;
    let t = beneath::resolve(FN, "fs.write", path, beneath::Follow::Yes)?;
    // The file the download replaces is checked before anything is fetched, as every atomic
    // writer checks it (ffi_sdk::atomic_file): a directory, a symlink that appeared since the
    // walk, or (scoped) a file with other hard links is refused; the temporary beside it is
    // removed on every early return.
    let mut out = AtomicFile::create(FN, &t, path, 0o666)?;
    let max = req.max_bytes;
    let mut r = perform(FN, req)?;
    if r.status >= 400 {
        return Err(Error::new(Code::Io, FN, format!("HTTP status {}", r.status), redact(url)).with("status", r.status as i64));
    }
    if let (Some(n), Some(m)) = (r.length, max) {
        if n > m {
            return Err(Error::new(Code::LimitExceeded, FN, format!("response body of {n} bytes is over the limit of {m}"), redact(url)));
        }
    }
    let mut f = out.file.take().ok_or_else(|| Error::internal(FN, "output file missing"))?;
    // Each read goes straight to the file; a full buffer goes to the hasher (see StreamHash).
    let mut hash = StreamHash::new(&f);
    let mut buf = vec![0u8; DL_BUF];
    let mut fill = 0usize;
    let mut total: u64 = 0;
    loop {
        // Stopped between chunks (the chunk read itself is bounded by the deadline): the
        // temporary file is removed by `tmp`'s drop on every early return.
        ffi_sdk::deadline::check(FN)?;
        let n = match r.reader.read(&mut buf[fill..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(body_err(FN, url, e, r.deadline)),
        };
        total += n as u64;
        if max.is_some_and(|m| total > m) {
            return Err(Error::new(Code::LimitExceeded, FN, format!("download is over the limit of {} bytes", max.unwrap_or(0)), redact(url)));
        }
        f.write_all(&buf[fill..fill + n]).map_err(|e| t.err(&e))?;
        fill += n;
        if fill == DL_BUF {
            buf = hash.push(buf, fill)?;
            fill = 0;
        }
    }
    if let Some(n) = r.length {
        if total != n {
            return Err(Error::new(Code::Io, FN, format!("connection closed after {total} of {n} bytes"), redact(url)));
        }
    }
    let sum = hash.finish(buf, fill)?;
    if let Some(w) = want {
        if w != sum {
            return Err(Error::new(Code::Io, FN, "sha256 of the download does not match", redact(url))
                .with("expected", w)
                .with("actual", sum));
        }
    }
    f.sync_all().map_err(|e| t.err(&e))?;
    drop(f);
    out.commit().map_err(|e| t.err(&e))?;
    Ok(Value::dict()
        .set("status", Value::int(r.status as i64))
        .set("bytes", Value::int(total as i64))
        .set("sha256", Value::text(&sum))
        .set("url", Value::text(&r.url)))
}

/// A client: default headers and a timeout for `rt_http_client_request`.
pub struct Client {
    headers: Mutex<Vec<(String, String)>>,
    timeout_ms: Mutex<Option<i64>>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Client {
    const NAME: &'static str = "HttpClient";
}

/// Simple's name: a client handle holding default headers and a timeout.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "empirical", ret = "handle<HttpClient>")]
pub fn rt_http_client_create() -> Value {
    new_handle(Client { headers: Mutex::new(Vec::new()), timeout_ms: Mutex::new(None) })
}

/// Simple's name: closes a client handle (idempotent). Nil.
///
/// # Errors
/// - Closed: the handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_client_destroy(client: Value) -> RtResult<()> {
    match <Handle<Client> as ffi_sdk::FromArg>::from_arg(client.raw(), FN, 0, "client") {
        Ok(h) => {
            h.close();
            Ok(())
        }
        Err(e) if e.code == Code::Closed => Ok(()),
        Err(e) => Err(e),
    }
}

fn check_header(func: &'static str, k: &str, v: &str) -> RtResult<()> {
    if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
        return Err(Error::invalid(func, "malformed header name", quote(k)));
    }
    if http::HeaderValue::from_str(v).is_err() {
        // The value may be a secret: name the header only.
        return Err(Error::invalid(func, "malformed header value", quote(k)));
    }
    Ok(())
}

/// Simple's name: sets a default header on a client (replacing one of the same name). True.
///
/// # Errors
/// - InvalidArgument: malformed header name; malformed header value
/// - Closed: `client` was closed
#[rt_fn(tier = "empirical")]
pub fn rt_http_client_set_header(client: Handle<Client>, key: &str, value: &str) -> RtResult<bool> {
    check_header(FN, key, value)?;
    let mut h = client.headers.lock().unwrap_or_else(|e| e.into_inner());
    h.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    h.push((key.to_string(), value.to_string()));
    Ok(true)
}

/// Simple's name: the client's total timeout in milliseconds (0 = none). True.
///
/// # Errors
/// - Closed: `client` was closed
/// - OutOfRange: timeout_ms must be >= 0
#[rt_fn(tier = "empirical")]
pub fn rt_http_client_set_timeout(client: Handle<Client>, timeout_ms: i64) -> RtResult<bool> {
    if timeout_ms < 0 {
        return Err(Error::new(Code::OutOfRange, FN, "timeout_ms must be >= 0", timeout_ms));
    }
    *client.timeout_ms.lock().unwrap_or_else(|e| e.into_inner()) = if timeout_ms == 0 { None } else { Some(timeout_ms) };
    Ok(true)
}

/// Simple's name: a request with the client's headers and timeout. `headers`: an array of "Name: value" texts, a dict, or nil; `body`: text, bytes, dict/array (JSON) or nil. Result as `rt_http_get`.
///
/// # Errors
/// - InvalidArgument: headers must be texts "Name: value"; a header text is "Name: value"; malformed HTTP method; opts.body and opts.multipart exclude each other
/// - NotFound: host name does not resolve
/// - Io: HTTP status <status>; TLS error; connection failed
/// - Parse: ca_file is not valid PEM; ca_file holds no certificate; response body is not UTF-8 text; PEM
/// - Unsupported: only http and https URLs are supported
/// - Closed: `client` was closed
/// - LimitExceeded: body nests deeper than 512; more than … redirects; response headers larger than <max> bytes; response body of <n> bytes is over the limit of <max>
#[rt_fn(cap = "net.http", scoped, blocking, tier = "empirical", ret = "dict")]
pub fn rt_http_client_request(client: Handle<Client>, method: &str, url: &str, headers: Value, body: Value) -> RtResult<Value> {
    let mut req = Req::new(FN, method, url, &Opts::new(FN, Value::NIL))?;
    req.headers = client.headers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut extra = Vec::new();
    if headers.is_array() {
        for h in headers.items() {
            let t = h.as_text().ok_or_else(|| Error::invalid(FN, "headers must be texts \"Name: value\"", h.describe()))?;
            let (k, v) = t.split_once(':').ok_or_else(|| Error::invalid(FN, "a header text is \"Name: value\"", "headers"))?;
            extra.push((k.trim().to_string(), v.trim().to_string()));
        }
    } else if headers.is_dict() {
        extra = Opts::new(FN, Value::dict().set("h", headers)).text_map("h")?.unwrap_or_default();
    } else if !headers.is_nil() {
        return Err(ffi_sdk::args::kind_error(FN, 3, "headers", "array of text, dict or nil", headers));
    }
    for (k, v) in extra {
        check_header(FN, &k, &v)?;
        req.headers.retain(|(x, _)| !x.eq_ignore_ascii_case(&k));
        req.headers.push((k, v));
    }
    let (b, ct) = body_of(FN, body)?;
    req.body = b;
    req.content_type = ct.map(str::to_string);
    req.timeout = client.timeout_ms.lock().unwrap_or_else(|e| e.into_inner()).map(|m| Duration::from_millis(m as u64));
    exchange(FN, req)
}
