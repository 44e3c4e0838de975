//! The YAML reader: saphyr-parser's events (YAML 1.2, pulled one at a time)
//! straight into values, no intermediate tree.
//!
//! - Containers: the items of every open sequence/mapping wait on one scratch
//!   stack, a collector block whose pointer lives in the [`Reader`] on this
//!   call's stack (as in `json_read.rs`); a container is made once, at its
//!   exact size, when it closes.
//! - Limits, checked as each event arrives (so a hostile input stops where
//!   the limit is crossed, not after the whole text was scanned): nesting
//!   deeper than [`MAX_DEPTH`] (an alias counts with the depth of what it
//!   names) and alias expansion beyond [`ALIAS_NODES_BASE`] +
//!   [`ALIAS_NODES_PER_NODE`] x the nodes read so far (billion laughs) are
//!   Error LimitExceeded. The scanner's own flow limit (255 levels) is
//!   reported as the same depth Error.
//! - Strings: keys and values up to [`CACHE_MAX_LEN`] bytes go through a
//!   per-parse cache (the JSON reader's: two direct-mapped tables in a
//!   collector block), so a key repeated across records is one string value.
//! - Aliases are expanded: each one is a fresh copy of its anchor's node
//!   (texts and numbers are immutable and shared), as if written out.
//! - Scalars: the YAML 1.2 core schema (plain `null`/`~`/empty, `true`/`false`
//!   in three spellings, decimal/`0x`/`0o` integers, floats with `.inf`/`.nan`);
//!   quoted and block scalars and `!` are text; `!!str`, `!!int`, `!!float`,
//!   `!!bool`, `!!null` force their type (a scalar that is not of it is Error
//!   Parse); other core tags (`!!binary`, `!!timestamp`, `!!map`...) keep the
//!   node as read; custom tags are dropped or, with `tags`, kept as
//!   `{"tag": "!point", "value": node}`.
//! - Mappings: duplicate keys are Error Parse; a plain `<<` key merges the
//!   mapping (or list of mappings) it names: merged keys first, earlier
//!   sources win, the mapping's own keys override.

use crate::convert::{self, BigInt, Format, MAX_DEPTH};
use crate::json_read::{hash_bytes, new_cache, same_bytes, text_bytes};
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::{ArrayBuilder, Code, Error, Key, RtResult, Value};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

/// Alias expansion: nodes copied for aliases may reach this many, plus
/// [`ALIAS_NODES_PER_NODE`] per node read from the text so far.
pub const ALIAS_NODES_BASE: u64 = 100_000;
/// See [`ALIAS_NODES_BASE`].
pub const ALIAS_NODES_PER_NODE: u64 = 10;

const CORE: &str = "tag:yaml.org,2002:";

/// Keys and values up to this many bytes go through the string cache.
pub const CACHE_MAX_LEN: usize = 32;

/// The key that marks a merge (`<<` written plain), told apart by identity.
static MERGE_KEY: Key = Key::new("<<");

/// What to read.
pub struct Settings {
    pub func: &'static str,
    pub bigint: BigInt,
    /// Keep custom tags as `{"tag", "value"}` dicts.
    pub tags: bool,
    /// Every document into an array (else exactly one document, or nil for none).
    pub all: bool,
}

/// Parses `src` per `set`.
pub fn read(set: Settings, src: &str) -> RtResult<Value> {
    let mut r = Reader::new(set, src);
    let out = r.run();
    let out = match out {
        Ok(v) => Ok(Value::from_raw(v)),
        Err(s) => Err(r.error(s)),
    };
    // Keep the collector blocks visibly alive until the value is out.
    core::hint::black_box((r.stack.ptr, r.anchors.ptr, r.cache));
    out
}

/// Why reading stopped.
enum Stop {
    Scan(ScanError),
    /// Nesting deeper than MAX_DEPTH.
    Depth(Marker),
    /// A failure with its own code, at a place.
    At(Box<Error>, Marker),
}

type R<T> = Result<T, Stop>;

/// Words in a collector block that the collector scans (its pointer is on
/// this call's stack, inside the [`Reader`]); grown by copying.
struct Slots {
    ptr: *mut RtValue,
    len: usize,
    cap: usize,
}

