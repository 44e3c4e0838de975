//! `Value`: a borrowed view of one `RtValue` for domain code, with builders
//! and readers. A `Value` lives on the stack or in registers, where the
//! collector sees it; it is deliberately neither `Send` nor `Sync`, so it
//! cannot be parked in a Rust structure that outlives the call. Keep values
//! in Rust-owned memory only as [`Root`] (pinned).

use crate::abi::{self, RtValue};
use crate::error::{Error, RtResult};

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

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
            // SAFETY: core's `RtValue rt_int_new(int64_t)`, declared with that type in abi.rs; a by-value
            // argument, no memory shared (a boxed int comes back, or an Error on out of memory).
            Value::from_raw(unsafe { abi::rt_int_new(i) })
        }
    }
    #[inline]
    pub fn float(d: f64) -> Value {
        let bits = d.to_bits();
        if bits & abi::TAG_MASK == 0 {
            Value::from_raw(bits | abi::TAG_FLOAT)
        } else {
            // SAFETY: core's `RtValue rt_float_new(double)`, declared with that type in abi.rs (the f64
            // travels in an FP register as core expects); no memory shared.
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
        // SAFETY: pointer and length come from the live `&str` `s`, readable for `s.len()` bytes
        // during the call; `&str` is UTF-8, which is all `_unchecked` skips checking; core
        // copies the bytes and keeps no pointer to them.
        Value::from_raw(unsafe { abi::rt__string_new_unchecked(s.as_ptr(), s.len()) })
    }
    /// A bytes value (copied).
    pub fn bytes(b: &[u8]) -> Value {
        // SAFETY: pointer and length of the live slice `b`, readable for `b.len()` bytes during the
        // call; core copies them and keeps no pointer.
        Value::from_raw(unsafe { abi::rt_bytes_new(b.as_ptr(), b.len()) })
    }
    /// A bytes value of length `n` (zeroed) whose content the caller fills in
    /// place (no intermediate copy); shorten it with [`Value::truncate_blob`], turn
    /// it into text with [`Value::blob_into_text`]. The slice is valid while
    /// the value is reachable; do not let the value escape before it is filled.
    pub fn bytes_uninit<'a>(n: usize) -> RtResult<(Value, &'a mut [u8])> {
        let mut data: *mut u8 = core::ptr::null_mut();
        // SAFETY: `&mut data` is a live, writable `*mut u8` on this stack, the one out-parameter
        // rt__blob_alloc writes (NULL on failure); HK_BYTES is a blob kind it accepts.
        let v = Value::from_raw(unsafe { abi::rt__blob_alloc(abi::HK_BYTES, n, &mut data) });
        if data.is_null() {
            return Err(Error::from_value(v));
        }
        // SAFETY: `data` is non-NULL, so it is the start of the `n`-byte payload of the fresh blob
        // `v` (followed by its NUL), 1-aligned and owned by nobody else yet; the payload is an
        // interior pointer the conservative collector honours, so it stays alive while the slice
        // is used. The collector's atomic blocks are not cleared, so the bytes are zeroed first:
        // a `&mut [u8]` over uninitialised memory would be undefined behaviour (one memset, far
        // cheaper than the read or decode that fills it).
        Ok((v, unsafe {
            core::ptr::write_bytes(data, 0, n);
            core::slice::from_raw_parts_mut(data, n)
        }))
    }
    /// Shortens a blob made by [`Value::bytes_uninit`] (never lengthens).
    pub fn truncate_blob(self, n: usize) {
        // SAFETY: the `Value` contract (module docs): `self.raw` is a word the runtime made and the caller
        // keeps reachable, so `heap_ptr` reads a live header or gives null (no kind). With kind
        // HK_BYTES it is a `BlobObj` whose payload has `len + 1` bytes, so `n < len` keeps the NUL
        // store in bounds; per the doc the blob is the caller's own, not yet shared, so nobody
        // else reads `len` or the bytes meanwhile.
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
        // SAFETY: `as_bytes` returned Some, so `self.raw` is a live bytes object and `heap_ptr` is its
        // non-null header; its content was just checked to be UTF-8, the string invariant. Per the
        // doc the blob is the caller's own and not shared, so no other thread reads `kind`.
        unsafe { (*abi::heap_ptr(self.raw)).kind = abi::HEAP_MAGIC | abi::HK_STRING };
        Ok(self)
    }
    /// An empty array with room for `cap` items.
    pub fn array(cap: usize) -> Value {
        // SAFETY: core's `RtValue rt_array_new(size_t)`; a by-value capacity hint (a huge one gives
        // an Error value, CONTRACT §3).
        Value::from_raw(unsafe { abi::rt_array_new(cap) })
    }
    /// An empty insertion-ordered dict.
    pub fn dict() -> Value {
        // SAFETY: core's `RtValue rt_dict_new(void)`: no arguments, returns a new dict (or an Error).
        Value::from_raw(unsafe { abi::rt_dict_new() })
    }
    /// A dict from (key, value) word pairs in order (a later duplicate key
    /// replaces the earlier value), built in one pass without a call per pair.
    /// `pairs` must live where the collector sees it (a collector block such
    /// as an `ArrayBuilder`'s items, or the stack), not in a Rust `Vec`.
    pub fn dict_from_pairs(pairs: &[RtValue]) -> Value {
        // SAFETY: `pairs` is a live slice, readable for `pairs.len() / 2` pairs (2 words each) during the
        // call; core copies the words. Keeping the values alive is the caller's documented duty
        // (`pairs` in collector-visible memory).
        Value::from_raw(unsafe { abi::rt__dict_from_pairs(pairs.as_ptr(), pairs.len() / 2, false) })
    }
    /// As [`Value::dict_from_pairs`] for keys the caller knows are distinct
    /// (by content): the pairs are copied as they are (a repeated key would
    /// only ever be found at its first position).
    pub fn dict_from_unique_pairs(pairs: &[RtValue]) -> Value {
        // SAFETY: as in `dict_from_pairs`: `pairs.len() / 2` pairs are readable from the live slice and
        // copied; with `unique` core only skips the duplicate check, it never reads out of bounds.
        Value::from_raw(unsafe { abi::rt__dict_from_pairs(pairs.as_ptr(), pairs.len() / 2, true) })
    }
    /// A dict of distinct static keys, built in one call: the pairs are laid
    /// out on the stack (collector-visible) and copied once. Up to 16 fields.
    pub fn record(fields: &[(&Key, Value)]) -> Value {
        let mut pairs = [abi::NIL; 32];
        if fields.len() > 16 {
            let d = Value::dict_with_capacity(fields.len());
            for (k, v) in fields {
                // SAFETY: three value words, no memory: `d` was made just above and is on this stack, each key
                // is pinned by its `Key`, each `v` is in the caller's `fields`; a bad word gives an Error.
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
        // SAFETY: core's `rt__dict_new_cap(size_t) -> RtValue`; a by-value capacity (too large gives
        // an Error value).
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
        // SAFETY: core's `rt_array_push(RtValue, RtValue)`: two value words (live by the `Value`
        // contract); core checks the kind and locks the array, so a non-array is an Error, not UB.
        unsafe { abi::rt_array_push(self.raw, item.raw) };
        self
    }
    /// Sets `key` (text) in a dict this code built.
    #[inline]
    pub fn set(self, key: &str, value: Value) -> Value {
        // SAFETY: value words only: `self` and `value` are live by the `Value` contract, the fresh key
        // is on this stack; core checks the kind and locks the dict.
        unsafe { abi::rt_dict_set(self.raw, Value::text(key).raw, value.raw) };
        self
    }
    /// Sets an arbitrary key; returns the Error the core reports (e.g. unhashable key).
    pub fn set_value(self, key: Value, value: Value) -> RtResult<Value> {
        // SAFETY: value words only, all live by the `Value` contract; core checks the dict's kind and the
        // key's hashability and returns an Error value instead of failing.
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
        // SAFETY: `Value` contract: `self.raw` is a runtime word kept reachable, so `heap_kind` reads a
        // live header (or returns 0 for immediates and non-heap words).
        unsafe { abi::heap_kind(self.raw) == abi::HK_ERROR }
    }
    #[inline]
    pub fn as_int(self) -> Option<i64> {
        if self.raw & abi::TAG_MASK == abi::TAG_INT {
            return Some((self.raw as i64) >> 3);
        }
        // SAFETY: `Value` contract: `self.raw` is a live runtime word, so `heap_kind` reads a
        // live header or gives 0.
        if unsafe { abi::heap_kind(self.raw) } == abi::HK_INT {
            // SAFETY: kind HK_INT means `heap_ptr` is non-null and points at a live, 8-aligned `IntObj`;
            // its `value` is immutable after creation.
            Some(unsafe { (*(abi::heap_ptr(self.raw) as *const abi::IntObj)).value })
        } else {
            None
        }
    }
    #[inline]
    pub fn as_float(self) -> Option<f64> {
        if self.raw & abi::TAG_MASK == abi::TAG_FLOAT {
            return Some(f64::from_bits(self.raw & !abi::TAG_MASK));
        }
        // SAFETY: `Value` contract: `self.raw` is a live runtime word, so `heap_kind` reads a
        // live header or gives 0.
        if unsafe { abi::heap_kind(self.raw) } == abi::HK_FLOAT {
            // SAFETY: kind HK_FLOAT means `heap_ptr` is non-null and points at a live, 8-aligned
            // `FloatObj`; its `value` is immutable after creation.
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
        // SAFETY: `Value` contract: `self.raw` is a live runtime word, so `heap_kind` reads a live
        // header. With kind HK_STRING it is a `BlobObj` with `len` payload bytes; strings are
        // immutable and UTF-8-checked on creation (`_unchecked` only for `&str` input), so the
        // slice is valid UTF-8. The borrow lasts while the value is reachable (see the doc).
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
        // SAFETY: `Value` contract: `self.raw` is a live runtime word, so `heap_kind` reads a live
        // header; with kind HK_BYTES it is a `BlobObj` whose payload is `len` initialised bytes
        // (only `truncate_blob` changes `len`, and only on an unshared blob).
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
        // SAFETY: `Value` contract: a live runtime word, so `heap_kind` reads a live header or gives 0.
        unsafe { abi::heap_kind(self.raw) == abi::HK_ARRAY }
    }
    pub fn is_dict(self) -> bool {
        // SAFETY: `Value` contract: a live runtime word, so `heap_kind` reads a live header or gives 0.
        unsafe { abi::heap_kind(self.raw) == abi::HK_DICT }
    }
    /// Number of items of an array (0 for anything else).
    pub fn len(self) -> usize {
        if self.is_dict() {
            // SAFETY: core's `size_t rt_dict_len(RtValue)` on a live dict word; no memory shared.
            unsafe { abi::rt_dict_len(self.raw) }
        } else {
            // SAFETY: core's `size_t rt_array_len(RtValue)`: a value word only; core gives 0 for a
            // non-array.
            unsafe { abi::rt_array_len(self.raw) }
        }
    }
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Item `i` of an array (nil when out of range).
    pub fn at(self, i: usize) -> Value {
        // SAFETY: core's `rt_array_get(RtValue, size_t)`: core checks kind and bounds under the array's
        // lock and returns an Error value otherwise; no memory shared.
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
        // SAFETY: `key` is a live `&str`, readable for `key.len()` bytes during the call; core compares
        // them under the dict's lock and keeps no pointer; a non-dict gives nil.
        Value::from_raw(unsafe { abi::rt__dict_get_str(self.raw, key.as_ptr(), key.len()) })
    }
    /// Whether a dict has `key` (a stored nil counts).
    pub fn has(self, key: Value) -> bool {
        // SAFETY: core's `bool rt_dict_has(RtValue, RtValue)`: value words only, kind checked by core.
        unsafe { abi::rt_dict_has(self.raw, key.raw) }
    }
    /// The details dict of an Error value (nil when none or not an Error).
    pub fn error_details(self) -> Value {
        // SAFETY: core's `RtValue rt_error_details(RtValue)`: a value word; nil for a non-Error.
        Value::from_raw(unsafe { abi::rt_error_details(self.raw) })
    }
    /// A consistent view of an array's items, read without a call per item
    /// (empty for anything else). See [`Items`].
    #[inline]
    pub fn array_items(self) -> Items {
        // SAFETY: `Value` contract: a live runtime word, so `heap_kind` reads a live header; kind
        // HK_ARRAY means an `ArrayObj`, which `lock` may lock. Under the lock `items` and
        // `len` are consistent (`items` holds at least `len` words); the block is a collector
        // allocation kept alive by the `Items` view on the stack.
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
        // SAFETY: as in `array_items`: a live dict (kind HK_DICT), whose `entries` block holds at least
        // `2 * len` words while its lock is held; the view keeps the block alive.
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
        // SAFETY: callers pass words the runtime made (the same contract as `Value`, and `rt_kind`'s):
        // `heap_kind` reads a live header, or gives 0 below the first page or without the magic.
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
        // SAFETY: `i < self.len`, and the view's `ptr` (read under the container's lock) holds at least
        // `len` 8-aligned words of writable collector memory, kept alive by `ptr` on the stack.
        // Another thread may replace an item in place (core's rt_array_set: a plain aligned 8-byte
        // store under the lock we do not hold), so the word is read with a relaxed atomic load
        // (`AtomicU64` has u64's layout): old or new, never torn. Core's side of that pairing is a
        // non-atomic store in another library, which the Rust model does not cover by itself.
        Value::from_raw(unsafe { AtomicU64::from_ptr(self.ptr.add(i) as *mut u64) }.load(Ordering::Relaxed))
    }
    /// Dict entry `i` as (key, value) (nils past the end).
    #[inline]
    pub fn entry(&self, i: usize) -> (Value, Value) {
        if i >= self.len {
            return (Value::NIL, Value::NIL);
        }
        // SAFETY: `i < self.len` and the dict view's block holds at least `2 * len` aligned words (read
        // under the lock), kept alive by `ptr` on the stack; relaxed atomic loads as in `item`.
        unsafe {
            (
                Value::from_raw(AtomicU64::from_ptr(self.ptr.add(2 * i) as *mut u64).load(Ordering::Relaxed)),
                Value::from_raw(AtomicU64::from_ptr(self.ptr.add(2 * i + 1) as *mut u64).load(Ordering::Relaxed)),
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
        // SAFETY: `self.v` was made by `Value::array` and checked not to be an Error, so `heap_ptr` is
        // its live `ArrayObj`; the builder never shares it before `finish`, so no lock is needed.
        // After `grow` when full, `len < cap` and `items` holds `cap` words: the store is in
        // bounds, into a scanned collector block.
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
        // SAFETY: `self.v` is the builder's own array (made and checked in `new`), live while the
        // builder is, so `heap_ptr` is its non-null `ArrayObj` header.
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

// SAFETY: a `Root` is a pinned word: the pin (an uncollectable cell) keeps the object alive
// whatever thread holds it, and core's functions lock mutable objects themselves.
unsafe impl Send for Root {}
// SAFETY: `&Root` only copies the word out (`get`) or pins it again (`clone`, which locks the
// header in core), both safe from any thread.
unsafe impl Sync for Root {}

impl Root {
    pub fn new(v: Value) -> Root {
        // SAFETY: `rt_value_pin(RtValue)` takes a word and adds a counted pin under the object's lock
        // (immediates are ignored); the matching unpin is in `Drop`.
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
        // SAFETY: `self.0` is alive (pinned by `self`); the new pin is released by the clone's `Drop`.
        unsafe { abi::rt_value_pin(self.0) };
        Root(self.0)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // SAFETY: drops exactly the pin this `Root` took in `new`/`clone`; `self.0` is still pinned
        // by it until this call.
        unsafe { abi::rt_value_unpin(self.0) };
    }
}
