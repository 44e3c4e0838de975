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
