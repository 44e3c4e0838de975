//! The one mapping between documents and values (documented in the crate
//! docs), for the formats that go through serde (TOML both ways, YAML
//! writing), and the pieces the own readers and writers (`json_read.rs`,
//! `json_write.rs`, `yaml_read.rs`) share with them (limits, error shapes,
//! key spelling, paths):
//! - parsing TOML: [`Seed`], a serde `DeserializeSeed` whose visitor builds values
//!   directly in collector memory while the parser runs (no intermediate tree:
//!   each container is a local of the visitor frame that fills it, so it is on
//!   the stack where the collector sees it);
//! - writing: [`Node`], a serde `Serialize` view of a value that checks what
//!   the format can represent and names the path of what it cannot.

use ffi_sdk::{Code, Error, Value};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use std::cell::RefCell;
use std::fmt;

pub use ffi_serde_core::rt::{key_string, push_key_segment};
pub use ffi_serde_core::{parse_error, BigInt, Format, MAX_DEPTH};

// ------------------------------------------------------------------ shared helpers

/// The first failure a visitor or serializer raised (serde's own error types
/// carry only a message; this keeps the code, path and details).
#[derive(Default)]
pub struct FirstError(RefCell<Option<Error>>);

impl FirstError {
    /// Keeps `e` unless an earlier failure is kept; returns its message for serde.
    pub fn record(&self, e: Error) -> String {
        let msg = e.message.clone();
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
        msg
    }
    pub fn take(&self) -> Option<Error> {
        self.0.borrow_mut().take()
    }
}

/// 1-based line and column of byte `pos` in `src` (column counted in characters).
pub fn line_col(src: &[u8], pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&src[start..pos]).chars().count() + 1;
    (line, col)
}

/// Byte offset of 1-based (line, column) where column counts bytes.
pub fn offset_of(src: &[u8], line: usize, col: usize) -> usize {
    let mut off = 0;
    for _ in 1..line {
        match src[off..].iter().position(|&b| b == b'\n') {
            Some(i) => off += i + 1,
            None => return src.len(),
        }
    }
    (off + col.saturating_sub(1)).min(src.len())
}

// ------------------------------------------------------------------ parsing

/// toml passes datetimes as a one-entry map under this key.
const TOML_DATETIME_TOKEN: &str = "$__toml_private_datetime";

/// Parse settings and the state one parse shares between visitor frames.
pub struct Ctx {
    pub func: &'static str,
    pub fmt: Format,
    pub bigint: BigInt,
    /// The first failure raised inside a visitor, with its real code (the
    /// parser only carries a message back).
    pub err: FirstError,
    /// Containers open around the current visitor frame.
    depth: std::cell::Cell<usize>,
}

impl Ctx {
    pub fn new(func: &'static str, fmt: Format, bigint: BigInt) -> Ctx {
        Ctx {
            func,
            fmt,
            bigint,
            err: FirstError::default(),
            depth: std::cell::Cell::new(0),
        }
    }

    /// Records `e` (the first one wins) and returns a parser error carrying its message.
    fn fail<E: de::Error>(&self, e: Error) -> E {
        E::custom(self.err.record(e))
    }

    /// The recorded failure, if a visitor raised one.
    pub fn take_err(&self) -> Option<Error> {
        self.err.take()
    }

    fn big_int(&self, digits: &str) -> Result<Value, Error> {
        match self.bigint {
            BigInt::Float => Ok(Value::float(digits.parse::<f64>().unwrap_or(f64::NAN))),
            BigInt::Text => Ok(Value::text(digits)),
            BigInt::Error => Err(Error::new(
                Code::OutOfRange,
                self.func,
                "integer outside the 64-bit range (option bigint: \"float\" or \"text\" accepts it)",
                digits,
            )),
        }
    }
}

/// Builds one value (and everything under it) from a serde deserializer.
#[derive(Clone, Copy)]
pub struct Seed<'c> {
    pub ctx: &'c Ctx,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key: the datetime token of toml, or a key value.
