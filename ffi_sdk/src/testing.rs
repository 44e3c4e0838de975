//! Helpers for tests of domain crates (they run against the real
//! `libffi_core.so`). Capability tests narrow the process policy for good:
//! put them in their own integration-test binary.

use crate::abi::RtValue;
use crate::error::Code;
use crate::value::Value;

extern "C" {
    fn rt_cap_parse(text: RtValue) -> RtValue;
    fn rt_cap_restrict(policy: RtValue) -> RtValue;
    fn rt_gc_collect() -> RtValue;
    fn rt_handle_close(h: RtValue) -> RtValue;
}

/// Closes a handle through the core's generic `rt_handle_close` (true if it was open).
pub fn close(h: RtValue) -> RtValue {
    // SAFETY: `rt_handle_close` is an `#[rt_fn]` export of libffi_core.so with exactly this
    // C signature (one RtValue in, one out); it checks its argument's kind itself.
    unsafe { rt_handle_close(h) }
}

/// A text argument.
pub fn text(s: &str) -> RtValue {
    Value::text(s).raw()
}
/// A bytes argument.
pub fn bytes(b: &[u8]) -> RtValue {
    Value::bytes(b).raw()
}
/// An int argument.
pub fn int(i: i64) -> RtValue {
    Value::int(i).raw()
}
/// nil.
pub const NIL: RtValue = crate::abi::NIL;

/// The result, or a panic with the Error's message.
#[track_caller]
pub fn ok(v: RtValue) -> Value {
    let val = Value::from_raw(v);
    if let Some((c, m)) = val.error() {
        panic!("expected success, got {}: {m}", c.name());
    }
    val
}

/// The Error's code and message, or a panic if `v` is not an Error.
#[track_caller]
pub fn err(v: RtValue) -> (Code, String) {
    Value::from_raw(v).error().unwrap_or_else(|| panic!("expected an Error, got {}", Value::from_raw(v).describe()))
}

/// Narrows the process policy with the text form (`fs.read=/tmp/x;*=true`).
pub fn restrict(policy: &str) {
    // SAFETY: `rt_cap_parse` is core's `#[rt_fn]` export, declared above with its C
    // signature (RtValue -> RtValue); the text argument is a fresh value on this stack.
    let p = unsafe { rt_cap_parse(text(policy)) };
    ok(p);
    // SAFETY: `rt_cap_restrict(RtValue) -> RtValue`, declared with its export's signature;
    // `p` is on this stack (scanned), so it is alive, and a non-dict gives an Error.
    ok(unsafe { rt_cap_restrict(p) });
}

/// Forces a full collection and runs finalizers.
pub fn collect() {
    // SAFETY: `rt_gc_collect` is core's `#[rt_fn]` export taking no arguments and returning
    // one RtValue (nil), as declared above.
    unsafe { rt_gc_collect() };
}

/// Runs `body` in a fresh run of this test binary, alone, so a test that
/// narrows the process policy cannot affect the others. `test_name` is the
/// name libtest prints (`module::name` inside modules).
#[track_caller]
pub fn in_child(test_name: &str, body: impl FnOnce()) {
    const KEY: &str = "RT_TEST_CHILD";
    if std::env::var(KEY).ok().as_deref() == Some(test_name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let st = std::process::Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(KEY, test_name)
        .status()
        .expect("re-running the test binary");
    assert!(st.success(), "child run of {test_name} failed");
}

/// A dict argument from (key, value) pairs (options dicts in tests and benches).
pub fn dict(pairs: &[(&str, Value)]) -> RtValue {
    let d = Value::dict();
    for (k, v) in pairs {
        d.set(k, *v);
    }
    d.raw()
}

/// The details dict of an Error value (panics if `v` is not an Error).
#[track_caller]
pub fn details(v: RtValue) -> Value {
    let val = Value::from_raw(v);
    assert!(val.is_error(), "not an error: {}", val.describe());
    val.error_details()
}

/// A text argument from a path (test paths are UTF-8).
pub fn tp(p: &std::path::Path) -> RtValue {
    text(p.to_str().expect("utf-8 test path"))
}

/// The Error of `v`, asserting its code and that its message names `func` (`func: what (input)`,
/// or `func needs cap for resource` for CapabilityDenied); the message.
#[track_caller]
pub fn err_named(v: RtValue, code: Code, func: &str) -> String {
    let (c, msg) = err(v);
    assert_eq!(c, code, "{msg}");
    assert!(msg.starts_with(&format!("{func}: ")) || msg.starts_with(&format!("{func} needs ")), "message does not name {func}: {msg}");
    msg
}

/// A temporary directory, removed with its contents when dropped (see [`tmp`]).
pub struct TmpDir(std::path::PathBuf);

impl TmpDir {
    /// Its (canonical) path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh private (0700) directory under the system temp dir, by its canonical path, kept until
/// the returned guard drops: `let (_g, d) = tmp();`.
pub fn tmp() -> (TmpDir, std::path::PathBuf) {
    use std::os::unix::fs::DirBuilderExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let p = base.join(format!("rt-test-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => {
                let c = std::fs::canonicalize(&p).expect("canonical temp dir");
                return (TmpDir(c.clone()), c);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating {}: {e}", p.display()),
        }
    }
}

extern "C" {
    fn rt_deadline_set(micros_from_now: i64) -> i64;
    fn rt_deadline_restore(previous: i64);
    fn rt_cancel_new() -> RtValue;
    fn rt_cancel_bind(token: RtValue) -> RtValue;
    fn rt_cancel_unbind() -> RtValue;
    fn rt_cancel_trigger(token: RtValue) -> RtValue;
}

/// Runs `f` under a deadline `micros` from now on this thread, restoring the one before afterwards.
pub fn with_deadline_us<T>(micros: i64, f: impl FnOnce() -> T) -> T {
    // SAFETY: core's `int64_t rt_deadline_set(int64_t)`, declared above with its C signature:
    // by value, it sets this thread's own deadline.
    let prev = unsafe { rt_deadline_set(micros) };
    let r = f();
    // SAFETY: core's `void rt_deadline_restore(int64_t)`: by value, `prev` as rt_deadline_set returned it.
    unsafe { rt_deadline_restore(prev) };
    r
}

/// A fresh cancel token (handle<CancelToken>). Keep the value alive (on a stack) while another
/// thread has it bound or it is still to be triggered.
pub fn cancel_new() -> Value {
    // SAFETY: core's `RtValue rt_cancel_new(void)`, declared above: no arguments.
    ok(unsafe { rt_cancel_new() })
}

/// Runs `f` with `token` (a live token's raw word) bound to this thread, unbinding it afterwards.
pub fn with_cancel<T>(token: RtValue, f: impl FnOnce() -> T) -> T {
    // SAFETY: core's `RtValue rt_cancel_bind(RtValue)`: by value; it checks the handle kind itself.
    ok(unsafe { rt_cancel_bind(token) });
    let r = f();
    // SAFETY: core's `RtValue rt_cancel_unbind(void)`: no arguments, this thread's binding only.
    ok(unsafe { rt_cancel_unbind() });
    r
}

/// Triggers the cancel token `token` (its raw word; the caller keeps the token alive).
pub fn cancel_trigger(token: RtValue) {
    // SAFETY: core's `RtValue rt_cancel_trigger(RtValue)`: by value; it checks the handle kind itself.
    ok(unsafe { rt_cancel_trigger(token) });
}
