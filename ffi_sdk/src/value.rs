//! `Value`: a borrowed view of one `RtValue` for domain code, with builders
//! and readers. A `Value` lives on the stack or in registers, where the
//! collector sees it; it is deliberately neither `Send` nor `Sync`, so it
//! cannot be parked in a Rust structure that outlives the call. Keep values
//! in Rust-owned memory only as [`Root`] (pinned).

use crate::abi::{self, RtValue};
use crate::error::{Error, RtResult};

use core::marker::PhantomData;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Value {
    raw: RtValue,
    _not_send: PhantomData<*const ()>,
}

impl core::fmt::Debug for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Value({})", self.describe())
    }
}

impl Value {
    pub const NIL: Value = Value::from_raw(abi::NIL);
    pub const TRUE: Value = Value::from_raw(abi::TRUE);
    pub const FALSE: Value = Value::from_raw(abi::FALSE);

    #[inline]
    pub const fn from_raw(raw: RtValue) -> Value {
        Value { raw, _not_send: PhantomData }
    }
    #[inline]
    pub const fn raw(self) -> RtValue {
        self.raw
    }

    // ---------- builders ----------
    #[inline]
    pub fn int(i: i64) -> Value {
        if (abi::INLINE_INT_MIN..=abi::INLINE_INT_MAX).contains(&i) {
            Value::from_raw((i as u64) << 3)
        } else {
            Value::from_raw(unsafe { abi::rt_int_new(i) })
        }
    }
    #[inline]
    pub fn float(d: f64) -> Value {
        let bits = d.to_bits();
        if bits & abi::TAG_MASK == 0 {
            Value::from_raw(bits | abi::TAG_FLOAT)
        } else {
            Value::from_raw(unsafe { abi::rt_float_new(d) })
        }
    }
    #[inline]
    pub const fn bool(b: bool) -> Value {
        if b {
            Value::TRUE
        } else {
            Value::FALSE
        }
    }
    /// A string value (the text is copied into the collector heap).
    pub fn text(s: &str) -> Value {
        Value::from_raw(unsafe { abi::rt__string_new_unchecked(s.as_ptr(), s.len()) })
    }
    /// A bytes value (copied).
    pub fn bytes(b: &[u8]) -> Value {
        Value::from_raw(unsafe { abi::rt_bytes_new(b.as_ptr(), b.len()) })
    }
    /// A bytes value of length `n` whose content the caller fills in place
    /// (no intermediate copy); shorten it with [`Value::truncate_blob`], turn
    /// it into text with [`Value::blob_into_text`]. The slice is valid while
    /// the value is reachable; do not let the value escape before it is filled.
    pub fn bytes_uninit<'a>(n: usize) -> RtResult<(Value, &'a mut [u8])> {
        let mut data: *mut u8 = core::ptr::null_mut();
        let v = Value::from_raw(unsafe { abi::rt__blob_alloc(abi::HK_BYTES, n, &mut data) });
        if data.is_null() {
            return Err(Error::from_value(v));
        }
        Ok((v, unsafe { core::slice::from_raw_parts_mut(data, n) }))
    }
    /// Shortens a blob made by [`Value::bytes_uninit`] (never lengthens).
    pub fn truncate_blob(self, n: usize) {
        unsafe {
            if abi::heap_kind(self.raw) != abi::HK_BYTES {
                return;
            }
            let b = abi::heap_ptr(self.raw) as *mut abi::BlobObj;
            if n < (*b).len {
                (*b).len = n;
                *(*b).data.as_mut_ptr().add(n) = 0;
            }
        }
    }
    /// Turns a bytes value made by [`Value::bytes_uninit`] (not yet shared)
    /// into text in place; Err(position of the first invalid byte) when its
    /// content is not UTF-8 (the value stays bytes).
    pub fn blob_into_text(self) -> Result<Value, usize> {
        let Some(b) = self.as_bytes() else { return Err(0) };
        if let Err(e) = core::str::from_utf8(b) {
            return Err(e.valid_up_to());
        }
        unsafe { (*abi::heap_ptr(self.raw)).kind = abi::HEAP_MAGIC | abi::HK_STRING };
        Ok(self)
    }
    /// An empty array with room for `cap` items.
    pub fn array(cap: usize) -> Value {
        Value::from_raw(unsafe { abi::rt_array_new(cap) })
    }
    /// An empty insertion-ordered dict.
    pub fn dict() -> Value {
        Value::from_raw(unsafe { abi::rt_dict_new() })
    }
    /// An array of texts.
    pub fn text_array<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
        let a = Value::array(0);
        for s in items {
            a.push(Value::text(s.as_ref()));
        }
        a
    }

    /// Appends to an array (no-op on anything else; builders only call it on arrays they made).
    #[inline]
    pub fn push(self, item: Value) -> Value {
        unsafe { abi::rt_array_push(self.raw, item.raw) };
        self
    }
    /// Sets `key` (text) in a dict this code built.
    #[inline]
    pub fn set(self, key: &str, value: Value) -> Value {
        unsafe { abi::rt_dict_set(self.raw, Value::text(key).raw, value.raw) };
        self
    }
    /// Sets an arbitrary key; returns the Error the core reports (e.g. unhashable key).
    pub fn set_value(self, key: Value, value: Value) -> RtResult<Value> {
        let r = Value::from_raw(unsafe { abi::rt_dict_set(self.raw, key.raw, value.raw) });
        if r.is_error() {
            return Err(Error::from_value(r));
        }
        Ok(self)
    }

    // ---------- readers ----------
    #[inline]
    pub fn kind(self) -> abi::Kind {
        kind_of(self.raw)
    }
    #[inline]
    pub fn is_nil(self) -> bool {
        self.raw == abi::NIL
    }
    #[inline]
    pub fn is_error(self) -> bool {
        unsafe { abi::heap_kind(self.raw) == abi::HK_ERROR }
    }
    #[inline]
    pub fn as_int(self) -> Option<i64> {
        if self.raw & abi::TAG_MASK == abi::TAG_INT {
            Some((self.raw as i64) >> 3)
        } else if unsafe { abi::heap_kind(self.raw) } == abi::HK_INT {
            Some(unsafe { (*(abi::heap_ptr(self.raw) as *const abi::IntObj)).value })
        } else {
            None
        }
    }
    #[inline]
    pub fn as_float(self) -> Option<f64> {
        if self.raw & abi::TAG_MASK == abi::TAG_FLOAT {
            Some(f64::from_bits(self.raw & !abi::TAG_MASK))
        } else if unsafe { abi::heap_kind(self.raw) } == abi::HK_FLOAT {
            Some(unsafe { (*(abi::heap_ptr(self.raw) as *const abi::FloatObj)).value })
        } else {
            None
        }
    }
    #[inline]
    pub fn as_bool(self) -> Option<bool> {
        match self.raw {
            abi::TRUE => Some(true),
            abi::FALSE => Some(false),
            _ => None,
        }
    }
    /// Borrow the text of a string value. The borrow is valid while the value
    /// is reachable (it is, for the arguments of the current call).
    #[inline]
    pub fn as_text<'a>(self) -> Option<&'a str> {
        unsafe {
            if abi::heap_kind(self.raw) != abi::HK_STRING {
                return None;
            }
            let o = abi::heap_ptr(self.raw) as *const abi::BlobObj;
            let bytes = core::slice::from_raw_parts((*o).data.as_ptr(), (*o).len);
            // Strings are validated on creation.
            Some(core::str::from_utf8_unchecked(bytes))
        }
    }
    /// Borrow the bytes of a bytes value.
    #[inline]
    pub fn as_bytes<'a>(self) -> Option<&'a [u8]> {
        unsafe {
            if abi::heap_kind(self.raw) != abi::HK_BYTES {
                return None;
            }
            let o = abi::heap_ptr(self.raw) as *const abi::BlobObj;
            Some(core::slice::from_raw_parts((*o).data.as_ptr(), (*o).len))
        }
    }
    /// Borrow the bytes of a string or bytes value.
    #[inline]
    pub fn as_text_or_bytes<'a>(self) -> Option<&'a [u8]> {
        self.as_bytes().or_else(|| self.as_text().map(str::as_bytes))
    }
    pub fn is_array(self) -> bool {
        unsafe { abi::heap_kind(self.raw) == abi::HK_ARRAY }
    }
    pub fn is_dict(self) -> bool {
        unsafe { abi::heap_kind(self.raw) == abi::HK_DICT }
    }
    /// Number of items of an array (0 for anything else).
    pub fn len(self) -> usize {
        if self.is_dict() {
            unsafe { abi::rt_dict_len(self.raw) }
        } else {
            unsafe { abi::rt_array_len(self.raw) }
        }
    }
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Item `i` of an array (nil when out of range).
    pub fn at(self, i: usize) -> Value {
        let v = Value::from_raw(unsafe { abi::rt_array_get(self.raw, i) });
        if v.is_error() {
            Value::NIL
        } else {
            v
        }
    }
    /// Items of an array, read one at a time (the array may change under the host's other threads).
    pub fn items(self) -> impl Iterator<Item = Value> {
        let n = self.len();
        (0..n).map(move |i| self.at(i))
    }
    /// Value at `key` (text) of a dict; nil when absent or not a dict.
    pub fn get(self, key: &str) -> Value {
        if !self.is_dict() {
            return Value::NIL;
        }
        Value::from_raw(unsafe { abi::rt_dict_get(self.raw, Value::text(key).raw) })
    }
    /// (key, value) pairs of a dict in insertion order.
    pub fn entries(self) -> impl Iterator<Item = (Value, Value)> {
        let n = if self.is_dict() { self.len() } else { 0 };
        (0..n).map(move |i| unsafe {
            (
                Value::from_raw(abi::rt_dict_key_at(self.raw, i)),
                Value::from_raw(abi::rt_dict_value_at(self.raw, i)),
            )
        })
    }

    /// Code and message when this is an Error value.
    pub fn error(self) -> Option<(crate::Code, String)> {
        if !self.is_error() {
            return None;
        }
        let e = crate::Error::from_value(self);
        Some((e.code, e.message))
    }

    /// Short description for messages: kind and a clipped rendering (`int 42`, `text "ab…"`).
    pub fn describe(self) -> String {
        let k = self.kind();
        match k {
            abi::Kind::Nil => "nil".into(),
            abi::Kind::Bool => format!("bool {}", self.as_bool().unwrap_or(false)),
            abi::Kind::Int => format!("int {}", self.as_int().unwrap_or(0)),
            abi::Kind::Float => format!("float {}", self.as_float().unwrap_or(f64::NAN)),
            abi::Kind::String => format!("text {}", crate::error::quote(self.as_text().unwrap_or(""))),
            abi::Kind::Bytes => format!("bytes of length {}", self.as_bytes().map_or(0, |b| b.len())),
            abi::Kind::Array => format!("array of length {}", self.len()),
            abi::Kind::Dict => format!("dict of length {}", self.len()),
            abi::Kind::Error => "error".into(),
            abi::Kind::Handle => "handle".into(),
            abi::Kind::Invalid => format!("invalid word {:#x}", self.raw),
        }
    }
}

