//! Bad input on every host-surface function (SPEC §3): wrong kinds, nil,
//! invalid UTF-8, NULL pointers with a length, huge lengths, out-of-range
//! indexes, closed handles, unknown capabilities, malformed scopes. The
//! answer is an Error (or the documented 0 / NULL / NaN / false), never a crash.

#![deny(clippy::undocumented_unsafe_blocks)]

use rt_tests::*;
use std::collections::BTreeSet;

/// Every host-surface function this file exercises; `covers_every_host_function` checks the registry against it.
const COVERED: &[&str] = &[
    "rt_abi_version", "rt_kind", "rt_int_new", "rt_int_get", "rt_float_new", "rt_float_get", "rt_bool_new",
    "rt_bool_get", "rt_string_new", "rt_string_ptr", "rt_string_len", "rt_bytes_new", "rt_bytes_ptr",
    "rt_bytes_len", "rt_array_new", "rt_array_push", "rt_array_len", "rt_array_get", "rt_array_set",
    "rt_dict_new", "rt_dict_set", "rt_dict_get", "rt_dict_has", "rt_dict_remove", "rt_dict_len",
    "rt_dict_key_at", "rt_dict_value_at", "rt_error_new", "rt_error_code", "rt_error_name", "rt_error_message",
    "rt_error_details", "rt_value_pin", "rt_value_unpin", "rt_value_pin_count", "rt_value_valid",
    "rt_registry_json", "rt_registry_lookup", "rt_gc_malloc", "rt_gc_free", "rt_thread_attach",
    "rt_thread_detach", "rt_callback_new", "rt_callback_new2", "rt_callback_on_release", "rt_callback_set_flags",
    "rt_deadline_set", "rt_deadline_at", "rt_deadline_restore", "rt_deadline_clear", "rt_deadline_remaining",
    "rt_cancel_trigger_signal_safe",
];

#[test]
fn covers_every_host_function() {
    let c = core();
    let host: BTreeSet<String> = c
        .registry()
        .iter()
        .filter(|e| e["host"] == true)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = host.difference(&covered).collect();
    assert!(missing.is_empty(), "host functions without bad-input tests: {missing:?}");
    let stale: Vec<&String> = covered.difference(&host).collect();
    assert!(stale.is_empty(), "covered names not in the registry: {stale:?}");
}

/// One value of every kind, pinned (the Vec is Rust memory the collector does not scan).
struct Samples {
    all: Vec<(&'static str, RtValue, u32)>,
}

impl Samples {
    fn new(c: &Core) -> Samples {
        let mut all = Vec::new();
        let mut add = |name: &'static str, v: RtValue, k: u32| {
            (c.value_pin)(v);
            all.push((name, v, k));
        };
        add("nil", NIL, kind::NIL);
        add("true", TRUE, kind::BOOL);
        add("false", FALSE, kind::BOOL);
        add("int", c.int(42), kind::INT);
        add("boxed int", c.int(i64::MIN), kind::INT);
        add("float", (c.float_new)(1.5), kind::FLOAT);
        add("boxed float", (c.float_new)(f64::from_bits(1)), kind::FLOAT);
        add("text", c.text("héllo\0x"), kind::STRING);
        add("empty text", c.text(""), kind::STRING);
        add("bytes", c.bytes(b"\x00\xff"), kind::BYTES);
        add("array", c.text_array(&["a", "b"]), kind::ARRAY);
        add("dict", c.dict(&[("k", TRUE)]), kind::DICT);
        add("error", (c.error_new)(3, c.text("boom")), kind::ERROR);
        if c.has("rt_regex_new") {
            let h = c.ok(c.call("rt_regex_new", &[c.text("a")]));
            add("handle", h, kind::HANDLE);
            let closed = c.ok(c.call("rt_regex_new", &[c.text("b")]));
            c.ok(c.call("rt_handle_close", &[closed]));
            add("closed handle", closed, kind::HANDLE);
        }
        Samples { all }
    }
    fn not(&self, k: u32) -> impl Iterator<Item = &(&'static str, RtValue, u32)> {
        self.all.iter().filter(move |s| s.2 != k)
    }
}

fn details_int(c: &Core, e: RtValue, key: &str) -> Option<i64> {
    let d = (c.error_details)(e);
    if d == NIL {
        return None;
    }
    c.get_int(c.get(d, key))
}

