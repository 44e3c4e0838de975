//! The JSON writer: a tree of values ([`Tree`]: runtime values in
//! `ffi_serde`, Python objects in the Python extension) to JSON text in one
//! pass, into one byte buffer.
//!
//! Output is byte for byte what serde_json wrote for the same tree (the
//! writer this replaced): compact, or `pretty` with a 2-space indent; ints
//! in decimal, floats in their shortest round-trip form (zmij, as serde_json: `1.0`,
//! `1e300`); strings with `"`, `\` and control characters escaped
//! (`\n`, `\u001f`), everything else (non-ASCII included) as is. Dict keys:
//! text as is; int, float, bool and nil keys as their JSON spelling (like
//! Python's json); others have no JSON form. The path to a value that cannot
//! be written (`$.a[3].b`) is assembled only when one is found, while the
//! error travels out.

use crate::{read_u64, special, tail_word, MAX_DEPTH};
use ffi_sdk::{Code, Error};
use std::borrow::Cow;

/// What a node of a [`Tree`] is, for JSON.
pub enum Shape<'t, I, E> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// UTF-8 text.
    Str(&'t [u8]),
    Array(I),
    Dict(E),
    /// No JSON form ([`Tree::no_form`] says why).
    NoForm,
}

/// A dict key, for JSON.
pub enum KeyText<'t> {
    /// Text, written as is.
    Text(&'t [u8]),
    /// Another kind, written as its JSON spelling (`1`, `2.5`, `true`, `null`).
    Spelled(String),
    /// No JSON form ([`Tree::bad_key`] says why).
    NoForm,
}

/// The items of an array, as the writer reads them.
pub trait Seq<N> {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn item(&self, i: usize) -> N;
    /// A hint: item `i` will be read soon.
    // Inlined in release builds only: at opt-level 0 every inlined frame's
    // locals add up and deep documents would need a much larger stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn prefetch(&self, _i: usize) {}
}

/// The entries of a dict, in order.
pub trait Map<N> {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn next_entry(&mut self) -> Option<(N, N)>;
}

/// Values the writer can read.
pub trait Tree {
    /// A node (a runtime word, a Python object pointer), valid while the write runs.
    type N: Copy;
    type Items: Seq<Self::N>;
    type Entries: Map<Self::N>;
    fn shape(&self, n: Self::N) -> Shape<'_, Self::Items, Self::Entries>;
    /// The identity of a container (cycle check).
    fn id(&self, n: Self::N) -> usize;
    fn key(&self, k: Self::N) -> KeyText<'_>;
    /// Why `n` (a [`Shape::NoForm`]) cannot be written.
    fn no_form(&self, n: Self::N) -> (Code, String);
    /// Why key `k` (a [`KeyText::NoForm`]) cannot be written.
    fn bad_key(&self, k: Self::N) -> (Code, String);
    /// Appends the path segment of key `k` (`.name`, `["odd key"]`, `[3]`).
    fn key_segment(&self, out: &mut String, k: Self::N);
}

/// A value with no JSON form, and the path to it (innermost segment first).
pub struct Fail {
    pub code: Code,
    pub what: String,
    path: Vec<String>,
}

impl Fail {
    #[cold]
    pub fn new(code: Code, what: String) -> Box<Fail> {
        Box::new(Fail { code, what, path: Vec::new() })
    }
    /// `$`, `$.a[3].b`.
    pub fn path(&self) -> String {
        let mut p = String::from("$");
        for s in self.path.iter().rev() {
            p.push_str(s);
        }
        p
    }
    /// The Error: `func: what (at $.a[3])`, details.path.
    pub fn to_error(&self, func: &str) -> Error {
        let p = self.path();
        Error::new(self.code, func, &self.what, format!("at {p}")).with("path", p)
    }
}

#[cold]
fn at_index(mut f: Box<Fail>, i: usize) -> Box<Fail> {
    f.path.push(format!("[{i}]"));
    f
}

#[cold]
fn at_key<T: Tree>(t: &T, mut f: Box<Fail>, k: T::N) -> Box<Fail> {
    let mut s = String::new();
    t.key_segment(&mut s, k);
    f.path.push(s);
    f
}

/// Appends `v` as JSON text to `out`.
pub fn write<T: Tree>(tree: &T, v: T::N, out: &mut Vec<u8>, pretty: bool, sort_keys: bool) -> Result<(), Box<Fail>> {
    let mut w = Writer { tree, out, pretty, sort_keys, depth: 0, open: [0; MAX_DEPTH] };
    w.value(v)
}