enum KeyOut {
    TomlDatetime,
    Key(Value),
}

#[derive(Clone, Copy)]
struct KeySeed<'c> {
    ctx: &'c Ctx,
    first: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = KeyOut;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<KeyOut, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = KeyOut;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyOut, E> {
        if self.first && s == TOML_DATETIME_TOKEN && self.ctx.fmt == Format::Toml {
            return Ok(KeyOut::TomlDatetime);
        }
        Ok(KeyOut::Key(Value::text(s)))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<KeyOut, E> {
        self.visit_str(s)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<KeyOut, E> {
        self.visit_str(&s)
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<KeyOut, E> {
        Ok(KeyOut::Key(Value::int(i)))
    }
    fn visit_u64<E: de::Error>(self, i: u64) -> Result<KeyOut, E> {
        Ok(KeyOut::Key(Value::text(&i.to_string())))
    }
}

/// The text value of a token map (`{"$__toml_private_datetime": "1979-05-27"}`).
struct TokenText;

impl<'de> DeserializeSeed<'de> for TokenText {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        <String as de::Deserialize>::deserialize(d)
    }
}

impl Seed<'_> {
    fn int_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        match i64::try_from(u) {
            Ok(i) => Ok(Value::int(i)),
            Err(_) => self.big(&u.to_string()),
        }
    }
    fn big<E: de::Error>(self, digits: &str) -> Result<Value, E> {
        if self.ctx.fmt == Format::Toml {
            // TOML integers are 64-bit by specification.
            return Err(self.ctx.fail(Error::new(Code::Parse, self.ctx.func, "integer outside the 64-bit range of TOML", digits)));
        }
        self.ctx.big_int(digits).map_err(|e| self.ctx.fail(e))
    }
}

impl Seed<'_> {
    /// One more container open; the same limit for every format.
    fn enter<E: de::Error>(self) -> Result<(), E> {
        let d = self.ctx.depth.get() + 1;
        if d > MAX_DEPTH {
            return Err(self.ctx.fail(Error::plain(Code::LimitExceeded, self.ctx.func, format!("nesting deeper than {MAX_DEPTH}"))));
        }
        self.ctx.depth.set(d);
        Ok(())
    }
    fn leave(self) {
        self.ctx.depth.set(self.ctx.depth.get() - 1);
    }

}

impl<'de> Seed<'_> {
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let ctx = self.ctx;
        let d = Value::dict();
        let mut first = true;
        while let Some(k) = map.next_key_seed(KeySeed { ctx, first })? {
            let was_first = first;
            first = false;
            let k = match k {
                KeyOut::TomlDatetime if was_first => {
                    let s = map.next_value_seed(TokenText)?;
                    // Balance the caller's leave().
                    self.ctx.depth.set(self.ctx.depth.get() + 1);
                    return Ok(Value::text(&rfc3339(s)));
                }
                KeyOut::TomlDatetime => Value::text(TOML_DATETIME_TOKEN),
                KeyOut::Key(k) => k,
            };
            if was_first {
                self.enter()?;
            }
            let v = map.next_value_seed(self)?;
            set_entry(ctx, d, k, v)?;
        }
        if first {
            // An empty mapping still counts as a level.
            self.enter()?;
        }
        Ok(d)
    }
}

/// A TOML datetime as RFC 3339 text: TOML 1.1 lets seconds be omitted (`07:32`);
/// they are written out (`07:32:00`), as RFC 3339 requires.
fn rfc3339(s: String) -> String {
    match s.parse::<toml::value::Datetime>() {
        Ok(mut dt) => match dt.time.as_mut() {
            Some(t) if t.second.is_none() => {
                t.second = Some(0);
                dt.to_string()
            }
            _ => s,
        },
        Err(_) => s,
    }
}

