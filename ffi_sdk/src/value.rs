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
    /// A dict from (key, value) word pairs in order (a later duplicate key
    /// replaces the earlier value), built in one pass without a call per pair.
    /// `pairs` must live where the collector sees it (a collector block such
    /// as an `ArrayBuilder`'s items, or the stack), not in a Rust `Vec`.
    pub fn dict_from_pairs(pairs: &[RtValue]) -> Value {
        Value::from_raw(unsafe { abi::rt__dict_from_pairs(pairs.as_ptr(), pairs.len() / 2, false) })
    }
    /// As [`Value::dict_from_pairs`] for keys the caller knows are distinct
    /// (by content): the pairs are copied as they are (a repeated key would
    /// only ever be found at its first position).
    pub fn dict_from_unique_pairs(pairs: &[RtValue]) -> Value {
        Value::from_raw(unsafe { abi::rt__dict_from_pairs(pairs.as_ptr(), pairs.len() / 2, true) })
    }
    /// A dict of distinct static keys, built in one call: the pairs are laid
    /// out on the stack (collector-visible) and copied once. Up to 16 fields.
    pub fn record(fields: &[(&Key, Value)]) -> Value {
        let mut pairs = [abi::NIL; 32];
        if fields.len() > 16 {
            let d = Value::dict_with_capacity(fields.len());
            for (k, v) in fields {
                unsafe { abi::rt_dict_set(d.raw, k.value().raw, v.raw) };
            }
            return d;
        }
        for (i, (k, v)) in fields.iter().enumerate() {
            pairs[2 * i] = k.value().raw;
            pairs[2 * i + 1] = v.raw;
        }
        let v = Value::dict_from_unique_pairs(&pairs[..2 * fields.len()]);
        core::hint::black_box(&pairs);
        v
    }
    /// An empty dict with room for `cap` entries (no regrowth while filling it).
    pub fn dict_with_capacity(cap: usize) -> Value {
        Value::from_raw(unsafe { abi::rt__dict_new_cap(cap) })
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
        self.array_items().values()
    }
    /// Value at `key` (text) of a dict; nil when absent or not a dict. Makes no key object.
    #[inline]
    pub fn get(self, key: &str) -> Value {
        Value::from_raw(unsafe { abi::rt__dict_get_str(self.raw, key.as_ptr(), key.len()) })
    }
    /// Whether a dict has `key` (a stored nil counts).
    pub fn has(self, key: Value) -> bool {
        unsafe { abi::rt_dict_has(self.raw, key.raw) }
    }
    /// The details dict of an Error value (nil when none or not an Error).
    pub fn error_details(self) -> Value {
        Value::from_raw(unsafe { abi::rt_error_details(self.raw) })
    }
    /// A consistent view of an array's items, read without a call per item
    /// (empty for anything else). See [`Items`].
    #[inline]
    pub fn array_items(self) -> Items {
        unsafe {
            if abi::heap_kind(self.raw) != abi::HK_ARRAY {
                return Items::EMPTY;
            }
            let a = abi::heap_ptr(self.raw) as *mut abi::ArrayObj;
            let _g = crate::lock::lock(a as *mut abi::Header);
            Items { ptr: (*a).items, len: (*a).len, _v: PhantomData }
        }
    }
    /// A consistent view of a dict's entries in insertion order (empty for anything else).
    #[inline]
    pub fn dict_entries(self) -> Items {
        unsafe {
            if abi::heap_kind(self.raw) != abi::HK_DICT {
                return Items::EMPTY;
            }
            let d = abi::heap_ptr(self.raw) as *mut abi::DictObj;
            let _g = crate::lock::lock(d as *mut abi::Header);
            Items { ptr: (*d).entries, len: (*d).len, _v: PhantomData }
        }
    }
    /// (key, value) pairs of a dict in insertion order.
    pub fn entries(self) -> impl Iterator<Item = (Value, Value)> {
        self.dict_entries().pairs()
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

/// The items of an array (or entries of a dict) as they were when the view
/// was taken: the length and the collector block holding them, read under
/// the object's lock. The view lives on the stack, so the block stays alive
/// even if the container grows into a new one meanwhile; later pushes are not
/// seen, in-place replacements may be. Like `Value`, it is not `Send`.
#[derive(Clone, Copy)]
pub struct Items {
    ptr: *const RtValue,
    len: usize,
    _v: PhantomData<*const ()>,
}

impl Items {
    const EMPTY: Items = Items { ptr: core::ptr::null(), len: 0, _v: PhantomData };
    /// Number of items (dict: entries).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Array item `i` (nil past the end).
    #[inline]
    pub fn item(&self, i: usize) -> Value {
        if i >= self.len {
            return Value::NIL;
        }
        Value::from_raw(unsafe { core::ptr::read_volatile(self.ptr.add(i)) })
    }
    /// Dict entry `i` as (key, value) (nils past the end).
    #[inline]
    pub fn entry(&self, i: usize) -> (Value, Value) {
        if i >= self.len {
            return (Value::NIL, Value::NIL);
        }
        unsafe {
            (
                Value::from_raw(core::ptr::read_volatile(self.ptr.add(2 * i))),
                Value::from_raw(core::ptr::read_volatile(self.ptr.add(2 * i + 1))),
            )
        }
    }
    /// The array items in order.
    pub fn values(self) -> impl Iterator<Item = Value> {
        (0..self.len).map(move |i| self.item(i))
    }
    /// The dict entries in order.
    pub fn pairs(self) -> impl Iterator<Item = (Value, Value)> {
        (0..self.len).map(move |i| self.entry(i))
    }
}

/// Fills an array this code made and has not shared yet: one store per
/// item, no call and no lock (growth allocates a new collector block).
/// Hand the array out only through [`ArrayBuilder::finish`].
pub struct ArrayBuilder {
    v: Value,
}

impl ArrayBuilder {
    /// A new empty array with room for `cap` items.
    pub fn new(cap: usize) -> RtResult<ArrayBuilder> {
        let v = Value::array(cap);
        if v.is_error() {
            return Err(Error::from_value(v));
        }
        Ok(ArrayBuilder { v })
    }
    /// Appends one item.
    #[inline]
    pub fn push(&mut self, item: Value) -> RtResult<()> {
        unsafe {
            let a = abi::heap_ptr(self.v.raw) as *mut abi::ArrayObj;
            if (*a).len == (*a).cap {
                self.grow(a)?;
            }
            *(*a).items.add((*a).len) = item.raw;
            (*a).len += 1;
        }
        Ok(())
    }
    #[cold]
    unsafe fn grow(&mut self, a: *mut abi::ArrayObj) -> RtResult<()> {
        let ncap = ((*a).cap * 2).max(8);
        let items = abi::rt__alloc(ncap * 8, false) as *mut RtValue;
        if items.is_null() {
            return Err(Error::internal("rt_array_push", format!("out of memory ({} bytes)", ncap * 8)));
        }
        if (*a).len > 0 {
            core::ptr::copy_nonoverlapping((*a).items, items, (*a).len);
        }
        (*a).items = items;
        (*a).cap = ncap;
        Ok(())
    }
    /// Number of items so far.
    pub fn len(&self) -> usize {
        unsafe { (*(abi::heap_ptr(self.v.raw) as *const abi::ArrayObj)).len }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The finished array.
    pub fn finish(self) -> Value {
        self.v
    }
}

/// A text key made once per library and kept pinned, so result dicts reuse
/// one string instead of allocating a key per entry:
/// `static MICROS: Key = Key::new("micros");` then [`Value::record`].
pub struct Key {
    text: &'static str,
    cell: std::sync::OnceLock<Root>,
}

impl Key {
    pub const fn new(text: &'static str) -> Key {
        Key { text, cell: std::sync::OnceLock::new() }
    }
    /// The key's string value (made and pinned on first use).
    #[inline]
    pub fn value(&self) -> Value {
        self.cell.get_or_init(|| Root::new(Value::text(self.text))).get()
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
