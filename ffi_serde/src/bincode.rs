//! bincode 2: a compact, self-describing binary encoding of any value tree,
//! exact on the way back (every int, every float bit pattern, text vs bytes,
//! key kinds and order).
//!
//! Format: the bincode 2 `config::standard()` encoding (little endian,
//! variable-length integers) of [`Node`] below. Rust programs can decode it
//! with `bincode::decode_from_slice::<Node, _>(bytes, config::standard())`.
//! The library encodes and decodes values directly (no intermediate tree),
//! byte for byte as the derived implementation of `Node` would (tested).

use crate::convert::{FirstError, MAX_DEPTH};
use bincode::de::read::BorrowReader;
use bincode::de::{BorrowDecoder, Decode, Decoder};
use bincode::enc::{Encode, Encoder};
use bincode::error::{DecodeError, EncodeError};
use ffi_sdk::abi::Kind;
use ffi_sdk::prelude::*;

/// The schema of the encoding (the value tree as a Rust enum).
#[derive(bincode::Encode, bincode::Decode, Clone, Debug, PartialEq)]
pub enum Node {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Node>),
    Dict(Vec<(Node, Node)>),
}

const NIL: u32 = 0;
const BOOL: u32 = 1;
const INT: u32 = 2;
const FLOAT: u32 = 3;
const TEXT: u32 = 4;
const BYTES: u32 = 5;
const ARRAY: u32 = 6;
const DICT: u32 = 7;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

struct EncCtx {
    err: FirstError,
}

/// A value (and its ancestors, for cycle detection and error paths) to encode.
struct Enc<'a> {
    v: Value,
    parent: Option<&'a Enc<'a>>,
    seg: Option<usize>,
    depth: usize,
    ctx: &'a EncCtx,
}

impl Enc<'_> {
    fn path(&self) -> String {
        let mut segs = Vec::new();
        let mut p = Some(self);
        while let Some(n) = p {
            if let Some(s) = n.seg {
                segs.push(s);
            }
            p = n.parent;
        }
        let mut out = String::from("$");
        for s in segs.iter().rev() {
            out.push_str(&format!("[{s}]"));
        }
        out
    }
    fn fail(&self, code: Code, what: String) -> EncodeError {
        let p = self.path();
        let e = Error::new(code, "rt_bincode_encode", what, format!("at {p}")).with("path", p);
        EncodeError::OtherString(self.ctx.err.record(e))
    }
    fn child<'b>(&'b self, v: Value, seg: usize) -> Enc<'b> {
        Enc { v, parent: Some(self), seg: Some(seg), depth: self.depth + 1, ctx: self.ctx }
    }
    fn contains_ancestor(&self, v: Value) -> bool {
        let mut p = self.parent;
        while let Some(n) = p {
            if n.v.raw() == v.raw() {
                return true;
            }
            p = n.parent;
        }
        false
    }
}

impl Encode for Enc<'_> {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        let v = self.v;
        match v.kind() {
            Kind::Nil => NIL.encode(e),
            Kind::Bool => {
                BOOL.encode(e)?;
                v.as_bool().unwrap_or(false).encode(e)
            }
            Kind::Int => {
                INT.encode(e)?;
                v.as_int().unwrap_or(0).encode(e)
            }
            Kind::Float => {
                FLOAT.encode(e)?;
                v.as_float().unwrap_or(f64::NAN).encode(e)
            }
            Kind::String => {
                TEXT.encode(e)?;
                v.as_text().unwrap_or("").encode(e)
            }
            Kind::Bytes => {
                BYTES.encode(e)?;
                v.as_bytes().unwrap_or(&[]).encode(e)
            }
            Kind::Array | Kind::Dict => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.fail(Code::LimitExceeded, format!("nesting deeper than {MAX_DEPTH}")));
                }
                if self.contains_ancestor(v) {
                    return Err(self.fail(Code::InvalidArgument, "cycle: the value contains itself".into()));
                }
                if v.is_array() {
                    let items = v.array_items();
                    ARRAY.encode(e)?;
                    (items.len() as u64).encode(e)?;
                    for i in 0..items.len() {
                        self.child(items.item(i), i).encode(e)?;
                    }
                } else {
                    let entries = v.dict_entries();
                    DICT.encode(e)?;
                    (entries.len() as u64).encode(e)?;
                    for i in 0..entries.len() {
                        let (k, val) = entries.entry(i);
                        self.child(k, i).encode(e)?;
                        self.child(val, i).encode(e)?;
                    }
                }
                Ok(())
            }
            Kind::Error | Kind::Handle | Kind::Invalid => {
                Err(self.fail(Code::Unsupported, format!("{} has no bincode representation", v.describe())))
            }
        }
    }
}

