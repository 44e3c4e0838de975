//! The naming rule for exports (docs/CONTRACT.md, "Naming new exports"),
//! checked by `#[rt_fn]` and `#[rt_host]` on every name that is not
//! grandfathered and not a Simple census name.
//!
//! `rt_<domain>_<noun>[_<noun>…]_<verb>[_<unit>]`, lower-case ASCII words
//! joined by single underscores:
//! - `<domain>`: the crate's domain (`ffi_archive` -> `archive`) or one of the
//!   prefixes that domain owns ([`PREFIXES`]);
//! - `<verb>`: one of [`VERBS`] (extend the list when a new verb is needed);
//! - `<unit>`: required when a word of the name or of a parameter names a
//!   time ([`TIME_WORDS`]: `_ns`, `_us`, `_ms`, `_s`) or a size in bytes
//!   ([`SIZE_WORDS`]: `_bytes`, `_kib`, `_mib`).
//!
//! The names that existed when the rule was written are listed in
//! `grandfathered.txt` (generated once from the registry and the sources);
//! the list only ever shrinks. Names Simple's standard library declares are
//! dictated by it and exempt: `census.txt` holds the `name` column of the
//! census (`rt/data/simple_externs.tsv`); refresh it when the census changes.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Prefixes each domain owns besides its own name (the existing families).
pub const PREFIXES: &[(&str, &[&str])] = &[
    ("archive", &["deflate", "gzip", "tar", "xz", "zip"]),
    ("cli", &["password", "readline", "signal", "watch"]),
    ("codegen", &["cranelift", "target"]),
    ("concurrent", &["atomic", "channel", "mutex", "parallel", "rwlock", "thread"]),
    (
        "core",
        &[
            "abi", "array", "bool", "bytes", "callback", "cancel", "cap", "deadline", "dict", "error", "float", "gc", "handle",
            "int", "registry", "string", "thread", "value",
        ],
    ),
    (
        "crypto",
        &[
            "ahash", "argon2", "base64", "base64url", "blake3", "crc32", "ed25519", "hash", "hasher", "hmac", "password", "random",
            "sha1", "sha256", "sha3", "sha512", "uuid", "xxhash3", "xxhash64", "aes256", "bcrypt", "pbkdf2",
        ],
    ),
    ("data", &["arena", "intern", "map", "omap", "regex"]),
    ("io", &["dir", "env", "fd", "file", "fs", "glob", "path"]),
    ("net", &["http", "socket", "tcp", "unix", "url", "ws"]),
    ("process", &["sandbox", "shell", "signal", "stderr", "stdout", "stdin"]),
    ("serde", &["bincode", "json", "toml", "yaml"]),
    ("system", &["cpu", "memory", "os", "arch", "hostname"]),
    ("time", &["timestamp", "clock"]),
    ("cuda", &[]),
    ("torch", &["tensor"]),
    ("vulkan", &["vk"]),
];

/// The verbs a name may end with (before its unit).
pub const VERBS: &[&str] = &[
    "accept", "add", "alloc", "append", "apply", "attach", "bind", "build", "call", "cancel", "check", "clear", "close",
    "collect", "compare", "compile", "compress", "connect", "convert", "copy", "count", "create", "decode", "decompress",
    "decrypt", "define", "delete", "derive", "destroy", "detach", "disable", "download", "drain", "emit", "enable", "encode",
    "encrypt", "end", "execute", "exists", "extract", "fetch", "fill", "find", "finish", "flush", "format", "free", "generate",
    "get", "has", "hash", "init", "insert", "install", "is", "join", "kill", "launch", "list", "listen", "load", "lock",
    "lookup", "map", "match", "measure", "merge", "move", "new", "next", "normalize", "open", "parse", "peek", "pin", "poll",
    "pop", "push", "put", "query", "read", "receive", "record", "recv", "register", "release", "remove", "rename", "render",
    "replace", "reset", "resize", "resolve", "respond", "restore", "run", "save", "scan", "seek", "send", "set", "shutdown",
    "sign", "sleep", "slice", "sort", "spawn", "split", "start", "stat", "stop", "store", "stringify", "swap", "sync",
    "take", "touch", "trigger", "truncate", "try", "unbind", "unlock", "unpin", "unregister", "update", "upload", "validate",
    "verify", "wait", "walk", "watch", "write",
];

/// Words that name a time: a name or parameter containing one ends in a time unit.
pub const TIME_WORDS: &[&str] = &["timeout", "delay", "interval", "duration", "elapsed", "deadline", "ttl", "age", "uptime", "period"];
/// Time units.
pub const TIME_UNITS: &[&str] = &["ns", "us", "ms", "s"];
/// Words that name a size in bytes.
pub const SIZE_WORDS: &[&str] = &["size"];
/// Byte units.
pub const SIZE_UNITS: &[&str] = &["bytes", "kib", "mib"];