fn set_entry<E: de::Error>(ctx: &Ctx, d: Value, k: Value, v: Value) -> Result<(), E> {
    d.set_value(k, v).map(|_| ()).map_err(|e| ctx.fail(e))
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.int_u64(u)
    }
    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        match i64::try_from(i) {
            Ok(i) => Ok(Value::int(i)),
            Err(_) => self.big(&i.to_string()),
        }
    }
    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        match i64::try_from(u) {
            Ok(i) => Ok(Value::int(i)),
            Err(_) => self.big(&u.to_string()),
        }
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::text(s))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Value, E> {
        Ok(Value::text(s))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::text(&s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::bytes(b))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::NIL)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::NIL)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let a = Value::array(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(self)? {
            a.push(v);
        }
        self.leave();
        Ok(a)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        // Depth is counted inside: a one-entry token map (a number, a datetime) is no container.
        let r = self.map(map)?;
        self.leave();
        Ok(r)
    }
}

// ------------------------------------------------------------------ writing

/// Settings of one stringify and the first failure found.
pub struct SerCtx {
    pub func: &'static str,
    pub fmt: Format,
    pub sort_keys: bool,
    /// TOML: texts that are valid TOML datetimes are written as datetimes.
    pub datetimes: bool,
    pub err: FirstError,
}

impl SerCtx {
    pub fn new(func: &'static str, fmt: Format) -> SerCtx {
        SerCtx { func, fmt, sort_keys: false, datetimes: false, err: FirstError::default() }
    }

    fn fail<E: ser::Error>(&self, code: Code, what: String, path: &Path<'_>) -> E {
        let p = path.render();
        let e = Error::new(code, self.func, &what, format!("at {p}")).with("path", p);
        E::custom(self.err.record(e))
    }

    /// The recorded failure, or `other` converted by the caller.
    pub fn take_err(&self) -> Option<Error> {
        self.err.take()
    }
}

/// One step of the path from the root, kept on the stack (parent links).
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg,
    /// The value at this path (for cycle detection).
    at: Value,
    depth: usize,
}

#[derive(Clone, Copy)]
enum Seg {
    Root,
    Index(usize),
    Key(Value),
}

impl<'a> Path<'a> {
    pub fn root(v: Value) -> Path<'static> {
        Path { parent: None, seg: Seg::Root, at: v, depth: 0 }
    }
    fn child(&'a self, seg: Seg, at: Value) -> Path<'a> {
        Path { parent: Some(self), seg, at, depth: self.depth + 1 }
    }
    /// `$`, `$.name`, `$[3]`, `$["odd key"]`.
    pub fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut p = Some(self);
        while let Some(n) = p {
            segs.push(n.seg);
            p = n.parent;
        }
        let mut out = String::from("$");
        for s in segs.iter().rev() {
            match s {
                Seg::Root => {}
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Key(k) => push_key_segment(&mut out, *k),
            }
        }
        out
    }
    fn is_ancestor(&self, v: Value) -> bool {
        let mut p = self.parent;
        while let Some(n) = p {
            if n.at.raw() == v.raw() {
                return true;
            }
            p = n.parent;
        }
        false
    }
}

/// A value seen through serde's `Serialize`, at `path`.
pub struct Node<'a> {
    pub ctx: &'a SerCtx,
    pub path: &'a Path<'a>,
}

