//! The JSON reader: RFC 8259 text straight into values, one pass, no
//! intermediate tree.
//!
//! - Containers: the items of every open array/object wait on one scratch
//!   stack, a collector block whose pointer lives in the [`Reader`] on this
//!   call's stack (so the collector sees everything parsed so far). When a
//!   container closes, its array or dict is made once at its exact size and
//!   filled without a call per item ([`ArrayBuilder`]; dicts: see
//!   [`Reader::finish_object`]).
//! - Strings: a per-parse cache of object keys and of short string values
//!   (up to 32 bytes): two direct-mapped tables of string
//!   values in a second collector block, also on this stack, sized by the
//!   input (32 to 1024 slots each). A key that repeats across thousands of
//!   objects, or a value like `"en"`, is then one string value (a key longer
//!   than that is still hashed, for the duplicate-key check). Strings are
//!   immutable, so sharing one string object between dicts and arrays is safe.
//! - Numbers: the grammar is checked here; integers up to 64 bits become int
//!   (inline or boxed), larger ones follow `bigint`; numbers with a fraction
//!   or exponent become the correctly rounded float (exact fast path for up to
//!   19 digits with a mantissa up to 2^53 and a power of ten up to 22, else the
//!   standard library's parser; `1e400` is infinity, as Python reads it).
//! - Strings are scanned 16 (SSE2) or 8 bytes at a time; UTF-8 is checked
//!   with simdutf8 only where a non-ASCII byte was seen.
//! - Errors use serde_json's wording (the reader this replaced):
//!   `expected value at line 3 column 8`, line and column 1-based, column in
//!   bytes, position = the offending byte (at the end of the input: the last byte).

use crate::convert::{self, BigInt, Format, MAX_DEPTH};
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::{ArrayBuilder, Code, Error, RtResult, Value};

