//! SPEC §5: any subset of the libraries, loaded with RTLD_LOCAL in any order,
//! behaves as one runtime: one heap, one policy, one registry. Each order runs
//! in its own child process of this test binary.

#![deny(clippy::undocumented_unsafe_blocks)]

use rt_tests::*;
use std::collections::BTreeMap;

fn orders() -> Vec<Vec<&'static str>> {
    let present = present_domains();
    assert!(present.contains(&"system"), "libffi_system.so not built: cargo build -p ffi_core -p ffi_system");
    let loadable: Vec<&str> = present.iter().copied().filter(|d| !OPTIONAL.contains(d)).collect();
    let mut all = vec!["core"];
    all.extend(&loadable);
    let mut rev = loadable.clone();
    rev.reverse();
    rev.push("core");
    let mut middle: Vec<&str> = loadable.clone();
    middle.rotate_left(loadable.len() / 2);
    middle.insert(middle.len() / 2, "core");
    let mut out = vec![vec!["core", "system"], vec!["system", "core"], vec!["system"], all, rev, middle];
    out.dedup();
    out
}

#[test]
fn load_orders_one_runtime() {
    const NAME: &str = "load_orders_one_runtime";
    if is_child(NAME) {
        let order = std::env::var("RT_LOAD_ORDER").expect("order");
        one_runtime(&order.split(',').collect::<Vec<_>>());
        return;
    }
    for order in orders() {
        let o = order.join(",");
        let out = child_output(NAME, &[("RT_LOAD_ORDER", &o)]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && all.contains("1 passed"), "load order {o} failed ({}):\n{all}", out.status);
        assert!(all.contains(&format!("one runtime: {o}")), "order {o}: child did not run the checks:\n{all}");
    }
}

