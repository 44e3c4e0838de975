//! The JSON reader: RFC 8259 text straight into the values of a [`Sink`],
//! one pass, no intermediate tree.
//!
//! - Containers: the items of every open array/object wait on the sink's
//!   pending stack ([`Sink::push`]); when a container closes, the sink makes
//!   it from the items pending since it opened ([`Sink::array`],
//!   [`Sink::object`]), once, at its exact size.
//! - Strings are scanned 16 (SSE2) or 8 bytes at a time; UTF-8 is checked
//!   with simdutf8 only where a non-ASCII byte was seen, and the sink is told
//!   whether a string is ASCII (a Python sink then takes CPython's fastest
//!   path). Escapes are decoded into one reused buffer.
//! - Numbers: the grammar is checked here; integers up to 64 bits go to
//!   [`Sink::int`], larger ones follow `bigint`; numbers with a fraction or
//!   exponent become the correctly rounded float (exact fast path for up to
//!   19 digits with a mantissa up to 2^53 and a power of ten up to 22, else
//!   the standard library's parser; `1e400` is infinity, as Python reads it).
//! - Nesting deeper than [`MAX_DEPTH`] is Error LimitExceeded, checked as each
//!   container opens.
//! - Errors use serde_json's wording (the reader this replaced):
//!   `expected value at line 3 column 8`, line and column 1-based, column in
//!   bytes, position = the offending byte (at the end of the input: the last byte).
//!   A sink's own failure (out of memory, a big integer refused) gets the
//!   same line, column and position details.

use crate::{parse_error, BigInt, Format, MAX_DEPTH};
use ffi_sdk::{Code, Error};

/// A sink's failure (boxed: the happy path returns in registers).
pub type Fail = Box<Error>;

/// What the reader builds. The reader calls it in document order; every
/// value it returns is either pushed ([`Sink::push`]) or, for the document's
/// one value, returned by [`Reader::parse`] (or given back to
/// [`Sink::discard`] when trailing characters make the document invalid).
/// When parsing fails, values still pending are the sink's to release.
pub trait Sink {
    /// A value under construction (a runtime word, a Python object pointer).
    type V: Copy;
    fn null(&mut self) -> Self::V;
    fn boolean(&mut self, b: bool) -> Self::V;
    fn int(&mut self, i: i64) -> Result<Self::V, Fail>;
    fn float(&mut self, f: f64) -> Result<Self::V, Fail>;
    /// A string value; `s` is valid UTF-8, all of it ASCII when `ascii`.
    fn text(&mut self, s: &[u8], ascii: bool) -> Result<Self::V, Fail>;
    /// An object key (as [`Sink::text`]; keys repeat, so sinks cache them).
    fn key(&mut self, s: &[u8], ascii: bool) -> Result<Self::V, Fail>;
    /// Adds `v` to the pending stack.
    fn push(&mut self, v: Self::V) -> Result<(), Fail>;
    /// The number of pending values.
    fn pending(&self) -> usize;
    /// The array of the values pending from `base`, which it removes.
    fn array(&mut self, base: usize) -> Result<Self::V, Fail>;
    /// The dict of the (key, value) pairs pending from `base` (in document
    /// order; a repeated key keeps the last value in the first one's
    /// place, Python's rule), which it removes.
    fn object(&mut self, base: usize) -> Result<Self::V, Fail>;
    /// Releases a value that will not be returned.
    fn discard(&mut self, _v: Self::V) {}
}

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
/// the reader's decode buffer; and whether it is all ASCII.
#[derive(Clone, Copy)]
enum Str {
    Raw(usize, usize, bool),
    Decoded(bool),
}

pub struct Reader<'a, S: Sink> {
    src: &'a [u8],
    pos: usize,
    func: &'static str,
    bigint: BigInt,
    depth: usize,
    pub sink: S,
    /// Decoded bytes of the current string when it has escapes.
    buf: Vec<u8>,
    /// An escape of the current string decoded to a non-ASCII character.
    buf_high: bool,
    /// Check string contents for UTF-8 (off when the input is known valid).
    validate: bool,
}

