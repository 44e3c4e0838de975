//! The capability policy (SPEC §7): process-wide, starts allow-all, can only
//! narrow. Deny scopes beat allow scopes.
//!
//! Policy dict: key = capability name, or `"*"` for every capability not
//! named; value = `true` (keep as held), `false` (drop), or an array of scopes
//! (narrow to these, intersected with what is held). A scope starting with `!`
//! denies. An array with only `!` scopes keeps the capability unscoped except
//! those. `"*"` as a scope means every resource (still scoped: functions that
//! need the capability unscoped, like `rt_shell`, are refused).
//!
//! Scopes by family:
//! - path (`fs.read`, `fs.write`, `process.spawn`): absolute path prefixes,
//!   matched component-wise on canonical paths (`/srv` covers `/srv/x`, not `/srvx`).
//! - name (`env.read`, `env.write`): a variable name, or a prefix ending in `*` (`LC_*`).
//! - host (`net.connect`, `net.listen`, `net.http`): `host` (any port),
//!   `host:port`, `host:*`, `*.example.org` (every name below it, not the name
//!   itself), IPv6 as `[::1]` / `[::1]:port` / `[::1]:*`. IP addresses compare
//!   by value (`::ffff:127.0.0.1` is `127.0.0.1`). A scope on a host name also
//!   covers the addresses the name resolves to (system resolver, at check
//!   time), so `!evil.example` denies its IPs typed as text too. Network
//!   functions check `host:port=address` for each address they actually
//!   connect to or bind (every resolved address, every redirect hop): a scope
//!   covering either the name or the address covers it, a deny covering
//!   either denies it.
//! - none (the rest): only true / false.
//!
//! `fs.hardlink`: under a scoped `fs.write`, writing through a regular file
//! that has more than one hard link (it may also live outside the scope)
//! needs it. A restrict call that scopes `fs.write` and does not name
//! `fs.hardlink` drops it (safe by default; name it `true` to keep it).
//!
//! Text form (`rt_cap_parse`): `fs.read=/srv,/tmp;sys.info=false;*=false`.

use ffi_sdk::prelude::*;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Path,
    Name,
    Host,
    None,
}

pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::Path => "path",
        Family::Name => "name",
        Family::Host => "host",
        Family::None => "none",
    }
}

/// Every capability and how it is scoped.
pub const CAPS: [(&str, Family); 15] = [
    ("fs.read", Family::Path),
    ("fs.write", Family::Path),
    ("fs.hardlink", Family::None),
    ("env.read", Family::Name),
    ("env.write", Family::Name),
    ("process.spawn", Family::Path),
    ("net.connect", Family::Host),
    ("net.listen", Family::Host),
    ("net.http", Family::Host),
    ("sys.info", Family::None),
    ("tty", Family::None),
    ("signal", Family::None),
    ("codegen.jit", Family::None),
    ("gpu", Family::None),
    ("thread", Family::None),
];

fn cap_index(name: &str) -> Option<usize> {
    CAPS.iter().position(|(n, _)| *n == name)
}

#[derive(Clone, Debug, PartialEq)]
pub enum Grant {
    Dropped,
    /// `allow: None` = every resource, unscoped (minus `deny`).
    Held { allow: Option<Vec<String>>, deny: Vec<String> },
}

const ALL: Grant = Grant::Held { allow: None, deny: Vec::new() };

/// Whether scope `s` covers resource (or narrower scope) `r`.
fn covers(fam: Family, s: &str, r: &str) -> bool {
    if s == "*" {
        return true;
    }
    match fam {
        Family::Path => s == "/" || r == s || (r.starts_with(s) && r.as_bytes().get(s.len()) == Some(&b'/')),
        Family::Name => match s.strip_suffix('*') {
            Some(prefix) => r.starts_with(prefix),
            None => r == s,
        },
        Family::Host => {
            // A resource may carry the address actually used: `host:port=address`.
            let (r, addr) = match r.split_once('=') {
                Some((r, a)) => (r, Some(a)),
                None => (r, None),
            };
            let ((sh, sp), (rh, rp)) = (split_host(s), split_host(r));
            let port_ok = match sp {
                None | Some("*") => true,
                Some(p) => rp == Some(p),
            };
            port_ok && (host_covers(sh, rh) || addr.is_some_and(|a| host_covers(sh, split_host(a).0)))
        }
        Family::None => true,
    }
}

