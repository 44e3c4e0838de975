//! Runtime values on both sides of the shared reader and writer: [`RtSink`]
//! builds them for the JSON reader (what `rt_json_parse` returns) and
//! [`RtTree`] lets the writer read them (what `rt_json_stringify` writes).
//! `ffi_serde` exports the functions; the Python extension calls these
//! directly for results kept native (the text read in place from the Python
//! string, no copy into the collector heap).
//!
//! RtSink:
//! - Containers: the items of every open array/object wait on one scratch
//!   stack, a collector block whose pointer lives in the [`RtSink`] on this
//!   call's stack (so the collector sees everything parsed so far). When a
//!   container closes, its array or dict is made once at its exact size and
//!   filled without a call per item ([`ArrayBuilder`]; dicts: see
//!   [`RtSink::object`]).
//! - Strings: a per-parse cache of object keys and of short string values
//!   (up to 32 bytes): two direct-mapped tables of string
//!   values in a second collector block, also on this stack, sized by the
//!   input (32 to 1024 slots each). A key that repeats across thousands of
//!   objects, or a value like `"en"`, is then one string value (a key longer
//!   than that is still hashed, for the duplicate-key check). Strings are
//!   immutable, so sharing one string object between dicts and arrays is safe.
//!
//! The calling thread must be registered with the collector (every thread a
//! library function runs on is; a host attaches first).

use crate::read::{Fail, Reader, Sink};
use crate::write::{self as w, KeyText, Map, Seq, Shape, Tree};
use crate::{hash_bytes, same_bytes, BigInt};
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::value::Items;
use ffi_sdk::{ArrayBuilder, Code, Error, RtResult, Value};

/// Keys up to this many bytes go through the string cache.
const KEY_CACHE_MAX_LEN: usize = 32;
/// String values up to this many bytes go through the string cache.
const VALUE_CACHE_MAX_LEN: usize = 32;
/// Slots per table of the string cache: between 2^5 and 2^10, about one per 512 bytes of input.
const CACHE_MIN_BITS: u32 = 5;
const CACHE_MAX_BITS: u32 = 10;

/// Parses `src` as one JSON document into a runtime value.
pub fn parse(func: &'static str, src: &[u8], bigint: BigInt) -> RtResult<Value> {
    parse_from(func, src, bigint, false)
}

/// As [`parse`]; `utf8`: `src` is known to be valid UTF-8 (a str's text), not checked again.
pub fn parse_from(func: &'static str, src: &[u8], bigint: BigInt, utf8: bool) -> RtResult<Value> {
    let r = Reader::new(func, src, bigint, RtSink::new(func, src.len()));
    let mut r = if utf8 { r.assume_utf8() } else { r };
    let out = r.parse().map(Value::from_raw);
    // Keep the collector blocks visibly alive until the value is out.
    core::hint::black_box((r.sink.stack, r.sink.cache));
    out
}

/// Builds runtime values for the reader.
pub struct RtSink {
    func: &'static str,
    /// Input size (sizes the string cache).
    input: usize,
    /// Pending items of the open containers (a scanned collector block).
    stack: *mut RtValue,
    stack_len: usize,
    stack_cap: usize,
    /// Content hash of each pending object key, in stack order (numbers only).
    hashes: Vec<u64>,
    /// String cache: a scanned collector block of `2 << cache_bits` string
    /// values (keys, then short values), null until the first string.
    cache: *mut RtValue,
    cache_bits: u32,
    /// Open-addressing table for duplicate-key checks of large objects.
    seen: Vec<u32>,
}

impl RtSink {
    pub fn new(func: &'static str, input: usize) -> RtSink {
        RtSink {
            func,
            input,
            stack: core::ptr::null_mut(),
            stack_len: 0,
            stack_cap: 0,
            hashes: Vec::new(),
            cache: core::ptr::null_mut(),
            cache_bits: 0,
            seen: Vec::new(),
        }
    }

    /// `v` unless it is an Error value (allocation failure).
    #[inline(always)]
    fn checked(v: Value) -> Result<RtValue, Fail> {
        if v.raw() & abi::TAG_MASK == abi::TAG_HEAP && v.is_error() {
            return Err(Self::rt_fail(v));
        }
        Ok(v.raw())
    }

    #[cold]
    fn rt_fail(v: Value) -> Fail {
        Box::new(Error::from_value(v))
    }