#[test]
fn kinds_and_immediate_readers() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, k) in &s.all {
        assert_eq!(c.kind_of(*v), *k, "rt_kind of {name}");
        assert!((c.value_valid)(*v), "rt_value_valid({name})");
    }
    for (name, v, _) in s.not(kind::INT) {
        assert_eq!((c.int_get)(*v), 0, "rt_int_get({name})");
    }
    for (name, v, _) in s.not(kind::FLOAT) {
        assert!((c.float_get)(*v).is_nan(), "rt_float_get({name})");
    }
    for (name, v, _) in &s.all {
        assert_eq!((c.bool_get)(*v), *v == TRUE, "rt_bool_get({name})");
    }
    assert_eq!((c.int_get)(c.int(i64::MIN)), i64::MIN);
    assert_eq!((c.int_get)(c.int(i64::MAX)), i64::MAX);
    assert_eq!((c.float_get)((c.float_new)(f64::from_bits(1))).to_bits(), 1);
    let nan = f64::from_bits(0x7FF8_0000_0000_0005);
    assert_eq!((c.float_get)((c.float_new)(nan)).to_bits(), nan.to_bits());
    assert_eq!((c.bool_new)(true), TRUE);
    assert_eq!((c.bool_new)(false), FALSE);
    // words that are not values: unused special codes and tags
    for w in [0x1Bu64, 0x23, 0x04, 0x05, 0x06, 0x07, 0x0C, u64::MAX] {
        assert_eq!(c.kind_of(w), kind::INVALID, "rt_kind({w:#x})");
        assert!(!(c.value_valid)(w), "rt_value_valid({w:#x})");
    }
    // pointer-tagged words that point at no runtime object: rt_value_valid checks safely
    let local = [0u64; 4];
    let fake = (&local as *const _ as u64) | 1;
    for w in [0x9u64, 0x11, 0x1001, fake, (c.gc_malloc)(64) as u64 | 1] {
        assert!(!(c.value_valid)(w), "rt_value_valid({w:#x}) accepted a forged word");
    }
    // an interior pointer into a real object is not a value either
    let t = c.text("interior");
    assert!(!(c.value_valid)(t + 8));
}

#[test]
fn strings_reject_invalid_utf8_at_its_position() {
    let c = core();
    let mut long = vec![b'a'; 1000];
    long.push(0xFE);
    let mut emoji = "😀".as_bytes().to_vec();
    emoji.push(0xFF);
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("lone 0xff", b"\xff".to_vec(), 0),
        ("after ascii", b"abc\xff".to_vec(), 3),
        ("truncated 2-byte at the end", b"ab\xc3".to_vec(), 2),
        ("truncated 3-byte", b"\xe2\x82".to_vec(), 0),
        ("overlong NUL", b"\xc0\x80".to_vec(), 0),
        ("surrogate", b"a\xed\xa0\x80b".to_vec(), 1),
        ("above U+10FFFF", b"\xf4\x90\x80\x80".to_vec(), 0),
        ("lone continuation", b"abc\x80def".to_vec(), 3),
        ("after 1000 bytes", long, 1000),
        ("after a 4-byte char", emoji, 4),
        ("NUL then bad", b"\x00\xff".to_vec(), 1),
    ];
    for (what, b, pos) in cases {
        let v = (c.string_new)(b.as_ptr(), b.len());
        let (code, msg) = c.err(v);
        assert_eq!(code, code::INVALID_ARGUMENT, "{what}: {msg}");
        assert!(msg.starts_with("rt_string_new: bytes are not UTF-8"), "{what}: {msg}");
        assert_eq!(details_int(c, v, "position"), Some(pos), "{what}: {msg}");
        // the same bytes are fine as bytes
        assert_eq!(c.get_bytes(c.ok((c.bytes_new)(b.as_ptr(), b.len()))), Some(b));
    }
    // valid: interior NULs, 4-byte chars, empty with NULL pointer
    let ok = "a\0b\u{10FFFF}";
    assert_eq!(c.get_text(c.ok(c.text(ok))).as_deref(), Some(ok));
    let e = c.ok((c.string_new)(std::ptr::null(), 0));
    assert_eq!(c.get_text(e).as_deref(), Some(""));
    let ptr = (c.string_ptr)(e);
    // SAFETY: `ptr` is non-NULL (checked first), from `rt_string_ptr` of the live string
    // `e` (on this stack), whose data is followed by one NUL: one byte is readable.
    assert!(!ptr.is_null() && unsafe { *ptr } == 0, "empty string is NUL-terminated");
    // a trailing NUL is kept after the bytes
    let t = c.text("xyz");
    // SAFETY: `t` is a live 3-byte string, so its data has 3 bytes plus the trailing NUL:
    // offset 3 is that NUL, inside the object.
    assert_eq!(unsafe { *(c.string_ptr)(t).add(3) }, 0);
}

