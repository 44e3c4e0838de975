//! Shared helpers of the ffi_io integration tests.
#![allow(dead_code, unused_imports)]

pub use ffi_sdk::abi::RtValue;
pub use ffi_sdk::testing::{bytes, err, int, ok, text, NIL};
pub use ffi_sdk::{Code, Value};
use std::path::{Path, PathBuf};

/// Closes a handle (core's generic close).
pub fn rt_handle_close(h: RtValue) -> RtValue {
    ffi_sdk::testing::close(h)
}

/// A text argument from a path.
pub use ffi_sdk::testing::tp;

/// The Error code of a result (panics when it is not an Error).
#[track_caller]
pub fn code(v: RtValue) -> Code {
    err(v).0
}

/// Asserts an Error with `want` whose message starts with the function name.
#[track_caller]
pub fn expect_err(v: RtValue, want: Code, func: &str) -> String {
    let (c, m) = err(v);
    assert_eq!(c, want, "{m}");
    assert!(m.starts_with(func), "message should name {func}: {m}");
    m
}

/// A canonical temporary directory (kept until the returned guard drops).
pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = std::fs::canonicalize(d.path()).expect("canonical tempdir");
    (d, p)
}

/// Texts of an array value.
pub fn texts(v: Value) -> Vec<String> {
    v.items().map(|x| x.as_text().expect("text item").to_string()).collect()
}

/// A dict value from (key, value) pairs, for options.
pub use ffi_sdk::testing::dict;

/// Entries of `dir` that look like temp files left by rt_file_atomic_write.
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rt-atomic."))
        .collect()
}

/// Runs a shell command, returns (exit code, stdout).
pub fn sh(cmd: &str) -> (i32, String) {
    let o = std::process::Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
}