/// Keys up to this many bytes go through the string cache.
const KEY_CACHE_MAX_LEN: usize = 32;
/// String values up to this many bytes go through the string cache.
const VALUE_CACHE_MAX_LEN: usize = 32;
/// Slots per table of the string cache: between 2^5 and 2^10, about one per 512 bytes of input.
const CACHE_MIN_BITS: u32 = 5;
const CACHE_MAX_BITS: u32 = 10;
/// Why parsing stopped.
enum Stop {
    /// Syntax error at byte `at` (serde_json's wording).
    Syntax(&'static str, usize),
    /// Input ended early.
    Eof(&'static str),
    /// A container opened at byte `at` is nested deeper than MAX_DEPTH.
    Depth(usize),
    /// A failure with its own code (big integer refused, out of memory) at byte `at`.
    Rt(Box<Error>, usize),
}

type R<T> = Result<T, Stop>;

/// One string as found in the input: raw bytes of the input (no escapes) or
/// the reader's decode buffer.
#[derive(Clone, Copy)]
enum Str {
    Raw(usize, usize),
    Decoded,
}

pub struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    func: &'static str,
    bigint: BigInt,
    depth: usize,
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
    /// Decoded bytes of the current string when it has escapes.
    buf: Vec<u8>,
    /// Open-addressing table for duplicate-key checks of large objects.
    seen: Vec<u32>,
}

impl<'a> Reader<'a> {
    pub fn new(func: &'static str, src: &'a [u8], bigint: BigInt) -> Reader<'a> {
        Reader {
            src,
            pos: 0,
            func,
            bigint,
            depth: 0,
            stack: core::ptr::null_mut(),
            stack_len: 0,
            stack_cap: 0,
            hashes: Vec::new(),
            cache: core::ptr::null_mut(),
            cache_bits: 0,
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Parses the whole input as one JSON value (whitespace around it allowed).
    pub fn parse(mut self) -> RtResult<Value> {
        let r = self.document();
        // Keep the collector blocks visibly alive until the value is out.
        let v = match r {
            Ok(v) => Ok(Value::from_raw(v)),
            Err(s) => Err(self.error(s)),
        };
        core::hint::black_box((self.stack, self.cache));
        v
    }

    fn document(&mut self) -> R<RtValue> {
        let v = self.value()?;
        if self.skip_ws().is_some() {
            return Err(Stop::Syntax("trailing characters", self.pos));
        }
        Ok(v)
    }

    // ------------------------------------------------------------ errors

    fn error(&self, s: Stop) -> Error {
        let src = self.src;
        // serde_json's rules: the column of the offending byte; at the end of
        // the input, the column of the last byte.
        let (at, eof) = match s {
            Stop::Syntax(_, at) | Stop::Depth(at) | Stop::Rt(_, at) => (at.min(src.len()), false),
            Stop::Eof(_) => (src.len(), true),
        };
        let line_start = src[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = src[..line_start].iter().filter(|&&b| b == b'\n').count() + 1;
        let col = if eof { at - line_start } else { at - line_start + 1 };
        let position = (line_start + col).saturating_sub(1);
        match s {
            Stop::Syntax(what, _) | Stop::Eof(what) => convert::parse_error(self.func, Format::Json, what, line, col, position),
            Stop::Depth(_) => Error::plain(
                Code::LimitExceeded,
                self.func,
                format!("nesting deeper than {MAX_DEPTH} at line {line} column {col}"),
            )
            .with("line", line)
            .with("column", col)
            .with("position", position),
            Stop::Rt(e, _) => e.with("line", line).with("column", col).with("position", position),
        }
    }

    #[cold]
    fn rt_fail(&self, v: Value, at: usize) -> Stop {
        Stop::Rt(Box::new(Error::from_value(v)), at)
    }

    /// `v` unless it is an Error value (allocation failure).
    #[inline(always)]
    fn checked(&self, v: Value, at: usize) -> R<RtValue> {
        if v.raw() & abi::TAG_MASK == abi::TAG_HEAP && v.is_error() {
            return Err(self.rt_fail(v, at));
        }
        Ok(v.raw())
    }

    // ------------------------------------------------------------ scanning

    /// Skips whitespace; the next byte, or None at the end.
    #[inline(always)]
    fn skip_ws(&mut self) -> Option<u8> {
        let s = self.src;
        let mut p = self.pos;
        match s.get(p) {
            Some(&c) if c > b' ' => return Some(c),
            None => return None,
            _ => {}
        }
        loop {
            // Indentation: sixteen bytes at a time.
            #[cfg(target_arch = "x86_64")]
            while p + 16 <= s.len() {
                let m = simd::whitespace16(s, p);
                if m != 0xFFFF {
                    p += (!m).trailing_zeros() as usize;
                    break;
                }
                p += 16;
            }
            match s.get(p) {
                None => {
                    self.pos = p;
                    return None;
                }
                Some(b' ' | b'\n' | b'\r' | b'\t') => p += 1,
                Some(&c) => {
                    self.pos = p;
                    return Some(c);
                }
            }
        }
    }

    /// One value. Scalars are read here, inlined into the container loops;
    /// arrays and objects are the (out of line) recursion.
    #[inline(always)]
    fn value(&mut self) -> R<RtValue> {
        let Some(c) = self.skip_ws() else { return Err(Stop::Eof("EOF while parsing a value")) };
        match c {
            b'"' => {
                let at = self.pos;
                self.pos += 1;
                let s = self.string()?;
                self.text(s, at, false)
            }
            b'{' => self.object(),
            b'[' => self.array(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.ident(b"true", abi::TRUE),
            b'f' => self.ident(b"false", abi::FALSE),
            b'n' => self.ident(b"null", abi::NIL),
            _ => Err(Stop::Syntax("expected value", self.pos)),
        }
    }

    fn ident(&mut self, word: &[u8], v: RtValue) -> R<RtValue> {
        let s = self.src;
        for (i, &w) in word.iter().enumerate().skip(1) {
            match s.get(self.pos + i) {
                None => return Err(Stop::Eof("EOF while parsing a value")),
                Some(&c) if c != w => return Err(Stop::Syntax("expected ident", self.pos + i)),
                _ => {}
            }
        }
        self.pos += word.len();
        Ok(v)
    }

    /// A string whose opening quote was consumed; leaves `pos` after the closing quote.
    #[inline(always)]
    fn string(&mut self) -> R<Str> {
        let s = self.src;
        let start = self.pos;
        let mut p = start;
        let mut high = 0u64;
        let mut escaped = false;
        let mut seg = start;
        loop {
            // Sixteen, then eight bytes at a time up to a quote, a backslash or a control byte.
            #[cfg(target_arch = "x86_64")]
            while p + 16 <= s.len() {
                let (m, h) = simd::special16(s, p);
                if m != 0 {
                    let k = m.trailing_zeros();
                    if h & ((1u32 << k) - 1) != 0 {
                        high |= 0x80;
                    }
                    p += k as usize;
                    break;
                }
                if h != 0 {
                    high |= 0x80;
                }
                p += 16;
            }
            while p + 8 <= s.len() {
                let w = read_u64(s, p);
                let t = special(w);
                if t != 0 {
                    let k = (t.trailing_zeros() / 8) as usize;
                    high |= w & ((1u64 << (k * 8)) - 1);
                    p += k;
                    break;
                }
                high |= w;
                p += 8;
            }
            let c = loop {
                match s.get(p) {
                    None => return Err(Stop::Eof("EOF while parsing a string")),
                    Some(&c) if c == b'"' || c == b'\\' || c < 0x20 => break c,
                    Some(&c) => {
                        high |= c as u64;
                        p += 1;
                    }
                }
            };
            if high & 0x8080_8080_8080_8080 != 0 {
                if simdutf8::basic::from_utf8(&s[seg..p]).is_err() {
                    let bad = core::str::from_utf8(&s[seg..p]).err().map_or(0, |e| e.valid_up_to());
                    return Err(Stop::Syntax("invalid unicode code point", seg + bad));
                }
                high = 0;
            }
            match c {
                b'"' => {
                    self.pos = p + 1;
                    if !escaped {
                        return Ok(Str::Raw(start, p));
                    }
                    self.buf.extend_from_slice(&s[seg..p]);
                    return Ok(Str::Decoded);
                }
                b'\\' => {
                    if !escaped {
                        escaped = true;
                        self.buf.clear();
                    }
                    self.buf.extend_from_slice(&s[seg..p]);
                    p = self.escape(p + 1)?;
                    seg = p;
                }
                _ => return Err(Stop::Syntax("control character (\\u0000-\\u001F) found while parsing a string", p)),
            }
        }
    }

    /// One escape after its backslash (at `p`); returns the position after it.
    fn escape(&mut self, p: usize) -> R<usize> {
        let s = self.src;
        let Some(&c) = s.get(p) else { return Err(Stop::Eof("EOF while parsing a string")) };
        let b = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(p + 1),
            _ => return Err(Stop::Syntax("invalid escape", p)),
        };
        self.buf.push(b);
        Ok(p + 1)
    }

    fn hex4(&self, p: usize) -> R<u32> {
        let s = self.src;
        if p + 4 > s.len() {
            return Err(Stop::Eof("EOF while parsing a string"));
        }
        let mut n = 0u32;
        for i in 0..4 {
            let d = match s[p + i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(Stop::Syntax("invalid escape", p + i)),
            };
            n = n * 16 + d as u32;
        }
        Ok(n)
    }

    /// `\uXXXX` (and a following low surrogate) after the `u` at `p - 1`.
    fn unicode_escape(&mut self, p: usize) -> R<usize> {
        let s = self.src;
        let n = self.hex4(p)?;
        let mut end = p + 4;
        let cp = match n {
            0xDC00..=0xDFFF => return Err(Stop::Syntax("lone leading surrogate in hex escape", end - 1)),
            0xD800..=0xDBFF => {
                match (s.get(end), s.get(end + 1)) {
                    (None, _) | (Some(b'\\'), None) => return Err(Stop::Eof("EOF while parsing a string")),
                    (Some(b'\\'), Some(b'u')) => {}
                    (Some(b'\\'), Some(_)) => return Err(Stop::Syntax("unexpected end of hex escape", end + 1)),
                    (Some(_), _) => return Err(Stop::Syntax("unexpected end of hex escape", end)),
                }
                let n2 = self.hex4(end + 2)?;
                end += 6;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(Stop::Syntax("lone leading surrogate in hex escape", end - 1));
                }
                0x1_0000 + (((n - 0xD800) << 10) | (n2 - 0xDC00))
            }
            _ => n,
        };
        // Every value here is a scalar value (surrogates handled above).
        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
        let mut tmp = [0u8; 4];
        self.buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
        Ok(end)
    }

    // ------------------------------------------------------------ numbers

    #[inline(always)]
    fn number(&mut self) -> R<RtValue> {
        let s = self.src;
        let start = self.pos;
        let mut p = start;
        let neg = s[p] == b'-';
        if neg {
            p += 1;
        }
        // Integer part.
        let mut m: u64 = 0;
        let mut digits = 0usize;
        match s.get(p) {
            None => return Err(Stop::Eof("EOF while parsing a value")),
            Some(b'0') => {
                p += 1;
                if matches!(s.get(p), Some(b'0'..=b'9')) {
                    return Err(Stop::Syntax("invalid number", p));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(&c @ b'0'..=b'9') = s.get(p) {
                    if digits < 19 {
                        m = m * 10 + (c - b'0') as u64;
                    }
                    digits += 1;
                    p += 1;
                }
            }
            Some(_) => return Err(Stop::Syntax("invalid number", p)),
        }
        let int_digits = digits;
        let mut exp: i64 = 0;
        let mut is_float = false;
        if s.get(p) == Some(&b'.') {
            is_float = true;
            p += 1;
            match s.get(p) {
                None => return Err(Stop::Eof("EOF while parsing a value")),
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(Stop::Syntax("invalid number", p)),
            }
            while let Some(&c @ b'0'..=b'9') = s.get(p) {
                if digits < 19 {
                    m = m * 10 + (c - b'0') as u64;
                    exp -= 1;
                }
                digits += 1;
                p += 1;
            }
        }
        if matches!(s.get(p), Some(b'e' | b'E')) {
            is_float = true;
            p += 1;
            let mut eneg = false;
            if let Some(&c @ (b'+' | b'-')) = s.get(p) {
                eneg = c == b'-';
                p += 1;
            }
            match s.get(p) {
                None => return Err(Stop::Eof("EOF while parsing a value")),
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(Stop::Syntax("invalid number", p)),
            }
            let mut e: i64 = 0;
            while let Some(&c @ b'0'..=b'9') = s.get(p) {
                if e < 1_000_000 {
                    e = e * 10 + (c - b'0') as i64;
                }
                p += 1;
            }
            exp += if eneg { -e } else { e };
        }
        self.pos = p;
        if !is_float {
            if int_digits <= 18 {
                let i = m as i64;
                return self.checked(Value::int(if neg { -i } else { i }), start);
            }
            if int_digits == 19 {
                let i = if neg { (m as i128).checked_neg() } else { Some(m as i128) };
                if let Some(i) = i.and_then(|i| i64::try_from(i).ok()) {
                    return self.checked(Value::int(i), start);
                }
            }
            return self.big(start, p);
        }
        // `digits` counts every digit; past 19 the mantissa dropped some.
        let f = if digits <= 19 && m <= (1u64 << 53) && (-22..=22).contains(&exp) {
            // Exact: both factors are exact doubles and one IEEE operation rounds once.
            let x = m as f64;
            let x = if exp < 0 { x / POW10[(-exp) as usize] } else { x * POW10[exp as usize] };
            if neg {
                -x
            } else {
                x
            }
        } else {
            // Correctly rounded by the standard library (overflow gives infinity).
            let t = unsafe { core::str::from_utf8_unchecked(&s[start..p]) };
            match t.parse::<f64>() {
                Ok(f) => f,
                Err(_) => return Err(Stop::Syntax("invalid number", start)),
            }
        };
        self.checked(Value::float(f), start)
    }

    /// An integer literal outside the 64-bit range, per `bigint`.
    #[cold]
    fn big(&mut self, start: usize, end: usize) -> R<RtValue> {
        let digits = unsafe { core::str::from_utf8_unchecked(&self.src[start..end]) };
        let v = match self.bigint {
            BigInt::Float => Value::float(digits.parse::<f64>().unwrap_or(f64::NAN)),
            BigInt::Text => Value::text(digits),
            BigInt::Error => {
                return Err(Stop::Rt(
                    Box::new(Error::new(
                        Code::OutOfRange,
                        self.func,
                        "integer outside the 64-bit range (option bigint: \"float\" or \"text\" accepts it)",
                        digits,
                    )),
                    start,
                ))
            }
        };
        self.checked(v, start)
    }

    // ------------------------------------------------------------ containers

    #[inline(always)]
    fn enter(&mut self) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(Stop::Depth(self.pos));
        }
        self.depth += 1;
        Ok(())
    }