impl Slots {
    const fn new() -> Slots {
        Slots { ptr: core::ptr::null_mut(), len: 0, cap: 0 }
    }
    #[inline]
    fn push(&mut self, v: RtValue) -> Result<(), Error> {
        if self.len == self.cap {
            self.grow(self.len + 1)?;
        }
        // SAFETY: after the growth check `len < cap`, and `ptr` is a collector block of `cap`
        // words (`grow`), 8-aligned and owned by this `Slots` alone, so the store is in bounds.
        unsafe { *self.ptr.add(self.len) = v };
        self.len += 1;
        Ok(())
    }
    #[cold]
    fn grow(&mut self, need: usize) -> Result<(), Error> {
        let ncap = (self.cap * 2).max(64).max(need);
        // SAFETY: core's `rt__alloc(size_t, bool)`: a by-value size (refused, NULL, past 1 TiB)
        // and `false` = a zeroed block the collector scans, so the words stored in it keep their
        // values alive; nothing is shared.
        let p = unsafe { abi::rt__alloc(ncap * 8, false) } as *mut RtValue;
        if p.is_null() {
            return Err(Error::internal("yaml reader", format!("out of memory ({} bytes)", ncap * 8)));
        }
        if self.len > 0 {
            // SAFETY: the old block holds `len <= cap` initialised words, the new one `ncap >= len`
            // words; both are 8-aligned collector blocks and distinct (`p` is fresh).
            unsafe { core::ptr::copy_nonoverlapping(self.ptr, p, self.len) };
        }
        self.ptr = p;
        self.cap = ncap;
        Ok(())
    }
    #[inline]
    fn get(&self, i: usize) -> RtValue {
        assert!(i < self.len);
        // SAFETY: `i < len <= cap` (asserted), and `ptr` is the live block of `cap` words.
        unsafe { *self.ptr.add(i) }
    }
    fn slice(&self, from: usize) -> &[RtValue] {
        if self.len == from {
            return &[];
        }
        assert!(from < self.len);
        // SAFETY: `from < len <= cap` (asserted; `len > 0`, so `ptr` is non-null): the
        // `len - from` words from `from` are initialised and inside the block, which the
        // collector keeps alive (its pointer is in this `Slots`, on the reading call's stack)
        // and which is only written through `&mut self`, so not while the slice is borrowed.
        unsafe { core::slice::from_raw_parts(self.ptr.add(from), self.len - from) }
    }
    /// Sets slot `i`, growing (zero-filled: int 0) to reach it.
    fn set(&mut self, i: usize, v: RtValue) -> Result<(), Error> {
        if i >= self.cap {
            self.grow(i + 1)?;
        }
        if i >= self.len {
            self.len = i + 1;
        }
        // SAFETY: `i < cap` after the growth check, and `ptr` is the live block of `cap` words
        // (zeroed by the collector, so slots skipped over read as int 0).
        unsafe { *self.ptr.add(i) = v };
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Seq,
    Map,
}

/// An open sequence or mapping.
struct Frame {
    kind: Kind,
    /// Where its items start on the stack (mappings: key, value, key, ...).
    base: usize,
    /// Where its key positions start in `Reader::keys`.
    keys_base: usize,
    anchor: usize,
    /// Custom tag to keep (opts.tags).
    tag: Option<Box<str>>,
    /// Nodes below it, aliases counted as expanded.
    nodes: u64,
    /// Levels of containers below it.
    height: usize,
    start: Marker,
}

/// What an anchor names: its node count and container height, once complete.
#[derive(Clone, Copy, Default)]
struct Anchor {
    done: bool,
    nodes: u64,
    height: usize,
}

struct Reader<'a> {
    set: Settings,
    src: &'a str,
    /// Items of the open containers, then the finished documents below them.
    stack: Slots,
    frames: Vec<Frame>,
    /// Where each pending mapping key starts (for duplicate-key errors).
    keys: Vec<Marker>,
    /// Anchored nodes by anchor id, and what they hold.
    anchors: Slots,
    anchor_info: Vec<Anchor>,
    /// Nodes read from the text, and nodes copied for aliases.
    read: u64,
    copied: u64,
    docs: usize,
    /// String cache: a scanned collector block of `2 << cache_bits` string
    /// values (keys, then values), null until the first short string.
    cache: *mut RtValue,
    cache_bits: u32,
}