impl<'a, S: Sink> Reader<'a, S> {
    pub fn new(func: &'static str, src: &'a [u8], bigint: BigInt, sink: S) -> Reader<'a, S> {
        Reader { src, pos: 0, func, bigint, depth: 0, sink, buf: Vec::new(), buf_high: false, validate: true }
    }

    /// The input is known to be valid UTF-8 (the text of a Python str or of
    /// a runtime string): string contents are not checked again.
    pub fn assume_utf8(mut self) -> Self {
        self.validate = false;
        self
    }

    /// Parses the whole input as one JSON value (whitespace around it allowed).
    pub fn parse(&mut self) -> Result<S::V, Error> {
        self.document().map_err(|s| self.error(s))
    }

    fn document(&mut self) -> R<S::V> {
        let v = self.value()?;
        if self.skip_ws().is_some() {
            self.sink.discard(v);
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
            Stop::Syntax(what, _) | Stop::Eof(what) => parse_error(self.func, Format::Json, what, line, col, position),
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

    /// A sink failure at byte `at`.
    // Inlined in release builds only: at opt-level 0 every inlined frame's
    // locals add up and deep documents would need a much larger stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn at<T>(r: Result<T, Fail>, at: usize) -> R<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(Self::fail(e, at)),
        }
    }

    #[cold]
    fn fail(e: Fail, at: usize) -> Stop {
        Stop::Rt(e, at)
    }

    // ------------------------------------------------------------ scanning

    /// Skips whitespace; the next byte, or None at the end.
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn value(&mut self) -> R<S::V> {
        let Some(c) = self.skip_ws() else { return Err(Stop::Eof("EOF while parsing a value")) };
        match c {
            b'"' => {
                let at = self.pos;
                self.pos += 1;
                let s = self.string()?;
                let r = match s {
                    Str::Raw(a, b, ascii) => self.sink.text(&self.src[a..b], ascii),
                    Str::Decoded(ascii) => self.sink.text(&self.buf, ascii),
                };
                Self::at(r, at)
            }
            b'{' => self.object(),
            b'[' => self.array(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.ident(b"true").map(|_| self.sink.boolean(true)),
            b'f' => self.ident(b"false").map(|_| self.sink.boolean(false)),
            b'n' => self.ident(b"null").map(|_| self.sink.null()),
            _ => Err(Stop::Syntax("expected value", self.pos)),
        }
    }

    fn ident(&mut self, word: &[u8]) -> R<()> {
        let s = self.src;
        for (i, &w) in word.iter().enumerate().skip(1) {
            match s.get(self.pos + i) {
                None => return Err(Stop::Eof("EOF while parsing a value")),
                Some(&c) if c != w => return Err(Stop::Syntax("expected ident", self.pos + i)),
                _ => {}
            }
        }
        self.pos += word.len();
        Ok(())
    }

    /// A string whose opening quote was consumed; leaves `pos` after the closing quote.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn string(&mut self) -> R<Str> {
        let s = self.src;
        let start = self.pos;
        let mut p = start;
        let mut high = 0u64;
        let mut ascii = true;
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
                let w = crate::read_u64(s, p);
                let t = crate::special(w);
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
                if self.validate && simdutf8::basic::from_utf8(&s[seg..p]).is_err() {
                    let bad = core::str::from_utf8(&s[seg..p]).err().map_or(0, |e| e.valid_up_to());
                    return Err(Stop::Syntax("invalid unicode code point", seg + bad));
                }
                high = 0;
                ascii = false;
            }
            match c {
                b'"' => {
                    self.pos = p + 1;
                    if !escaped {
                        return Ok(Str::Raw(start, p, ascii));
                    }
                    self.buf.extend_from_slice(&s[seg..p]);
                    return Ok(Str::Decoded(ascii && !self.buf_high));
                }
                b'\\' => {
                    if !escaped {
                        escaped = true;
                        self.buf.clear();
                        self.buf_high = false;
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
        if cp >= 0x80 {
            self.buf_high = true;
        }
        // Every value here is a scalar value (surrogates handled above).
        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
        let mut tmp = [0u8; 4];
        self.buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
        Ok(end)
    }

    // ------------------------------------------------------------ numbers

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn number(&mut self) -> R<S::V> {
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
                return Self::at(self.sink.int(if neg { -i } else { i }), start);
            }
            if int_digits == 19 {
                let i = if neg { (m as i128).checked_neg() } else { Some(m as i128) };
                if let Some(i) = i.and_then(|i| i64::try_from(i).ok()) {
                    return Self::at(self.sink.int(i), start);
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
            // SAFETY: the number was scanned above: ASCII digits, sign, point and exponent only.
            let t = unsafe { core::str::from_utf8_unchecked(&s[start..p]) };
            match t.parse::<f64>() {
                Ok(f) => f,
                Err(_) => return Err(Stop::Syntax("invalid number", start)),
            }
        };
        Self::at(self.sink.float(f), start)
    }

    /// An integer literal outside the 64-bit range, per `bigint`.
    #[cold]
    fn big(&mut self, start: usize, end: usize) -> R<S::V> {
        // SAFETY: an integer literal scanned above: ASCII digits and sign only.
        let digits = unsafe { core::str::from_utf8_unchecked(&self.src[start..end]) };
        let v = match self.bigint {
            BigInt::Float => self.sink.float(digits.parse::<f64>().unwrap_or(f64::NAN)),
            BigInt::Text => self.sink.text(digits.as_bytes(), true),
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
        Self::at(v, start)
    }

    // ------------------------------------------------------------ containers

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn enter(&mut self) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(Stop::Depth(self.pos));
        }
        self.depth += 1;
        Ok(())
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn push(&mut self, v: S::V) -> R<()> {
        let at = self.pos;
        Self::at(self.sink.push(v), at)
    }

    #[inline(never)]
    fn array(&mut self) -> R<S::V> {
        let open = self.pos;
        self.enter()?;
        self.pos += 1;
        let base = self.sink.pending();
        match self.skip_ws() {
            None => return Err(Stop::Eof("EOF while parsing a list")),
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                return Self::at(self.sink.array(base), open);
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
        Self::at(self.sink.array(base), open)
    }

    #[inline(never)]
    fn object(&mut self) -> R<S::V> {
        let open = self.pos;
        self.enter()?;
        self.pos += 1;
        let base = self.sink.pending();
        match self.skip_ws() {
            None => return Err(Stop::Eof("EOF while parsing an object")),
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Self::at(self.sink.object(base), open);
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
            let r = match s {
                Str::Raw(a, b, ascii) => self.sink.key(&self.src[a..b], ascii),
                Str::Decoded(ascii) => self.sink.key(&self.buf, ascii),
            };
            let k = Self::at(r, at)?;
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
        Self::at(self.sink.object(base), open)
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
        // SAFETY: bytes `p..p + 16` are in bounds (asserted above; `p + 16` cannot wrap, as the
        // reader's positions are at most `s.len()` <= isize::MAX); `_mm_loadu_si128` needs no
        // alignment, and SSE2 is part of the x86_64 baseline, so the intrinsics are available.
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
        // SAFETY: as in `special16`: 16 in-bounds bytes, an unaligned load, baseline SSE2.
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

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];
