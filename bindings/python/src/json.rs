//! JSON straight between text and Python objects, with ffi_serde's own reader
//! and writer (`ffi_serde_core`, the code behind `rt_json_parse` and
//! `rt_json_stringify`): same grammar, limits, options, output and error
//! messages, but no runtime value in between.
//!
//! - Parsing: [`PySink`] builds Python objects as the reader reads. Object
//!   keys go through a process-wide cache of interned strings (2048 slots,
//!   keys up to 64 bytes: a key is decoded and hashed once, ever); short
//!   ASCII string values through a per-parse cache; ASCII strings are made
//!   with `PyUnicode_New` and one copy (no decoding); small ints come from
//!   CPython's cache. Python's cyclic collector is paused during the parse
//!   (the objects made cannot form cycles, and each young-generation pass
//!   would walk all of them again); it resumes before the result is returned.
//! - Writing: [`PyTree`] lets the writer read dicts, lists, tuples, str, int,
//!   float, bool and None in place (str: its UTF-8 form, which CPython keeps
//!   for ASCII strings). Anything else (a `Value`, bytes, an int beyond 64
//!   bits, a str with lone surrogates...) and every error goes back to the
//!   ordinary call, which converts and raises exactly as before.
//!
//! Both hold the GIL throughout (they make and read Python objects), and
//! never call into Python code.

use ffi_sdk::{Code, Error};
use ffi_serde_core::read::{Fail, Reader, Sink};
use ffi_serde_core::write::{self as w, KeyText, Map, Seq, Shape, Tree};
use ffi_serde_core::{hash_bytes, same_bytes, BigInt};
use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

extern "C" {
    // Public CPython API outside the limited API, present in every CPython 3.
    fn PyUnicode_New(size: Py_ssize_t, maxchar: u32) -> *mut PyObject;
}

const FN_PARSE: &str = "rt_json_parse";

/// Byte offset of a compact ASCII string's characters from its object
/// start (`sizeof(PyASCIIObject)`: 48 up to 3.11, 40 from 3.12), measured
/// at import; 0 = unknown (strings are then decoded by CPython).
static ASCII_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// The same for the other compact strings (`sizeof(PyCompactUnicodeObject)`:
/// 72 up to 3.11, 56 from 3.12), checked for all three kinds; 0 = unknown.
static COMPACT_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// Byte offset of a list's item pointer (`PyListObject.ob_item`), checked; 0 = unknown.
static LIST_ITEMS_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// Byte offset of a compact string's cached UTF-8 pointer
/// (`PyCompactUnicodeObject.utf8`), checked; 0 = unknown.
static UTF8_PTR_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// Byte offset of a string's `state` bit field (interned:2, kind:3,
/// compact:1, ascii:1), checked for every kind; 0 = unknown.
static STATE_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// `_PyDict_NewPresized` when the interpreter exports it (it sizes a dict for
/// its keys at once; else dicts grow as keys are added).
static PRESIZED: AtomicUsize = AtomicUsize::new(0);

/// Measures what the fast paths rely on; run once at import.
pub fn init(_py: Python<'_>) {
    // SAFETY: `_py` proves the GIL is held, as every CPython call here needs. `o` is a fresh
    // 3-character ASCII str owned here: for a compact ASCII str PyUnicode_AsUTF8AndSize returns
    // the characters themselves (`n` = 3 plus a NUL), so `off` is accepted only as that pointer's
    // distance from the object (and in the range of known layouts), and the 3 bytes written there
    // are inside the object, before it is shared. Every new reference made is released (DECREF)
    // once; errors are cleared. dlsym with RTLD_DEFAULT and a NUL-terminated literal name only
    // looks a symbol up. The probes below (`compact_offset`, ...) are unsafe fns run under the
    // same GIL.
    unsafe {
        let o = PyUnicode_New(3, 127);
        if o.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        let mut n: Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
        if p.is_null() {
            ffi::PyErr_Clear();
        } else {
            let off = (p as usize).wrapping_sub(o as usize);
            if n == 3 && (32..=64).contains(&off) {
                core::ptr::copy_nonoverlapping(b"abc".as_ptr(), (o as *mut u8).add(off), 3);
                let r = ffi::PyUnicode_FromStringAndSize(b"abc".as_ptr() as *const _, 3);
                if !r.is_null() {
                    if ffi::PyUnicode_Compare(o, r) == 0 && ffi::PyErr_Occurred().is_null() {
                        ASCII_OFFSET.store(off, Ordering::Relaxed);
                    }
                    ffi::Py_DECREF(r);
                }
                ffi::PyErr_Clear();
            }
        }
        ffi::Py_DECREF(o);
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"_PyDict_NewPresized".as_ptr());
        PRESIZED.store(f as usize, Ordering::Relaxed);
        COMPACT_OFFSET.store(compact_offset(), Ordering::Relaxed);
        LIST_ITEMS_OFFSET.store(list_items_offset(), Ordering::Relaxed);
        let (state, utf8) = str_fields();
        STATE_OFFSET.store(state, Ordering::Relaxed);
        UTF8_PTR_OFFSET.store(utf8, Ordering::Relaxed);
    }
}

/// The offsets of `state` and of the cached UTF-8 pointer in compact strings,
/// checked on strings of every kind (0, 0 when anything differs).
unsafe fn str_fields() -> (usize, usize) {
    let coff = COMPACT_OFFSET.load(Ordering::Relaxed);
    if coff == 0 {
        return (0, 0);
    }
    // After ob_refcnt, ob_type, length and hash.
    let state = 4 * core::mem::size_of::<usize>();
    // 3.12+: utf8_length, utf8, then the characters; up to 3.11 wstr_length follows utf8.
    let utf8 = match version() {
        (3, m) if m >= 12 => coff - 8,
        _ => coff - 16,
    };
    for (maxchar, kind) in [(0x7Fu32, 1u32), (0xFF, 1), (0xFFFF, 2), (0x10FFFF, 4)] {
        let o = PyUnicode_New(1, maxchar);
        if o.is_null() {
            ffi::PyErr_Clear();
            return (0, 0);
        }
        let st = ((o as *const u8).add(state) as *const u32).read_unaligned();
        let ascii = maxchar == 0x7F;
        let mut ok = (st >> 2) & 7 == kind && (st >> 5) & 1 == 1 && (st >> 6) & 1 == ascii as u32;
        if ok && !ascii {
            // The UTF-8 form: none yet, then the one PyUnicode_AsUTF8AndSize makes.
            let slot = (o as *const u8).add(utf8) as *const *const u8;
            ok = slot.read_unaligned().is_null()
                && ffi::PyUnicode_WriteChar(o, 0, maxchar) == 0
                && {
                    let mut n: Py_ssize_t = 0;
                    let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
                    !p.is_null() && slot.read_unaligned() == p as *const u8
                };
        }
        ffi::PyErr_Clear();
        ffi::Py_DECREF(o);
        if !ok {
            return (0, 0);
        }
    }
    (state, utf8)
}