struct Writer<'o, T: Tree> {
    tree: &'o T,
    out: &'o mut Vec<u8>,
    pretty: bool,
    sort_keys: bool,
    /// Containers open around the current value (cycle check).
    depth: usize,
    open: [usize; MAX_DEPTH],
}

const SPACES: &[u8; 256] = &[b' '; 256];

impl<T: Tree> Writer<'_, T> {
    /// Scalars are written here (inlined into the container loops); containers out of line.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn value(&mut self, v: T::N) -> Result<(), Box<Fail>> {
        match self.tree.shape(v) {
            Shape::Str(s) => write_str(self.out, s),
            Shape::Int(i) => write_int(self.out, i),
            Shape::Float(f) => return self.float(f),
            Shape::Array(items) => return self.array(v, items),
            Shape::Dict(entries) => return self.dict(v, entries),
            Shape::Null => self.out.extend_from_slice(b"null"),
            Shape::Bool(true) => self.out.extend_from_slice(b"true"),
            Shape::Bool(false) => self.out.extend_from_slice(b"false"),
            Shape::NoForm => return Err(self.no_form(v)),
        }
        Ok(())
    }

    #[cold]
    fn no_form(&self, v: T::N) -> Box<Fail> {
        let (code, what) = self.tree.no_form(v);
        Fail::new(code, what)
    }

    #[inline]
    fn float(&mut self, f: f64) -> Result<(), Box<Fail>> {
        if !f.is_finite() {
            return Err(Fail::new(Code::Unsupported, format!("float {f} has no JSON representation")));
        }
        write_float(self.out, f);
        Ok(())
    }

    /// Checks depth and cycles, and records `v` as open.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn enter(&mut self, v: T::N) -> Result<(), Box<Fail>> {
        if self.depth >= MAX_DEPTH {
            return Err(Fail::new(Code::LimitExceeded, format!("nesting deeper than {MAX_DEPTH}")));
        }
        let id = self.tree.id(v);
        if self.open[..self.depth].contains(&id) {
            return Err(Fail::new(Code::InvalidArgument, "cycle: the value contains itself".into()));
        }
        self.open[self.depth] = id;
        self.depth += 1;
        Ok(())
    }

    #[inline]
    fn newline(&mut self, level: usize) {
        self.out.push(b'\n');
        let mut n = 2 * level;
        while n > 0 {
            let k = n.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..k]);
            n -= k;
        }
    }

    #[inline(never)]
    fn array(&mut self, v: T::N, items: T::Items) -> Result<(), Box<Fail>> {
        self.enter(v)?;
        let n = items.len();
        if n == 0 {
            self.out.extend_from_slice(b"[]");
        } else {
            self.out.push(b'[');
            for i in 0..n {
                items.prefetch(i + 2);
                if i > 0 {
                    self.out.push(b',');
                }
                if self.pretty {
                    self.newline(self.depth);
                }
                self.value(items.item(i)).map_err(|f| at_index(f, i))?;
            }
            if self.pretty {
                self.newline(self.depth - 1);
            }
            self.out.push(b']');
        }
        self.depth -= 1;
        Ok(())
    }

    /// Writes a key (text as is; other kinds as their JSON spelling).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn key(&mut self, k: T::N) -> Result<(), Box<Fail>> {
        match self.tree.key(k) {
            KeyText::Text(t) => write_str(self.out, t),
            KeyText::Spelled(t) => write_str(self.out, t.as_bytes()),
            KeyText::NoForm => return Err(self.bad_key(k)),
        }
        Ok(())
    }

    #[cold]
    fn bad_key(&self, k: T::N) -> Box<Fail> {
        let (code, what) = self.tree.bad_key(k);
        Fail::new(code, what)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn entry(&mut self, first: bool, k: T::N, val: T::N) -> Result<(), Box<Fail>> {
        if !first {
            self.out.push(b',');
        }
        if self.pretty {
            self.newline(self.depth);
        }
        self.key(k).map_err(|f| at_key(self.tree, f, k))?;
        if self.pretty {
            self.out.extend_from_slice(b": ");
        } else {
            self.out.push(b':');
        }
        self.value(val).map_err(|f| at_key(self.tree, f, k))
    }

    #[inline(never)]
    fn dict(&mut self, v: T::N, mut e: T::Entries) -> Result<(), Box<Fail>> {
        self.enter(v)?;
        let n = e.len();
        if n == 0 {
            self.out.extend_from_slice(b"{}");
            self.depth -= 1;
            return Ok(());
        }
        self.out.push(b'{');
        if !self.sort_keys {
            let mut first = true;
            while let Some((k, val)) = e.next_entry() {
                self.entry(first, k, val)?;
                first = false;
            }
        } else {
            // By the key's text; equal texts (a text key "1" and an int key 1) keep their order.
            let tree = self.tree;
            // (key text, position, key, value)
            type Named<'t, N> = (Cow<'t, [u8]>, usize, N, N);
            let mut names: Vec<Named<'_, T::N>> = Vec::with_capacity(n);
            while let Some((k, val)) = e.next_entry() {
                let name = match tree.key(k) {
                    KeyText::Text(t) => Cow::Borrowed(t),
                    KeyText::Spelled(t) => Cow::Owned(t.into_bytes()),
                    KeyText::NoForm => return Err(at_key(tree, self.bad_key(k), k)),
                };
                names.push((name, names.len(), k, val));
            }
            names.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            for (j, (name, _, k, val)) in names.iter().enumerate() {
                if j > 0 {
                    self.out.push(b',');
                }
                if self.pretty {
                    self.newline(self.depth);
                }
                write_str(self.out, name);
                if self.pretty {
                    self.out.extend_from_slice(b": ");
                } else {
                    self.out.push(b':');
                }
                self.value(*val).map_err(|f| at_key(tree, f, *k))?;
            }
        }
        if self.pretty {
            self.newline(self.depth - 1);
        }
        self.out.push(b'}');
        self.depth -= 1;
        Ok(())
    }
}

