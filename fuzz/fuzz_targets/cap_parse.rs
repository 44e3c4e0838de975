//! rt_cap_parse (in libffi_core.so) on arbitrary text (invalid UTF-8
//! replaced): a policy dict or Error InvalidArgument/Parse, never a panic.
//! Only the parser: rt_cap_restrict is never called (it would narrow this
//! process's policy for good).
#![no_main]
use ffi_sdk::abi::RtValue;
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

extern "C" {
    fn rt_cap_parse(text: RtValue) -> RtValue;
}

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    // SAFETY: the declaration matches core's export `RtValue rt_cap_parse(RtValue)`; the
    // argument is a fresh text value on this stack, and the parser only reads it.
    if let Ok(p) = result("rt_cap_parse", unsafe { rt_cap_parse(text(&src)) }) {
        assert!(p.is_dict(), "rt_cap_parse returned {} for {src:?}", p.describe());
    }
});
