//! ffi_data through its exports: regex against Python's `re` as an oracle,
//! interning across threads, arenas, and maps of values under forced collections.

use ffi_data::arena::*;
use ffi_data::collections::*;
use ffi_data::intern::*;
use ffi_data::regex::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{collect, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::process::Command;

extern "C" {
    fn rt_value_pin_count(v: RtValue) -> u32;
    fn rt_handle_close(h: RtValue) -> RtValue;
}

/// Details dict of an Error value (nil when none).
fn details(v: RtValue) -> Value {
    ffi_sdk::testing::details(v)
}

fn dict(pairs: &[(&str, Value)]) -> RtValue {
    ffi_sdk::testing::dict(pairs)
}

fn texts(v: Value) -> Vec<String> {
    v.items().map(|x| x.as_text().expect("text item").to_string()).collect()
}

fn python(code: &str, input: &str) -> String {
    let out = Command::new("python3").args(["-c", code]).env("INPUT", input).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn re(p: &str) -> RtValue {
    ok(rt_regex_new(text(p), NIL)).raw()
}

// ------------------------------------------------------------------ regex

#[test]
fn regex_match_and_find_with_offsets() {
    let r = re(r"w\w+");
    assert_eq!(ok(rt_regex_is_match(r, text("héllo wörld"))).as_bool(), Some(true));
    assert_eq!(ok(rt_regex_is_match(r, text("nothing"))).as_bool(), Some(false));
    let m = ok(rt_regex_find(r, text("héllo wörld")));
    assert_eq!(m.get("text").as_text(), Some("wörld"));
    // "héllo " is 7 bytes, 6 code points; "wörld" is 6 bytes, 5 code points.
    assert_eq!(m.get("start").as_int(), Some(7));
    assert_eq!(m.get("end").as_int(), Some(13));
    assert_eq!(m.get("char_start").as_int(), Some(6));
    assert_eq!(m.get("char_end").as_int(), Some(11));
    assert!(ok(rt_regex_find(r, text("none here"))).is_nil());
}

#[test]
fn regex_options() {
    let d = dict(&[("case_insensitive", Value::TRUE)]);
    let r = ok(rt_regex_new(text("^abc$"), d)).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("ABC"))).as_bool(), Some(true));
    let r = ok(rt_regex_new(text("^b$"), dict(&[("multi_line", Value::TRUE)]))).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("a\nb\nc"))).as_bool(), Some(true));
    let r = ok(rt_regex_new(text("a.c"), dict(&[("dot_all", Value::TRUE)]))).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("a\nc"))).as_bool(), Some(true));
    let r = ok(rt_regex_new(text("a b # comment"), dict(&[("ignore_whitespace", Value::TRUE)]))).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("ab"))).as_bool(), Some(true));
    let r = ok(rt_regex_new(text(r"^\w$"), dict(&[("ascii", Value::TRUE)]))).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("é"))).as_bool(), Some(false));
    let (c, m) = err(rt_regex_new(text("a"), dict(&[("caseless", Value::TRUE)])));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    let (c, _) = err(rt_regex_new(text("a"), dict(&[("multi_line", Value::int(1))])));
    assert_eq!(c, Code::InvalidArgument);
}

#[test]
fn regex_syntax_errors_have_position() {
    let v = rt_regex_new(text("ab(cd"), NIL);
    let (c, m) = err(v);
    assert_eq!(c, Code::Parse);
    assert!(m.starts_with("rt_regex_new: invalid pattern") && m.contains("ab(cd"), "{m}");
    let d = details(v);
    assert_eq!(d.get("position").as_int(), Some(2));
    assert_eq!(d.get("line").as_int(), Some(1));
    assert_eq!(d.get("column").as_int(), Some(3));
    // Second line of an x-mode pattern.
    let v = rt_regex_new(text("a\n  b{2,1}"), dict(&[("ignore_whitespace", Value::TRUE)]));
    assert_eq!(err(v).0, Code::Parse);
    assert_eq!(details(v).get("line").as_int(), Some(2));
    // Unsupported syntax (look-around) is a parse error too.
    assert_eq!(err(rt_regex_new(text("(?=a)"), NIL)).0, Code::Parse);
}