impl<'a> Node<'a> {
    pub fn new(ctx: &'a SerCtx, path: &'a Path<'a>) -> Node<'a> {
        Node { ctx, path }
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ffi_sdk::abi::Kind;
        let (ctx, path) = (self.ctx, self.path);
        let v = path.at;
        let fmt = ctx.fmt;
        match v.kind() {
            Kind::Nil => {
                if fmt == Format::Toml {
                    return Err(ctx.fail(Code::Unsupported, "nil has no TOML representation".into(), path));
                }
                s.serialize_unit()
            }
            Kind::Bool => s.serialize_bool(v.as_bool().unwrap_or(false)),
            Kind::Int => s.serialize_i64(v.as_int().unwrap_or(0)),
            Kind::Float => {
                let f = v.as_float().unwrap_or(f64::NAN);
                if fmt == Format::Json && !f.is_finite() {
                    return Err(ctx.fail(Code::Unsupported, format!("float {f} has no JSON representation"), path));
                }
                s.serialize_f64(f)
            }
            Kind::String => {
                let t = v.as_text().unwrap_or("");
                if fmt == Format::Toml && ctx.datetimes {
                    if let Ok(dt) = t.parse::<toml::value::Datetime>() {
                        return dt.serialize(s);
                    }
                }
                s.serialize_str(t)
            }
            Kind::Bytes => Err(ctx.fail(Code::Unsupported, format!("bytes have no {} representation (encode them as text first)", fmt.name()), path)),
            Kind::Array | Kind::Dict => {
                if path.depth >= MAX_DEPTH {
                    return Err(ctx.fail(Code::LimitExceeded, format!("nesting deeper than {MAX_DEPTH}"), path));
                }
                if path.is_ancestor(v) {
                    return Err(ctx.fail(Code::InvalidArgument, "cycle: the value contains itself".into(), path));
                }
                if v.is_array() {
                    let items = v.array_items();
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for i in 0..items.len() {
                        let child = path.child(Seg::Index(i), items.item(i));
                        seq.serialize_element(&Node { ctx, path: &child })?;
                    }
                    seq.end()
                } else {
                    self.serialize_dict(v, s)
                }
            }
            Kind::Error | Kind::Handle | Kind::Invalid => {
                Err(ctx.fail(Code::Unsupported, format!("{} has no {} representation", v.describe(), fmt.name()), path))
            }
        }
    }
}

/// A key already turned into text.
struct KeyStr<'k>(&'k str);

impl Serialize for KeyStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl Node<'_> {
    fn serialize_dict<S: Serializer>(&self, v: Value, s: S) -> Result<S::Ok, S::Error> {
        let (ctx, path) = (self.ctx, self.path);
        let e = v.dict_entries();
        let n = e.len();
        let text_keys = ctx.fmt != Format::Yaml;
        let mut map = s.serialize_map(Some(n))?;
        if !ctx.sort_keys {
            // Insertion order; text keys are written in place (no copy).
            for i in 0..n {
                let (k, val) = e.entry(i);
                let child = path.child(Seg::Key(k), val);
                if !text_keys {
                    let kp = path.child(Seg::Key(k), k);
                    map.serialize_key(&Node { ctx, path: &kp })?;
                    map.serialize_value(&Node { ctx, path: &child })?;
                } else if let Some(t) = k.as_text() {
                    map.serialize_entry(&KeyStr(t), &Node { ctx, path: &child })?;
                } else {
                    let t = self.key_text(k, &child)?;
                    map.serialize_entry(&KeyStr(&t), &Node { ctx, path: &child })?;
                }
            }
            return map.end();
        }
        // Sorted by the key's text (JSON/TOML) or its sort form (YAML).
        let mut names: Vec<(String, usize)> = Vec::with_capacity(n);
        for i in 0..n {
            let (k, val) = e.entry(i);
            let name = match key_string(k) {
                Some(t) => t,
                None if text_keys => return Err(self.bad_key(k, &path.child(Seg::Key(k), val))),
                None => k.describe(),
            };
            names.push((name, i));
        }
        names.sort();
        for (name, i) in &names {
            let (k, val) = e.entry(*i);
            let child = path.child(Seg::Key(k), val);
            if text_keys {
                map.serialize_entry(&KeyStr(name), &Node { ctx, path: &child })?;
            } else {
                let kp = path.child(Seg::Key(k), k);
                map.serialize_key(&Node { ctx, path: &kp })?;
                map.serialize_value(&Node { ctx, path: &child })?;
            }
        }
        map.end()
    }

    fn key_text<E: ser::Error>(&self, k: Value, at: &Path<'_>) -> Result<String, E> {
        key_string(k).ok_or_else(|| self.bad_key(k, at))
    }

    fn bad_key<E: ser::Error>(&self, k: Value, at: &Path<'_>) -> E {
        self.ctx.fail(Code::Unsupported, format!("a dict key of kind {} has no {} representation", k.kind().name(), self.ctx.fmt.name()), at)
    }
}