    #[inline(always)]
    fn push(&mut self, v: RtValue) -> R<()> {
        if self.stack_len == self.stack_cap {
            self.grow()?;
        }
        unsafe { *self.stack.add(self.stack_len) = v };
        self.stack_len += 1;
        Ok(())
    }

    #[cold]
    fn grow(&mut self) -> R<()> {
        let ncap = (self.stack_cap * 2).max(64);
        let p = unsafe { abi::rt__alloc(ncap * 8, false) } as *mut RtValue;
        if p.is_null() {
            return Err(Stop::Rt(Box::new(Error::internal(self.func, format!("out of memory ({} bytes)", ncap * 8))), self.pos));
        }
        if self.stack_len > 0 {
            unsafe { core::ptr::copy_nonoverlapping(self.stack, p, self.stack_len) };
        }
        self.stack = p;
        self.stack_cap = ncap;
        Ok(())
    }

    #[inline(never)]
    fn array(&mut self) -> R<RtValue> {
        let open = self.pos;
        self.enter()?;
        self.pos += 1;
        let base = self.stack_len;
        match self.skip_ws() {
            None => return Err(Stop::Eof("EOF while parsing a list")),
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                return self.checked(Value::array(0), open);
            }
            _ => {}
        }
        loop {
            let v = self.value()?;
            self.push(v)?;
            match self.skip_ws() {
                Some(b',') => {
                    self.pos += 1;
                    if self.skip_ws() == Some(b']') {
                        return Err(Stop::Syntax("trailing comma", self.pos));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => return Err(Stop::Syntax("expected `,` or `]`", self.pos)),
                None => return Err(Stop::Eof("EOF while parsing a list")),
            }
        }
        self.depth -= 1;
        let n = self.stack_len - base;
        let mut a = match ArrayBuilder::new(n) {
            Ok(a) => a,
            Err(e) => return Err(Stop::Rt(Box::new(e), open)),
        };
        for i in 0..n {
            let item = Value::from_raw(unsafe { *self.stack.add(base + i) });
            if let Err(e) = a.push(item) {
                return Err(Stop::Rt(Box::new(e), open));
            }
        }
        self.stack_len = base;
        Ok(a.finish().raw())
    }

    #[inline(never)]
    fn object(&mut self) -> R<RtValue> {
        let open = self.pos;
        self.enter()?;
        self.pos += 1;
        let base = self.stack_len;
        let hbase = self.hashes.len();
        match self.skip_ws() {
            None => return Err(Stop::Eof("EOF while parsing an object")),
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return self.checked(Value::dict(), open);
            }
            _ => {}
        }
        loop {
            // Key.
            match self.skip_ws() {
                Some(b'"') => {}
                Some(_) => return Err(Stop::Syntax("key must be a string", self.pos)),
                None => return Err(Stop::Eof("EOF while parsing a value")),
            }
            let at = self.pos;
            self.pos += 1;
            let s = self.string()?;
            let k = self.text(s, at, true)?;
            self.push(k)?;
            match self.skip_ws() {
                Some(b':') => self.pos += 1,
                Some(_) => return Err(Stop::Syntax("expected `:`", self.pos)),
                None => return Err(Stop::Eof("EOF while parsing an object")),
            }
            let v = self.value()?;
            self.push(v)?;
            match self.skip_ws() {
                Some(b',') => {
                    self.pos += 1;
                    if self.skip_ws() == Some(b'}') {
                        return Err(Stop::Syntax("trailing comma", self.pos));
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => return Err(Stop::Syntax("expected `,` or `}`", self.pos)),
                None => return Err(Stop::Eof("EOF while parsing an object")),
            }
        }
        self.depth -= 1;
        let d = self.finish_object(base, hbase, open)?;
        self.stack_len = base;
        self.hashes.truncate(hbase);
        Ok(d)
    }

    /// The string value for a parsed string: shared through the cache when
    /// short; for a key (`key`), also records its content hash.
    #[inline(always)]
    fn text(&mut self, s: Str, at: usize, key: bool) -> R<RtValue> {
        let src = self.src;
        let bytes: &[u8] = match s {
            Str::Raw(a, b) => &src[a..b],
            Str::Decoded => &self.buf,
        };
        let max = if key { KEY_CACHE_MAX_LEN } else { VALUE_CACHE_MAX_LEN };
        if !key && bytes.len() > max {
            return self.checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }), at);
        }
        let h = hash_bytes(bytes);
        if key {
            self.hashes.push(h);
            if bytes.len() > max {
                return self.checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }), at);
            }
        }
        if self.cache.is_null() {
            (self.cache, self.cache_bits) = new_cache(src.len());
        }
        let slot = (h >> (64 - self.cache_bits)) as usize + if key { 0 } else { 1 << self.cache_bits };
        if !self.cache.is_null() {
            let w = unsafe { *self.cache.add(slot) };
            if w != 0 && text_bytes(w).is_some_and(|t| same_bytes(t, bytes)) {
                return Ok(w);
            }
        }
        let w = self.checked(Value::text(unsafe { core::str::from_utf8_unchecked(bytes) }), at)?;
        if !self.cache.is_null() {
            unsafe { *self.cache.add(slot) = w };
        }
        Ok(w)
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
    fn finish_object(&mut self, base: usize, hbase: usize, open: usize) -> R<RtValue> {
        let n = (self.stack_len - base) / 2;
        // The pairs sit in the scratch block the collector sees.
        let pairs = unsafe { core::slice::from_raw_parts(self.stack.add(base), 2 * n) };
        // The key hashes taken while reading make the duplicate check cheap;
        // without duplicates the core copies the pairs as they are.
        let d = if self.has_duplicate(pairs, hbase) {
            Value::dict_from_pairs(pairs)
        } else {
            Value::dict_from_unique_pairs(pairs)
        };
        self.checked(d, open)
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

/// The string cache for an input of `n` bytes: a zeroed, scanned block of two
/// tables (null, so no caching, if memory is short) and log2 of a table's slots.
#[cold]
pub(crate) fn new_cache(n: usize) -> (*mut RtValue, u32) {
    let bits = (n / 512).max(1).next_power_of_two().trailing_zeros().clamp(CACHE_MIN_BITS, CACHE_MAX_BITS);
    (unsafe { abi::rt__alloc(16 << bits, false) } as *mut RtValue, bits)
}

/// Whether two short byte strings are equal (word compares, no call).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let mut i = 0;
    while i + 8 <= n {
        if read_u64(a, i) != read_u64(b, i) {
            return false;
        }
        i += 8;
    }
    i == n || tail_word(a, i) == tail_word(b, i)
}

