//! Argument extraction: each parameter type of an `#[rt_fn]` implements
//! [`FromArg`], which checks the kind and names the function, position and
//! parameter in the error. `TY` is the parameter's registry type.

use crate::abi::{RtValue, TypeDesc};
use crate::error::{Code, Error, RtResult};
use crate::value::Value;

/// Conversion of one `RtValue` argument into a Rust parameter.
pub trait FromArg<'a>: Sized {
    const TY: TypeDesc;
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self>;
}

const fn td(name: &'static str) -> TypeDesc {
    TypeDesc { name, sub: "", optional: false }
}

/// TypeMismatch: `rt_f: argument 2 (path) must be text, got int 42`.
pub fn kind_error(func: &str, idx: usize, name: &str, want: &str, got: Value) -> Error {
    Error::plain(
        Code::TypeMismatch,
        func,
        format!("argument {} ({name}) must be {want}, got {}", idx + 1, got.describe()),
    )
    .with("argument", idx + 1)
}

impl<'a> FromArg<'a> for Value {
    const TY: TypeDesc = td("any");
    #[inline]
    fn from_arg(v: RtValue, _: &'static str, _: usize, _: &'static str) -> RtResult<Self> {
        Ok(Value::from_raw(v))
    }
}

impl<'a> FromArg<'a> for i64 {
    const TY: TypeDesc = td("int");
    #[inline]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        val.as_int().ok_or_else(|| kind_error(func, idx, name, "int", val))
    }
}

/// A non-negative int (sizes, counts, indexes).
impl<'a> FromArg<'a> for u64 {
    const TY: TypeDesc = td("int");
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let i = i64::from_arg(v, func, idx, name)?;
        u64::try_from(i).map_err(|_| {
            Error::invalid(func, format!("argument {} ({name}) must not be negative", idx + 1), i)
        })
    }
}

impl<'a> FromArg<'a> for f64 {
    const TY: TypeDesc = td("float");
    /// Floats, and ints (converted) since hosts often write `1` for `1.0`.
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        val.as_float()
            .or_else(|| val.as_int().map(|i| i as f64))
            .ok_or_else(|| kind_error(func, idx, name, "float", val))
    }
}

impl<'a> FromArg<'a> for bool {
    const TY: TypeDesc = td("bool");
    #[inline]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        val.as_bool().ok_or_else(|| kind_error(func, idx, name, "bool", val))
    }
}

impl<'a> FromArg<'a> for &'a str {
    const TY: TypeDesc = td("text");
    #[inline]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        val.as_text().ok_or_else(|| kind_error(func, idx, name, "text", val))
    }
}

/// `bytes` parameters accept bytes, and text as its UTF-8 bytes.
impl<'a> FromArg<'a> for &'a [u8] {
    const TY: TypeDesc = td("bytes");
    #[inline]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        val.as_text_or_bytes().ok_or_else(|| kind_error(func, idx, name, "bytes or text", val))
    }
}

/// An array argument (any element kinds).
#[derive(Clone, Copy, Debug)]
pub struct Array(pub Value);

impl<'a> FromArg<'a> for Array {
    const TY: TypeDesc = TypeDesc { name: "array", sub: "any", optional: false };
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        if val.is_array() {
            Ok(Array(val))
        } else {
            Err(kind_error(func, idx, name, "array", val))
        }
    }
}

/// A dict argument.
#[derive(Clone, Copy, Debug)]
pub struct Dict(pub Value);

impl<'a> FromArg<'a> for Dict {
    const TY: TypeDesc = td("dict");
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        if val.is_dict() {
            Ok(Dict(val))
        } else {
            Err(kind_error(func, idx, name, "dict", val))
        }
    }
}

/// An array of texts, copied out.
impl<'a> FromArg<'a> for Vec<String> {
    const TY: TypeDesc = TypeDesc { name: "array", sub: "text", optional: false };
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        if !val.is_array() {
            return Err(kind_error(func, idx, name, "array of text", val));
        }
        let mut out = Vec::with_capacity(val.len());
        for (i, item) in val.items().enumerate() {
            match item.as_text() {
                Some(s) => out.push(s.to_string()),
                None => {
                    return Err(Error::plain(
                        Code::TypeMismatch,
                        func,
                        format!("argument {} ({name}) item {i} must be text, got {}", idx + 1, item.describe()),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Nil gives `None`; anything else must convert.
impl<'a, T: FromArg<'a>> FromArg<'a> for Option<T> {
    const TY: TypeDesc = TypeDesc { name: T::TY.name, sub: T::TY.sub, optional: true };
    #[inline]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        if v == crate::abi::NIL {
            Ok(None)
        } else {
            T::from_arg(v, func, idx, name).map(Some)
        }
    }
}