fn grandfathered() -> &'static HashSet<&'static str> {
    static G: OnceLock<HashSet<&'static str>> = OnceLock::new();
    G.get_or_init(|| include_str!("grandfathered.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect())
}

/// Whether Simple's standard library declares `name` (its census).
pub fn is_census(name: &str) -> bool {
    static C: OnceLock<HashSet<&'static str>> = OnceLock::new();
    C.get_or_init(|| include_str!("census.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect()).contains(name)
}

/// Whether `name` predates the rule.
pub fn is_grandfathered(name: &str) -> bool {
    grandfathered().contains(name)
}

fn words(s: &str) -> Vec<&str> {
    s.split('_').collect()
}

fn well_formed(s: &str) -> bool {
    !s.is_empty()
        && s.split('_').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && s.as_bytes()[0].is_ascii_lowercase()
}

/// The unit a name or parameter needs, if any: Err(message) when it lacks it.
fn unit_rule(what: &str, s: &str) -> Result<(), String> {
    let w = words(s);
    let last = *w.last().unwrap_or(&"");
    if w.iter().any(|x| TIME_WORDS.contains(x)) && !TIME_UNITS.contains(&last) {
        return Err(format!(
            "{what} `{s}` names a time: end it with its unit ({}), e.g. `{s}_ms`",
            TIME_UNITS.iter().map(|u| format!("_{u}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if w.iter().any(|x| SIZE_WORDS.contains(x)) && !SIZE_UNITS.contains(&last) {
        return Err(format!(
            "{what} `{s}` names a size: end it with its unit ({}), e.g. `{s}_bytes`, or say `count`/`len` for a number of items",
            SIZE_UNITS.iter().map(|u| format!("_{u}")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// Checks a new export's name and parameter names against the rule.
/// `domain` is the crate's (`ffi_` stripped).
pub fn check(name: &str, domain: &str, params: &[String]) -> Result<(), String> {
    const HOW: &str = "(naming rule: docs/CONTRACT.md, \"Naming new exports\"; names that predate it are listed in \
                       ffi_macros/src/grandfathered.txt, names Simple's standard library declares in src/census.txt)";
    let rest = name
        .strip_prefix("rt_")
        .ok_or_else(|| format!("export `{name}` must be named rt_<domain>_<noun>_<verb> {HOW}"))?;
    if !well_formed(rest) {
        return Err(format!("export `{name}`: lower-case ASCII words joined by single underscores {HOW}"));
    }
    let mut w = words(rest);
    let owned: Vec<&str> =
        std::iter::once(domain).chain(PREFIXES.iter().filter(|(d, _)| *d == domain).flat_map(|(_, p)| p.iter().copied())).collect();
    if !owned.contains(&w[0]) {
        return Err(format!(
            "export `{name}`: its first word must be the domain `{domain}` or a prefix the domain owns ({}), \
             not `{}` (add a new family to PREFIXES in ffi_macros/src/naming.rs) {HOW}",
            owned.join(", "),
            w[0]
        ));
    }
    unit_rule("export", rest).map_err(|m| format!("{m} {HOW}"))?;
    let last = *w.last().unwrap();
    if TIME_UNITS.contains(&last) || SIZE_UNITS.contains(&last) {
        w.pop();
    }
    if w.len() < 3 {
        return Err(format!(
            "export `{name}`: name it rt_<domain>_<noun>_<verb>[_<unit>] (at least a domain, a noun and a verb, e.g. \
             `rt_{domain}_thing_get`) {HOW}"
        ));
    }
    let verb = *w.last().unwrap();
    if !VERBS.contains(&verb) {
        return Err(format!(
            "export `{name}`: its last word (before a unit) must be a verb from VERBS in ffi_macros/src/naming.rs, \
             not `{verb}` (reorder as <noun>_<verb>, or add the verb there) {HOW}"
        ));
    }
    for p in params {
        unit_rule("parameter", p).map_err(|m| format!("export `{name}`: {m} {HOW}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        assert_eq!(check("rt_system_cpu_count", "system", &[]), Ok(()));
        assert_eq!(check("rt_gzip_member_decode", "archive", &["data".into()]), Ok(()));
        assert_eq!(check("rt_net_socket_timeout_set_ms", "net", &["timeout_ms".into()]), Ok(()));
        assert_eq!(check("rt_file_chunk_read_bytes", "io", &[]), Ok(()));
    }

    #[test]
    fn bad_names_fail_with_a_reason() {
        let e = |n: &str, d: &str, p: &[&str]| check(n, d, &p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err();
        assert!(e("rt_cpu_count_now", "system", &[]).contains("verb"));
        assert!(e("rt_gzip_compress", "archive", &[]).contains("at least a domain, a noun and a verb"));
        assert!(e("rt_foo_bar_get", "system", &[]).contains("first word"));
        assert!(e("rt_net_socket_timeout_set", "net", &[]).contains("time"));
        assert!(e("rt_net_socket_option_set", "net", &["timeout"]).contains("parameter `timeout`"));
        assert!(e("rt_io_buffer_size_get", "io", &[]).contains("size"));
        assert!(e("rt_io_Buffer_get", "io", &[]).contains("lower-case"));
        assert!(e("rt_io__buffer_get", "io", &[]).contains("lower-case"));
        assert!(e("io_buffer_get", "io", &[]).contains("rt_<domain>"));
    }

    #[test]
    fn the_list_holds_the_existing_names() {
        assert!(is_grandfathered("rt_os_name"));
        assert!(is_grandfathered("rt_xxhash3"));
        assert!(is_census("rt_gzip_compress"));
        assert!(!is_grandfathered("rt_system_cpu_count"));
        assert!(is_census("rt_unix_socket_connect"));
        assert!(!is_census("rt_system_cpu_count"));
    }
}