#[test]
fn null_pointers_and_huge_lengths() {
    let c = core();
    let buf = b"valid bytes";
    type New = extern "C" fn(*const u8, usize) -> RtValue;
    for (fname, f) in [("rt_string_new", c.string_new as New), ("rt_bytes_new", c.bytes_new as New)] {
        for n in [1usize, 5, 1 << 20, usize::MAX] {
            let (code, msg) = c.err(f(std::ptr::null(), n));
            assert_eq!(code, code::INVALID_ARGUMENT, "{fname}(NULL, {n}): {msg}");
            assert!(msg.starts_with(&format!("{fname}: null pointer")), "{msg}");
        }
        for n in [usize::MAX, 1usize << 50, (1usize << 40) + 1] {
            let (code, msg) = c.err(f(buf.as_ptr(), n));
            assert_eq!(code, code::LIMIT_EXCEEDED, "{fname}(p, {n}): {msg}");
        }
        assert_eq!(c.kind_of(c.ok(f(std::ptr::null(), 0))), if fname == "rt_string_new" { kind::STRING } else { kind::BYTES });
    }
    for n in [usize::MAX, 1usize << 50, (1usize << 40) / 8 + 1] {
        let (code, msg) = c.err((c.array_new)(n));
        assert_eq!(code, code::LIMIT_EXCEEDED, "rt_array_new({n}): {msg}");
    }
    assert_eq!((c.array_len)(c.ok((c.array_new)(0))), 0);
    for n in [usize::MAX, 1usize << 50, (1usize << 40) + 1] {
        assert!((c.gc_malloc)(n).is_null(), "rt_gc_malloc({n}) returned memory");
    }
    let p = (c.gc_malloc)(0);
    assert!(!p.is_null());
    (c.gc_free)(p);
}

#[test]
fn huge_allocations_fail_cleanly_in_a_child() {
    // Sizes under the 1 TiB limit that the machine cannot provide: the
    // collector's failure must come back as Error Internal / NULL.
    in_child("huge_allocations_fail_cleanly_in_a_child", &[("RT_GC_WARN", "")], || {
        let c = core();
        let (code, msg) = c.err((c.array_new)(1 << 36)); // 512 GiB of items
        assert_eq!(code, code::INTERNAL, "{msg}");
        assert!(msg.contains("out of memory"), "{msg}");
        assert!((c.gc_malloc)(1 << 39).is_null());
        let t = c.text("still works");
        c.collect();
        assert_eq!(c.get_text(t).as_deref(), Some("still works"));
    });
}

#[test]
fn strings_and_bytes_readers_on_other_kinds() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, _) in s.not(kind::STRING) {
        assert!((c.string_ptr)(*v).is_null(), "rt_string_ptr({name})");
        assert_eq!((c.string_len)(*v), 0, "rt_string_len({name})");
    }
    for (name, v, _) in s.not(kind::BYTES) {
        assert!((c.bytes_ptr)(*v).is_null(), "rt_bytes_ptr({name})");
        assert_eq!((c.bytes_len)(*v), 0, "rt_bytes_len({name})");
    }
}

#[test]
fn arrays_wrong_kinds_and_indexes() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, _) in s.not(kind::ARRAY) {
        assert_eq!((c.array_len)(*v), 0, "rt_array_len({name})");
        for (f, r) in [
            ("rt_array_push", (c.array_push)(*v, TRUE)),
            ("rt_array_get", (c.array_get)(*v, 0)),
            ("rt_array_set", (c.array_set)(*v, 0, TRUE)),
        ] {
            let (code, msg) = c.err(r);
            assert_eq!(code, code::TYPE_MISMATCH, "{f}({name}): {msg}");
            assert!(msg.starts_with(&format!("{f}: ")) && msg.contains("must be array"), "{msg}");
        }
    }
    let a = c.text_array(&["x", "y", "z"]);
    for i in [3usize, 4, 1 << 40, usize::MAX] {
        let (code, msg) = c.err((c.array_get)(a, i));
        assert_eq!(code, code::OUT_OF_RANGE, "{msg}");
        assert_eq!(msg, format!("rt_array_get: index out of range (index {i}, length 3)"));
        assert_eq!(c.err((c.array_set)(a, i, NIL)).0, code::OUT_OF_RANGE);
    }
    assert_eq!((c.array_len)(a), 3);
    // any value, an Error included, may be an item
    for (_, v, _) in &s.all {
        assert_eq!((c.array_push)(a, *v), a);
    }
    assert_eq!((c.array_len)(a), 3 + s.all.len());
    assert_eq!((c.array_set)(a, 0, NIL), a);
    assert_eq!((c.array_get)(a, 0), NIL);
}

