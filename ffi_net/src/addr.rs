//! Resolution and the connection check shared by sockets and HTTP.

use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// `host` as written in a resource: IPv6 in brackets.
pub fn host_text(host: &str) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.contains(':') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

/// The resource string checked for one address: `host:port=address`.
pub fn resource(host: &str, port: u16, ip: IpAddr) -> String {
    format!("{}:{port}={ip}", host_text(host))
}

/// A port argument: 0..=65535.
pub fn port(func: &'static str, p: i64) -> RtResult<u16> {
    u16::try_from(p).map_err(|_| Error::new(Code::OutOfRange, func, "port must be in 0..=65535", p))
}

/// Checks a host argument's form (no NUL, not empty, no spaces).
pub fn check_host(func: &'static str, host: &str) -> RtResult<()> {
    if host.is_empty() || host.len() > 253 + 2 || host.contains(['\0', ' ', '/', '=', '\n']) {
        return Err(Error::invalid(func, "malformed host", quote(host)));
    }
    Ok(())
}

/// Resolves `host` through the system resolver (an IP text is used as is); honours the thread's deadline and cancel tokens while it waits.
pub fn resolve(func: &'static str, host: &str, port: u16) -> RtResult<Vec<SocketAddr>> {
    resolve_until(func, host, port, None)
}

/// [`resolve`] bounded by the function's own timeout too (`until`, from `timeout_ms`): Error
/// Timeout once it passes, even while the system resolver is still waiting. Before, the lookup
/// of a connect with `timeout_ms` and no thread deadline blocked in getaddrinfo for as long as
/// the resolver took (30 s in tests/dns_cancel.rs), the timeout applying only to the connect.
pub fn resolve_until(func: &'static str, host: &str, port: u16, until: Option<Instant>) -> RtResult<Vec<SocketAddr>> {
    check_host(func, host)?;
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let timed_out = || Error::new(Code::Timeout, func, "timed out resolving the host name", quote(host));
    let limit = until.map(|d| d.saturating_duration_since(Instant::now()));
    if limit.is_some_and(|l| l.is_zero()) {
        return Err(timed_out());
    }
    // A deadline or cancel (or `until`) stops the wait for the system resolver at once (crate::transport).
    match crate::transport::resolve(h, port, limit) {
        Err(_) if ffi_sdk::deadline::status().is_some() => {
            Err(ffi_sdk::deadline::error(func, ffi_sdk::deadline::status().unwrap_or(Code::Timeout)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut && until.is_some_and(|d| Instant::now() >= d) => Err(timed_out()),
        Ok(it) => {
            let mut v: Vec<SocketAddr> = Vec::new();
            for a in it {
                if !v.contains(&a) {
                    v.push(a);
                }
            }
            if v.is_empty() {
                Err(Error::not_found(func, "host name has no address", quote(host)))
            } else {
                Ok(v)
            }
        }
        Err(e) => Err(Error::not_found(func, format!("host name does not resolve: {e}"), quote(host))),
    }
}

/// Checks `cap` for every address (`host:port=address`); the first denial is the Error.
pub fn check_all(func: &'static str, cap_name: &'static str, host: &str, addrs: &[SocketAddr]) -> RtResult<()> {
    if cap::allow_all() {
        return Ok(());
    }
    for a in addrs {
        cap::check(func, cap_name, &resource(host, a.port(), a.ip()))?;
    }
    Ok(())
}

/// Resolves and checks: the addresses a connection may use.
pub fn resolve_checked(func: &'static str, cap_name: &'static str, host: &str, port: u16) -> RtResult<Vec<SocketAddr>> {
    let addrs = resolve(func, host, port)?;
    check_all(func, cap_name, host, &addrs)?;
    Ok(addrs)
}

/// `"host:port"` / `"[v6]:port"` split (for Simple's address texts).
pub fn split_addr(func: &'static str, addr: &str) -> RtResult<(String, u16)> {
    let bad = || Error::invalid(func, "expected host:port or [v6]:port", quote(addr));
    let (h, p) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        (h, tail.strip_prefix(':').ok_or_else(bad)?)
    } else {
        addr.rsplit_once(':').ok_or_else(bad)?
    };
    if h.contains(':') && !addr.starts_with('[') {
        return Err(bad());
    }
    let p: i64 = p.parse().map_err(|_| bad())?;
    Ok((h.to_string(), port(func, p)?))
}

/// `{host, port}` of a socket address.
pub fn addr_dict(a: &SocketAddr) -> Value {
    Value::dict().set("host", Value::text(&a.ip().to_string())).set("port", Value::int(a.port() as i64))
}

/// A deadline from an optional millisecond count (≥ 0).
pub fn deadline(ms: Option<i64>) -> Option<Instant> {
    ms.map(|m| Instant::now() + Duration::from_millis(m.max(0) as u64))
}

/// Milliseconds left until `d` (for poll), -1 for none.
pub fn ms_left(d: Option<Instant>) -> i32 {
    match d {
        None => -1,
        Some(d) => d.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32,
    }
}