    #[cold]
    fn grow(&mut self) -> Result<(), Fail> {
        let ncap = (self.stack_cap * 2).max(64);
        // SAFETY: a plain collector allocation (null on failure, checked next).
        let p = unsafe { abi::rt__alloc(ncap * 8, false) } as *mut RtValue;
        if p.is_null() {
            return Err(Box::new(Error::internal(self.func, format!("out of memory ({} bytes)", ncap * 8))));
        }
        if self.stack_len > 0 {
            // SAFETY: both blocks hold at least `stack_len` words (the new one `ncap` > `stack_len`) and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(self.stack, p, self.stack_len) };
        }
        self.stack = p;
        self.stack_cap = ncap;
        Ok(())
    }

    /// The string value for a parsed string: shared through the cache when
    /// short; for a key (`key`), also records its content hash.
    #[inline(always)]
    fn string(&mut self, bytes: &[u8], key: bool) -> Result<RtValue, Fail> {
        let max = if key { KEY_CACHE_MAX_LEN } else { VALUE_CACHE_MAX_LEN };
        if !key && bytes.len() > max {
            // SAFETY: the reader hands sinks valid UTF-8 only (checked, or known valid input).
            return Self::checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }));
        }
        let h = hash_bytes(bytes);
        if key {
            self.hashes.push(h);
            if bytes.len() > max {
                // SAFETY: as above: valid UTF-8 from the reader.
                return Self::checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }));
            }
        }
        if self.cache.is_null() {
            (self.cache, self.cache_bits) = new_cache(self.input);
        }
        let slot = (h >> (64 - self.cache_bits)) as usize + if key { 0 } else { 1 << self.cache_bits };
        if !self.cache.is_null() {
            // SAFETY: `slot` < 2 << cache_bits, the number of words in the non-null cache block.
            let w = unsafe { *self.cache.add(slot) };
            if w != 0 && text_bytes(w).is_some_and(|t| same_bytes(t, bytes)) {
                return Ok(w);
            }
        }
        // SAFETY: valid UTF-8 from the reader.
        let w = Self::checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }))?;
        if !self.cache.is_null() {
            // SAFETY: as for the read above.
            unsafe { *self.cache.add(slot) = w };
        }
        Ok(w)
    }

    /// Whether two keys of the pending object are equal.
    fn has_duplicate(&mut self, pairs: &[RtValue], hbase: usize) -> bool {
        let hs = &self.hashes[hbase..];
        let n = hs.len();
        let same = |i: usize, j: usize| pairs[2 * i] == pairs[2 * j] || text_bytes(pairs[2 * i]) == text_bytes(pairs[2 * j]);
        if n <= 16 {
            for i in 1..n {
                for j in 0..i {
                    if hs[i] == hs[j] && same(i, j) {
                        return true;
                    }
                }
            }
            return false;
        }
        let cap = (2 * n).next_power_of_two();
        self.seen.clear();
        self.seen.resize(cap, 0);
        let mask = cap - 1;
        for (i, &h) in hs.iter().enumerate() {
            let mut slot = (h as usize) & mask;
            loop {
                let e = self.seen[slot];
                if e == 0 {
                    self.seen[slot] = i as u32 + 1;
                    break;
                }
                let j = (e - 1) as usize;
                if hs[j] == h && same(i, j) {
                    return true;
                }
                slot = (slot + 1) & mask;
            }
        }
        false
    }
}

impl Sink for RtSink {
    type V = RtValue;

    #[inline(always)]
    fn null(&mut self) -> RtValue {
        abi::NIL
    }
    #[inline(always)]
    fn boolean(&mut self, b: bool) -> RtValue {
        if b {
            abi::TRUE
        } else {
            abi::FALSE
        }
    }
    #[inline(always)]
    fn int(&mut self, i: i64) -> Result<RtValue, Fail> {
        Self::checked(Value::int(i))
    }
    #[inline(always)]
    fn float(&mut self, f: f64) -> Result<RtValue, Fail> {
        Self::checked(Value::float(f))
    }
    #[inline(always)]
    fn text(&mut self, s: &[u8], _ascii: bool) -> Result<RtValue, Fail> {
        self.string(s, false)
    }
    #[inline(always)]
    fn key(&mut self, s: &[u8], _ascii: bool) -> Result<RtValue, Fail> {
        self.string(s, true)
    }
    #[inline(always)]
    fn push(&mut self, v: RtValue) -> Result<(), Fail> {
        if self.stack_len == self.stack_cap {
            self.grow()?;
        }
        // SAFETY: `stack_len` < `stack_cap` (grown above), inside the block.
        unsafe { *self.stack.add(self.stack_len) = v };
        self.stack_len += 1;
        Ok(())
    }
    #[inline(always)]
    fn pending(&self) -> usize {
        self.stack_len
    }