/// UTF-8 of a compact non-ASCII str's characters (`kind` 1, 2 or 4) into
/// `out`; false for a lone surrogate (no UTF-8 form). Runs of ASCII go
/// several characters at a time.
///
/// # Safety
/// `data` is readable for `n` code units of `kind` bytes (the characters of a
/// live compact str of that kind and length, unaligned reads allowed).
unsafe fn ucs_to_utf8(data: *const u8, kind: u32, n: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    // Room for the longest UTF-8 form: 1-byte characters (up to U+00FF) take at most 2 bytes,
    // 2-byte ones (up to U+FFFF) 3, 4-byte ones 4; the ASCII runs write one byte per character.
    let per_char = match kind {
        1 => 2,
        2 => 3,
        _ => 4,
    };
    out.reserve(n * per_char + 8);
    let mut d = out.as_mut_ptr();
    let mut i = 0;
    macro_rules! put {
        ($c:expr) => {{
            let c: u32 = $c;
            if c < 0x80 {
                *d = c as u8;
                d = d.add(1);
            } else if c < 0x800 {
                *d = 0xC0 | (c >> 6) as u8;
                *d.add(1) = 0x80 | (c & 0x3F) as u8;
                d = d.add(2);
            } else if c < 0x10000 {
                if (0xD800..0xE000).contains(&c) {
                    return false;
                }
                *d = 0xE0 | (c >> 12) as u8;
                *d.add(1) = 0x80 | ((c >> 6) & 0x3F) as u8;
                *d.add(2) = 0x80 | (c & 0x3F) as u8;
                d = d.add(3);
            } else {
                *d = 0xF0 | (c >> 18) as u8;
                *d.add(1) = 0x80 | ((c >> 12) & 0x3F) as u8;
                *d.add(2) = 0x80 | ((c >> 6) & 0x3F) as u8;
                *d.add(3) = 0x80 | (c & 0x3F) as u8;
                d = d.add(4);
            }
        }};
    }
    match kind {
        1 => {
            while i < n {
                #[cfg(target_arch = "x86_64")]
                {
                    let k = simd::ascii_run_ucs1(data.add(i), n - i, d);
                    i += k;
                    d = d.add(k);
                }
                while i < n && *data.add(i) < 0x80 {
                    *d = *data.add(i);
                    d = d.add(1);
                    i += 1;
                }
                while i < n && *data.add(i) >= 0x80 {
                    put!(*data.add(i) as u32);
                    i += 1;
                }
            }
        }
        2 => {
            let u = data as *const u16;
            while i < n {
                #[cfg(target_arch = "x86_64")]
                {
                    let k = simd::ascii_run_ucs2(u.add(i), n - i, d);
                    i += k;
                    d = d.add(k);
                }
                while i < n && u.add(i).read_unaligned() < 0x80 {
                    *d = u.add(i).read_unaligned() as u8;
                    d = d.add(1);
                    i += 1;
                }
                while i < n && u.add(i).read_unaligned() >= 0x80 {
                    put!(u.add(i).read_unaligned() as u32);
                    i += 1;
                }
            }
        }
        _ => {
            let u = data as *const u32;
            while i < n {
                #[cfg(target_arch = "x86_64")]
                {
                    let k = simd::ascii_run_ucs4(u.add(i), n - i, d);
                    i += k;
                    d = d.add(k);
                }
                while i < n && u.add(i).read_unaligned() < 0x80 {
                    *d = u.add(i).read_unaligned() as u8;
                    d = d.add(1);
                    i += 1;
                }
                while i < n && u.add(i).read_unaligned() >= 0x80 {
                    put!(u.add(i).read_unaligned());
                    i += 1;
                }
            }
        }
    }
    out.set_len(d.offset_from(out.as_ptr()) as usize);
    true
}