fn parse_ip(h: &str) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = h.parse().ok()?;
    // An IPv4-mapped IPv6 address is the IPv4 address.
    Some(match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

/// Whether host scope `sh` (name, `*.suffix`, IP, `*`) covers host `rh` (a
/// name, IP or narrower scope). A plain name covers the IPs it resolves to.
fn host_covers(sh: &str, rh: &str) -> bool {
    let (sh, rh) = (sh.strip_suffix('.').unwrap_or(sh), rh.strip_suffix('.').unwrap_or(rh));
    if sh == "*" {
        return true;
    }
    if let Some(suffix) = sh.strip_prefix("*.") {
        // Names below `suffix` (and narrower wildcards), never an IP text.
        let (rl, sl) = (rh.to_ascii_lowercase(), suffix.to_ascii_lowercase());
        return parse_ip(rh).is_none() && rl.len() > sl.len() + 1 && rl.ends_with(&sl) && rl.as_bytes()[rl.len() - sl.len() - 1] == b'.';
    }
    match (parse_ip(sh), parse_ip(rh)) {
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
        (None, Some(ip)) => resolves_to(sh, ip),
        (None, None) => sh.eq_ignore_ascii_case(rh),
    }
}

/// Whether host name `name` resolves (system resolver) to `ip`.
fn resolves_to(name: &str, ip: std::net::IpAddr) -> bool {
    use std::net::ToSocketAddrs;
    if name.is_empty() || name.starts_with('*') {
        return false;
    }
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => addrs.into_iter().any(|a| parse_ip(&a.ip().to_string()) == Some(ip)),
        Err(_) => false,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (no port).
fn split_host(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => (s, None),
        };
    }
    match s.split_once(':') {
        Some((h, p)) if !p.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

fn intersect(fam: Family, a: &Grant, b: &Grant) -> Grant {
    match (a, b) {
        (Grant::Dropped, _) | (_, Grant::Dropped) => Grant::Dropped,
        (Grant::Held { allow: aa, deny: ad }, Grant::Held { allow: ba, deny: bd }) => {
            let allow = match (aa, ba) {
                (None, x) | (x, None) => x.clone(),
                (Some(x), Some(y)) => {
                    let mut out = Vec::new();
                    for s in x {
                        for t in y {
                            let narrower = if covers(fam, s, t) {
                                t
                            } else if covers(fam, t, s) {
                                s
                            } else {
                                continue;
                            };
                            if !out.contains(narrower) {
                                out.push(narrower.clone());
                            }
                        }
                    }
                    Some(out)
                }
            };
            let mut deny = ad.clone();
            for d in bd {
                if !deny.contains(d) {
                    deny.push(d.clone());
                }
            }
            if allow.as_ref().is_some_and(|a| a.is_empty()) {
                Grant::Dropped
            } else {
                Grant::Held { allow, deny }
            }
        }
    }
}

fn allows(fam: Family, g: &Grant, resource: &str) -> bool {
    match g {
        Grant::Dropped => false,
        Grant::Held { allow, deny } => {
            if fam == Family::None {
                return true;
            }
            if resource.is_empty() {
                // Unscoped use: only an unscoped grant with no exceptions.
                return allow.is_none() && deny.is_empty();
            }
            if deny.iter().any(|d| covers(fam, d, resource)) {
                return false;
            }
            match allow {
                None => true,
                Some(list) => list.iter().any(|s| covers(fam, s, resource)),
            }
        }
    }
}

struct Policy {
    grants: Vec<Grant>,
}

static POLICY: RwLock<Option<Policy>> = RwLock::new(None);
static AUDIT: Mutex<Option<File>> = Mutex::new(None);
const SLOW_RESTRICTED: u32 = 1;
const SLOW_AUDIT: u32 = 2;

/// Non-zero once the policy is restricted or an audit log is open (read by ffi_sdk's fast path).
#[no_mangle]
pub static RT_CAP_SLOW: AtomicU32 = AtomicU32::new(0);

fn current_grants() -> Vec<Grant> {
    let g = POLICY.read().unwrap_or_else(|e| e.into_inner());
    match &*g {
        Some(p) => p.grants.clone(),
        None => vec![ALL; CAPS.len()],
    }
}

/// Decides `cap` for `resource` under the current policy (allow-all when unrestricted).
pub fn decide(cap: &str, resource: &str) -> Option<bool> {
    let i = cap_index(cap)?;
    let g = POLICY.read().unwrap_or_else(|e| e.into_inner());
    Some(match &*g {
        Some(p) => allows(CAPS[i].1, &p.grants[i], resource),
        None => true,
    })
}

fn audit(func: &str, cap: &str, resource: &str, allowed: bool) {
    if RT_CAP_SLOW.load(Ordering::Relaxed) & SLOW_AUDIT == 0 {
        return;
    }
    let mut g = AUDIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = g.as_mut() {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let line = serde_json::json!({
            "time_ms": ms, "function": func, "capability": cap, "resource": resource, "allowed": allowed,
            "pid": std::process::id(),
        });
        let _ = writeln!(f, "{line}");
    }
}

/// Internal: 1 allowed, 0 denied, -1 unknown capability; audited when a log
/// is open and `func` is not empty (an empty name is the library's own query).
///
/// # Safety
/// Internal surface for ffi_sdk: pointer arguments are valid for their lengths
/// and words are values made by this runtime.
#[no_mangle]
pub unsafe extern "C" fn rt__cap_decide(
    cap: *const u8,
    cn: usize,
    res: *const u8,
    rn: usize,
    func: *const u8,
    fnn: usize,
) -> i32 {
    let s = |p: *const u8, n: usize| {
        if p.is_null() {
            ""
        } else {
            std::str::from_utf8(std::slice::from_raw_parts(p, n)).unwrap_or("")
        }
    };
    let (cap, res, func) = (s(cap, cn), s(res, rn), s(func, fnn));
    match decide(cap, res) {
        Some(ok) => {
            if !func.is_empty() {
                audit(func, cap, res, ok);
            }
            ok as i32
        }
        None => -1,
    }
}

fn parse_scope(func: &str, cap: &str, fam: Family, s: &str) -> RtResult<String> {
    let body = s.strip_prefix('!').unwrap_or(s);
    let bad = |why: &str| Error::invalid(func, format!("malformed scope for {cap}: {why}"), ffi_sdk::error::quote(s));
    if body.is_empty() {
        return Err(bad("empty"));
    }
    if body == "*" {
        return Ok(s.to_string());
    }
    match fam {
        Family::None => return Err(bad("this capability takes true or false, not scopes")),
        Family::Path => {
            if !body.starts_with('/') || body.contains('\0') {
                return Err(bad("a path scope is absolute"));
            }
            // Scopes are matched on canonical paths: canonicalize the scope too.
            let canon = ffi_sdk::paths::resolve(std::path::Path::new(body))
                .map_err(|e| bad(&e.to_string()))?
                .to_string_lossy()
                .into_owned();
            return Ok(if s.starts_with('!') { format!("!{canon}") } else { canon });
        }
        Family::Name => {
            let n = body.strip_suffix('*').unwrap_or(body);
            if n.contains(['=', '\0', '*']) {
                return Err(bad("a variable name has no '=', NUL or inner '*'"));
            }
        }
        Family::Host => {
            if body.contains(['/', ' ', '\0', '=']) {
                return Err(bad("expected host, host:port, host:*, *.domain or [v6]:port"));
            }
            let (h, port) = split_host(body);
            if h.is_empty() || h.strip_prefix("*.").unwrap_or(h).contains('*') {
                return Err(bad("a host is a name, an address, or *.domain ('*' only as the first label)"));
            }
            if let Some(port) = port {
                if port != "*" {
                    port.parse::<u16>().map_err(|_| bad("port is not a number 0-65535 or *"))?;
                }
            }
        }
    }
    Ok(s.to_string())
}

fn parse_grant(func: &str, cap: &str, fam: Option<Family>, v: Value) -> RtResult<Grant> {
    if let Some(b) = v.as_bool() {
        return Ok(if b { ALL } else { Grant::Dropped });
    }
    if !v.is_array() {
        return Err(Error::invalid(
            func,
            format!("policy value for {cap} must be true, false or an array of scopes"),
            v.describe(),
        ));
    }
    let Some(fam) = fam else {
        return Err(Error::invalid(func, "\"*\" takes true or false, not scopes", v.describe()));
    };
    let (mut allow, mut deny) = (Vec::new(), Vec::new());
    for item in v.items() {
        let s = item.as_text().ok_or_else(|| {
            Error::invalid(func, format!("scopes for {cap} must be text"), item.describe())
        })?;
        let s = parse_scope(func, cap, fam, s)?;
        match s.strip_prefix('!') {
            Some(d) => deny.push(d.to_string()),
            None => allow.push(s),
        }
    }
    if allow.is_empty() && deny.is_empty() {
        return Ok(Grant::Dropped);
    }
    Ok(Grant::Held { allow: if allow.is_empty() { None } else { Some(allow) }, deny })
}

/// Narrows the process policy (never widens; deny beats allow). Returns nil, or Error InvalidArgument for an unknown capability or malformed scope, and then changes nothing.
///
/// # Errors
/// - InvalidArgument: policy keys must be text; unknown capability; policy value for <cap> must be true, false or an array of scopes; "*" takes true or false, not scopes
#[rt_fn(tier = "verified")]
pub fn rt_cap_restrict(policy: Dict) -> RtResult<()> {
    let mut layer: Vec<Option<Grant>> = vec![None; CAPS.len()];
    let mut default = ALL;
    for (k, v) in policy.0.entries() {
        let key = k.as_text().ok_or_else(|| Error::invalid(FN, "policy keys must be text", k.describe()))?;
        if key == "*" {
            default = parse_grant(FN, key, None, v)?;
            continue;
        }
        let i = cap_index(key).ok_or_else(|| {
            Error::invalid(FN, "unknown capability", ffi_sdk::error::quote(key)).with("capability", key)
        })?;
        layer[i] = Some(parse_grant(FN, key, Some(CAPS[i].1), v)?);
    }
    // Scoping fs.write without a word on fs.hardlink drops it (module docs).
    let (w, h) = (cap_index("fs.write").unwrap_or(0), cap_index("fs.hardlink").unwrap_or(0));
    if layer[h].is_none() && matches!(&layer[w], Some(Grant::Held { allow, deny }) if allow.is_some() || !deny.is_empty()) {
        layer[h] = Some(Grant::Dropped);
    }
    let mut g = POLICY.write().unwrap_or_else(|e| e.into_inner());
    let cur: Vec<Grant> = match &*g {
        Some(p) => p.grants.clone(),
        None => vec![ALL; CAPS.len()],
    };
    let grants = cur
        .iter()
        .enumerate()
        .map(|(i, c)| intersect(CAPS[i].1, c, layer[i].as_ref().unwrap_or(&default)))
        .collect();
    *g = Some(Policy { grants });
    RT_CAP_SLOW.fetch_or(SLOW_RESTRICTED, Ordering::SeqCst);
    Ok(())
}

/// The policy now in force, as a dict with every capability: true, false or its scopes.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(ret = "dict", tier = "verified")]
pub fn rt_cap_current() -> Value {
    let d = Value::dict();
    for (i, g) in current_grants().iter().enumerate() {
        let v = match g {
            Grant::Dropped => Value::FALSE,
            Grant::Held { allow: None, deny } if deny.is_empty() => Value::TRUE,
            Grant::Held { allow, deny } => {
                let a = Value::array(0);
                for s in allow.iter().flatten() {
                    a.push(Value::text(s));
                }
                for s in deny {
                    a.push(Value::text(&format!("!{s}")));
                }
                a
            }
        };
        d.set(CAPS[i].0, v);
    }
    d
}

/// Whether `cap` is granted for `resource` (nil or "" = unscoped use); path scopes are checked on the canonical path.
///
/// # Errors
/// - InvalidArgument: unknown capability; path is empty; path contains a NUL byte
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified")]
pub fn rt_cap_check(cap: &str, resource: Option<&str>) -> RtResult<bool> {
    let i = cap_index(cap).ok_or_else(|| Error::invalid(FN, "unknown capability", ffi_sdk::error::quote(cap)))?;
    let res = resource.unwrap_or("");
    let resolved;
    let res = if CAPS[i].1 == Family::Path && !res.is_empty() {
        let p = ffi_sdk::paths::validate(FN, res)?;
        resolved = ffi_sdk::paths::resolve(p).map_err(|e| Error::io(FN, res, &e))?;
        resolved.to_str().unwrap_or(res)
    } else {
        res
    };
    Ok(decide(cap, res).unwrap_or(false))
}

/// Appends every capability decision to `path` as JSON lines (needs fs.write there); nil stops auditing (needs unscoped fs.write).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "empirical")]
pub fn rt_cap_audit(path: Option<&str>) -> RtResult<()> {
    match path {
        None => {
            cap::check(FN, "fs.write", "")?;
            *AUDIT.lock().unwrap_or_else(|e| e.into_inner()) = None;
            RT_CAP_SLOW.fetch_and(!SLOW_AUDIT, Ordering::SeqCst);
        }
        Some(p) => {
            let t = beneath::resolve(FN, "fs.write", p, beneath::Follow::Yes)?;
            let f = t.open_write(beneath::WriteMode::APPEND)?;
            *AUDIT.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            RT_CAP_SLOW.fetch_or(SLOW_AUDIT, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Parses the text form `cap=scope,scope;cap=true|false;*=false` into a policy dict for `rt_cap_restrict`.
///
/// # Errors
/// - Parse: rule … has no '='
#[rt_fn(ret = "dict", tier = "verified")]
pub fn rt_cap_parse(text: &str) -> RtResult<Value> {
    let d = Value::dict();
    for (n, rule) in text.split(';').enumerate() {
        let rule = rule.trim();
        if rule.is_empty() {
            continue;
        }
        let (k, v) = rule.split_once('=').ok_or_else(|| {
            Error::parse(FN, format!("rule {} has no '='", n + 1), ffi_sdk::error::quote(rule)).with("rule", n + 1)
        })?;
        let (k, v) = (k.trim(), v.trim());
        let val = match v {
            "true" => Value::TRUE,
            "false" => Value::FALSE,
            _ => Value::text_array(v.split(',').map(str::trim).filter(|s| !s.is_empty())),
        };
        d.set(k, val);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(allow: Option<&[&str]>, deny: &[&str]) -> Grant {
        Grant::Held {
            allow: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn path_scopes_match_whole_components() {
        assert!(covers(Family::Path, "/srv", "/srv"));
        assert!(covers(Family::Path, "/srv", "/srv/a/b"));
        assert!(!covers(Family::Path, "/srv", "/srvx"));
        assert!(!covers(Family::Path, "/srv/a", "/srv"));
        assert!(covers(Family::Path, "/", "/etc/passwd"));
    }

    #[test]
    fn name_and_host_scopes() {
        assert!(covers(Family::Name, "LC_*", "LC_ALL"));
        assert!(!covers(Family::Name, "LC_*", "LANG"));
        assert!(covers(Family::Name, "HOME", "HOME"));
        assert!(!covers(Family::Name, "HOME", "HOMER"));
        assert!(covers(Family::Host, "example.com", "example.com:443"));
        assert!(covers(Family::Host, "example.com:443", "example.com:443"));
        assert!(!covers(Family::Host, "example.com:443", "example.com:80"));
        assert!(!covers(Family::Host, "example.com", "evil.com:443"));
        assert!(covers(Family::Host, "[::1]", "[::1]:8080"));
        assert!(covers(Family::Host, "::1", "::1"));
    }

    #[test]
    fn host_wildcards_ports_and_addresses() {
        let h = |s, r| covers(Family::Host, s, r);
        assert!(h("*.example.org", "a.example.org:443"));
        assert!(h("*.example.org", "b.a.EXAMPLE.org"));
        assert!(!h("*.example.org", "example.org:443"));
        assert!(!h("*.example.org", "badexample.org"));
        assert!(!h("*.example.org", "127.0.0.1"));
        assert!(h("*.example.org", "*.a.example.org"));
        assert!(!h("a.example.org", "*.example.org"));
        assert!(h("[::1]:*", "[::1]:8080"));
        assert!(h("[::1]:*", "[0:0:0:0:0:0:0:1]:1"));
        assert!(!h("[::1]:*", "127.0.0.1:8080"));
        assert!(h("127.0.0.1:*", "127.0.0.1:1"));
        assert!(h("127.0.0.1", "[::ffff:127.0.0.1]:80"));
        assert!(!h("127.0.0.1:80", "127.0.0.1:*"));
        assert!(h("example.org.", "example.org:80"));
        // The address actually used counts: a name scope or an address scope covers it.
        assert!(h("127.0.0.1:8080", "whatever.invalid:8080=127.0.0.1"));
        assert!(!h("127.0.0.1:8080", "whatever.invalid:8080=10.0.0.1"));
        assert!(h("whatever.invalid", "whatever.invalid:8080=10.0.0.1"));
        // A name covers its resolved addresses (localhost is in /etc/hosts).
        assert!(h("localhost", "127.0.0.1:80"));
        assert!(h("localhost:80", "10.9.9.9:80=127.0.0.1"));
        assert!(!h("localhost:81", "127.0.0.1:80"));
        assert!(!h("nonexistent.invalid", "127.0.0.1"));
    }

    #[test]
    fn host_denies_cover_names_and_addresses() {
        let g = held(Some(&["*"]), &["localhost"]);
        assert!(!allows(Family::Host, &g, "127.0.0.1:80"));
        assert!(!allows(Family::Host, &g, "a.invalid:80=127.0.0.1"));
        assert!(allows(Family::Host, &g, "10.1.2.3:80"));
        let g = held(Some(&["*.example.org"]), &["127.0.0.1"]);
        assert!(allows(Family::Host, &g, "a.example.org:443=10.1.1.1"));
        assert!(!allows(Family::Host, &g, "a.example.org:443=127.0.0.1"));
        assert!(!allows(Family::Host, &g, "10.1.1.1:443"));
        // Intersections of wildcard scopes keep the narrower one.
        let a = held(Some(&["*.example.org"]), &[]);
        let b = held(Some(&["*.a.example.org", "other.org"]), &[]);
        assert_eq!(intersect(Family::Host, &a, &b), held(Some(&["*.a.example.org"]), &[]));
    }

    #[test]
    fn host_scope_forms_are_validated() {
        for ok in ["*.example.org", "[::1]:*", "h:*", "127.0.0.1:8080", "[::1]", "::1", "!*.evil.org"] {
            assert!(parse_scope("t", "net.connect", Family::Host, ok).is_ok(), "{ok}");
        }
        for bad in ["a.*.org", "h:http", "h=1", "", "*x.org", "h:70000", "[::1]:x"] {
            assert!(parse_scope("t", "net.connect", Family::Host, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intersection_only_narrows() {
        let a = held(Some(&["/srv"]), &[]);
        let b = held(Some(&["/srv/www", "/etc"]), &[]);
        assert_eq!(intersect(Family::Path, &a, &b), held(Some(&["/srv/www"]), &[]));
        // Re-granting something dropped is impossible.
        assert_eq!(intersect(Family::Path, &Grant::Dropped, &ALL), Grant::Dropped);
        // Disjoint scopes leave nothing.
        assert_eq!(intersect(Family::Path, &a, &held(Some(&["/etc"]), &[])), Grant::Dropped);
        // Denies accumulate.
        let c = intersect(Family::Path, &held(None, &["/srv/secret"]), &a);
        assert_eq!(c, held(Some(&["/srv"]), &["/srv/secret"]));
    }

    #[test]
    fn deny_beats_allow_and_unscoped_needs_unscoped_grant() {
        let g = held(Some(&["/srv"]), &["/srv/secret"]);
        assert!(allows(Family::Path, &g, "/srv/www/index.html"));
        assert!(!allows(Family::Path, &g, "/srv/secret/key"));
        assert!(!allows(Family::Path, &g, "/etc/passwd"));
        assert!(!allows(Family::Path, &g, ""));
        assert!(allows(Family::Path, &ALL, ""));
        assert!(!allows(Family::Path, &held(None, &["/x"]), ""));
        assert!(!allows(Family::Path, &held(Some(&["*"]), &[]), ""));
        assert!(allows(Family::Path, &held(Some(&["*"]), &[]), "/anything"));
        assert!(!allows(Family::None, &Grant::Dropped, ""));
    }

    #[test]
    fn scopes_are_validated() {
        assert!(parse_scope("t", "fs.read", Family::Path, "relative/path").is_err());
        assert!(parse_scope("t", "sys.info", Family::None, "/x").is_err());
        assert!(parse_scope("t", "env.read", Family::Name, "A=B").is_err());
        assert!(parse_scope("t", "net.connect", Family::Host, "h:99999").is_err());
        assert!(parse_scope("t", "net.connect", Family::Host, "h:443").is_ok());
        assert_eq!(parse_scope("t", "fs.read", Family::Path, "!/").unwrap(), "!/");
    }
}