    fn array(&mut self, base: usize) -> Result<RtValue, Fail> {
        let n = self.stack_len - base;
        if n == 0 {
            return Self::checked(Value::array(0));
        }
        let mut a = ArrayBuilder::new(n).map_err(Box::new)?;
        for i in 0..n {
            // SAFETY: `base + i` < `stack_len` <= `stack_cap`: a pending item in the block.
            a.push(Value::from_raw(unsafe { *self.stack.add(base + i) })).map_err(Box::new)?;
        }
        self.stack_len = base;
        Ok(a.finish().raw())
    }

    /// Makes the dict of the object whose (key, value) pairs sit on the stack from `base`.
    ///
    /// Without duplicate keys (checked here by content hash, then content),
    /// the entries are written into the new, unshared dict in place: all of
    /// them when it stays within ffi_core's linear-scan size, else all but the
    /// last, which goes through `rt_dict_set` so ffi_core builds the dict's
    /// index over every entry at once. With duplicates (rare) every entry goes
    /// through `rt_dict_set`, which keeps the last value in the first key's
    /// place (Python's rule).
    fn object(&mut self, base: usize) -> Result<RtValue, Fail> {
        let n = (self.stack_len - base) / 2;
        if n == 0 {
            return Self::checked(Value::dict());
        }
        let hbase = self.hashes.len() - n;
        // The pairs sit in the scratch block the collector sees.
        // SAFETY: the 2n words from `base` are the pending pairs, inside the block (which the collector sees).
        let pairs = unsafe { core::slice::from_raw_parts(self.stack.add(base), 2 * n) };
        // The key hashes taken while reading make the duplicate check cheap;
        // without duplicates the core copies the pairs as they are.
        let d = if self.has_duplicate(pairs, hbase) {
            Value::dict_from_pairs(pairs)
        } else {
            Value::dict_from_unique_pairs(pairs)
        };
        let d = Self::checked(d)?;
        self.stack_len = base;
        self.hashes.truncate(hbase);
        Ok(d)
    }
}

/// The string cache for an input of `n` bytes: a zeroed, scanned block of two
/// tables (null, so no caching, if memory is short) and log2 of a table's slots.
#[cold]
pub fn new_cache(n: usize) -> (*mut RtValue, u32) {
    let bits = (n / 512).max(1).next_power_of_two().trailing_zeros().clamp(CACHE_MIN_BITS, CACHE_MAX_BITS);
    // SAFETY: a plain collector allocation (zeroed and scanned; null means no cache).
    (unsafe { abi::rt__alloc(16 << bits, false) } as *mut RtValue, bits)
}

/// The bytes of a string value word.
#[inline(always)]
pub fn text_bytes<'x>(w: RtValue) -> Option<&'x [u8]> {
    Value::from_raw(w).as_text().map(str::as_bytes)
}

// ------------------------------------------------------------------ writing

/// Appends `v` as JSON text to `out` (an Error naming the path to what has no JSON form).
pub fn write_json(func: &str, v: Value, out: &mut Vec<u8>, pretty: bool, sort_keys: bool) -> RtResult<()> {
    w::write(&RtTree, v.raw(), out, pretty, sort_keys).map_err(|f| f.to_error(func))
}

/// Runtime values as the writer's tree.
pub struct RtTree;

/// Bytes of a string or bytes value (`w` is one).
#[inline(always)]
unsafe fn blob<'x>(w: RtValue) -> &'x [u8] {
    let o = abi::heap_ptr(w) as *const abi::BlobObj;
    core::slice::from_raw_parts((*o).data.as_ptr(), (*o).len)
}

/// An array's items.
pub struct ArrayItems(Items);

impl Seq<RtValue> for ArrayItems {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline(always)]
    fn item(&self, i: usize) -> RtValue {
        self.0.item(i).raw()
    }
    #[inline(always)]
    fn prefetch(&self, i: usize) {
        prefetch(self.0.item(i));
    }
}

/// A dict's entries, in order.
pub struct Entries {
    items: Items,
    next: usize,
}

impl Map<RtValue> for Entries {
    #[inline(always)]
    fn len(&self) -> usize {
        self.items.len()
    }
    #[inline(always)]
    fn next_entry(&mut self) -> Option<(RtValue, RtValue)> {
        let i = self.next;
        if i >= self.items.len() {
            return None;
        }
        prefetch(self.items.entry(i + 2).1);
        self.next = i + 1;
        let (k, v) = self.items.entry(i);
        Some((k.raw(), v.raw()))
    }
}

impl Tree for RtTree {
    type N = RtValue;
    type Items = ArrayItems;
    type Entries = Entries;