/// Kind of a raw word (same answer as `rt_kind`).
#[inline]
pub fn kind_of(v: RtValue) -> abi::Kind {
    use abi::Kind;
    match v & abi::TAG_MASK {
        abi::TAG_INT => Kind::Int,
        abi::TAG_FLOAT => Kind::Float,
        abi::TAG_SPECIAL => match v {
            abi::NIL => Kind::Nil,
            abi::TRUE | abi::FALSE => Kind::Bool,
            _ => Kind::Invalid,
        },
        abi::TAG_HEAP => match unsafe { abi::heap_kind(v) } {
            abi::HK_STRING => Kind::String,
            abi::HK_BYTES => Kind::Bytes,
            abi::HK_ARRAY => Kind::Array,
            abi::HK_DICT => Kind::Dict,
            abi::HK_INT => Kind::Int,
            abi::HK_FLOAT => Kind::Float,
            abi::HK_ERROR => Kind::Error,
            abi::HK_HANDLE => Kind::Handle,
            _ => Kind::Invalid,
        },
        _ => Kind::Invalid,
    }
}

/// A value kept alive by a pin while Rust-owned memory holds it (SPEC §4).
/// Cloning pins again; dropping unpins. `Root` is `Send + Sync`.
pub struct Root(RtValue);

unsafe impl Send for Root {}
unsafe impl Sync for Root {}

impl Root {
    pub fn new(v: Value) -> Root {
        unsafe { abi::rt_value_pin(v.raw()) };
        Root(v.raw())
    }
    /// The value, for use in the current call.
    pub fn get(&self) -> Value {
        Value::from_raw(self.0)
    }
}

impl Clone for Root {
    fn clone(&self) -> Root {
        unsafe { abi::rt_value_pin(self.0) };
        Root(self.0)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        unsafe { abi::rt_value_unpin(self.0) };
    }
}