/// (major, minor) of the running interpreter.
unsafe fn version() -> (u32, u32) {
    let v = std::ffi::CStr::from_ptr(ffi::Py_GetVersion()).to_string_lossy().into_owned();
    let mut it = v.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The offset of a compact non-ASCII string's characters, chosen by version
/// and checked without writing through it: characters written with
/// `PyUnicode_WriteChar` must read back there for 1-, 2- and 4-byte kinds.
unsafe fn compact_offset() -> usize {
    let off = match version() {
        (3, m) if m >= 12 => 56,
        (3, _) => 72,
        _ => return 0,
    };
    let probes: [(u32, u32, usize); 3] = [(0xFF, 0xE9, 1), (0xFFFF, 0x3042, 2), (0x10FFFF, 0x1F600, 4)];
    for (maxchar, ch, width) in probes {
        let o = PyUnicode_New(2, maxchar);
        if o.is_null() {
            ffi::PyErr_Clear();
            return 0;
        }
        let ok = ffi::PyUnicode_WriteChar(o, 0, ch) == 0 && ffi::PyUnicode_WriteChar(o, 1, 0x41) == 0 && {
            let p = (o as *const u8).add(off);
            match width {
                1 => *p as u32 == ch && *p.add(1) == 0x41,
                2 => (p as *const u16).read_unaligned() as u32 == ch && (p as *const u16).add(1).read_unaligned() == 0x41,
                _ => (p as *const u32).read_unaligned() == ch && (p as *const u32).add(1).read_unaligned() == 0x41,
            }
        };
        ffi::PyErr_Clear();
        ffi::Py_DECREF(o);
        if !ok {
            return 0;
        }
    }
    off
}

/// The offset of `ob_item` in a list (after the variable-size object header), checked.
unsafe fn list_items_offset() -> usize {
    let off = 3 * core::mem::size_of::<usize>();
    let l = ffi::PyList_New(1);
    if l.is_null() {
        ffi::PyErr_Clear();
        return 0;
    }
    let none = ffi::Py_None();
    ffi::Py_INCREF(none);
    ffi::PyList_SetItem(l, 0, none);
    let items = *((l as *const u8).add(off) as *const *const *mut PyObject);
    let ok = !items.is_null() && *items == none;
    ffi::Py_DECREF(l);
    if ok {
        off
    } else {
        0
    }
}

/// One more reference to `o` (inline: a function call per reference under
/// the limited API otherwise). Immortal objects (3.12+: a negative low
/// 32-bit count) are left alone, as CPython's own increment does.
///
/// # Safety
/// `o` is a live object and the GIL is held (the count is not atomic).
#[inline(always)]
unsafe fn incref(o: *mut PyObject) {
    let rc = o as *mut isize;
    if (*rc as i32) >= 0 {
        *rc += 1;
    }
}

/// One reference fewer to `o`, which someone else still holds (never the last one).
///
/// # Safety
/// `o` is live, the caller owns the reference dropped, and the GIL is held; a
/// count that reaches 0 here is never freed (a leak), so the caller should
/// know another holder exists.
#[inline(always)]
unsafe fn decref_held(o: *mut PyObject) {
    let rc = o as *mut isize;
    if (*rc as i32) >= 0 {
        *rc -= 1;
    }
}

/// A code unit of a compact string's storage (UCS1, UCS2 or UCS4).
trait Unit: Copy {
    fn from_u32(c: u32) -> Self;
}
impl Unit for u8 {
    #[inline(always)]
    fn from_u32(c: u32) -> u8 {
        c as u8
    }
}
impl Unit for u16 {
    #[inline(always)]
    fn from_u32(c: u32) -> u16 {
        c as u16
    }
}
impl Unit for u32 {
    #[inline(always)]
    fn from_u32(c: u32) -> u32 {
        c
    }
}

/// Decodes valid UTF-8 `s` into `d` (room for every character; each fits `T`).
/// Runs of ASCII go eight bytes at a time; multi-byte sequences one by one.
///
/// # Safety
/// `s` is valid UTF-8 (a sequence's continuation bytes are read unchecked) and
/// `d` is writable for as many `T` units as `s` has characters.
#[inline(always)]
unsafe fn decode_into<T: Unit>(s: &[u8], d: *mut T) {
    let n = s.len();
    let p = s.as_ptr();
    let mut i = 0;
    let mut j = 0;
    while i < n {
        let b = *p.add(i) as u32;
        if b < 0x80 {
            while i + 8 <= n {
                let w = (p.add(i) as *const u64).read_unaligned();
                if w & 0x8080_8080_8080_8080 != 0 {
                    break;
                }
                for k in 0..8 {
                    d.add(j + k).write_unaligned(T::from_u32((w >> (8 * k)) as u8 as u32));
                }
                i += 8;
                j += 8;
            }
            while i < n && *p.add(i) < 0x80 {
                d.add(j).write_unaligned(T::from_u32(*p.add(i) as u32));
                i += 1;
                j += 1;
            }
            continue;
        }
        if b & 0xF0 == 0xE0 {
            // Runs of three-byte sequences (CJK text).
            while i + 3 <= n && *p.add(i) & 0xF0 == 0xE0 {
                let c = ((*p.add(i) as u32 & 0x0F) << 12) | ((*p.add(i + 1) as u32 & 0x3F) << 6) | (*p.add(i + 2) as u32 & 0x3F);
                d.add(j).write_unaligned(T::from_u32(c));
                i += 3;
                j += 1;
            }
            continue;
        }
        let c = if b < 0xE0 {
            let c = ((b & 0x1F) << 6) | (*p.add(i + 1) as u32 & 0x3F);
            i += 2;
            c
        } else if b < 0xF0 {
            let c = ((b & 0x0F) << 12) | ((*p.add(i + 1) as u32 & 0x3F) << 6) | (*p.add(i + 2) as u32 & 0x3F);
            i += 3;
            c
        } else {
            let c = ((b & 0x07) << 18)
                | ((*p.add(i + 1) as u32 & 0x3F) << 12)
                | ((*p.add(i + 2) as u32 & 0x3F) << 6)
                | (*p.add(i + 3) as u32 & 0x3F);
            i += 4;
            c
        };
        d.add(j).write_unaligned(T::from_u32(c));
        j += 1;
    }
}

/// A new str for valid UTF-8 `s` with non-ASCII characters, decoded here
/// into the string's own storage (the smallest kind that holds them, as
/// CPython requires); null with a Python error set on failure.
///
/// # Safety
/// The GIL is held, `s` is valid UTF-8 with at least one non-ASCII character,
/// and `off` is the verified COMPACT_OFFSET.
unsafe fn new_str_utf8(s: &[u8], off: usize) -> *mut PyObject {
    // Characters = bytes that are not continuation bytes (10xxxxxx); the
    // widest lead byte decides the kind. Eight bytes at a time (SWAR).
    const H: u64 = 0x8080_8080_8080_8080;
    let (mut cont, mut wide, mut astral) = (0usize, 0u64, 0u64);
    let mut i = 0;
    while i + 8 <= s.len() {
        let w = ffi_serde_core::read_u64(s, i);
        // Per byte, bit 7: continuation (10......), >= 0xC4 (11 and one of bits 5-2), >= 0xF0 (1111....).
        cont += (w & !(w << 1) & H).count_ones() as usize;
        wide |= w & (w << 1) & ((w << 2) | (w << 3) | (w << 4) | (w << 5)) & H;
        astral |= w & (w << 1) & (w << 2) & (w << 3) & H;
        i += 8;
    }
    let mut lead = if astral != 0 {
        0xF0
    } else if wide != 0 {
        0xC4
    } else {
        0
    };
    for &b in &s[i..] {
        cont += (b & 0xC0 == 0x80) as usize;
        lead = lead.max(b);
    }
    let n = s.len() - cont;
    // Leads C2-C3: up to U+00FF; C4-DF and E0-EF: up to U+FFFF; F0-F4: beyond.
    let (maxchar, width) = if lead >= 0xF0 {
        (0x10FFFF, 4)
    } else if lead >= 0xC4 {
        (0xFFFF, 2)
    } else {
        (0xFF, 1)
    };
    let o = PyUnicode_New(n as Py_ssize_t, maxchar);
    if o.is_null() {
        return o;
    }
    let d = (o as *mut u8).add(off);
    match width {
        1 => decode_into(s, d),
        2 => decode_into(s, d as *mut u16),
        _ => decode_into(s, d as *mut u32),
    }
    o
}

/// A new str for valid UTF-8 `s` (all ASCII when `ascii`); null with a Python error set on failure.
///
/// # Safety
/// The GIL is held; `s` is valid UTF-8, all ASCII when `ascii`; `off` is 0 or
/// the measured ASCII_OFFSET.
#[inline(always)]
unsafe fn new_str(s: &[u8], ascii: bool, off: usize) -> *mut PyObject {
    if ascii && off != 0 {
        let o = PyUnicode_New(s.len() as Py_ssize_t, 127);
        if !o.is_null() {
            core::ptr::copy_nonoverlapping(s.as_ptr(), (o as *mut u8).add(off), s.len());
        }
        return o;
    }
    let coff = COMPACT_OFFSET.load(Ordering::Relaxed);
    if !ascii && coff != 0 {
        return new_str_utf8(s, coff);
    }
    ffi::PyUnicode_DecodeUTF8(s.as_ptr() as *const _, s.len() as Py_ssize_t, core::ptr::null())
}

// ------------------------------------------------------------------ parse

/// Object keys seen by any parse: interned str objects by content.
struct KeyCache {
    slots: Vec<KeySlot>,
}

struct KeySlot {
    hash: u64,
    bytes: Box<[u8]>,
    /// A strong reference (null = empty).
    obj: *mut PyObject,
}

// SAFETY: the objects are only touched with the GIL held (the cache is used
// inside parses, which hold the GIL throughout).
unsafe impl Send for KeyCache {}

const KEY_BITS: u32 = 11;
const KEY_MAX: usize = 64;
/// String values up to this many bytes (ASCII) go through the per-parse cache.
const VALUE_MAX: usize = 16;

static KEYS: Mutex<KeyCache> = Mutex::new(KeyCache { slots: Vec::new() });

/// Makes Python objects for the reader.
pub struct PySink<'k> {
    stack: Vec<*mut PyObject>,
    keys: &'k mut KeyCache,
    /// Short ASCII string values of this parse: (hash, length, strong reference).
    vals: Vec<(u64, usize, *mut PyObject)>,
    vbits: u32,
    off: usize,
    items_off: usize,
    presized: Option<unsafe extern "C" fn(Py_ssize_t) -> *mut PyObject>,
    /// The Python exception behind a failure, if CPython raised one.
    pub err: Option<PyErr>,
    py: Python<'k>,
}

