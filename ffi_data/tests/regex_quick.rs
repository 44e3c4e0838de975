//! The regex functions serving Simple's `io/regex_ffi.spl`, with Python's `re` as oracle.

use ffi_data::regex::*;
use ffi_data::regex_quick::*;
use ffi_sdk::testing::{err, ok, text, NIL};
use ffi_sdk::Code;

fn py(expr: &str) -> String {
    let o = std::process::Command::new("python3").args(["-c", &format!("import re\nprint({expr})")]).output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn quick_forms_match_python_re() {
    let s = "a1b22c333";
    assert_eq!(ok(rt_regex_is_match_quick(text(r"\d+"), text(s))).as_bool(), Some(true));
    assert_eq!(ok(rt_regex_is_match_quick(text(r"x"), text(s))).as_bool(), Some(false));
    assert_eq!(ok(rt_regex_find_quick(text(r"\d{2}"), text(s))).as_text().unwrap(), py(r"re.search(r'\d{2}', 'a1b22c333').group()"));
    assert!(ok(rt_regex_find_quick(text("z"), text(s))).is_nil());
    assert_eq!(ok(rt_regex_replace_all_quick(text(r"(\d)"), text(s), text("<$1>"))).as_text().unwrap(), py(r"re.sub(r'(\d)', r'<\1>', 'a1b22c333')"));
    assert_eq!(ok(rt_regex_replace_quick(text(r"\d"), text(s), text("#"))).as_text().unwrap(), py(r"re.sub(r'\d', '#', 'a1b22c333', count=1)"));
    let parts: Vec<String> = ok(rt_regex_split_quick(text(r"\d+"), text(s))).items().map(|v| v.as_text().unwrap().to_string()).collect();
    assert_eq!(format!("{parts:?}").replace('"', "'"), py(r"re.split(r'\d+', 'a1b22c333')"));
    let (c, m) = err(rt_regex_is_match_quick(text("(unclosed"), text(s)));
    assert_eq!(c, Code::Parse);
    assert!(m.starts_with("rt_regex_is_match_quick"), "{m}");
    assert_eq!(err(rt_regex_find_quick(NIL, text(s))).0, Code::TypeMismatch);
}

#[test]
fn handle_forms() {
    let re = ok(rt_regex_new(text(r"(\w)(\d)?"), NIL));
    assert_eq!(ok(rt_regex_captures_len(re.raw(), text("a1"))).as_int(), Some(3));
    assert_eq!(ok(rt_regex_captures_len(re.raw(), text("!!"))).as_int(), Some(0));
    assert_eq!(ok(rt_regex_replace_all(re.raw(), text("a1 b2"), text("$2$1"))).as_text(), Some("1a 2b"));
    ok(rt_regex_destroy(re.raw()));
    assert_eq!(err(rt_regex_destroy(re.raw())).0, Code::Closed);
}
