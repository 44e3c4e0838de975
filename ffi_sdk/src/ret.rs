//! Results: each return type of an `#[rt_fn]` implements [`IntoRet`]; `TY`
//! is its registry type.

use crate::abi::TypeDesc;
use crate::error::{Error, RtResult};
use crate::value::Value;

/// Conversion of a Rust result into the returned `RtValue`.
pub trait IntoRet {
    const TY: TypeDesc;
    fn into_ret(self) -> RtResult<Value>;
}

const fn td(name: &'static str) -> TypeDesc {
    TypeDesc { name, sub: "", optional: false }
}

impl IntoRet for Value {
    const TY: TypeDesc = td("any");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        // A function may hand out an object it did not allocate on this thread (a queued
        // message, a request made by a serving thread, an item of a shared structure): the
        // caller's stack must be scanned from now on, so the calling thread is registered
        // here as it is on its first allocation (CONTRACT §4; a thread-local check when it is).
        if self.raw() & 0b111 == crate::abi::TAG_HEAP {
            // SAFETY: no arguments; registering the calling thread is valid from any thread
            // at any time (a no-op once registered).
            unsafe { crate::abi::rt__thread_enter() };
        }
        Ok(self)
    }
}
impl IntoRet for () {
    const TY: TypeDesc = td("nil");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::NIL)
    }
}
impl IntoRet for i64 {
    const TY: TypeDesc = td("int");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::int(self))
    }
}
impl IntoRet for u64 {
    const TY: TypeDesc = td("int");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        // Values above i64::MAX keep their bits (documented per function as unsigned).
        Ok(Value::int(self as i64))
    }
}
impl IntoRet for usize {
    const TY: TypeDesc = td("int");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::int(self as i64))
    }
}
impl IntoRet for i32 {
    const TY: TypeDesc = td("int");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::int(self as i64))
    }
}
impl IntoRet for u32 {
    const TY: TypeDesc = td("int");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::int(self as i64))
    }
}
impl IntoRet for f64 {
    const TY: TypeDesc = td("float");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::float(self))
    }
}
impl IntoRet for bool {
    const TY: TypeDesc = td("bool");
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::bool(self))
    }
}
impl IntoRet for String {
    const TY: TypeDesc = td("text");
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::text(&self))
    }
}
impl IntoRet for &str {
    const TY: TypeDesc = td("text");
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::text(self))
    }
}
impl IntoRet for Vec<u8> {
    const TY: TypeDesc = td("bytes");
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::bytes(&self))
    }
}
impl IntoRet for Vec<String> {
    const TY: TypeDesc = TypeDesc { name: "array", sub: "text", optional: false };
    fn into_ret(self) -> RtResult<Value> {
        Ok(Value::text_array(self))
    }
}
impl<T: IntoRet> IntoRet for Option<T> {
    const TY: TypeDesc = TypeDesc { name: T::TY.name, sub: T::TY.sub, optional: true };
    fn into_ret(self) -> RtResult<Value> {
        match self {
            Some(v) => v.into_ret(),
            None => Ok(Value::NIL),
        }
    }
}
impl<T: IntoRet> IntoRet for Result<T, Error> {
    const TY: TypeDesc = T::TY;
    #[inline]
    fn into_ret(self) -> RtResult<Value> {
        self.and_then(IntoRet::into_ret)
    }
}