/// The bytes of a string value word.
#[inline(always)]
pub(crate) fn text_bytes<'x>(w: RtValue) -> Option<&'x [u8]> {
    Value::from_raw(w).as_text().map(str::as_bytes)
}

#[inline(always)]
pub(crate) fn read_u64(s: &[u8], p: usize) -> u64 {
    debug_assert!(p + 8 <= s.len());
    u64::from_le_bytes(unsafe { *(s.as_ptr().add(p) as *const [u8; 8]) })
}

/// Bytes `i..` of `s` (fewer than 8) in the low end of a word, the rest zero; read in bounds.
#[inline(always)]
pub(crate) fn tail_word(s: &[u8], i: usize) -> u64 {
    let n = s.len();
    let r = n - i;
    debug_assert!(r > 0 && r < 8);
    if n >= 8 {
        return read_u64(s, n - 8) >> (8 * (8 - r));
    }
    // The whole string is shorter than a word: two overlapping loads inside `i..n`.
    // SAFETY: both loads lie within s[i..n] (r bytes).
    let p = unsafe { s.as_ptr().add(i) };
    unsafe {
        if r >= 4 {
            let lo = (p as *const u32).read_unaligned() as u64;
            let hi = (p.add(r - 4) as *const u32).read_unaligned() as u64;
            lo | (hi << (8 * (r - 4)))
        } else if r >= 2 {
            let lo = (p as *const u16).read_unaligned() as u64;
            let hi = (p.add(r - 2) as *const u16).read_unaligned() as u64;
            lo | (hi << (8 * (r - 2)))
        } else {
            *p as u64
        }
    }
}