impl<'a> Reader<'a> {
    fn new(set: Settings, src: &'a str) -> Reader<'a> {
        Reader {
            set,
            src,
            stack: Slots::new(),
            frames: Vec::new(),
            keys: Vec::new(),
            anchors: Slots::new(),
            anchor_info: Vec::new(),
            read: 0,
            copied: 0,
            docs: 0,
            cache: core::ptr::null_mut(),
            cache_bits: 0,
        }
    }

    fn run(&mut self) -> R<RtValue> {
        let mut p = Parser::new_from_str(self.src);
        loop {
            let (ev, span) = match p.next_event() {
                None => break,
                Some(Err(e)) => return Err(Stop::Scan(e)),
                Some(Ok(x)) => x,
            };
            let at = span.start;
            match ev {
                Event::Scalar(s, style, anchor, tag) => {
                    self.read += 1;
                    let v = self.scalar(&s, style, tag.as_deref(), at)?;
                    self.add(v, 1, 0, anchor, at)?;
                }
                Event::SequenceStart(anchor, tag) => self.open(Kind::Seq, anchor, tag.as_deref(), at)?,
                Event::MappingStart(anchor, tag) => self.open(Kind::Map, anchor, tag.as_deref(), at)?,
                Event::SequenceEnd | Event::MappingEnd => self.close(at)?,
                Event::Alias(id) => self.alias(id, at)?,
                Event::DocumentEnd => {
                    self.docs += 1;
                    if !self.set.all && self.docs > 1 {
                        let e = Error::plain(Code::Parse, self.set.func, "the stream holds more than one document (use rt_yaml_parse_all)");
                        return Err(Stop::At(Box::new(e), at));
                    }
                }
                Event::StreamEnd => break,
                Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            }
        }
        let docs = self.stack.slice(0);
        if self.set.all {
            let mut a = ArrayBuilder::new(docs.len()).map_err(|e| self.fail(e, Marker::new(0, 1, 0)))?;
            for &d in docs {
                a.push(Value::from_raw(d)).map_err(|e| self.fail(e, Marker::new(0, 1, 0)))?;
            }
            return Ok(a.finish().raw());
        }
        Ok(docs.first().copied().unwrap_or(abi::NIL))
    }

    // ------------------------------------------------------------ errors

    fn fail(&self, e: Error, at: Marker) -> Stop {
        Stop::At(Box::new(e), at)
    }

    fn parse_fail(&self, what: &str, input: &str, at: Marker) -> Stop {
        self.fail(Error::new(Code::Parse, self.set.func, what, input), at)
    }

    fn error(&self, s: Stop) -> Error {
        let func = self.set.func;
        let m = match &s {
            Stop::Scan(e) => *e.marker(),
            Stop::Depth(m) | Stop::At(_, m) => *m,
        };
        let (line, col) = (m.line(), m.col() + 1);
        // The marker counts characters; details give the byte offset.
        let pos = self.src.char_indices().nth(m.index()).map_or(self.src.len(), |(b, _)| b);
        let depth = || {
            Error::plain(Code::LimitExceeded, func, format!("nesting deeper than {MAX_DEPTH} at line {line} column {col}"))
                .with("line", line)
                .with("column", col)
                .with("position", pos)
        };
        match s {
            Stop::Scan(e) if e.info() == "recursion limit exceeded" => depth(),
            Stop::Scan(e) => convert::parse_error(func, Format::Yaml, e.info(), line, col, pos),
            Stop::Depth(_) => depth(),
            Stop::At(e, _) => e.with("line", line).with("column", col).with("position", pos),
        }
    }

    /// `v` unless it is an Error value (allocation failure).
    #[inline]
    fn checked(&self, v: Value, at: Marker) -> R<RtValue> {
        if v.is_error() {
            return Err(self.fail(Error::from_value(v), at));
        }
        Ok(v.raw())
    }

    // ------------------------------------------------------------ structure

    /// Whether the next node is a mapping key.
    #[inline]
    fn at_key(&self) -> bool {
        matches!(self.frames.last(), Some(f) if f.kind == Kind::Map && (self.stack.len - f.base).is_multiple_of(2))
    }

    /// Adds a finished node to the open container (or as a document).
    #[inline]
    fn add(&mut self, v: RtValue, nodes: u64, height: usize, anchor: usize, at: Marker) -> R<()> {
        if let Some(f) = self.frames.last_mut() {
            f.nodes += nodes;
            f.height = f.height.max(height);
            if f.kind == Kind::Map && (self.stack.len - f.base).is_multiple_of(2) {
                self.keys.push(at);
            }
        }
        self.stack.push(v).map_err(|e| self.fail(e, at))?;
        if anchor > 0 {
            self.anchors.set(anchor, v).map_err(|e| self.fail(e, at))?;
            if self.anchor_info.len() <= anchor {
                self.anchor_info.resize(anchor + 1, Anchor::default());
            }
            self.anchor_info[anchor] = Anchor { done: true, nodes, height };
        }
        Ok(())
    }

    fn open(&mut self, kind: Kind, anchor: usize, tag: Option<&Tag>, at: Marker) -> R<()> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(Stop::Depth(at));
        }
        self.read += 1;
        let tag = match tag {
            Some(t) if self.set.tags && is_custom(t) => Some(tag_text(t).into_boxed_str()),
            _ => None,
        };
        self.frames.push(Frame {
            kind,
            base: self.stack.len,
            keys_base: self.keys.len(),
            anchor,
            tag,
            nodes: 0,
            height: 0,
            start: at,
        });
        Ok(())
    }

    fn close(&mut self, at: Marker) -> R<()> {
        let Some(f) = self.frames.pop() else { return Ok(()) };
        let v = match f.kind {
            Kind::Seq => {
                let items = self.stack.slice(f.base);
                let mut a = ArrayBuilder::new(items.len()).map_err(|e| self.fail(e, f.start))?;
                for &i in items {
                    a.push(Value::from_raw(i)).map_err(|e| self.fail(e, f.start))?;
                }
                a.finish().raw()
            }
            Kind::Map => self.mapping(&f)?,
        };
        self.stack.len = f.base;
        self.keys.truncate(f.keys_base);
        let v = match &f.tag {
            Some(t) => self.tagged(t, v, at)?,
            None => v,
        };
        self.add(v, f.nodes + 1, f.height + 1, f.anchor, f.start)
    }

    /// The dict of a closing mapping whose pairs sit on the stack from `f.base`.
    fn mapping(&mut self, f: &Frame) -> R<RtValue> {
        let pairs = self.stack.slice(f.base);
        let merge = MERGE_KEY.value().raw();
        let mut text_keys = true;
        let mut merges = false;
        for k in pairs.iter().step_by(2) {
            if *k == merge {
                merges = true;
            } else if Value::from_raw(*k).as_text().is_none() {
                text_keys = false;
            }
        }
        if text_keys && !merges {
            if let Some(i) = duplicate_text_key(pairs) {
                return Err(self.duplicate(pairs[2 * i], self.key_mark(f, i)));
            }
            return self.checked(Value::dict_from_unique_pairs(pairs), f.start);
        }
        // Any key kind, or merges: one entry at a time (the sources stay on the stack meanwhile).
        let n = pairs.len() / 2;
        let own = Value::dict_with_capacity(n);
        let mut sources = Vec::new();
        for i in 0..n {
            let (k, v) = (pairs[2 * i], pairs[2 * i + 1]);
            if k == merge {
                sources.push(Value::from_raw(v));
                continue;
            }
            let key = Value::from_raw(k);
            if own.has(key) {
                return Err(self.duplicate(k, self.key_mark(f, i)));
            }
            own.set_value(key, Value::from_raw(v)).map_err(|e| self.fail(e, self.key_mark(f, i)))?;
        }
        if sources.is_empty() {
            return Ok(own.raw());
        }
        // Merged entries first (earlier sources win), then the mapping's own keys override.
        let out = Value::dict();
        for (j, src) in sources.iter().enumerate() {
            let list = if src.is_array() { src.array_items().values().collect() } else { vec![*src] };
            for s in list {
                if !s.is_dict() {
                    let at = self.merge_key_mark(f, j);
                    return Err(self.parse_fail("a merge key (<<) must name a mapping or a list of mappings", &s.describe(), at));
                }
                for (k, v) in s.dict_entries().pairs() {
                    if !out.has(k) {
                        out.set_value(k, v).map_err(|e| self.fail(e, f.start))?;
                    }
                }
            }
        }
        for (k, v) in own.dict_entries().pairs() {
            out.set_value(k, v).map_err(|e| self.fail(e, f.start))?;
        }
        Ok(out.raw())
    }

    /// Where the `j`th merge key of mapping `f` starts.
    fn merge_key_mark(&self, f: &Frame, j: usize) -> Marker {
        let merge = MERGE_KEY.value().raw();
        let pairs = self.stack.slice(f.base);
        let i = pairs.iter().step_by(2).enumerate().filter(|(_, k)| **k == merge).nth(j).map_or(0, |(i, _)| i);
        self.key_mark(f, i)
    }

    /// Where the `i`th key of mapping `f` starts.
    fn key_mark(&self, f: &Frame, i: usize) -> Marker {
        self.keys.get(f.keys_base + i).copied().unwrap_or(f.start)
    }

    fn duplicate(&self, k: RtValue, at: Marker) -> Stop {
        self.parse_fail("duplicate key in a YAML mapping", &Value::from_raw(k).describe(), at)
    }

    /// `{"tag": t, "value": v}`.
    fn tagged(&self, t: &str, v: RtValue, at: Marker) -> R<RtValue> {
        static TAG: Key = Key::new("tag");
        static VALUE: Key = Key::new("value");
        let tv = self.checked(Value::text(t), at)?;
        let d = Value::record(&[(&TAG, Value::from_raw(tv)), (&VALUE, Value::from_raw(v))]);
        self.checked(d, at)
    }

    fn alias(&mut self, id: usize, at: Marker) -> R<()> {
        let info = self.anchor_info.get(id).copied().unwrap_or_default();
        if !info.done {
            return Err(self.parse_fail("an alias inside the node it names (recursive alias)", &format!("anchor #{id}"), at));
        }
        if self.frames.len() + info.height > MAX_DEPTH {
            return Err(Stop::Depth(at));
        }
        self.copied += info.nodes;
        let limit = ALIAS_NODES_BASE + ALIAS_NODES_PER_NODE * self.read;
        if self.copied > limit {
            let e = Error::plain(
                Code::LimitExceeded,
                self.set.func,
                format!("aliases expand to more than {limit} nodes (alias expansion is bounded: {ALIAS_NODES_BASE} + {ALIAS_NODES_PER_NODE} per node read)"),
            );
            return Err(self.fail(e, at));
        }
        let v = self.copy(self.anchors.get(id)).map_err(|e| self.fail(e, at))?;
        self.add(v, info.nodes, info.height, 0, at)
    }

    /// A deep copy of containers (keys and scalars shared: they are immutable).
    fn copy(&mut self, v: RtValue) -> Result<RtValue, Error> {
        let val = Value::from_raw(v);
        if val.is_array() {
            let items = val.array_items();
            let mut a = ArrayBuilder::new(items.len())?;
            for i in 0..items.len() {
                a.push(Value::from_raw(self.copy(items.item(i).raw())?))?;
            }
            return Ok(a.finish().raw());
        }
        if val.is_dict() {
            let e = val.dict_entries();
            let base = self.stack.len;
            for i in 0..e.len() {
                let (k, x) = e.entry(i);
                self.stack.push(k.raw())?;
                let c = self.copy(x.raw())?;
                self.stack.push(c)?;
            }
            let d = Value::dict_from_unique_pairs(self.stack.slice(base));
            self.stack.len = base;
            if d.is_error() {
                return Err(Error::from_value(d));
            }
            return Ok(d.raw());
        }
        Ok(v)
    }

    // ------------------------------------------------------------ scalars

    fn scalar(&mut self, s: &str, style: ScalarStyle, tag: Option<&Tag>, at: Marker) -> R<RtValue> {
        let plain = style == ScalarStyle::Plain;
        let Some(t) = tag else {
            if plain {
                if s == "<<" && self.at_key() {
                    return Ok(MERGE_KEY.value().raw());
                }
                return self.plain(s, at);
            }
            return self.text(s, at);
        };
        if let Some(core) = core_suffix(t) {
            let bad = |me: &Self, what: &str| me.parse_fail(&format!("not a valid !!{what} scalar"), &ffi_sdk::error::quote(s), at);
            return match core {
                "null" => match null_or_bool(s) {
                    Some(abi::NIL) => Ok(abi::NIL),
                    _ if s.is_empty() => Ok(abi::NIL),
                    _ => Err(bad(self, "null")),
                },
                "bool" => match null_or_bool(s) {
                    Some(b) if b != abi::NIL => Ok(b),
                    _ => Err(bad(self, "bool")),
                },
                "int" => match self.number(s, at)? {
                    Some((v, false)) => Ok(v),
                    _ => Err(bad(self, "int")),
                },
                "float" => match self.number(s, at)? {
                    Some((v, true)) => Ok(v),
                    Some((v, false)) => match Value::from_raw(v).as_int() {
                        Some(i) => self.checked(Value::float(i as f64), at),
                        None => Ok(v),
                    },
                    _ => Err(bad(self, "float")),
                },
                _ => self.text(s, at),
            };
        }
        if t.handle.is_empty() && t.suffix == "!" {
            // The non-specific tag `!`: a string.
            return self.text(s, at);
        }
        // A custom tag: the scalar as if untagged, kept with its tag on request.
        let v = if plain { self.plain(s, at)? } else { self.text(s, at)? };
        if self.set.tags {
            return self.tagged(&tag_text(t), v, at);
        }
        Ok(v)
    }

    /// A string value; short ones shared through the cache (keys and values in their own tables).
    #[inline]
    fn text(&mut self, s: &str, at: Marker) -> R<RtValue> {
        let b = s.as_bytes();
        if b.len() > CACHE_MAX_LEN {
            return self.checked(Value::text(s), at);
        }
        if self.cache.is_null() {
            (self.cache, self.cache_bits) = new_cache(self.src.len());
            if self.cache.is_null() {
                return self.checked(Value::text(s), at);
            }
        }
        let slot = (hash_bytes(b) >> (64 - self.cache_bits)) as usize + if self.at_key() { 0 } else { 1 << self.cache_bits };
        // SAFETY: `cache` is non-null here and a zeroed, scanned block of `2 << cache_bits` words
        // (`new_cache`: `16 << bits` bytes); `slot` is `hash >> (64 - bits)` < `1 << bits`, plus
        // `1 << bits` at most, so it is in bounds. The block stays alive through `self.cache`.
        let w = unsafe { *self.cache.add(slot) };
        if w != 0 && text_bytes(w).is_some_and(|t| same_bytes(t, b)) {
            return Ok(w);
        }
        let w = self.checked(Value::text(s), at)?;
        // SAFETY: the same in-bounds `slot` of the live cache block as the read above.
        unsafe { *self.cache.add(slot) = w };
        Ok(w)
    }

    /// A plain scalar by the core schema.
    #[inline]
    fn plain(&mut self, s: &str, at: Marker) -> R<RtValue> {
        let Some(&c) = s.as_bytes().first() else { return Ok(abi::NIL) };
        match c {
            b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' => {
                if let Some(v) = null_or_bool(s) {
                    return Ok(v);
                }
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if let Some((v, _)) = self.number(s, at)? {
                    return Ok(v);
                }
            }
            _ => {}
        }
        self.text(s, at)
    }

    /// A core-schema int or float: the value and whether it is a float; None when `s` is neither.
    fn number(&mut self, s: &str, at: Marker) -> R<Option<(RtValue, bool)>> {
        let b = s.as_bytes();
        let (neg, body) = match b.first() {
            Some(b'-') => (true, &b[1..]),
            Some(b'+') => (false, &b[1..]),
            _ => (false, b),
        };
        let signed = body.len() != b.len();
        if body.is_empty() {
            return Ok(None);
        }
        // 0x / 0o (unsigned only).
        if !signed && body.len() > 2 && body[0] == b'0' && (body[1] == b'x' || body[1] == b'o') {
            let radix = if body[1] == b'x' { 16 } else { 8 };
            let mut n: u128 = 0;
            for &c in &body[2..] {
                let Some(d) = (c as char).to_digit(radix) else { return Ok(None) };
                n = match n.checked_mul(radix as u128).and_then(|n| n.checked_add(d as u128)) {
                    Some(n) => n,
                    None => return Ok(None),
                };
            }
            return match i64::try_from(n) {
                Ok(i) => Ok(Some((self.checked(Value::int(i), at)?, false))),
                Err(_) => Ok(Some((self.big(&n.to_string(), at)?, false))),
            };
        }
        if body.iter().all(u8::is_ascii_digit) {
            let mut n: i64 = 0;
            let mut ok = true;
            for &c in body {
                match n.checked_mul(10).and_then(|n| if neg { n.checked_sub((c - b'0') as i64) } else { n.checked_add((c - b'0') as i64) }) {
                    Some(x) => n = x,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Ok(Some((self.checked(Value::int(n), at)?, false)));
            }
            let digits = core::str::from_utf8(body).unwrap_or("").trim_start_matches('0');
            let text = if neg { format!("-{digits}") } else { digits.to_string() };
            return Ok(Some((self.big(&text, at)?, false)));
        }
        let f = match body {
            b".inf" | b".Inf" | b".INF" => {
                if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            b".nan" | b".NaN" | b".NAN" if !signed => f64::NAN,
            // Out of range (`1e400`): text, as serde_norway read it, since its writer leaves such a text unquoted.
            _ if is_float(body) => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => f,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        Ok(Some((self.checked(Value::float(f), at)?, true)))
    }

    /// An integer outside the 64-bit range, per `bigint`.
    #[cold]
    fn big(&self, digits: &str, at: Marker) -> R<RtValue> {
        let v = match self.set.bigint {
            BigInt::Float => Value::float(digits.parse::<f64>().unwrap_or(f64::NAN)),
            BigInt::Text => Value::text(digits),
            BigInt::Error => {
                return Err(self.fail(
                    Error::new(
                        Code::OutOfRange,
                        self.set.func,
                        "integer outside the 64-bit range (option bigint: \"float\" or \"text\" accepts it)",
                        digits,
                    ),
                    at,
                ))
            }
        };
        self.checked(v, at)
    }
}

/// `null`/`~` (nil) or a boolean word of the core schema.
#[inline]
fn null_or_bool(s: &str) -> Option<RtValue> {
    match s {
        "~" | "null" | "Null" | "NULL" => Some(abi::NIL),
        "true" | "True" | "TRUE" => Some(abi::TRUE),
        "false" | "False" | "FALSE" => Some(abi::FALSE),
        _ => None,
    }
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (the sign already taken off).
fn is_float(b: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let mut i = 0;
    let int = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac = digits(&mut i);
        if int == 0 && frac == 0 {
            return false;
        }
    } else if int == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `str` for `!!str` or `!<tag:yaml.org,2002:str>`; None for other tags.
fn core_suffix(t: &Tag) -> Option<&str> {
    if t.handle == CORE {
        return Some(&t.suffix);
    }
    if t.handle.is_empty() {
        return t.suffix.strip_prefix(CORE);
    }
    None
}

/// Whether a tag is neither a core-schema tag nor the non-specific `!`.
fn is_custom(t: &Tag) -> bool {
    core_suffix(t).is_none() && !(t.handle.is_empty() && t.suffix == "!")
}

/// The tag as written out: `!point` for a local tag, the full URI otherwise.
fn tag_text(t: &Tag) -> String {
    format!("{}{}", t.handle, t.suffix)
}

/// The index of the first key (of the pairs) that repeats an earlier one, keys all texts.
fn duplicate_text_key(pairs: &[RtValue]) -> Option<usize> {
    let n = pairs.len() / 2;
    let key = |i: usize| Value::from_raw(pairs[2 * i]).as_text().unwrap_or("");
    if n <= 16 {
        for i in 1..n {
            let ki = key(i);
            for j in 0..i {
                if key(j) == ki {
                    return Some(i);
                }
            }
        }
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    (0..n).find(|&i| !seen.insert(key(i)))
}