impl<'k> PySink<'k> {
    fn new(py: Python<'k>, keys: &'k mut KeyCache, input: usize) -> PySink<'k> {
        if keys.slots.is_empty() {
            keys.slots = (0..1usize << KEY_BITS)
                .map(|_| KeySlot { hash: 0, bytes: Box::new([]), obj: core::ptr::null_mut() })
                .collect();
        }
        let p = PRESIZED.load(Ordering::Relaxed);
        PySink {
            stack: Vec::with_capacity(64),
            keys,
            vals: Vec::new(),
            vbits: (input / 512).max(1).next_power_of_two().trailing_zeros().clamp(5, 10),
            off: ASCII_OFFSET.load(Ordering::Relaxed),
            items_off: LIST_ITEMS_OFFSET.load(Ordering::Relaxed),
            presized: if p == 0 {
                None
            } else {
                // SAFETY: `p` is non-zero, so it is the address dlsym found for `_PyDict_NewPresized`
                // in the running interpreter (`init`), whose C signature is
                // `PyObject *_PyDict_NewPresized(Py_ssize_t)`: the type transmuted to.
                Some(unsafe { core::mem::transmute::<usize, unsafe extern "C" fn(Py_ssize_t) -> *mut PyObject>(p) })
            },
            err: None,
            py,
        }
    }

    /// The failure for a null result: the Python error is kept for the caller.
    #[cold]
    fn fail(&mut self) -> Fail {
        self.err = Some(PyErr::fetch(self.py));
        Box::new(Error::internal(FN_PARSE, "Python object creation failed"))
    }

    #[inline(always)]
    fn obj(&mut self, o: *mut PyObject) -> Result<*mut PyObject, Fail> {
        if o.is_null() {
            Err(self.fail())
        } else {
            Ok(o)
        }
    }

    /// `o` with one more reference.
    #[inline(always)]
    fn new_ref(o: *mut PyObject) -> *mut PyObject {
        // SAFETY: callers pass a live object they hold a reference to (a singleton, a cached or
        // just-made str), and the sink runs inside `parse`, which holds the GIL throughout, so
        // the non-atomic refcount update races with nobody.
        unsafe { incref(o) };
        o
    }
}

impl Drop for PySink<'_> {
    fn drop(&mut self) {
        for &o in &self.stack {
            // SAFETY: every pointer on the stack is a strong reference the sink owns (pushed by
            // the reader, not yet moved into a container), released once here; the sink lives
            // inside `parse`, which holds the GIL.
            unsafe { ffi::Py_DECREF(o) };
        }
        for &(_, _, o) in &self.vals {
            if !o.is_null() {
                // SAFETY: a non-null cache entry is the strong reference `text` stored, released
                // once here, with the GIL held (see above).
                unsafe { ffi::Py_DECREF(o) };
            }
        }
    }
}

impl Sink for PySink<'_> {
    type V = *mut PyObject;

    #[inline(always)]
    fn null(&mut self) -> *mut PyObject {
        // SAFETY: Py_None only returns the address of the None singleton (GIL held by `parse`).
        Self::new_ref(unsafe { ffi::Py_None() })
    }
    #[inline(always)]
    fn boolean(&mut self, b: bool) -> *mut PyObject {
        // SAFETY: Py_True/Py_False only return the addresses of the bool singletons.
        Self::new_ref(unsafe {
            if b {
                ffi::Py_True()
            } else {
                ffi::Py_False()
            }
        })
    }
    #[inline(always)]
    fn int(&mut self, i: i64) -> Result<*mut PyObject, Fail> {
        // SAFETY: a by-value conversion with the GIL held (`parse`); a new reference or NULL
        // with an exception set, which `obj` turns into a failure.
        let o = unsafe { ffi::PyLong_FromLongLong(i) };
        self.obj(o)
    }
    #[inline(always)]
    fn float(&mut self, f: f64) -> Result<*mut PyObject, Fail> {
        // SAFETY: as for `int`: by value, GIL held, new reference or NULL.
        let o = unsafe { ffi::PyFloat_FromDouble(f) };
        self.obj(o)
    }

    #[inline(always)]
    fn text(&mut self, s: &[u8], ascii: bool) -> Result<*mut PyObject, Fail> {
        if !(ascii && s.len() <= VALUE_MAX && self.off != 0) {
            // SAFETY: the reader hands `text` valid UTF-8, all ASCII when `ascii` (Sink::text's
            // contract), which is what `new_str` requires; `off` is ASCII_OFFSET as measured at
            // import (0 = unknown); GIL held by `parse`.
            let o = unsafe { new_str(s, ascii, self.off) };
            return self.obj(o);
        }
        if self.vals.is_empty() {
            self.vals = vec![(0, 0, core::ptr::null_mut()); 1 << self.vbits];
        }
        let h = hash_bytes(s);
        let i = (h >> (64 - self.vbits)) as usize;
        let (ch, cn, co) = self.vals[i];
        if !co.is_null() && ch == h && cn == s.len() {
            // A cached ASCII string: its characters at `off`.
            // SAFETY: a cache entry is a live str (the cache holds a reference) made by `new_str`
            // with `ascii` and a non-zero `off`: a compact ASCII str of `cn` characters stored
            // as `cn` bytes at `off` from its start; strs are immutable, and the slice is read
            // before anything can release it.
            let t = unsafe { core::slice::from_raw_parts((co as *const u8).add(self.off), cn) };
            if same_bytes(t, s) {
                return Ok(Self::new_ref(co));
            }
        }
        // SAFETY: `s` is ASCII (checked above) and `off` is non-zero (the measured offset);
        // GIL held by `parse`.
        let o = unsafe { new_str(s, true, self.off) };
        let o = self.obj(o)?;
        if !co.is_null() {
            // SAFETY: the evicted entry's strong reference, owned by the cache and released once
            // (the slot is overwritten next); GIL held.
            unsafe { ffi::Py_DECREF(co) };
        }
        self.vals[i] = (h, s.len(), Self::new_ref(o));
        Ok(o)
    }

    #[inline(always)]
    fn key(&mut self, s: &[u8], ascii: bool) -> Result<*mut PyObject, Fail> {
        if s.len() > KEY_MAX {
            // SAFETY: as in `text`: valid UTF-8 from the reader, ASCII when `ascii`; GIL held.
            let o = unsafe { new_str(s, ascii, self.off) };
            return self.obj(o);
        }
        let h = hash_bytes(s);
        let slot = &mut self.keys.slots[(h >> (64 - KEY_BITS)) as usize];
        if !slot.obj.is_null() && slot.hash == h && same_bytes(&slot.bytes, s) {
            return Ok(Self::new_ref(slot.obj));
        }
        // SAFETY: as in `text`: valid UTF-8 from the reader, ASCII when `ascii`; GIL held.
        let mut o = unsafe { new_str(s, ascii, self.off) };
        if o.is_null() {
            return Err(self.fail());
        }
        // SAFETY: `o` is a non-null str we own one reference to, passed by a live `&mut` slot;
        // InternInPlace may replace it with the interned equal str, moving our reference to it.
        unsafe { ffi::PyUnicode_InternInPlace(&mut o) };
        let slot = &mut self.keys.slots[(h >> (64 - KEY_BITS)) as usize];
        if !slot.obj.is_null() {
            // SAFETY: the slot's strong reference, owned by the key cache, released once before
            // the slot is overwritten; the cache is only used under the GIL (`parse`).
            unsafe { ffi::Py_DECREF(slot.obj) };
        }
        slot.hash = h;
        slot.bytes = s.into();
        slot.obj = Self::new_ref(o);
        Ok(o)
    }

    #[inline(always)]
    fn push(&mut self, v: *mut PyObject) -> Result<(), Fail> {
        self.stack.push(v);
        Ok(())
    }
    #[inline(always)]
    fn pending(&self) -> usize {
        self.stack.len()
    }

    fn array(&mut self, base: usize) -> Result<*mut PyObject, Fail> {
        let n = self.stack.len() - base;
        // SAFETY: a by-value length with the GIL held; a new list or NULL (checked by `obj`).
        let l = unsafe { ffi::PyList_New(n as Py_ssize_t) };
        let l = self.obj(l)?;
        if self.items_off != 0 && n > 0 {
            // The new list's item array (n null slots): filled in place, as PyList_SET_ITEM does.
            // SAFETY: `items_off` is non-zero only when `init` verified it as `ob_item`'s offset;
            // `l` is the fresh, unshared list just made with `n > 0` null slots, so `items` is
            // its array of `n` pointers. The `n` stack entries from `base` are strong references
            // the sink owns; copying them in moves that ownership to the list (as PyList_SET_ITEM
            // does), and the stack is truncated below so nothing releases them twice.
            unsafe {
                let items = *((l as *const u8).add(self.items_off) as *const *mut *mut PyObject);
                core::ptr::copy_nonoverlapping(self.stack.as_ptr().add(base), items, n);
            }
        } else {
            for (i, &o) in self.stack[base..].iter().enumerate() {
                // Steals the reference; cannot fail (a new list of this length).
                // SAFETY: `l` is the fresh list of `n` slots, `i < n`, and `o` a strong reference
                // the sink owns, stolen by PyList_SetItem; GIL held.
                unsafe { ffi::PyList_SetItem(l, i as Py_ssize_t, o) };
            }
        }
        self.stack.truncate(base);
        Ok(l)
    }

    fn object(&mut self, base: usize) -> Result<*mut PyObject, Fail> {
        let n = (self.stack.len() - base) / 2;
        // SAFETY: `presized` is `_PyDict_NewPresized` (see `new`) and PyDict_New takes nothing;
        // both return a new dict or NULL (checked by `obj`); GIL held.
        let d = unsafe {
            match self.presized {
                Some(f) if n > 5 => f(n as Py_ssize_t),
                _ => ffi::PyDict_New(),
            }
        };
        let d = self.obj(d)?;
        let mut i = base;
        let end = self.stack.len();
        while i < end {
            let (k, v) = (self.stack[i], self.stack[i + 1]);
            // A repeated key keeps the last value in the first key's place (dict's own rule).
            // SAFETY: `d` is the fresh dict, `k` and `v` live objects the sink holds references to
            // (keys are str, so hashing runs no Python code); SetItem takes its own references.
            let r = unsafe { ffi::PyDict_SetItem(d, k, v) };
            if r != 0 {
                // Pairs from `i` on are still the stack's (released when the sink drops).
                let e = self.fail();
                self.stack.drain(base..i);
                // SAFETY: `d` is our only reference to the fresh dict, released once; the pairs
                // it took references to stay owned by it until it is freed.
                unsafe { ffi::Py_DECREF(d) };
                return Err(e);
            }
            // The dict holds both now.
            // SAFETY: drops the sink's own references to `k` and `v` (their stack slots are
            // truncated below, never released again). The dict now holds `v`, and `k` (or, for a
            // repeated key, the equal key it kept), so `decref_held`, which never deallocates,
            // is used: at worst a repeated long key's count reaches 0 unfreed (a leak, not a
            // dangling pointer). GIL held.
            unsafe {
                decref_held(k);
                decref_held(v);
            }
            i += 2;
        }
        self.stack.truncate(base);
        Ok(d)
    }

    fn discard(&mut self, v: *mut PyObject) {
        // SAFETY: the reader discards a value it got from this sink and no longer uses: a strong
        // reference the sink made, released once; GIL held.
        unsafe { ffi::Py_DECREF(v) };
    }
}