/// Appends `s` as a JSON string: quotes around it, `"` `\` and control characters escaped.
#[inline(always)]
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    // The text, the quotes, and 8 bytes of slack for the last whole-word store.
    out.reserve(n + 10);
    // SAFETY: every store below stays within the reserved capacity: the
    // invariant `capacity - len >= (n - i) + 9` holds at each 8-byte store
    // and is re-established (by growing) before each escape; `len` only ever
    // covers written bytes.
    unsafe {
        let mut len = out.len();
        let base = out.as_mut_ptr();
        *base.add(len) = b'"';
        len += 1;
        let mut i = 0;
        loop {
            // Eight bytes at a time, stored as they are read, up to the next byte that needs an escape.
            let mut found = false;
            while i + 8 <= n {
                let w = read_u64(s, i);
                (base.add(len) as *mut [u8; 8]).write_unaligned(w.to_le_bytes());
                let t = special(w);
                if t != 0 {
                    let k = (t.trailing_zeros() / 8) as usize;
                    i += k;
                    len += k;
                    found = true;
                    break;
                }
                i += 8;
                len += 8;
            }
            if !found {
                // The last 1..7 bytes as one word (zero bytes above them read as
                // control characters, so a match at or past `r` means none).
                let r = n - i;
                if r == 0 {
                    break;
                }
                let w = tail_word(s, i);
                (base.add(len) as *mut [u8; 8]).write_unaligned(w.to_le_bytes());
                let k = (special(w).trailing_zeros() / 8) as usize;
                if k >= r {
                    len += r;
                    break;
                }
                i += k;
                len += k;
            }
            // s[i] needs an escape (at most 6 bytes for 1 byte of input).
            if out.capacity() - len < (n - i) + 6 + 9 {
                out.set_len(len);
                out.reserve((n - i) + 6 + 9);
                return write_rest(out, &s[i..]);
            }
            len += escape_into(base.add(len), s[i]);
            i += 1;
        }
        *base.add(len) = b'"';
        out.set_len(len + 1);
    }
}