#[test]
fn dicts_wrong_kinds_and_indexes() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, _) in s.not(kind::DICT) {
        assert_eq!((c.dict_len)(*v), 0, "rt_dict_len({name})");
        assert!(!(c.dict_has)(*v, c.text("k")), "rt_dict_has({name})");
        for (f, r) in [
            ("rt_dict_set", (c.dict_set)(*v, c.text("k"), TRUE)),
            ("rt_dict_get", (c.dict_get)(*v, c.text("k"))),
            ("rt_dict_remove", (c.dict_remove)(*v, c.text("k"))),
            ("rt_dict_key_at", (c.dict_key_at)(*v, 0)),
            ("rt_dict_value_at", (c.dict_value_at)(*v, 0)),
        ] {
            let (code, msg) = c.err(r);
            assert_eq!(code, code::TYPE_MISMATCH, "{f}({name}): {msg}");
            assert!(msg.starts_with(&format!("{f}: ")) && msg.contains("must be dict"), "{msg}");
        }
    }
    let d = (c.dict_new)();
    // every kind works as a key: by content for scalars, by identity for containers
    for (name, v, _) in &s.all {
        assert_eq!((c.dict_set)(d, *v, c.text(name)), d, "key {name}");
    }
    for (name, v, _) in &s.all {
        assert_eq!(c.get_text((c.dict_get)(d, *v)).as_deref(), Some(*name), "lookup by {name}");
    }
    assert_eq!((c.dict_len)(d), s.all.len());
    assert_eq!((c.dict_get)(d, c.text("absent")), NIL);
    assert_eq!((c.dict_remove)(d, c.text("absent")), NIL);
    assert!(!(c.dict_has)(d, c.text_array(&["a", "b"])), "a new array is another key");
    let n = (c.dict_len)(d);
    for i in [n, n + 1, usize::MAX] {
        for (f, r) in [("rt_dict_key_at", (c.dict_key_at)(d, i)), ("rt_dict_value_at", (c.dict_value_at)(d, i))] {
            let (code, msg) = c.err(r);
            assert_eq!(code, code::OUT_OF_RANGE, "{msg}");
            assert_eq!(msg, format!("{f}: index out of range (index {i}, length {n})"));
        }
    }
    // a nil value is present, not absent
    let d2 = c.dict(&[("k", NIL)]);
    assert!((c.dict_has)(d2, c.text("k")));
    assert_eq!((c.dict_remove)(d2, c.text("k")), NIL);
    assert!(!(c.dict_has)(d2, c.text("k")));
}

#[test]
fn errors_wrong_kinds() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, _) in s.not(kind::ERROR) {
        assert_eq!((c.error_code)(*v), 0, "rt_error_code({name})");
        assert_eq!((c.error_details)(*v), NIL, "rt_error_details({name})");
        let (code, msg) = c.err((c.error_message)(*v));
        assert_eq!(code, code::TYPE_MISMATCH, "rt_error_message({name}): {msg}");
    }
    for (name, v, _) in s.not(kind::STRING) {
        let (code, msg) = c.err((c.error_new)(1, *v));
        assert_eq!(code, code::TYPE_MISMATCH, "rt_error_new(1, {name}): {msg}");
    }
    let (code, msg) = c.err((c.error_new)(0, c.text("m")));
    assert_eq!(code, code::INVALID_ARGUMENT, "{msg}");
    for code_in in [1u32, 16, 19, 1000, u32::MAX] {
        let e = c.ok_error((c.error_new)(code_in, c.text("host error")));
        assert_eq!((c.error_code)(e), code_in);
        assert_eq!(c.get_text((c.error_message)(e)).as_deref(), Some("host error"));
    }
    assert_eq!(c.code_name(0), "None");
    assert_eq!(c.code_name(6), "CapabilityDenied");
    assert_eq!(c.code_name(16), "Busy");
    assert_eq!(c.code_name(17), "Interrupted");
    assert_eq!(c.code_name(18), "Cancelled");
    for code_in in [19u32, 1000, u32::MAX] {
        assert_eq!(c.code_name(code_in), "Unknown");
    }
}

trait OkError {
    fn ok_error(&self, v: RtValue) -> RtValue;
}
impl OkError for Core {
    /// `v`, which must be an Error value (what rt_error_new returns on success).
    fn ok_error(&self, v: RtValue) -> RtValue {
        assert_eq!(self.kind_of(v), kind::ERROR);
        v
    }
}

#[test]
fn pins_on_every_kind() {
    let c = core();
    let s = Samples::new(c);
    for (name, v, k) in &s.all {
        let heap = v & TAG_MASK == TAG_HEAP;
        let base = (c.value_pin_count)(*v);
        (c.value_pin)(*v);
        assert_eq!((c.value_pin_count)(*v), if heap { base + 1 } else { 0 }, "pin {name} ({k})");
        (c.value_unpin)(*v);
        assert_eq!((c.value_pin_count)(*v), base, "unpin {name}");
    }
    // unpin without pin: stays 0
    let t = c.text("never pinned");
    (c.value_unpin)(t);
    (c.value_unpin)(t);
    assert_eq!((c.value_pin_count)(t), 0);
    (c.value_pin)(t);
    assert_eq!((c.value_pin_count)(t), 1);
    (c.value_unpin)(t);
    // nil, ints, floats, bools: no-ops
    for w in [NIL, TRUE, FALSE, 0, 8, (c.float_new)(2.0)] {
        (c.value_pin)(w);
        (c.value_unpin)(w);
        (c.value_unpin)(w);
        assert_eq!((c.value_pin_count)(w), 0);
    }
}