/// Resumes Python's cyclic collector (if it was running) when dropped.
struct GcPause(bool);
impl GcPause {
    fn new() -> GcPause {
        // SAFETY: PyGC_Disable takes nothing and returns the previous state; callers hold the
        // GIL (`parse` takes `py`).
        GcPause(unsafe { ffi::PyGC_Disable() } != 0)
    }
}
impl Drop for GcPause {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: the pause is dropped inside `parse`, still holding the GIL; re-enables only
            // what this pause disabled.
            unsafe { ffi::PyGC_Enable() };
        }
    }
}

/// Parses JSON `text` into Python objects (`rt_json_parse`'s result,
/// converted); `utf8`: the text is a str's, valid UTF-8 already.
pub fn parse(py: Python<'_>, text: &[u8], utf8: bool, bigint: BigInt) -> PyResult<Py<PyAny>> {
    let _gc = GcPause::new();
    let mut local = KeyCache { slots: Vec::new() };
    let mut guard = KEYS.try_lock().ok();
    let keys = match guard.as_deref_mut() {
        Some(k) => k,
        None => &mut local,
    };
    let r = Reader::new(FN_PARSE, text, bigint, PySink::new(py, keys, text.len()));
    let mut r = if utf8 { r.assume_utf8() } else { r };
    match r.parse() {
        // SAFETY: a successful parse returns the root as a non-null strong reference the sink
        // made and handed over (it is no longer on the sink's stack), owned by the Bound now.
        Ok(o) => Ok(unsafe { Bound::from_owned_ptr(py, o).unbind() }),
        Err(e) => match r.sink.err.take() {
            Some(pe) => Err(pe),
            None => Err(rt_error(py, &e)),
        },
    }
}

/// The RtError subclass instance for `e` (its code, message and details).
pub fn rt_error(py: Python<'_>, e: &Error) -> PyErr {
    let details = PyDict::new(py);
    for (k, v) in &e.details {
        let r = match v {
            ffi_sdk::error::Detail::Text(s) => details.set_item(*k, s),
            ffi_sdk::error::Detail::Int(i) => details.set_item(*k, *i),
        };
        if let Err(err) = r {
            return err;
        }
    }
    let details: Py<PyAny> = if e.details.is_empty() { py.None() } else { details.into_any().unbind() };
    match crate::hooks().and_then(|h| h.error.call1(py, (e.code as u32, e.message.as_str(), details))) {
        Ok(o) => PyErr::from_value(o.into_bound(py)),
        Err(err) => err,
    }
}

// ------------------------------------------------------------------ write

/// Python objects as the writer's tree. `fallback` is set when something
/// is outside what it reads in place (the caller then takes the ordinary path).
pub struct PyTree {
    fallback: Cell<bool>,
}

impl PyTree {
    #[cold]
    fn give_up<T>(&self, v: T) -> T {
        self.fallback.set(true);
        // SAFETY: called while `stringify` holds the GIL (it has `py`); clearing takes nothing.
        unsafe { ffi::PyErr_Clear() };
        v
    }
}

/// A list's or tuple's items (read in place: no Python code runs during the write).
pub struct PySeq {
    o: *mut PyObject,
    n: usize,
    list: bool,
}

