//! Regular-expression helpers under the names Simple's `io/regex_ffi.spl`
//! declares: the `_quick` forms take the pattern text (compiled with
//! rt_regex_new's defaults and limits, through its cache of 256 patterns),
//! the others a Regex handle.

use crate::regex::{compile_default, Regex};
use ffi_sdk::prelude::*;

/// Number of groups (group 0 included) of the first match of `re` in
/// `text`, 0 when it does not match.
///
/// # Errors
/// - Closed: `re` was closed
#[rt_fn(tier = "verified")]
pub fn rt_regex_captures_len(re: Handle<Regex>, text: &str) -> i64 {
    re.re.captures(text).map_or(0, |c| c.len() as i64)
}

/// Releases a Regex handle (rt_handle_close under Simple's name).
///
/// # Errors
/// - Closed: it was released already; `re` was closed
#[rt_fn(tier = "verified")]
pub fn rt_regex_destroy(re: Handle<Regex>) {
    re.close();
}

/// Replaces every match of `re` in `text` with `replacement` (`$1`, `${name}`
/// expand; `$$` is a dollar): rt_regex_replace with all matches.
///
/// # Errors
/// - Closed: `re` was closed
#[rt_fn(tier = "verified")]
pub fn rt_regex_replace_all(re: Handle<Regex>, text: &str, replacement: &str) -> String {
    re.re.replace_all(text, replacement).into_owned()
}

/// True when `pattern` matches somewhere in `text`.
///
/// # Errors
/// - Parse: for a bad pattern, LimitExceeded beyond rt_regex_new's default limits
/// - LimitExceeded: compiled pattern exceeds the size limit of <limit> bytes (option size_limit); pattern is … bytes, over the length limit of <max_len> bytes (option max_pattern_len)
#[rt_fn(tier = "verified")]
pub fn rt_regex_is_match_quick(pattern: &str, text: &str) -> RtResult<bool> {
    Ok(compile_default(FN, pattern)?.is_match(text))
}

/// The text of the first match of `pattern` in `text`; nil when none.
///
/// # Errors
/// - Parse: invalid pattern: <what> at line … column …; invalid pattern
/// - LimitExceeded: compiled pattern exceeds the size limit of <limit> bytes (option size_limit); pattern is … bytes, over the length limit of <max_len> bytes (option max_pattern_len)
#[rt_fn(tier = "verified")]
pub fn rt_regex_find_quick(pattern: &str, text: &str) -> RtResult<Option<String>> {
    Ok(compile_default(FN, pattern)?.find(text).map(|m| m.as_str().to_string()))
}

/// Replaces the first match of `pattern` in `text` (`$1`, `${name}` expand).
///
/// # Errors
/// - Parse: invalid pattern: <what> at line … column …; invalid pattern
/// - LimitExceeded: compiled pattern exceeds the size limit of <limit> bytes (option size_limit); pattern is … bytes, over the length limit of <max_len> bytes (option max_pattern_len)
#[rt_fn(tier = "verified")]
pub fn rt_regex_replace_quick(pattern: &str, text: &str, replacement: &str) -> RtResult<String> {
    Ok(compile_default(FN, pattern)?.replace(text, replacement).into_owned())
}

/// Replaces every match of `pattern` in `text` (`$1`, `${name}` expand).
///
/// # Errors
/// - Parse: invalid pattern: <what> at line … column …; invalid pattern
/// - LimitExceeded: compiled pattern exceeds the size limit of <limit> bytes (option size_limit); pattern is … bytes, over the length limit of <max_len> bytes (option max_pattern_len)
#[rt_fn(tier = "verified")]
pub fn rt_regex_replace_all_quick(pattern: &str, text: &str, replacement: &str) -> RtResult<String> {
    Ok(compile_default(FN, pattern)?.replace_all(text, replacement).into_owned())
}

/// The pieces of `text` between matches of `pattern` (Simple declares
/// `-> text`: ours is an array of text).
///
/// # Errors
/// - Parse: invalid pattern: <what> at line … column …; invalid pattern
/// - LimitExceeded: compiled pattern exceeds the size limit of <limit> bytes (option size_limit); pattern is … bytes, over the length limit of <max_len> bytes (option max_pattern_len)
#[rt_fn(tier = "verified", ret = "array<text>")]
pub fn rt_regex_split_quick(pattern: &str, text: &str) -> RtResult<Value> {
    let re = compile_default(FN, pattern)?;
    let out = Value::array(0);
    for piece in re.split(text) {
        out.push(Value::text(piece));
    }
    Ok(out)
}