/// The rest of a string with escapes, after the buffer had to grow.
#[cold]
fn write_rest(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if needs_escape(b) {
            out.extend_from_slice(&s[start..i]);
            let mut tmp = [0u8; 6];
            // SAFETY: `tmp` has the 6 bytes an escape needs.
            let e = unsafe { escape_into(tmp.as_mut_ptr(), b) };
            out.extend_from_slice(&tmp[..e]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Writes the escape of byte `b` at `p` (room for 6 bytes); returns its length.
#[inline]
unsafe fn escape_into(p: *mut u8, b: u8) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let two = |c: u8| {
        *p = b'\\';
        *p.add(1) = c;
        2
    };
    match b {
        b'"' => two(b'"'),
        b'\\' => two(b'\\'),
        8 => two(b'b'),
        9 => two(b't'),
        10 => two(b'n'),
        12 => two(b'f'),
        13 => two(b'r'),
        _ => {
            (p as *mut [u8; 6]).write_unaligned([b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            6
        }
    }
}

/// Appends a finite float in zmij's (serde_json's) spelling, formatted in place.
#[inline(always)]
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    // zmij::Buffer is 24 bytes of MaybeUninit<u8> (checked here); zmij writes
    // the text at its start. Formatting straight into the output's spare room
    // saves a copy (and a store-forwarding stall) per float; if zmij ever
    // returned text elsewhere, it is copied as usual.
    const _: () = assert!(core::mem::size_of::<zmij::Buffer>() == 24 && core::mem::align_of::<zmij::Buffer>() == 1);
    out.reserve(32);
    // SAFETY: 24 reserved bytes of spare capacity are a valid Buffer (any bytes
    // are valid MaybeUninit<u8>, alignment 1); `len` grows only over the
    // bytes zmij wrote there.
    unsafe {
        let dst = out.as_mut_ptr().add(out.len());
        let b = &mut *(dst as *mut zmij::Buffer);
        let t = b.format_finite(f).as_bytes();
        let (p, n) = (t.as_ptr(), t.len());
        if core::ptr::eq(p, dst) && n <= 24 {
            out.set_len(out.len() + n);
        } else {
            let mut own = zmij::Buffer::new();
            push_small(out, own.format_finite(f).as_bytes());
        }
    }
}

/// Appends a short slice (at most 32 bytes, e.g. a formatted number) without a call to memcpy.
#[inline(always)]
fn push_small(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    assert!(n <= 32);
    out.reserve(32);
    // SAFETY: n <= 32 (asserted) and 32 bytes of spare capacity are reserved; the copies below read and write
    // only inside `s` and the reserved room (overlapping halves for odd sizes).
    unsafe {
        let d = out.as_mut_ptr().add(out.len());
        let p = s.as_ptr();
        if n >= 16 {
            (d as *mut [u8; 16]).write_unaligned((p as *const [u8; 16]).read_unaligned());
            (d.add(n - 16) as *mut [u8; 16]).write_unaligned((p.add(n - 16) as *const [u8; 16]).read_unaligned());
        } else if n >= 8 {
            (d as *mut [u8; 8]).write_unaligned((p as *const [u8; 8]).read_unaligned());
            (d.add(n - 8) as *mut [u8; 8]).write_unaligned((p.add(n - 8) as *const [u8; 8]).read_unaligned());
        } else if n >= 4 {
            (d as *mut [u8; 4]).write_unaligned((p as *const [u8; 4]).read_unaligned());
            (d.add(n - 4) as *mut [u8; 4]).write_unaligned((p.add(n - 4) as *const [u8; 4]).read_unaligned());
        } else {
            for i in 0..n {
                *d.add(i) = *p.add(i);
            }
        }
        out.set_len(out.len() + n);
    }
}

/// Appends `i` in decimal.
#[inline(always)]
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    const LUT: &[u8; 200] = b"0001020304050607080910111213141516171819\
                               2021222324252627282930313233343536373839\
                               4041424344454647484950515253545556575859\
                               6061626364656667686970717273747576777879\
                               8081828384858687888990919293949596979899";
    out.reserve(20);
    let mut u = i.unsigned_abs();
    // Number of digits: floor(log10(2^bits)) or one more.
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut k = 1;
        while k < 20 {
            t[k] = t[k - 1] * 10;
            k += 1;
        }
        t
    };
    let bits = 64 - (u | 1).leading_zeros();
    let t = ((bits * 1233) >> 12) as usize;
    let n = (t + (u >= POW10[t]) as usize).max(1);
    // SAFETY: at most 20 bytes (sign and 19 digits) are written, all reserved.
    unsafe {
        let mut p = out.as_mut_ptr().add(out.len());
        let sign = (i < 0) as usize;
        if i < 0 {
            *p = b'-';
            p = p.add(1);
        }
        let mut q = p.add(n);
        let pair = |q: *mut u8, d: usize| {
            *q = LUT[2 * d];
            *q.add(1) = LUT[2 * d + 1];
        };
        // Four digits per division (two independent pairs), then the rest.
        while u >= 10_000 {
            let r = (u % 10_000) as usize;
            u /= 10_000;
            q = q.sub(4);
            pair(q, r / 100);
            pair(q.add(2), r % 100);
        }
        let u = u as usize;
        if u >= 100 {
            q = q.sub(2);
            pair(q, u % 100);
            let h = u / 100;
            if h >= 10 {
                pair(p, h);
            } else {
                *p = b'0' + h as u8;
            }
        } else if u >= 10 {
            pair(p, u);
        } else {
            *p = b'0' + u as u8;
        }
        let _ = q;
        out.set_len(out.len() + sign + n);
    }
}

#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_str(&mut out, s.as_bytes());
    // SAFETY: UTF-8 in, ASCII escapes added.
    unsafe { String::from_utf8_unchecked(out) }
}