/// Encodes any value tree (nil, bool, int, float, text, bytes, array, dict) as bincode 2 bytes; handles and cycles are Errors naming the path.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(tier = "verified", ret = "bytes")]
pub fn rt_bincode_encode(value: Value) -> RtResult<Value> {
    let ctx = EncCtx { err: FirstError::default() };
    let root = Enc { v: value, parent: None, seg: None, depth: 0, ctx: &ctx };
    match bincode::encode_to_vec(&root, config()) {
        Ok(bytes) => Ok(Value::bytes(&bytes)),
        Err(e) => Err(ctx.err.take().unwrap_or_else(|| Error::internal(FN, e))),
    }
}

fn corrupt(func: &'static str, what: impl std::fmt::Display, at: usize) -> Error {
    Error::new(Code::Parse, func, format!("invalid bincode value: {what}"), format!("at byte {at}")).with("position", at)
}

/// The input, read front to back; what is left is always known.
struct Src<'a> {
    rest: &'a [u8],
}

impl bincode::de::read::Reader for Src<'_> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), DecodeError> {
        let b = self.take_bytes(bytes.len())?;
        bytes.copy_from_slice(b);
        Ok(())
    }
}

impl<'a> BorrowReader<'a> for Src<'a> {
    #[inline]
    fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::UnexpectedEnd { additional: n - self.rest.len() });
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
}

type Dec<'a> = bincode::de::DecoderImpl<Src<'a>, bincode::config::Configuration, ()>;

#[inline]
fn remaining(d: &mut Dec<'_>) -> usize {
    d.reader().rest.len()
}

/// Decodes one node; values are built directly (each container is a local here).
fn decode_node(func: &'static str, d: &mut Dec<'_>, total: usize, depth: usize) -> Result<Value, Error> {
    let at = total - remaining(d);
    let de = |e: DecodeError, d: &mut Dec<'_>| corrupt(func, e, total - remaining(d));
    let tag = u32::decode(d).map_err(|e| de(e, d))?;
    Ok(match tag {
        NIL => Value::NIL,
        BOOL => Value::bool(bool::decode(d).map_err(|e| de(e, d))?),
        INT => Value::int(i64::decode(d).map_err(|e| de(e, d))?),
        FLOAT => Value::float(f64::decode(d).map_err(|e| de(e, d))?),
        TEXT | BYTES => {
            let n = len(d).map_err(|e| de(e, d))?;
            let b = d.borrow_reader().take_bytes(n).map_err(|e| de(e, d))?;
            if tag == BYTES {
                Value::bytes(b)
            } else {
                match std::str::from_utf8(b) {
                    Ok(s) => Value::text(s),
                    Err(e) => return Err(corrupt(func, format!("text is not UTF-8 ({e})"), total - remaining(d))),
                }
            }
        }
        ARRAY | DICT => {
            if depth >= MAX_DEPTH {
                return Err(Error::new(Code::LimitExceeded, func, format!("nesting deeper than {MAX_DEPTH}"), format!("at byte {at}")));
            }
            let n = len(d).map_err(|e| de(e, d))?;
            // Every element takes at least one byte: refuse lengths the input cannot hold before allocating.
            if n > remaining(d) {
                return Err(corrupt(func, format!("length {n} exceeds the remaining input"), total - remaining(d)));
            }
            if tag == ARRAY {
                let a = Value::array(n.min(4096));
                for _ in 0..n {
                    a.push(decode_node(func, d, total, depth + 1)?);
                }
                a
            } else {
                let m = Value::dict();
                for _ in 0..n {
                    let k = decode_node(func, d, total, depth + 1)?;
                    let v = decode_node(func, d, total, depth + 1)?;
                    m.set_value(k, v)?;
                }
                m
            }
        }
        other => return Err(corrupt(func, format!("unknown tag {other}"), at)),
    })
}

fn len(d: &mut Dec<'_>) -> Result<usize, DecodeError> {
    let n = u64::decode(d)?;
    usize::try_from(n).map_err(|_| DecodeError::OutsideUsizeRange(n))
}

/// Decodes bytes made by rt_bincode_encode back into the value tree; malformed or trailing input is Error Parse with the byte position.
///
/// # Errors
/// - Parse: invalid bincode value
/// - LimitExceeded: nesting deeper than …
#[rt_fn(tier = "verified")]
pub fn rt_bincode_decode(data: &[u8]) -> RtResult<Value> {
    let mut d: Dec<'_> = bincode::de::DecoderImpl::new(Src { rest: data }, config(), ());
    let v = decode_node(FN, &mut d, data.len(), 0)?;
    let rest = remaining(&mut d);
    if rest != 0 {
        return Err(corrupt(FN, format!("{rest} bytes after the value"), data.len() - rest));
    }
    Ok(v)
}