fn one_runtime(order: &[&str]) {
    let mut libs: BTreeMap<&str, Lib> = BTreeMap::new();
    for name in order {
        libs.insert(name, Lib::open(name).unwrap_or_else(|e| panic!("{e}")));
    }
    // The host surface through the first library loaded that uses core (for
    // `system` first, dlsym finds core through its dependency; an empty
    // placeholder crate does not link core).
    let first = order.iter().map(|n| Lib::open(n).unwrap()).find(|l| l.addr("rt_string_new").is_some()).unwrap();
    let c = Core::from_lib(first);
    let core_lib = Lib::open("core").unwrap();
    assert_eq!((c.abi_version)() >> 16, 1);

    // ---- one definition of each host function, wherever it is looked up from
    for (name, l) in &libs {
        for sym in ["rt_string_new", "rt_registry_lookup", "RT_CAP_SLOW"] {
            // A library that does not use core (an empty crate) does not see it at all.
            if let Some(a) = l.addr(sym) {
                assert_eq!(Some(a), core_lib.addr(sym), "{sym} seen through {name} is another copy");
            }
        }
    }

    // ---- one registry: every loaded library's functions, at the addresses its handle gives
    let reg = c.registry();
    let names: std::collections::HashSet<String> =
        reg.iter().map(|e| e["name"].as_str().unwrap().to_string()).collect();
    for (name, l) in &libs {
        let path = lib_path(name);
        let exported = exported_symbols(&path);
        let public: Vec<&String> = exported.iter().filter(|s| s.starts_with("rt_") && !s.starts_with("rt__")).collect();
        assert!(!public.is_empty() || *name != "system", "{name} exports nothing");
        for s in public {
            assert!(names.contains(s.as_str()), "{s} (exported by {name}) is missing from the registry");
            let (addr, _) = c.lookup(s).unwrap();
            assert_eq!(Some(addr), l.addr(s), "registry address of {s} differs from dlsym in {name}");
        }
    }
    let dups = c.ok(c.call("rt_registry_duplicates", &[]));
    assert_eq!((c.array_len)(dups), 0, "duplicate registrations");

    // ---- one heap: values made through ffi_system are values for core and the others
    let sys = &libs["system"];
    // SAFETY: `rt_hostname` is an `#[rt_fn]` of ffi_system with no parameters, so its C
    // type is `RtValue (void)`; `Lib`s are never closed (and are linked -z nodelete).
    let hostname_fn: extern "C" fn() -> RtValue = unsafe { sys.sym("rt_hostname") };
    let h = c.ok(hostname_fn());
    assert!((c.value_valid)(h), "a string made by ffi_system is not an object of core's heap");
    let want = std::process::Command::new("hostname").output().unwrap();
    let want = String::from_utf8(want.stdout).unwrap().trim().to_string();
    assert_eq!(c.get_text(h).as_deref(), Some(want.as_str()));
    assert_eq!(c.call("rt_value_equal", &[h, c.text(&want)]), TRUE);
    let d = c.dict(&[("host", h)]);
    assert_eq!(c.get_text(c.get(d, "host")).as_deref(), Some(want.as_str()));
    // allocations through ffi_system show in core's collector statistics
    let before = c.stat("total_allocated");
    for _ in 0..20_000 {
        hostname_fn();
    }
    let grown = c.stat("total_allocated") - before;
    assert!(grown >= 20_000 * 24, "20000 strings made by ffi_system added only {grown} bytes to core's heap");
    c.collect();
    assert_eq!(c.get_text(c.get(d, "host")).as_deref(), Some(want.as_str()));

    if let Some(cr) = libs.get("crypto") {
        // SAFETY: `rt_sha256_hash` is a one-parameter `#[rt_fn]`: `RtValue (RtValue)`.
        let sha: extern "C" fn(RtValue) -> RtValue = unsafe { cr.sym("rt_sha256_hash") };
        let abc = c.bytes(b"abc");
        assert_eq!(
            c.get_text(c.ok(sha(abc))).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // a text made by ffi_system hashed by ffi_crypto, against sha256sum
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(want.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        let digest = String::from_utf8(o.stdout).unwrap().split_whitespace().next().unwrap().to_string();
        assert_eq!(c.get_text(c.ok(sha(h))).as_deref(), Some(digest.as_str()));
    }
    if let Some(data) = libs.get("data") {
        // a handle made by ffi_data, read and closed through core
        // SAFETY: `rt_regex_new` is a two-parameter `#[rt_fn]`: `RtValue (RtValue, RtValue)`.
        let new: extern "C" fn(RtValue, RtValue) -> RtValue = unsafe { data.sym("rt_regex_new") };
        // SAFETY: `rt_regex_is_match` is a two-parameter `#[rt_fn]`: `RtValue (RtValue, RtValue)`.
        let is_match: extern "C" fn(RtValue, RtValue) -> RtValue = unsafe { data.sym("rt_regex_is_match") };
        let re = c.ok(new(c.text("^[a-z]+$"), NIL));
        assert_eq!(c.get_text(c.call("rt_handle_type", &[re])).as_deref(), Some("Regex"));
        assert_eq!(is_match(re, c.text("abc")), TRUE);
        assert_eq!(c.call("rt_handle_close", &[re]), TRUE);
        assert_eq!(c.err(is_match(re, c.text("abc"))).0, code::CLOSED);
    }

    // ---- one policy: narrowed through core, enforced in ffi_system (last: it is for good)
    // SAFETY: `sym` only reads the symbol's address into a pointer-sized `T`; a raw pointer
    // is fine for any symbol (it is compared, not dereferenced, below).
    let sys_slow: *const std::sync::atomic::AtomicU32 = unsafe { sys.sym("RT_CAP_SLOW") };
    assert!(std::ptr::eq(sys_slow, c.cap_slow));
    assert_eq!(c.cap_slow.load(std::sync::atomic::Ordering::Relaxed), 0, "policy is not allow-all at start");
    // SAFETY: `rt_cap_restrict` is a one-parameter `#[rt_fn]` of core: `RtValue (RtValue)`.
    let restrict: extern "C" fn(RtValue) -> RtValue = unsafe { core_lib.sym("rt_cap_restrict") };
    let pol = c.dict(&[("sys.info", FALSE)]);
    assert_eq!(restrict(pol), NIL);
    let (code, msg) = c.err(hostname_fn());
    assert_eq!(code, code::CAPABILITY_DENIED);
    assert_eq!(msg, "rt_hostname needs sys.info");
    assert_ne!(c.cap_slow.load(std::sync::atomic::Ordering::Relaxed), 0);
    if let Some(io) = libs.get("io") {
        // SAFETY: `rt_file_read_text` is a one-parameter `#[rt_fn]` of ffi_io: `RtValue (RtValue)`.
        let read: extern "C" fn(RtValue) -> RtValue = unsafe { io.sym("rt_file_read_text") };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        std::fs::write(&f, "inside").unwrap();
        let canon = std::fs::canonicalize(dir.path()).unwrap();
        c.restrict(&format!("fs.read={}", canon.display()));
        assert_eq!(c.get_text(c.ok(read(c.text(f.to_str().unwrap())))).as_deref(), Some("inside"));
        let (code, msg) = c.err(read(c.text("/etc/hostname")));
        assert_eq!(code, code::CAPABILITY_DENIED, "{msg}");
        assert!(msg.starts_with("rt_file_read_text needs fs.read"), "{msg}");
    }
    println!("one runtime: {}", order.join(","));
}

#[test]
fn core_abi_major_is_1_and_only_core_has_process_state() {
    let c = core();
    assert_eq!((c.abi_version)() >> 16, 1);
    for d in present_domains() {
        let syms = exported_symbols(&lib_path(d));
        for s in &syms {
            assert!(!s.starts_with("RT_") && !s.starts_with("rt__"), "{d} exports core-internal {s}");
        }
        for host in ["rt_abi_version", "rt_string_new", "rt_gc_malloc", "rt_cap_restrict"] {
            assert!(!syms.iter().any(|s| s == host), "{d} exports {host} again");
        }
    }
}

#[test]
fn missing_library_is_a_clear_dlopen_error() {
    let e = Lib::open_path("nope", std::path::Path::new("/nonexistent/libffi_nope.so")).err().unwrap();
    assert!(e.contains("libffi_nope.so"), "{e}");
}
