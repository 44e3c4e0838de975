//! rt_regex_new on a pattern from the input (first byte: option bits; then
//! pattern, a 0 byte, and the haystack; invalid UTF-8 replaced). When it
//! compiles: is_match, find, captures, find_all (plain and with offsets),
//! replace and split on the haystack; is_match agrees with find, and the
//! offsets of find are in range and on character boundaries.
#![no_main]
use ffi_data::regex::*;
use ffi_sdk::abi::RtValue;
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

extern "C" {
    fn rt_handle_close(h: RtValue) -> RtValue;
}

const DEFAULT_HAYSTACK: &str = "The quick brown fox 0123 jumps\nover ünïcödé 😀 lazy_dog@example.com\r\n\t end";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (pat, hay) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (String::from_utf8_lossy(&rest[..i]), String::from_utf8_lossy(&rest[i + 1..])),
        None => (String::from_utf8_lossy(rest), DEFAULT_HAYSTACK.into()),
    };
    let b = |bit: u8| if flags & bit != 0 { Value::TRUE } else { Value::FALSE };
    let o = opts(&[
        ("case_insensitive", b(1)),
        ("multi_line", b(2)),
        ("dot_all", b(4)),
        ("ignore_whitespace", b(8)),
        ("ascii", b(16)),
    ]);
    let Ok(re) = result("rt_regex_new", rt_regex_new(text(&pat), o.raw())) else { return };
    let h = text(&hay);
    let m = result("rt_regex_is_match", rt_regex_is_match(re.raw(), h)).expect("is_match");
    let f = result("rt_regex_find", rt_regex_find(re.raw(), h)).expect("find");
    assert_eq!(m.as_bool(), Some(!f.is_nil()), "is_match and find disagree: {pat:?} on {hay:?}");
    if !f.is_nil() {
        let (s, e) = (f.get("start").as_int().unwrap() as usize, f.get("end").as_int().unwrap() as usize);
        assert!(s <= e && e <= hay.len() && hay.is_char_boundary(s) && hay.is_char_boundary(e), "bad offsets {s}..{e}");
        assert_eq!(f.get("text").as_text(), Some(&hay[s..e]));
        assert_eq!(f.get("char_start").as_int(), Some(hay[..s].chars().count() as i64));
    }
    let _ = result("rt_regex_captures", rt_regex_captures(re.raw(), h)).expect("captures");
    let _ = result("rt_regex_find_all", rt_regex_find_all(re.raw(), h, NIL)).expect("find_all");
    let _ = result("rt_regex_find_all", rt_regex_find_all(re.raw(), h, opts(&[("offsets", Value::TRUE), ("limit", Value::int(50))]).raw()))
        .expect("find_all offsets");
    let _ = result("rt_regex_replace", rt_regex_replace(re.raw(), h, text("<$1|${name}|$$>"), NIL)).expect("replace");
    let _ = result("rt_regex_split", rt_regex_split(re.raw(), h, NIL)).expect("split");
    // SAFETY: the declaration matches core's export `RtValue rt_handle_close(RtValue)`;
    // `re` is the live regex handle made above; using it after close is the point of the
    // next check (an Error Closed, never a dangling access).
    unsafe { rt_handle_close(re.raw()) };
    // Closed handle: Error Closed, not a crash.
    match result("rt_regex_find", rt_regex_find(re.raw(), h)) {
        Err((Code::Closed, _)) => {}
        other => panic!("find on a closed Regex handle: {other:?}"),
    }
});