impl Seq<*mut PyObject> for PySeq {
    #[inline(always)]
    fn len(&self) -> usize {
        self.n
    }
    #[inline(always)]
    fn item(&self, i: usize) -> *mut PyObject {
        // SAFETY: `o` is a live exact list or tuple (`shape` checked the type) of `n` items; the
        // writer asks for `i < n`, and no Python code runs during the write, so it cannot shrink.
        // Both calls bounds-check anyway and return a borrowed reference the container keeps
        // alive; GIL held by `stringify`.
        unsafe {
            if self.list {
                ffi::PyList_GetItem(self.o, i as Py_ssize_t)
            } else {
                ffi::PyTuple_GetItem(self.o, i as Py_ssize_t)
            }
        }
    }
}

pub struct PyEntries {
    o: *mut PyObject,
    n: usize,
    pos: Py_ssize_t,
}

impl Map<*mut PyObject> for PyEntries {
    #[inline(always)]
    fn len(&self) -> usize {
        self.n
    }
    #[inline(always)]
    fn next_entry(&mut self) -> Option<(*mut PyObject, *mut PyObject)> {
        let mut k = core::ptr::null_mut();
        let mut v = core::ptr::null_mut();
        // SAFETY: `o` is a live exact dict (`shape`), not mutated during the write (no Python
        // code runs); `pos` and the out-pointers are live locals/fields. The entries are borrowed
        // references the dict keeps alive; GIL held by `stringify`.
        if unsafe { ffi::PyDict_Next(self.o, &mut self.pos, &mut k, &mut v) } != 0 {
            Some((k, v))
        } else {
            None
        }
    }
}

impl PyTree {
    /// A str's UTF-8 bytes (CPython's own copy; for ASCII strings, the characters themselves).
    #[inline(always)]
    fn utf8(&self, o: *mut PyObject) -> Option<&[u8]> {
        let mut n: Py_ssize_t = 0;
        // SAFETY: `o` is a live exact str (callers checked the type), `n` a live local; GIL held.
        let p = unsafe { ffi::PyUnicode_AsUTF8AndSize(o, &mut n) };
        if p.is_null() {
            return self.give_up(None);
        }
        // SAFETY: `p` is non-null: the str's own UTF-8 buffer of `n` bytes, cached in the object
        // for its lifetime; the str is held by the tree being written (no Python code runs
        // during the write to release it), so it outlives the slice's use.
        Some(unsafe { core::slice::from_raw_parts(p as *const u8, n as usize) })
    }
}

impl Tree for PyTree {
    type N = *mut PyObject;
    type Items = PySeq;
    type Entries = PyEntries;

    #[inline(always)]
    fn shape(&self, o: *mut PyObject) -> Shape<'_, PySeq, PyEntries> {
        // SAFETY: `o` is a live object of the tree (the root `stringify` borrows, or an item or
        // entry a container in it holds); GIL held. Each call is made on an exact type just
        // compared with Py_TYPE: PyLong_AsLongLongAndOverflow and PyFloat_AsDouble on exact int
        // and float run no Python code (no `__index__`/`__float__`); sizes of exact containers.
        unsafe {
            let t = ffi::Py_TYPE(o);
            if t == &raw mut ffi::PyUnicode_Type {
                return match self.utf8(o) {
                    Some(s) => Shape::Str(s),
                    None => Shape::NoForm,
                };
            }
            if t == &raw mut ffi::PyLong_Type {
                let mut over = 0;
                let i = ffi::PyLong_AsLongLongAndOverflow(o, &mut over);
                if over != 0 || (i == -1 && !ffi::PyErr_Occurred().is_null()) {
                    return self.give_up(Shape::NoForm);
                }
                return Shape::Int(i);
            }
            if t == &raw mut ffi::PyFloat_Type {
                return Shape::Float(ffi::PyFloat_AsDouble(o));
            }
            if t == &raw mut ffi::PyDict_Type {
                return Shape::Dict(PyEntries { o, n: ffi::PyDict_Size(o) as usize, pos: 0 });
            }
            if t == &raw mut ffi::PyList_Type {
                return Shape::Array(PySeq { o, n: ffi::PyList_Size(o) as usize, list: true });
            }
            if o == ffi::Py_None() {
                return Shape::Null;
            }
            if o == ffi::Py_True() {
                return Shape::Bool(true);
            }
            if o == ffi::Py_False() {
                return Shape::Bool(false);
            }
            if t == &raw mut ffi::PyTuple_Type {
                return Shape::Array(PySeq { o, n: ffi::PyTuple_Size(o) as usize, list: false });
            }
        }
        // Subclasses and other types: the ordinary conversion decides.
        self.give_up(Shape::NoForm)
    }

    #[inline(always)]
    fn id(&self, o: *mut PyObject) -> usize {
        o as usize
    }

    #[inline(always)]
    fn key(&self, k: *mut PyObject) -> KeyText<'_> {
        // SAFETY: `k` is a live key of a dict in the tree (borrowed from PyDict_Next); reading its
        // type is always valid, and `utf8` is only called for an exact str; GIL held.
        unsafe {
            let t = ffi::Py_TYPE(k);
            if t == &raw mut ffi::PyUnicode_Type {
                return match self.utf8(k) {
                    Some(s) => KeyText::Text(s),
                    None => KeyText::NoForm,
                };
            }
        }
        self.other_key(k)
    }

    fn no_form(&self, _o: *mut PyObject) -> (Code, String) {
        (Code::Unsupported, String::new())
    }
    fn bad_key(&self, _k: *mut PyObject) -> (Code, String) {
        (Code::Unsupported, String::new())
    }
    fn key_segment(&self, _out: &mut String, _k: *mut PyObject) {}
}

impl PyTree {
    /// Keys of other kinds: int, float, bool and None by their JSON spelling
    /// (as the runtime writes them); the rest through the ordinary path.
    #[cold]
    fn other_key(&self, k: *mut PyObject) -> KeyText<'_> {
        // SAFETY: as in `key`: a live key, GIL held; the conversions are made on exact int and
        // float only (no Python code runs), the singletons are compared by address.
        unsafe {
            let t = ffi::Py_TYPE(k);
            if k == ffi::Py_None() {
                return KeyText::Spelled("null".into());
            }
            if k == ffi::Py_True() {
                return KeyText::Spelled("true".into());
            }
            if k == ffi::Py_False() {
                return KeyText::Spelled("false".into());
            }
            if t == &raw mut ffi::PyLong_Type {
                let mut over = 0;
                let i = ffi::PyLong_AsLongLongAndOverflow(k, &mut over);
                if over == 0 && (i != -1 || ffi::PyErr_Occurred().is_null()) {
                    return KeyText::Spelled(i.to_string());
                }
            }
            if t == &raw mut ffi::PyFloat_Type {
                if let Some(s) = ffi_serde_core::float_key(ffi::PyFloat_AsDouble(k)) {
                    return KeyText::Spelled(s);
                }
            }
        }
        self.give_up(KeyText::NoForm)
    }
}

