//! The panic boundary every export runs inside: a panic becomes Error Panic
//! with its message; nothing unwinds into the host.

use crate::abi::RtValue;
use crate::error::{Code, Error, RtResult};
use crate::value::Value;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs a domain function body; its result or failure becomes the returned word.
#[inline]
pub fn call<F: FnOnce() -> RtResult<Value>>(func: &'static str, f: F) -> RtValue {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v.raw(),
        Ok(Err(e)) => e.into_value().raw(),
        Err(p) => panic_error(func, p).raw(),
    }
}

#[cold]
fn panic_error(func: &str, p: Box<dyn Any + Send>) -> Value {
    let msg = if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    };
    Error::plain(Code::Panic, func, format!("internal panic caught at the boundary: {msg}")).into_value()
}

/// What a host-surface function returns when its body panicked.
pub trait OnPanic {
    fn on_panic(func: &str, p: Box<dyn Any + Send>) -> Self;
}
impl OnPanic for RtValue {
    fn on_panic(func: &str, p: Box<dyn Any + Send>) -> Self {
        panic_error(func, p).raw()
    }
}
macro_rules! zero_on_panic {
    ($($t:ty = $z:expr),*) => {$(
        impl OnPanic for $t { fn on_panic(_: &str, _: Box<dyn Any + Send>) -> Self { $z } }
    )*};
}
zero_on_panic!(u32 = 0, i32 = 0, i64 = 0, usize = 0, bool = false, () = (), f64 = f64::NAN,
    *const u8 = std::ptr::null(), *const libc::c_char = std::ptr::null(),
    *mut libc::c_void = std::ptr::null_mut(), *const libc::c_void = std::ptr::null());