    #[inline(always)]
    fn shape(&self, raw: RtValue) -> Shape<'_, ArrayItems, Entries> {
        match raw & abi::TAG_MASK {
            abi::TAG_INT => Shape::Int((raw as i64) >> 3),
            abi::TAG_FLOAT => Shape::Float(f64::from_bits(raw & !abi::TAG_MASK)),
            abi::TAG_HEAP => {
                // SAFETY: a heap word of this runtime (checked for the header magic).
                let h = unsafe { abi::heap_ptr(raw) };
                if h.is_null() {
                    return Shape::NoForm;
                }
                // SAFETY: `h` is the non-null header of a live heap value (the word is reachable: the caller holds the tree).
                match unsafe { (*h).kind } & 0xFFFF {
                    // SAFETY: a string header: a BlobObj.
                    abi::HK_STRING => Shape::Str(unsafe { blob(raw) }),
                    // SAFETY: a boxed float header: a FloatObj.
                    abi::HK_FLOAT => Shape::Float(unsafe { (*(h as *const abi::FloatObj)).value }),
                    abi::HK_ARRAY => Shape::Array(ArrayItems(Value::from_raw(raw).array_items())),
                    abi::HK_DICT => Shape::Dict(Entries { items: Value::from_raw(raw).dict_entries(), next: 0 }),
                    // SAFETY: a boxed int header: an IntObj.
                    abi::HK_INT => Shape::Int(unsafe { (*(h as *const abi::IntObj)).value }),
                    _ => Shape::NoForm,
                }
            }
            _ => match raw {
                abi::NIL => Shape::Null,
                abi::TRUE => Shape::Bool(true),
                abi::FALSE => Shape::Bool(false),
                _ => Shape::NoForm,
            },
        }
    }

    #[inline(always)]
    fn id(&self, n: RtValue) -> usize {
        n as usize
    }

    #[inline(always)]
    fn key(&self, k: RtValue) -> KeyText<'_> {
        // SAFETY: `k` is a key word of a live dict (heap_kind accepts any word).
        if unsafe { abi::heap_kind(k) } == abi::HK_STRING {
            // SAFETY: a string header: a BlobObj.
            return KeyText::Text(unsafe { blob(k) });
        }
        match key_string(Value::from_raw(k)) {
            Some(t) => KeyText::Spelled(t),
            None => KeyText::NoForm,
        }
    }

    #[cold]
    fn no_form(&self, n: RtValue) -> (Code, String) {
        let v = Value::from_raw(n);
        if v.kind() == ffi_sdk::abi::Kind::Bytes {
            return (Code::Unsupported, "bytes have no JSON representation (encode them as text first)".into());
        }
        (Code::Unsupported, format!("{} has no JSON representation", v.describe()))
    }

    #[cold]
    fn bad_key(&self, k: RtValue) -> (Code, String) {
        (Code::Unsupported, format!("a dict key of kind {} has no JSON representation", Value::from_raw(k).kind().name()))
    }

    #[cold]
    fn key_segment(&self, out: &mut String, k: RtValue) {
        push_key_segment(out, Value::from_raw(k));
    }
}

/// Starts loading the header of a heap value the loop will reach soon.
#[inline(always)]
fn prefetch(v: Value) {
    #[cfg(target_arch = "x86_64")]
    if v.raw() & abi::TAG_MASK == abi::TAG_HEAP {
        // SAFETY: a prefetch never faults.
        unsafe { core::arch::x86_64::_mm_prefetch((v.raw() & !abi::TAG_MASK) as *const i8, core::arch::x86_64::_MM_HINT_T0) };
    }
}

/// Text form of a dict key for formats whose keys are strings (JSON, TOML):
/// text as is; int, float, bool and nil as their JSON spelling (like Python's json).
pub fn key_string(k: Value) -> Option<String> {
    use ffi_sdk::abi::Kind;
    match k.kind() {
        Kind::String => k.as_text().map(String::from),
        Kind::Int => k.as_int().map(|i| i.to_string()),
        Kind::Float => k.as_float().and_then(crate::float_key),
        Kind::Bool => k.as_bool().map(|b| b.to_string()),
        Kind::Nil => Some("null".into()),
        _ => None,
    }
}

/// Appends the path segment of dict key `k`: `.name`, `["odd key"]`, `[3]` (int key), `[<kind ...>]`.
pub fn push_key_segment(out: &mut String, k: Value) {
    match k.as_text() {
        Some(t) => crate::push_text_segment(out, t),
        None => match k.as_int() {
            Some(i) => out.push_str(&format!("[{i}]")),
            None => out.push_str(&format!("[<{}>]", k.describe())),
        },
    }
}