/// Output buffers up to this size are kept for the thread's next call.
const KEEP_BUFFER: usize = 8 << 20;

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `obj` as JSON text, or None when the ordinary call must decide (an
/// object outside the fast path, or any error: it raises the canonical one).
pub fn stringify(py: Python<'_>, obj: &Bound<'_, PyAny>, pretty: bool, sort_keys: bool) -> Option<PyResult<Py<PyAny>>> {
    let tree = PyTree { fallback: Cell::new(false) };
    // Not written (a value the writer does not take): None, the caller takes the normal call.
    write_to_str(py, |buf| w::write(&tree, obj.as_ptr(), buf, pretty, sort_keys).ok().map(Ok))
}

/// Runs `write` into this thread's reused output buffer and returns a
/// Python str of what it wrote; None when `write` gave None (nothing usable
/// written), its error when it failed.
fn write_to_str(py: Python<'_>, write: impl Fn(&mut Vec<u8>) -> Option<PyResult<()>>) -> Option<PyResult<Py<PyAny>>> {
    let run = |buf: &mut Vec<u8>| {
        buf.clear();
        let out = write(buf).map(|r| {
            r?;
            // SAFETY: both writers' output is valid UTF-8 (str bytes from CPython's UTF-8
            // forms or runtime strings, UTF-8 by the value contract; the rest ASCII), and
            // `is_ascii` tells `new_str` which; the offset is the measured one. A non-null
            // result is a new reference the Bound takes over; GIL held (`py`).
            unsafe {
                let o = new_str(buf, buf.is_ascii(), ASCII_OFFSET.load(Ordering::Relaxed));
                if o.is_null() {
                    Err(PyErr::fetch(py))
                } else {
                    Ok(Bound::from_owned_ptr(py, o).unbind())
                }
            }
        });
        if buf.capacity() > KEEP_BUFFER {
            *buf = Vec::new();
        }
        out
    };
    OUT.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
    .unwrap_or_else(|_| run(&mut Vec::new()))
}

// ------------------------------------------------------------------ native values

/// Parses JSON `text` (borrowed from the Python argument: no copy into the
/// collector heap) into a runtime value kept native (`rt_json_parse.value`).
pub fn parse_native(py: Python<'_>, text: &[u8], utf8: bool, bigint: BigInt) -> PyResult<Py<PyAny>> {
    let _at = crate::Attached::new();
    match ffi_serde_core::rt::parse_from(FN_PARSE, text, bigint, utf8) {
        Ok(v) => {
            let out = crate::value::native_result(py, v.raw());
            std::hint::black_box(v);
            out
        }
        Err(e) => Err(rt_error(py, &e)),
    }
}

/// The runtime value `w` (a pinned `Value`'s word) as JSON text, written
/// straight into a Python str (`rt_json_stringify(value)`).
pub fn stringify_native(py: Python<'_>, w: ffi_sdk::abi::RtValue, pretty: bool, sort_keys: bool) -> PyResult<Py<PyAny>> {
    let _at = crate::Attached::new();
    let write = |buf: &mut Vec<u8>| {
        let r = ffi_serde_core::rt::write_json("rt_json_stringify", ffi_sdk::Value::from_raw(w), buf, pretty, sort_keys);
        Some(r.map_err(|e| rt_error(py, &e)))
    };
    write_to_str(py, write).unwrap_or_else(|| Err(pyo3::exceptions::PyRuntimeError::new_err("rt_json_stringify: nothing written")))
}

// ------------------------------------------------------------------ options

/// `rt_json_parse`'s options when the fast path understands them:
/// None, or a dict whose only key is `bigint` ("float", "text", "error" or None).
pub fn parse_opts(opts: Option<&Bound<'_, PyAny>>) -> Option<BigInt> {
    let Some(o) = opts else { return Some(BigInt::Float) };
    if o.is_none() {
        return Some(BigInt::Float);
    }
    let d = o.cast_exact::<PyDict>().ok()?;
    let mut bigint = BigInt::Float;
    for (k, v) in d.iter() {
        if k.cast_exact::<PyString>().ok()?.to_str().ok()? != "bigint" {
            return None;
        }
        if v.is_none() {
            continue;
        }
        bigint = match v.cast_exact::<PyString>().ok()?.to_str().ok()? {
            "float" => BigInt::Float,
            "text" => BigInt::Text,
            "error" => BigInt::Error,
            _ => return None,
        };
    }
    Some(bigint)
}

/// `rt_json_stringify`'s options when the fast path understands them: (pretty, sort_keys).
pub fn stringify_opts(opts: Option<&Bound<'_, PyAny>>) -> Option<(bool, bool)> {
    let Some(o) = opts else { return Some((false, false)) };
    if o.is_none() {
        return Some((false, false));
    }
    let d = o.cast_exact::<PyDict>().ok()?;
    let (mut pretty, mut sort_keys) = (false, false);
    for (k, v) in d.iter() {
        let name = k.cast_exact::<PyString>().ok()?.to_str().ok()?.to_owned();
        let p = v.as_ptr();
        // SAFETY: Py_None/Py_False/Py_True only return the singletons' addresses, compared here.
        let b = unsafe {
            if p == ffi::Py_None() || p == ffi::Py_False() {
                false
            } else if p == ffi::Py_True() {
                true
            } else {
                return None;
            }
        };
        match name.as_str() {
            "pretty" => pretty = b,
            "sort_keys" => sort_keys = b,
            _ => return None,
        }
    }
    Some((pretty, sort_keys))
}

/// The str transcoded last and its UTF-8 (see [`text_arg`]): a strong
/// reference, so the object cannot be another one at the same address.
struct LastText {
    obj: Option<Py<PyAny>>,
    utf8: Vec<u8>,
}

static LAST: Mutex<LastText> = Mutex::new(LastText { obj: None, utf8: Vec::new() });

/// Strs up to this many characters are remembered with their UTF-8.
const KEEP_TEXT: usize = 16 << 20;

thread_local! {
    /// UTF-8 of str arguments that have none cached and are not remembered (reused between calls).
    static UTF8: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The UTF-8 text of a `str` or `bytes` argument (see [`text_arg`]).
pub struct TextArg<'a> {
    bytes: &'a [u8],
    /// Transcoded here, not remembered: handed back to the thread's buffer on drop.
    own: Option<Vec<u8>>,
    /// The remembered str's UTF-8 (held while the argument is in use).
    last: Option<std::sync::MutexGuard<'static, LastText>>,
    /// A str's (valid UTF-8 by construction).
    pub utf8: bool,
}

impl TextArg<'_> {
    pub fn bytes(&self) -> &[u8] {
        if let Some(l) = &self.last {
            return &l.utf8;
        }
        match &self.own {
            Some(v) => v,
            None => self.bytes,
        }
    }
}

impl Drop for TextArg<'_> {
    fn drop(&mut self) {
        if let Some(mut v) = self.own.take() {
            if v.capacity() <= KEEP_BUFFER {
                v.clear();
                let _ = UTF8.try_with(|c| {
                    if let Ok(mut b) = c.try_borrow_mut() {
                        if b.capacity() < v.capacity() {
                            *b = v;
                        }
                    }
                });
            }
        }
    }
}