#[test]
fn registry_lookup_bad_names() {
    let c = core();
    let mut ar = 777u32;
    assert!((c.registry_lookup)(std::ptr::null(), 5, &mut ar).is_null());
    assert!((c.registry_lookup)(std::ptr::null(), usize::MAX, &mut ar).is_null());
    for bad in [&b"rt_\xff\xfe"[..], b"", b"rt_no_such_function", b"rt_hostname\0", b"RT_CAP_SLOW", b"rt__thread_enter"] {
        assert!((c.registry_lookup)(bad.as_ptr(), bad.len(), &mut ar).is_null(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(ar, 777, "arity written for an unknown name");
    // a known name with a NULL arity pointer, and a prefix of a known name
    let n = b"rt_gc_stats";
    assert!(!(c.registry_lookup)(n.as_ptr(), n.len(), std::ptr::null_mut()).is_null());
    assert!((c.registry_lookup)(n.as_ptr(), 5, &mut ar).is_null());
    assert_eq!(c.kind_of((c.registry_json)()), kind::STRING);
}

#[test]
fn gc_free_ignores_what_it_does_not_own() {
    let c = core();
    (c.gc_free)(std::ptr::null_mut());
    let mut local = [0u64; 4];
    (c.gc_free)(local.as_mut_ptr() as *mut _);
    // SAFETY: plain malloc; the block is freed once below, after core's `rt_gc_free` was
    // shown to ignore it.
    let m = unsafe { libc::malloc(64) };
    (c.gc_free)(m);
    // SAFETY: `m` came from malloc above and is freed exactly once (rt_gc_free ignored it).
    unsafe { libc::free(m) };
    let p = (c.gc_malloc)(64) as *mut u8;
    assert!(!p.is_null());
    // SAFETY: `p` is a non-NULL 64-byte block from rt_gc_malloc, live (on this stack).
    unsafe { std::ptr::write_bytes(p, 0xAB, 64) };
    // SAFETY: offset 8 is inside the 64-byte block `p`.
    (c.gc_free)(unsafe { p.add(8) } as *mut _); // interior pointer: ignored
    // SAFETY: byte 63 of the live 64-byte block (rt_gc_free ignored the interior pointer).
    assert_eq!(unsafe { *p.add(63) }, 0xAB);
    (c.gc_free)(p as *mut _);
    // a value's own word is not a block start either (tagged)
    let t = c.text("tagged");
    (c.gc_free)(t as *mut _);
    assert_eq!(c.get_text(t).as_deref(), Some("tagged"));
    // rt_gc_malloc blocks are zeroed and scanned: a value stored only there survives
    let block = (c.gc_malloc)(16) as *mut RtValue;
    // SAFETY: `block` is a fresh, 8-aligned, 16-byte rt_gc_malloc block (non-NULL: an
    // allocation failure would abort the test before); its first word is readable.
    assert!(unsafe { *block } == 0);
    (c.value_pin)(block as u64 | 1); // not a value: a no-op that must not crash
    // SAFETY: first word of the live 16-byte block; the block is kept alive by `block` on
    // this stack and then by `holder`.
    unsafe { *block = c.text("kept by a gc_malloc block") };
    let holder = c.text_array(&[]);
    (c.array_push)(holder, block as u64); // 8-aligned pointer word: reads as an int, keeps the block
    (c.value_pin)(holder);
    for _ in 0..3 {
        c.collect();
    }
    // SAFETY: `block` is still live: its address is stored in the pinned `holder` array,
    // whose items the collector scans.
    assert_eq!(c.get_text(unsafe { *block }).as_deref(), Some("kept by a gc_malloc block"));
    (c.value_unpin)(holder);
}

#[test]
fn thread_attach_detach_unbalanced() {
    // In a fresh thread: detach without attach, nested attach, extra detach.
    std::thread::spawn(|| {
        let c = core();
        assert_eq!((c.thread_detach)(), 0);
        assert_eq!((c.thread_attach)(), 1);
        assert_eq!((c.thread_attach)(), 2);
        let t = c.text("attached");
        assert_eq!((c.thread_detach)(), 1);
        assert_eq!((c.thread_detach)(), 0);
        assert_eq!((c.thread_detach)(), 0);
        // a call after detach registers the thread again (lazily)
        assert_eq!(c.get_text(c.text("again")).as_deref(), Some("again"));
        let _ = t;
    })
    .join()
    .unwrap();
}

#[test]
fn closed_handles() {
    let c = core();
    if !c.has("rt_regex_new") {
        eprintln!("skipped: no handle type built (ffi_data's rt_regex_new); build ffi_data to run it");
        return;
    }
    let h = c.ok(c.call("rt_regex_new", &[c.text("a+")]));
    assert_eq!(c.call("rt_handle_is_open", &[h]), TRUE);
    assert_eq!(c.call("rt_handle_close", &[h]), TRUE);
    assert_eq!(c.call("rt_handle_close", &[h]), FALSE, "close is idempotent");
    assert_eq!(c.call("rt_handle_is_open", &[h]), FALSE);
    assert_eq!(c.get_text(c.call("rt_handle_type", &[h])).as_deref(), Some("Regex"));
    let (code, msg) = c.err(c.call("rt_regex_is_match", &[h, c.text("aaa")]));
    assert_eq!(code, code::CLOSED, "{msg}");
    assert!(msg.starts_with("rt_regex_is_match: ") && msg.contains("closed Regex handle"), "{msg}");
    (c.value_pin)(h);
    (c.value_unpin)(h);
    assert!((c.value_valid)(h));
    // handle functions on what is not a handle
    let s = Samples::new(c);
    for (name, v, _) in s.not(kind::HANDLE) {
        for f in ["rt_handle_close", "rt_handle_is_open", "rt_handle_type"] {
            let (code, msg) = c.err(c.call(f, &[*v]));
            assert_eq!(code, code::TYPE_MISMATCH, "{f}({name}): {msg}");
        }
        let (code, _) = c.err(c.call("rt_regex_is_match", &[*v, c.text("a")]));
        assert_eq!(code, code::TYPE_MISMATCH, "rt_regex_is_match({name})");
    }
    // a handle of another type: a Map is not a Regex
    if c.has("rt_map_new") {
        let m = c.ok(c.call("rt_map_new", &[]));
        let (code, msg) = c.err(c.call("rt_regex_is_match", &[m, c.text("a")]));
        assert_eq!(code, code::TYPE_MISMATCH, "{msg}");
    }
}

#[test]
fn gc_enable_without_disable() {
    let c = core();
    let (code, msg) = c.err(c.call("rt_gc_enable", &[]));
    assert_eq!(code, code::INVALID_ARGUMENT);
    assert_eq!(msg, "rt_gc_enable: collections are not disabled (disable count 0)");
    assert_eq!(c.stat("disabled"), 0);
}

#[test]
fn capability_bad_input_changes_nothing() {
    in_child("capability_bad_input_changes_nothing", &[], || {
        let c = core();
        let s = Samples::new(c);
        let before = c.registry().len();
        let cur = || {
            let d = c.ok(c.call("rt_cap_current", &[]));
            (0..(c.dict_len)(d))
                .map(|i| {
                    let v = (c.dict_value_at)(d, i);
                    format!("{}={}", c.get_text((c.dict_key_at)(d, i)).unwrap(), c.kind_of(v))
                })
                .collect::<Vec<_>>()
        };
        let start = cur();
        // policies that must be refused as a whole
        let bad: Vec<(&str, RtValue)> = vec![
            ("unknown name", c.dict(&[("no.such", TRUE)])),
            ("unknown name after a valid rule", c.dict(&[("sys.info", FALSE), ("bogus", FALSE)])),
            ("relative path scope", c.dict(&[("fs.read", c.text_array(&["relative/dir"]))])),
            ("empty scope", c.dict(&[("fs.read", c.text_array(&[""]))])),
            ("bare !", c.dict(&[("fs.write", c.text_array(&["!"]))])),
            ("NUL in path", c.dict(&[("fs.read", c.text_array(&["/tmp/\0x"]))])),
            ("scopes on a none capability", c.dict(&[("sys.info", c.text_array(&["/tmp"]))])),
            ("= in env name", c.dict(&[("env.read", c.text_array(&["A=B"]))])),
            ("inner * in env name", c.dict(&[("env.read", c.text_array(&["A*B"]))])),
            ("bad port", c.dict(&[("net.connect", c.text_array(&["host:99999"]))])),
            ("port not a number", c.dict(&[("net.connect", c.text_array(&["host:http"]))])),
            ("space in host", c.dict(&[("net.connect", c.text_array(&["a b"]))])),
            ("scopes for *", c.dict(&[("*", c.text_array(&["/tmp"]))])),
            ("int value", c.dict(&[("fs.read", c.int(1))])),
            ("text value", c.dict(&[("fs.read", c.text("yes"))])),
            ("non-text scope", c.dict(&[("fs.read", c.ok((c.array_push)((c.array_new)(1), c.int(5))))])),
        ];
        for (what, p) in &bad {
            let (code, msg) = c.err(c.call("rt_cap_restrict", &[*p]));
            assert_eq!(code, code::INVALID_ARGUMENT, "{what}: {msg}");
            assert!(msg.starts_with("rt_cap_restrict: "), "{what}: {msg}");
        }
        // a non-text key
        let d = (c.dict_new)();
        (c.dict_set)(d, c.int(1), TRUE);
        assert_eq!(c.err(c.call("rt_cap_restrict", &[d])).0, code::INVALID_ARGUMENT);
        // not a dict at all
        for (name, v, _) in s.not(kind::DICT) {
            let (code, msg) = c.err(c.call("rt_cap_restrict", &[*v]));
            assert_eq!(code, code::TYPE_MISMATCH, "rt_cap_restrict({name}): {msg}");
        }
        assert_eq!(cur(), start, "a refused policy changed the policy");
        assert_eq!(c.cap_slow.load(std::sync::atomic::Ordering::Relaxed), 0, "a refused policy left the slow path on");
        // rt_cap_parse: malformed text
        for t in ["fs.read", "a;b=c;=", "sys.info"] {
            let v = c.call("rt_cap_parse", &[c.text(t)]);
            let (code, msg) = c.err(v);
            assert_eq!(code, code::PARSE, "{t:?}: {msg}");
            assert!(details_int(c, v, "rule").is_some(), "{msg}");
        }
        for (name, v, _) in s.not(kind::STRING) {
            assert_eq!(c.err(c.call("rt_cap_parse", &[*v])).0, code::TYPE_MISMATCH, "rt_cap_parse({name})");
        }
        // rt_cap_check: unknown capability, wrong kinds, bad paths
        let (code, msg) = c.err(c.call("rt_cap_check", &[c.text("fs.exec"), NIL]));
        assert_eq!(code, code::INVALID_ARGUMENT, "{msg}");
        for (name, v, _) in s.not(kind::STRING) {
            assert_eq!(c.err(c.call("rt_cap_check", &[*v, NIL])).0, code::TYPE_MISMATCH, "cap {name}");
            if *v != NIL {
                assert_eq!(
                    c.err(c.call("rt_cap_check", &[c.text("fs.read"), *v])).0,
                    code::TYPE_MISMATCH,
                    "resource {name}"
                );
            }
        }
        let (code, msg) = c.err(c.call("rt_cap_check", &[c.text("fs.read"), c.text("/tmp/a\0b")]));
        assert_eq!(code, code::INVALID_ARGUMENT, "{msg}");
        assert_eq!(c.call("rt_cap_check", &[c.text("fs.read"), c.text("")]), TRUE);
        // rt_cap_audit with a bad path
        let (code, msg) = c.err(c.call("rt_cap_audit", &[c.text("/nonexistent-dir/x/audit.log")]));
        assert_eq!(code, code::NOT_FOUND, "{msg}");
        assert_eq!(c.err(c.call("rt_cap_audit", &[c.int(3)])).0, code::TYPE_MISMATCH);
        assert_eq!(cur(), start);
        assert_eq!(c.registry().len(), before);
    });
}

/// Every function of every loaded library, called with each kind of value in
/// each position, under a policy that denies every capability (so nothing
/// outside the process is touched): a value or an Error comes back, never a
/// crash. Blocking functions (sleeps, waits) are left out.
#[test]
fn every_function_survives_wrong_kinds() {
    in_child("every_function_survives_wrong_kinds", &[], || {
        let loaded = open_all();
        let c = core();
        let dir = tempfile::tempdir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        c.restrict("*=false");
        let s = Samples::new(c);
        let skip = ["rt_gc_disable", "rt_cap_restrict"]; // would change what the others see
        let mut calls = 0;
        let mut funcs = 0;
        for e in c.registry() {
            let name = e["name"].as_str().unwrap();
            if e["host"] == true || e["blocking"] == true || skip.contains(&name) {
                continue;
            }
            funcs += 1;
            let (addr, arity) = c.lookup(name).unwrap();
            for pos in 0..arity.max(1) as usize {
                for (sname, v, _) in &s.all {
                    let mut a = [NIL; 8];
                    if arity > 0 {
                        a[pos] = *v;
                    }
                    // SAFETY: `addr`/`arity` come from the registry for a non-host entry, so it is an
                    // `#[rt_fn]` export `RtValue (RtValue x arity)`, arity <= 8; its library stays loaded.
                    let r = unsafe { call_arity(addr, arity, &a) };
                    calls += 1;
                    assert!(
                        (c.value_valid)(r),
                        "{name} with {sname} at argument {} returned an invalid word {r:#x}",
                        pos + 1
                    );
                    if r == *v {
                        continue; // a function that stores or passes its argument back (maps, identity)
                    }
                    if let Some((code, msg)) = c.error(r) {
                        assert!(msg.starts_with(name), "{name}({sname}): message does not name the function: {msg}");
                        assert!(code != 12, "{name}({sname}) panicked: {msg}");
                    }
                }
            }
        }
        println!("{funcs} functions of {} libraries, {calls} calls", loaded.len());
        assert!(funcs >= 20);
    });
}

extern "C" fn cb_identity(_ud: *mut std::ffi::c_void, v: RtValue) -> RtValue {
    v
}
extern "C" fn cb_release(_ud: *mut std::ffi::c_void) {}

/// Callbacks: a NULL function, a value that is not a Callback (every kind),
/// a closed Callback, unknown flag bits and a second release function are
/// Errors naming the function; nothing is called.
#[test]
fn callback_surface_bad_input() {
    type New = extern "C" fn(*mut std::ffi::c_void, *mut std::ffi::c_void) -> RtValue;
    type OnRelease = extern "C" fn(RtValue, *mut std::ffi::c_void) -> RtValue;
    type Flags = extern "C" fn(RtValue, u32) -> RtValue;
    let c = core();
    let addr = |n: &str| c.lookup(n).unwrap_or_else(|| panic!("{n} missing")).0;
    // SAFETY: both are `RtValue (void *func, void *user_data)` in include/simple_rt.h, which
    // is `New`; core is never unloaded, so the pointers stay valid.
    let (new1, new2): (New, New) = unsafe { (std::mem::transmute(addr("rt_callback_new")), std::mem::transmute(addr("rt_callback_new2"))) };
    // SAFETY: `RtValue rt_callback_on_release(RtValue, void *)` in the header, = `OnRelease`.
    let on_release: OnRelease = unsafe { std::mem::transmute(addr("rt_callback_on_release")) };
    // SAFETY: `RtValue rt_callback_set_flags(RtValue, uint32_t)` in the header, = `Flags`.
    let flags: Flags = unsafe { std::mem::transmute(addr("rt_callback_set_flags")) };
    let err_of = |v: RtValue, func: &str| {
        assert_eq!(c.kind_of(v), kind::ERROR, "{func} did not fail");
        let m = c.get_text((c.error_message)(v)).unwrap();
        assert!(m.starts_with(func), "{m}");
    };
    for (n, f) in [("rt_callback_new", new1), ("rt_callback_new2", new2)] {
        err_of(f(std::ptr::null_mut(), std::ptr::null_mut()), n);
    }
    let s = Samples::new(&c);
    for (what, v, _) in &s.all {
        err_of(on_release(*v, cb_release as *mut _), "rt_callback_on_release");
        err_of(flags(*v, 0), "rt_callback_set_flags");
        let _ = what;
    }
    let cb = new1(cb_identity as *mut _, std::ptr::null_mut());
    (c.value_pin)(cb);
    err_of(flags(cb, 0x80), "rt_callback_set_flags");
    assert_eq!(flags(cb, 1), NIL);
    assert_eq!(on_release(cb, cb_release as *mut _), NIL);
    err_of(on_release(cb, cb_release as *mut _), "rt_callback_on_release");
    c.ok(c.call("rt_handle_close", &[cb]));
    err_of(flags(cb, 0), "rt_callback_set_flags");
    err_of(on_release(cb, std::ptr::null_mut()), "rt_callback_on_release");
    (c.value_unpin)(cb);
}

/// Deadline surface (docs/DEADLINES.md): extreme and stale arguments are
/// clamped or refused, never a crash; the thread's deadline only shortens.
#[test]
fn deadline_surface_bad_input() {
    let c = core();
    let addr = |n: &str| c.lib.addr(n).unwrap_or_else(|| panic!("{n} is not exported"));
    type Set = extern "C" fn(i64) -> i64;
    type Restore = extern "C" fn(i64);
    type Void = extern "C" fn();
    type Rem = extern "C" fn() -> i64;
    type Sig = extern "C" fn(u64) -> i32;
    // SAFETY: `Set` is `int64_t rt_deadline_set(int64_t)` in include/simple_rt.h (the
    // types below are likewise the header's prototypes), and core, which exports these
    // functions, is never unloaded.
    let set: Set = unsafe { std::mem::transmute(addr("rt_deadline_set")) };
    // SAFETY: `int64_t rt_deadline_at(int64_t)`, as above.
    let at: Set = unsafe { std::mem::transmute(addr("rt_deadline_at")) };
    // SAFETY: `void rt_deadline_restore(int64_t)`, as above.
    let restore: Restore = unsafe { std::mem::transmute(addr("rt_deadline_restore")) };
    // SAFETY: `void rt_deadline_clear(void)`, as above.
    let clear: Void = unsafe { std::mem::transmute(addr("rt_deadline_clear")) };
    // SAFETY: `int64_t rt_deadline_remaining(void)`, as above.
    let remaining: Rem = unsafe { std::mem::transmute(addr("rt_deadline_remaining")) };
    // SAFETY: `int32_t rt_cancel_trigger_signal_safe(uint64_t)`, as above.
    let sig: Sig = unsafe { std::mem::transmute(addr("rt_cancel_trigger_signal_safe")) };
    for v in [i64::MAX, i64::MIN, -1, 0] {
        let p = set(v);
        assert!(remaining() >= 0);
        restore(p);
        let p = at(v);
        assert!(remaining() >= 0);
        restore(p);
    }
    restore(i64::MIN);
    assert_eq!(remaining(), -1, "a negative token restores no deadline");
    restore(i64::MAX);
    assert!(remaining() > 0);
    clear();
    assert_eq!(remaining(), -1);
    for id in [0, u64::MAX, 1 << 40, 65_535] {
        assert_eq!(sig(id), 0, "no live token has id {id}");
    }
}