/// SSE2 (always present on x86_64) scans of sixteen input bytes.
#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    /// Bit i set when byte `p + i` is `"`, `\\` or below 0x20; and bit i set when it is not ASCII.
    #[inline(always)]
    pub fn special16(s: &[u8], p: usize) -> (u32, u32) {
        assert!(p + 16 <= s.len());
        // SAFETY: 16 bytes in bounds (checked above); SSE2 is part of x86_64.
        unsafe {
            let x = _mm_loadu_si128(s.as_ptr().add(p) as *const __m128i);
            let q = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let b = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            let lim = _mm_set1_epi8(0x1f);
            let c = _mm_cmpeq_epi8(_mm_max_epu8(x, lim), lim);
            let m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), c)) as u32;
            (m, _mm_movemask_epi8(x) as u32)
        }
    }

    /// Bit i set when byte `p + i` is JSON whitespace.
    #[inline(always)]
    pub fn whitespace16(s: &[u8], p: usize) -> u32 {
        assert!(p + 16 <= s.len());
        // SAFETY: as above.
        unsafe {
            let x = _mm_loadu_si128(s.as_ptr().add(p) as *const __m128i);
            let sp = _mm_cmpeq_epi8(x, _mm_set1_epi8(b' ' as i8));
            let nl = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\n' as i8));
            let cr = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\r' as i8));
            let tb = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\t' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(sp, nl), _mm_or_si128(cr, tb))) as u32
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lowest byte of `w` that is `"`, `\` or below 0x20
/// (bits above the lowest match may be set spuriously; only the lowest is used).
#[inline(always)]
pub(crate) fn special(w: u64) -> u64 {
    let q = w ^ (ONES * b'"' as u64);
    let b = w ^ (ONES * b'\\' as u64);
    let zq = q.wrapping_sub(ONES) & !q;
    let zb = b.wrapping_sub(ONES) & !b;
    let ctl = w.wrapping_sub(ONES * 0x20) & !w;
    (zq | zb | ctl) & HIGHS
}

/// A 64-bit hash of a key's bytes (for the key cache and duplicate checks).
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut i = 0;
    while i + 8 <= b.len() {
        h = (h.rotate_left(5) ^ read_u64(b, i)).wrapping_mul(K);
        i += 8;
    }
    if i < b.len() {
        h = (h.rotate_left(5) ^ tail_word(b, i)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];