/// The UTF-8 bytes of a `str` or `bytes` argument, read in place where they
/// exist: bytes, an ASCII str (its characters), a str whose UTF-8 form
/// CPython cached already. Any other str is transcoded from its characters
/// (SSE2 over runs of ASCII: several times faster than CPython's encoder on
/// mostly-ASCII text), leaving the str as it was: no UTF-8 copy is cached in
/// it for its lifetime, as `PyUnicode_AsUTF8AndSize` would. The last str
/// transcoded (up to 16 Mi characters) is remembered with its UTF-8, so
/// parsing the same str again costs no transcoding; the reference is let go
/// when another str is remembered, or at the next pass of Python's cyclic
/// collector once nothing else holds the str ([`release_text`]). None: not a
/// str or bytes, or a str that is not valid Unicode (the ordinary call
/// decides, and raises as before).
pub fn text_arg<'a>(x: &'a Bound<'_, PyAny>) -> Option<TextArg<'a>> {
    // SAFETY: `x` is a live object borrowed for 'a and the GIL is held (a `Bound`). The state
    // word is at `state` in every str (verified by `str_fields` for all kinds). The UTF-8 pointer
    // slot exists only in compact non-ASCII strs (PyCompactUnicodeObject), so it is read only
    // after the state says compact and not ASCII (an ASCII str may end before that offset).
    // `transcode`'s requirements hold: `o` is that compact str and `x` is it. The slices point
    // into `x`'s own UTF-8 form / bytes buffer, which live as long as `x` (strs and bytes are
    // immutable; a cached UTF-8 form is freed only with the str), hence the lifetime 'a.
    unsafe {
        let o = x.as_ptr();
        let t = ffi::Py_TYPE(o);
        if t == &raw mut ffi::PyUnicode_Type {
            let state = STATE_OFFSET.load(Ordering::Relaxed);
            if state != 0 {
                let st = ((o as *const u8).add(state) as *const u32).read_unaligned();
                // Compact, not ASCII, no UTF-8 form in it yet.
                if (st >> 5) & 3 == 1 {
                    let utf8 = UTF8_PTR_OFFSET.load(Ordering::Relaxed);
                    let cached = !((o as *const u8).add(utf8) as *const *const u8).read_unaligned().is_null();
                    if !cached {
                        if let Some(a) = transcode(x, o, (st >> 2) & 7) {
                            return Some(a);
                        }
                    }
                }
            }
            let mut n: Py_ssize_t = 0;
            let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
            if p.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            return Some(TextArg { bytes: core::slice::from_raw_parts(p as *const u8, n as usize), own: None, last: None, utf8: true });
        }
        if t == &raw mut ffi::PyBytes_Type {
            let p = ffi::PyBytes_AsString(o);
            let n = ffi::PyBytes_Size(o);
            if p.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            return Some(TextArg { bytes: core::slice::from_raw_parts(p as *const u8, n as usize), own: None, last: None, utf8: false });
        }
    }
    None
}

/// Lets go of the remembered str if nothing else holds it (run by a
/// `gc.callbacks` hook the package installs, after each collection).
pub fn release_text() {
    if let Ok(mut last) = LAST.try_lock() {
        // SAFETY: `o` is the live str LAST holds a strong reference to; reading its count needs
        // the GIL, which the `gc.callbacks` hook (the only caller) runs under.
        if last.obj.as_ref().is_some_and(|o| unsafe { ffi::Py_REFCNT(o.as_ptr()) } <= 1) {
            last.obj = None;
            last.utf8 = Vec::new();
        }
    }
}

/// The UTF-8 of compact str `o` (`kind` 1, 2 or 4 bytes a character; `x` is
/// it), transcoded, or the remembered one; None for a lone surrogate.
///
/// # Safety
/// The GIL is held, `o` is `x`'s pointer, and `x` is a compact non-ASCII str
/// of kind `kind` (checked through the verified state and COMPACT_OFFSET).
unsafe fn transcode<'a>(x: &Bound<'_, PyAny>, o: *mut PyObject, kind: u32) -> Option<TextArg<'a>> {
    if !matches!(kind, 1 | 2 | 4) {
        return None;
    }
    let n = ffi::PyUnicode_GetLength(o) as usize;
    let data = (o as *const u8).add(COMPACT_OFFSET.load(Ordering::Relaxed));
    if n <= KEEP_TEXT {
        if let Ok(mut last) = LAST.try_lock() {
            if last.obj.as_ref().is_some_and(|l| l.as_ptr() == o) {
                return Some(TextArg { bytes: &[], own: None, last: Some(last), utf8: true });
            }
            // The new one replaces it (its buffer reused).
            last.obj = None;
            let mut v = core::mem::take(&mut last.utf8);
            if !ucs_to_utf8(data, kind, n, &mut v) {
                return None;
            }
            if v.capacity() > 2 * v.len() + KEEP_BUFFER {
                v.shrink_to_fit();
            }
            last.utf8 = v;
            last.obj = Some(x.clone().unbind());
            return Some(TextArg { bytes: &[], own: None, last: Some(last), utf8: true });
        }
    }
    let mut v = UTF8.try_with(|c| c.try_borrow_mut().map(|mut b| core::mem::take(&mut *b)).unwrap_or_default()).unwrap_or_default();
    if !ucs_to_utf8(data, kind, n, &mut v) {
        return None;
    }
    Some(TextArg { bytes: &[], own: Some(v), last: None, utf8: true })
}

/// SSE2 (always present on x86_64) runs of ASCII characters of compact
/// strings, written out as bytes; each returns how many it took (it stops
/// before the first block holding a non-ASCII character).
///
/// Safety of each: `p` is readable for `n` units and `d` writable for `n` bytes.
#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    /// 1-byte characters, sixteen at a time.
    #[inline(always)]
    pub unsafe fn ascii_run_ucs1(p: *const u8, n: usize, d: *mut u8) -> usize {
        let mut i = 0;
        while i + 16 <= n {
            let x = _mm_loadu_si128(p.add(i) as *const __m128i);
            if _mm_movemask_epi8(x) != 0 {
                break;
            }
            _mm_storeu_si128(d.add(i) as *mut __m128i, x);
            i += 16;
        }
        i
    }

    /// 2-byte characters, eight at a time.
    #[inline(always)]
    pub unsafe fn ascii_run_ucs2(p: *const u16, n: usize, d: *mut u8) -> usize {
        let high = _mm_set1_epi16(0xFF80u16 as i16);
        let zero = _mm_setzero_si128();
        let mut i = 0;
        while i + 8 <= n {
            let x = _mm_loadu_si128(p.add(i) as *const __m128i);
            if _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(x, high), zero)) != 0xFFFF {
                break;
            }
            _mm_storel_epi64(d.add(i) as *mut __m128i, _mm_packus_epi16(x, x));
            i += 8;
        }
        i
    }

    /// 4-byte characters, four at a time.
    #[inline(always)]
    pub unsafe fn ascii_run_ucs4(p: *const u32, n: usize, d: *mut u8) -> usize {
        let high = _mm_set1_epi32(0xFFFF_FF80u32 as i32);
        let zero = _mm_setzero_si128();
        let mut i = 0;
        while i + 4 <= n {
            let x = _mm_loadu_si128(p.add(i) as *const __m128i);
            if _mm_movemask_epi8(_mm_cmpeq_epi32(_mm_and_si128(x, high), zero)) != 0xFFFF {
                break;
            }
            let w = _mm_packus_epi16(_mm_packs_epi32(x, x), zero);
            (d.add(i) as *mut i32).write_unaligned(_mm_cvtsi128_si32(w));
            i += 4;
        }
        i
    }
}