#[test]
fn regex_size_limit() {
    let (c, m) = err(rt_regex_new(text(r"\w{1000}"), dict(&[("size_limit", Value::int(10_000))])));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    // The default limit refuses a pattern that compiles to gigabytes.
    assert_eq!(err(rt_regex_new(text(r"(\w{1000}){1000}"), NIL)).0, Code::LimitExceeded);
    let (c, _) = err(rt_regex_new(text("a"), dict(&[("size_limit", Value::int(0))])));
    assert_eq!(c, Code::InvalidArgument);
}

#[test]
fn regex_bad_inputs() {
    assert_eq!(err(rt_regex_new(int(3), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_regex_new(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_regex_new(text("a"), int(1))).0, Code::TypeMismatch);
    assert_eq!(err(rt_regex_is_match(text("a"), text("a"))).0, Code::TypeMismatch);
    let arena = ok(rt_arena_new(NIL)).raw();
    let (c, m) = err(rt_regex_find(arena, text("a")));
    assert_eq!(c, Code::TypeMismatch, "{m}");
    let r = re("a");
    assert_eq!(err(rt_regex_find(r, int(1))).0, Code::TypeMismatch);
    assert_eq!(err(rt_regex_find_all(r, text("a"), dict(&[("limit", Value::int(-1))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_regex_split(r, text("a"), dict(&[("limit", Value::int(0))]))).0, Code::InvalidArgument);
    let (c, _) = err(rt_regex_replace(r, text("a"), text("b"), dict(&[("all", Value::FALSE), ("limit", Value::int(2))])));
    assert_eq!(c, Code::InvalidArgument);
    // Closed handles.
    // SAFETY: `rt_handle_close` is core's `#[rt_fn]` export, declared above with its exact C
    // signature (RtValue -> RtValue); `r` is a live handle value on this stack.
    ok(unsafe { rt_handle_close(r) });
    for v in [
        rt_regex_is_match(r, text("a")),
        rt_regex_find(r, text("a")),
        rt_regex_captures(r, text("a")),
        rt_regex_find_all(r, text("a"), NIL),
        rt_regex_replace(r, text("a"), text("b"), NIL),
        rt_regex_split(r, text("a"), NIL),
    ] {
        assert_eq!(err(v).0, Code::Closed);
    }
}

#[test]
fn regex_cache_gives_independent_handles() {
    let a = re(r"(\d+)-(\d+)");
    let b = re(r"(\d+)-(\d+)");
    assert_ne!(a, b);
    // SAFETY: core's `rt_handle_close(RtValue) -> RtValue` as declared; `a` is live here.
    ok(unsafe { rt_handle_close(a) });
    assert_eq!(err(rt_regex_is_match(a, text("1-2"))).0, Code::Closed);
    assert_eq!(ok(rt_regex_is_match(b, text("1-2"))).as_bool(), Some(true));
    // Same pattern with other options is another program.
    let c = ok(rt_regex_new(text("abc"), dict(&[("case_insensitive", Value::TRUE)]))).raw();
    let d = re("abc");
    assert_eq!(ok(rt_regex_is_match(c, text("ABC"))).as_bool(), Some(true));
    assert_eq!(ok(rt_regex_is_match(d, text("ABC"))).as_bool(), Some(false));
}

#[test]
fn regex_captures_numbered_named_and_missing() {
    let r = re(r"(?P<year>\d{4})-(\d{2})(-(?P<day>\d{2}))?");
    let c = ok(rt_regex_captures(r, text("on 2024-05!")));
    assert_eq!(c.len(), 5 + 2);
    let at = |i: i64| {
        let d = Value::from_raw(c.raw());
        let k = Value::int(i);
        d.entries().find(|(kk, _)| kk.as_int() == Some(i)).map(|(_, v)| v).unwrap_or_else(|| panic!("group {k:?}"))
    };
    assert_eq!(at(0).as_text(), Some("2024-05"));
    assert_eq!(at(1).as_text(), Some("2024"));
    assert_eq!(at(2).as_text(), Some("05"));
    assert!(at(3).is_nil());
    assert!(at(4).is_nil());
    assert_eq!(c.get("year").as_text(), Some("2024"));
    assert!(c.get("day").is_nil());
    assert!(c.entries().any(|(k, _)| k.as_text() == Some("day")), "non-participating named group present as nil");
    assert!(ok(rt_regex_captures(r, text("no date"))).is_nil());
}

/// A text with words, numbers, e-mail addresses and non-ASCII letters.
fn corpus(n: usize) -> String {
    let words = ["alpha", "β-test", "x@y.org", "42", "straße", "🙂", "foo_bar", "3.14", "a.b@c.de", "end."];
    let mut s = String::new();
    let mut x: u64 = 88172645463325252;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push(if i % 11 == 10 { '\n' } else { ' ' });
    }
    s
}

/// Runs Python with `INPUT` in the environment; `code` binds `r` to a list of str,
/// printed NUL-separated.
fn python_list(code: &str, input: &str) -> Vec<String> {
    let full = format!("import os,re,sys\nINPUT=os.environ['INPUT']\n{code}\nsys.stdout.buffer.write('\\0'.join(r).encode())");
    python(&full, input).split('\0').map(String::from).collect()
}

#[test]
fn regex_find_all_split_replace_match_python() {
    let input = corpus(3000);
    let pat = r"[\w.]+@[\w.]+|\d+(?:\.\d+)?";
    let got = texts(ok(rt_regex_find_all(re(pat), text(&input), NIL)));
    let want = python_list(&format!("r = re.findall(r'{pat}', INPUT)"), &input);
    assert!(got.len() > 100);
    assert_eq!(got, want);

    let got = texts(ok(rt_regex_split(re(r"\s+"), text(&input), dict(&[("limit", Value::int(5))]))));
    assert_eq!(got, python_list(r"r = re.split(r'\s+', INPUT, maxsplit=4)", &input));
    let got = texts(ok(rt_regex_split(re(r"\d"), text(&input), NIL)));
    assert_eq!(got, python_list(r"r = re.split(r'\d', INPUT)", &input));

    let got = ok(rt_regex_replace(re(r"(\d+)\.(\d+)"), text(&input), text("$2,${1}"), NIL));
    let want = python_list(r"r = [re.sub(r'(\d+)\.(\d+)', r'\2,\1', INPUT)]", &input);
    assert_eq!(got.as_text(), Some(want[0].as_str()));
}

#[test]
fn regex_find_all_offsets_and_limit() {
    let r = re(r"\w+");
    let all = ok(rt_regex_find_all(r, text("añb c dé"), dict(&[("offsets", Value::TRUE)])));
    assert_eq!(all.len(), 3);
    let third = all.at(2);
    assert_eq!(third.get("text").as_text(), Some("dé"));
    assert_eq!(third.get("start").as_int(), Some(7));
    assert_eq!(third.get("char_start").as_int(), Some(6));
    assert_eq!(third.get("char_end").as_int(), Some(8));
    let two = ok(rt_regex_find_all(r, text("a b c d"), dict(&[("limit", Value::int(2))])));
    assert_eq!(texts(two), ["a", "b"]);
    assert_eq!(ok(rt_regex_find_all(r, text("   "), NIL)).len(), 0);
}

#[test]
fn regex_replace_modes() {
    let r = re(r"(?P<w>\w+)@(\w+)");
    let s = text("a@b c@d e@f");
    assert_eq!(ok(rt_regex_replace(r, s, text("${2}@$w"), NIL)).as_text(), Some("b@a d@c f@e"));
    assert_eq!(ok(rt_regex_replace(r, s, text("X"), dict(&[("all", Value::FALSE)]))).as_text(), Some("X c@d e@f"));
    assert_eq!(ok(rt_regex_replace(r, s, text("X"), dict(&[("limit", Value::int(2))]))).as_text(), Some("X X e@f"));
    assert_eq!(ok(rt_regex_replace(r, s, text("$1$$"), dict(&[("literal", Value::TRUE)]))).as_text(), Some("$1$$ $1$$ $1$$"));
    assert_eq!(ok(rt_regex_replace(r, s, text("$$"), NIL)).as_text(), Some("$ $ $"));
}

// ------------------------------------------------------------------ interning

#[test]
fn intern_round_trip() {
    let a = ok(rt_intern_string(text("alpha-sym"))).as_int().unwrap();
    let b = ok(rt_intern_string(text("beta-sym"))).as_int().unwrap();
    let a2 = ok(rt_intern_string(text("alpha-sym"))).as_int().unwrap();
    assert_eq!(a, a2);
    assert_ne!(a, b);
    assert!(a >= 0 && b >= 0);
    assert_eq!(ok(rt_intern_resolve(int(a))).as_text(), Some("alpha-sym"));
    assert_eq!(ok(rt_intern_resolve(int(b))).as_text(), Some("beta-sym"));
    // Resolving returns one shared string value.
    assert_eq!(ok(rt_intern_resolve(int(a))).raw(), ok(rt_intern_resolve(int(a))).raw());
    let e = ok(rt_intern_string(text(""))).as_int().unwrap();
    assert_eq!(ok(rt_intern_resolve(int(e))).as_text(), Some(""));
    let nul = ok(rt_intern_string(text("a\0b"))).as_int().unwrap();
    assert_eq!(ok(rt_intern_resolve(int(nul))).as_text(), Some("a\0b"));
}

#[test]
fn intern_bad_inputs() {
    assert_eq!(err(rt_intern_string(int(1))).0, Code::TypeMismatch);
    assert_eq!(err(rt_intern_string(NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_intern_resolve(text("1"))).0, Code::TypeMismatch);
    let (c, m) = err(rt_intern_resolve(int(-1)));
    assert_eq!(c, Code::NotFound, "{m}");
    assert_eq!(err(rt_intern_resolve(int(1 << 40))).0, Code::NotFound);
    assert_eq!(err(rt_intern_resolve(int(50_000_000))).0, Code::NotFound);
}

#[test]
fn intern_from_threads_under_collections() {
    let names: Vec<String> = (0..2000).map(|i| format!("thread-sym-{i}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                collect();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let results: Vec<Vec<i64>> = (0..4)
        .map(|t| {
            let names = names.clone();
            std::thread::spawn(move || {
                let mut syms = vec![0; names.len()];
                for k in 0..names.len() {
                    let i = (k * 7 + t * 13) % names.len();
                    syms[i] = ok(rt_intern_string(text(&names[i]))).as_int().unwrap();
                    let back = ok(rt_intern_resolve(int(syms[i])));
                    assert_eq!(back.as_text(), Some(names[i].as_str()));
                }
                syms
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    gc.join().unwrap();
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    let mut uniq = results[0].clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), names.len());
    collect();
    for (i, s) in results[0].iter().enumerate() {
        assert_eq!(ok(rt_intern_resolve(int(*s))).as_text(), Some(names[i].as_str()));
    }
}

// ------------------------------------------------------------------ arena

#[test]
fn arena_alloc_write_read() {
    let a = ok(rt_arena_new(NIL)).raw();
    let b0 = ok(rt_arena_alloc(a, int(10))).as_int().unwrap();
    let b1 = ok(rt_arena_alloc(a, int(100))).as_int().unwrap();
    let b2 = ok(rt_arena_alloc(a, int(0))).as_int().unwrap();
    assert_eq!((b0, b1, b2), (0, 1, 2));
    assert_eq!(ok(rt_arena_read(a, int(b1), int(0), int(100))).as_bytes(), Some(&[0u8; 100][..]));
    ok(rt_arena_write(a, int(b1), int(95), ffi_sdk::testing::bytes(b"hello")));
    ok(rt_arena_write(a, int(b0), int(0), text("0123456789")));
    assert_eq!(ok(rt_arena_read(a, int(b1), int(94), int(6))).as_bytes(), Some(&b"\0hello"[..]));
    assert_eq!(ok(rt_arena_read(a, int(b0), int(0), int(10))).as_bytes(), Some(&b"0123456789"[..]));
    assert_eq!(ok(rt_arena_size(a, int(b1))).as_int(), Some(100));
    assert_eq!(ok(rt_arena_read(a, int(b2), int(0), int(0))).as_bytes(), Some(&b""[..]));
    // Raw addresses: aligned, stable, and the bytes written through the id.
    let p = ok(rt_arena_ptr(a, int(b1))).as_int().unwrap() as usize;
    assert_eq!(p % 16, 0);
    for _ in 0..1000 {
        ok(rt_arena_alloc(a, int(48)));
    }
    assert_eq!(ok(rt_arena_ptr(a, int(b1))).as_int().unwrap() as usize, p);
    // SAFETY: `p` is the address of buffer b1 (100 bytes, live: the arena `a` is open and
    // on this stack), so bytes 95..100 are in bounds and were written ("hello") above; no
    // other thread touches the arena during this test.
    let raw = unsafe { std::slice::from_raw_parts((p + 95) as *const u8, 5) };
    assert_eq!(raw, b"hello");
    let st = ok(rt_arena_stats(a));
    assert_eq!(st.get("buffers").as_int(), Some(1003));
    assert_eq!(st.get("bytes").as_int(), Some(110 + 48_000));
}

#[test]
fn arena_bad_inputs_and_limits() {
    let a = ok(rt_arena_new(Value::dict().set("limit", Value::int(1000)).raw())).raw();
    ok(rt_arena_alloc(a, int(600)));
    let (c, m) = err(rt_arena_alloc(a, int(600)));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    ok(rt_arena_alloc(a, int(400)));
    assert_eq!(err(rt_arena_alloc(a, int(-1))).0, Code::InvalidArgument);
    assert_eq!(err(rt_arena_alloc(a, text("1"))).0, Code::TypeMismatch);
    assert_eq!(err(rt_arena_read(a, int(0), int(590), int(11))).0, Code::OutOfRange);
    assert_eq!(err(rt_arena_read(a, int(0), int(u32::MAX as i64), int(1))).0, Code::OutOfRange);
    assert_eq!(err(rt_arena_write(a, int(0), int(599), text("ab"))).0, Code::OutOfRange);
    assert_eq!(err(rt_arena_read(a, int(7), int(0), int(1))).0, Code::OutOfRange);
    assert_eq!(err(rt_arena_size(a, int(-3))).0, Code::OutOfRange);
    assert_eq!(err(rt_arena_write(a, int(0), int(0), int(5))).0, Code::TypeMismatch);
    assert_eq!(err(rt_arena_new(Value::dict().set("size", Value::int(1)).raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_arena_alloc(re("x"), int(1))).0, Code::TypeMismatch);
    // SAFETY: core's `rt_handle_close(RtValue) -> RtValue` as declared; `a` is live here.
    ok(unsafe { rt_handle_close(a) });
    for v in [
        rt_arena_alloc(a, int(1)),
        rt_arena_read(a, int(0), int(0), int(1)),
        rt_arena_write(a, int(0), int(0), text("x")),
        rt_arena_size(a, int(0)),
        rt_arena_ptr(a, int(0)),
        rt_arena_stats(a),
    ] {
        assert_eq!(err(v).0, Code::Closed);
    }
}

// ------------------------------------------------------------------ maps

/// Both maps behind one set of function pointers.
struct Ops {
    new: extern "C" fn() -> RtValue,
    set: extern "C" fn(RtValue, RtValue, RtValue) -> RtValue,
    get: extern "C" fn(RtValue, RtValue) -> RtValue,
    has: extern "C" fn(RtValue, RtValue) -> RtValue,
    remove: extern "C" fn(RtValue, RtValue) -> RtValue,
    len: extern "C" fn(RtValue) -> RtValue,
    keys: extern "C" fn(RtValue) -> RtValue,
    to_dict: extern "C" fn(RtValue) -> RtValue,
    clear: extern "C" fn(RtValue) -> RtValue,
}

const MAP: Ops = Ops {
    new: rt_map_new,
    set: rt_map_set,
    get: rt_map_get,
    has: rt_map_has,
    remove: rt_map_remove,
    len: rt_map_len,
    keys: rt_map_keys,
    to_dict: rt_map_to_dict,
    clear: rt_map_clear,
};
const OMAP: Ops = Ops {
    new: rt_omap_new,
    set: rt_omap_set,
    get: rt_omap_get,
    has: rt_omap_has,
    remove: rt_omap_remove,
    len: rt_omap_len,
    keys: rt_omap_keys,
    to_dict: rt_omap_to_dict,
    clear: rt_omap_clear,
};

fn map_basics(o: &Ops) {
    let m = ok((o.new)()).raw();
    assert!(ok((o.set)(m, text("a"), int(1))).is_nil());
    assert!(ok((o.set)(m, int(1), text("one"))).is_nil());
    assert!(ok((o.set)(m, ffi_sdk::testing::bytes(b"k"), Value::TRUE.raw())).is_nil());
    assert!(ok((o.set)(m, Value::FALSE.raw(), NIL)).is_nil());
    assert_eq!(ok((o.len)(m)).as_int(), Some(4));
    assert_eq!(ok((o.get)(m, text("a"))).as_int(), Some(1));
    assert_eq!(ok((o.get)(m, int(1))).as_text(), Some("one"));
    assert!(ok((o.get)(m, text("1"))).is_nil(), "int and text keys differ");
    assert_eq!(ok((o.has)(m, Value::FALSE.raw())).as_bool(), Some(true));
    assert_eq!(ok((o.has)(m, text("zz"))).as_bool(), Some(false));
    assert_eq!(ok((o.set)(m, text("a"), int(2))).as_int(), Some(1), "set returns the previous value");
    assert_eq!(ok((o.remove)(m, int(1))).as_text(), Some("one"));
    assert!(ok((o.remove)(m, int(1))).is_nil());
    assert_eq!(ok((o.len)(m)).as_int(), Some(3));
    let keys = ok((o.keys)(m));
    assert_eq!(keys.len(), 3);
    let d = ok((o.to_dict)(m));
    assert_eq!(d.get("a").as_int(), Some(2));
    assert_eq!(d.len(), 3);
    ok((o.clear)(m));
    assert_eq!(ok((o.len)(m)).as_int(), Some(0));
    // Bad keys and handles.
    let (c, msg) = err((o.set)(m, Value::float(1.5).raw(), int(1)));
    assert_eq!(c, Code::TypeMismatch, "{msg}");
    assert_eq!(err((o.get)(m, Value::array(0).raw())).0, Code::TypeMismatch);
    assert_eq!(err((o.has)(m, NIL)).0, Code::TypeMismatch);
    assert_eq!(err((o.len)(text("x"))).0, Code::TypeMismatch);
    assert_eq!(err((o.get)(re("a"), text("a"))).0, Code::TypeMismatch);
    // SAFETY: core's `rt_handle_close(RtValue) -> RtValue` as declared; `m` is live here.
    ok(unsafe { rt_handle_close(m) });
    assert_eq!(err((o.get)(m, text("a"))).0, Code::Closed);
    assert_eq!(err((o.set)(m, text("a"), int(1))).0, Code::Closed);
    assert_eq!(err((o.keys)(m)).0, Code::Closed);
    assert_eq!(err((o.clear)(m)).0, Code::Closed);
}

#[test]
fn map_basics_concurrent() {
    map_basics(&MAP);
}

#[test]
fn map_basics_ordered() {
    map_basics(&OMAP);
}

#[test]
fn ordered_map_keeps_order() {
    let m = ok(rt_omap_new()).raw();
    for k in ["z", "a", "m", "b"] {
        ok(rt_omap_set(m, text(k), text(&k.repeat(2))));
    }
    ok(rt_omap_set(m, text("a"), text("A")));
    ok(rt_omap_remove(m, text("m")));
    assert_eq!(texts(ok(rt_omap_keys(m))), ["z", "a", "b"]);
    let d = ok(rt_omap_to_dict(m));
    let order: Vec<_> = d.entries().map(|(k, v)| (k.as_text().unwrap().to_string(), v.as_text().unwrap().to_string())).collect();
    assert_eq!(order, [("z".into(), "zz".into()), ("a".into(), "A".into()), ("b".into(), "bb".into())]);
    let e = ok(rt_omap_at(m, int(1)));
    assert_eq!((e.at(0).as_text(), e.at(1).as_text()), (Some("a"), Some("A")));
    assert_eq!(err(rt_omap_at(m, int(3))).0, Code::OutOfRange);
    assert_eq!(err(rt_omap_at(m, int(-1))).0, Code::InvalidArgument);
}

fn pins(v: Value) -> u32 {
    // SAFETY: core's host function `uint32_t rt_value_pin_count(RtValue)`, declared above
    // with that signature; `v` is a live value of this runtime.
    unsafe { rt_value_pin_count(v.raw()) }
}

fn pins_released(o: &Ops) {
    let m = ok((o.new)()).raw();
    let (a, b, c) = (Value::text("pinned-a"), Value::array(1).push(Value::text("x")), Value::dict());
    ok((o.set)(m, text("a"), a.raw()));
    ok((o.set)(m, text("b"), b.raw()));
    ok((o.set)(m, text("c"), c.raw()));
    assert_eq!((pins(a), pins(b), pins(c)), (1, 1, 1));
    ok((o.set)(m, text("a"), int(5))); // replaced
    assert_eq!(pins(a), 0);
    ok((o.remove)(m, text("b")));
    assert_eq!(pins(b), 0);
    ok((o.set)(m, text("a2"), a.raw()));
    ok((o.set)(m, text("a3"), a.raw()));
    assert_eq!(pins(a), 2);
    ok((o.clear)(m));
    assert_eq!((pins(a), pins(c)), (0, 0));
    ok((o.set)(m, text("c"), c.raw()));
    assert_eq!(pins(c), 1);
    // SAFETY: core's `rt_handle_close(RtValue) -> RtValue` as declared; `m` is live here.
    ok(unsafe { rt_handle_close(m) });
    assert_eq!(pins(c), 0, "close releases the stored values");
}

#[test]
fn map_values_pinned_and_released() {
    pins_released(&MAP);
    pins_released(&OMAP);
}

/// Four threads insert freshly built values (nothing else references them) and read
/// them back while a fifth thread forces collections; every value must survive intact.
fn stress(o: &'static Ops) {
    let m = ok((o.new)()).raw();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                collect();
                n += 1;
            }
            n
        })
    };
    const PER: i64 = 3000;
    let workers: Vec<_> = (0..4i64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..PER {
                    let key = t * PER + i;
                    let v = Value::array(2).push(Value::text(&format!("value-{key}"))).push(Value::int(key));
                    ok((o.set)(m, int(key), v.raw()));
                    // Churn: garbage the collector must reclaim around the stored values.
                    for _ in 0..4 {
                        let _ = Value::text("garbage garbage garbage");
                    }
                    if i % 7 == 0 {
                        let back = ok((o.get)(m, int(t * PER + i / 2)));
                        assert_eq!(back.at(0).as_text().map(String::from), Some(format!("value-{}", t * PER + i / 2)));
                    }
                    if i % 100 == 99 {
                        // Replace some values; the old ones are unpinned.
                        let r = Value::array(2).push(Value::text(&format!("value-{key}"))).push(Value::int(key));
                        ok((o.set)(m, int(key), r.raw()));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let collections = gc.join().unwrap();
    assert!(collections > 0);
    collect();
    collect();
    assert_eq!(ok((o.len)(m)).as_int(), Some(4 * PER));
    for key in 0..4 * PER {
        let v = ok((o.get)(m, int(key)));
        assert!(v.is_array(), "key {key}: {}", v.describe());
        assert_eq!(v.at(0).as_text().map(String::from), Some(format!("value-{key}")), "key {key}");
        assert_eq!(v.at(1).as_int(), Some(key));
    }
    let d = ok((o.to_dict)(m));
    assert_eq!(d.len() as i64, 4 * PER);
    // SAFETY: core's `rt_handle_close(RtValue) -> RtValue` as declared; `m` is live here.
    ok(unsafe { rt_handle_close(m) });
}

#[test]
fn map_stress_with_collections() {
    stress(&MAP);
}

#[test]
fn ordered_map_stress_with_collections() {
    stress(&OMAP);
}
