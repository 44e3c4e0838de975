//! The binary contract shared by every library: the word layout of `RtValue`,
//! the layout of heap objects, and the C functions `libffi_core.so` exports.
//!
//! Nothing here holds state. `ffi_core` defines the functions declared in
//! the `extern` block; domain libraries resolve them from `libffi_core.so`.

use core::sync::atomic::{AtomicU32, AtomicU64};

/// One runtime value: a tagged 64-bit word (SPEC §2).
pub type RtValue = u64;

/// ABI version: major << 16 | minor. A host refuses a different major.
pub const ABI_MAJOR: u32 = 1;
pub const ABI_MINOR: u32 = 0;
pub const ABI_VERSION: u32 = (ABI_MAJOR << 16) | ABI_MINOR;

pub const TAG_MASK: u64 = 0b111;
pub const TAG_INT: u64 = 0b000;
pub const TAG_HEAP: u64 = 0b001;
pub const TAG_FLOAT: u64 = 0b010;
pub const TAG_SPECIAL: u64 = 0b011;

pub const NIL: RtValue = 0x03;
pub const TRUE: RtValue = 0x0B;
pub const FALSE: RtValue = 0x13;

/// Smallest and largest int that fits inline (61 bits, signed).
pub const INLINE_INT_MIN: i64 = -(1 << 60);
pub const INLINE_INT_MAX: i64 = (1 << 60) - 1;

/// Kinds reported by `rt_kind` (stable numbers, part of the ABI).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invalid = 0,
    Nil = 1,
    Bool = 2,
    Int = 3,
    Float = 4,
    String = 5,
    Bytes = 6,
    Array = 7,
    Dict = 8,
    Error = 9,
    Handle = 10,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Invalid,
        Kind::Nil,
        Kind::Bool,
        Kind::Int,
        Kind::Float,
        Kind::String,
        Kind::Bytes,
        Kind::Array,
        Kind::Dict,
        Kind::Error,
        Kind::Handle,
    ];
    /// The kind's name as used in messages and the registry vocabulary.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::Nil => "nil",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::String => "string",
            Kind::Bytes => "bytes",
            Kind::Array => "array",
            Kind::Dict => "dict",
            Kind::Error => "error",
            Kind::Handle => "handle",
        }
    }
}

/// Heap object kinds stored in `Header::kind`. Boxed ints and floats report
/// `Kind::Int` / `Kind::Float` through `rt_kind`.
pub const HK_STRING: u32 = 1;
pub const HK_BYTES: u32 = 2;
pub const HK_ARRAY: u32 = 3;
pub const HK_DICT: u32 = 4;
pub const HK_INT: u32 = 5;
pub const HK_FLOAT: u32 = 6;
pub const HK_ERROR: u32 = 7;
pub const HK_HANDLE: u32 = 8;
/// Marks every live header: `kind | HEAP_MAGIC`; a word whose pointee lacks it is not a value.
pub const HEAP_MAGIC: u32 = 0x5254_0000;

/// Every heap object starts with this header (24 bytes, 8-aligned).
#[repr(C)]
pub struct Header {
    /// `HEAP_MAGIC | HK_*`.
    pub kind: u32,
    /// Spin lock word for mutation of arrays, dicts, handles and pin counts.
    pub lock: AtomicU32,
    /// Pin count (guarded by `lock`).
    pub pins: u32,
    pub _reserved: u32,
    /// Uncollectable cell that keeps the object alive while pinned (guarded by `lock`).
    pub pin_cell: *mut u64,
}

/// String and Bytes: length then the bytes inline, followed by one NUL.
#[repr(C)]
pub struct BlobObj {
    pub h: Header,
    pub len: usize,
    pub data: [u8; 0],
}

#[repr(C)]
pub struct IntObj {
    pub h: Header,
    pub value: i64,
}

#[repr(C)]
pub struct FloatObj {
    pub h: Header,
    pub value: f64,
}

/// Array: `items` is a collector block of `cap` words.
#[repr(C)]
pub struct ArrayObj {
    pub h: Header,
    pub len: usize,
    pub cap: usize,
    pub items: *mut RtValue,
}

/// Dict: `entries` holds `cap` (key, value) pairs in insertion order;
/// `index` is an open-addressing table of `index_cap` u32 slots (0 = empty,
/// otherwise entry number + 1), present once the dict outgrows a linear scan.
#[repr(C)]
pub struct DictObj {
    pub h: Header,
    pub len: usize,
    pub cap: usize,
    pub entries: *mut RtValue,
    pub index: *mut u32,
    pub index_cap: usize,
}

/// Error: stable code, message (string), details (dict or nil).
#[repr(C)]
pub struct ErrorObj {
    pub h: Header,
    pub code: u32,
    pub _pad: u32,
    pub message: RtValue,
    pub details: RtValue,
}

/// Static description of a handle's native type.
#[repr(C)]
pub struct HandleVTable {
    /// Type name, e.g. `Regex`, `FileLock`, `Child` (unique per process).
    pub type_name: &'static str,
    /// Adds one owner to `data` (called under the handle lock).
    pub acquire: unsafe extern "C" fn(*const ()),
    /// Drops one owner of `data`; the last owner releases the resource.
    pub release: unsafe extern "C" fn(*const ()),
}

/// Handle: an opaque native resource; `data` is owned until close.
#[repr(C)]
pub struct HandleObj {
    pub h: Header,
    pub vt: *const HandleVTable,
    pub data: *const (),
    pub closed: u32,
    pub _pad: u32,
}

/// One parameter or return type in the registry vocabulary.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TypeDesc {
    /// `int`, `float`, `bool`, `text`, `bytes`, `array`, `dict`, `handle`, `any`, `nil`.
    pub name: &'static str,
    /// Element type of `array`, kind name of `handle`, else "".
    pub sub: &'static str,
    /// Nil is accepted (parameter) or may be returned (result).
    pub optional: bool,
}

/// One parameter of a registry entry.
#[repr(C)]
pub struct Param {
    pub name: &'static str,
    pub ty: TypeDesc,
    /// C type for host-surface functions (empty for domain functions).
    pub ctype: &'static str,
}

/// One registry entry, written by `#[rt_fn]` / `#[rt_host]`.
#[repr(C)]
pub struct Entry {
    pub name: &'static str,
    pub domain: &'static str,
    pub doc: &'static str,
    /// Capability needed ("" for none).
    pub cap: &'static str,
    /// Whether `cap` is checked against a resource scope (path, name, program, host).
    pub scoped: bool,
    pub tier: &'static str,
    pub blocking: bool,
    /// Whether the function takes and returns C types (host surface).
    pub host: bool,
    pub params: &'static [Param],
    pub ret: TypeDesc,
    pub c_ret: &'static str,
    pub addr: *const (),
}

// SAFETY: an `Entry` is immutable once built (the macros emit it as a `static`); its only
// non-Sync field, `addr`, is a code address that is compared and called, never
// written through, and every other field is `&'static` data or plain values.
unsafe impl Sync for Entry {}

// Entry and HandleVTable hold `&'static str`: both sides are Rust built by one compiler.
#[allow(improper_ctypes)]
extern "C" {
    // ---- host surface (SPEC §3) ----
    pub fn rt_abi_version() -> u32;
    pub fn rt_kind(v: RtValue) -> u32;
    pub fn rt_int_new(i: i64) -> RtValue;
    pub fn rt_int_get(v: RtValue) -> i64;
    pub fn rt_float_new(d: f64) -> RtValue;
    pub fn rt_float_get(v: RtValue) -> f64;
    pub fn rt_string_new(p: *const u8, n: usize) -> RtValue;
    pub fn rt_bytes_new(p: *const u8, n: usize) -> RtValue;
    pub fn rt_array_new(capacity: usize) -> RtValue;
    pub fn rt_array_push(array: RtValue, item: RtValue) -> RtValue;
    pub fn rt_array_len(array: RtValue) -> usize;
    pub fn rt_array_get(array: RtValue, i: usize) -> RtValue;
    pub fn rt_dict_new() -> RtValue;
    pub fn rt_dict_set(dict: RtValue, key: RtValue, value: RtValue) -> RtValue;
    pub fn rt_dict_get(dict: RtValue, key: RtValue) -> RtValue;
    pub fn rt_dict_len(dict: RtValue) -> usize;
    pub fn rt_dict_key_at(dict: RtValue, i: usize) -> RtValue;
    pub fn rt_dict_value_at(dict: RtValue, i: usize) -> RtValue;
    pub fn rt_dict_has(dict: RtValue, key: RtValue) -> bool;
    pub fn rt_dict_remove(dict: RtValue, key: RtValue) -> RtValue;
    pub fn rt_array_set(array: RtValue, i: usize, item: RtValue) -> RtValue;
    pub fn rt_error_details(v: RtValue) -> RtValue;
    pub fn rt_value_pin(v: RtValue);
    pub fn rt_value_unpin(v: RtValue);

    // ---- internal surface for domain libraries (not for hosts) ----
    /// String from bytes the caller guarantees are UTF-8.
    pub fn rt__string_new_unchecked(p: *const u8, n: usize) -> RtValue;
    /// New string/bytes object of `n` uninitialised bytes; `*data` receives them (null on failure).
    pub fn rt__blob_alloc(hk: u32, n: usize, data: *mut *mut u8) -> RtValue;
    /// `n` bytes of collector memory (scanned and zeroed unless `atomic`); null on failure.
    pub fn rt__alloc(n: usize, atomic: bool) -> *mut u8;
    /// Value at a text key given as bytes, without making a key object; nil when absent.
    pub fn rt__dict_get_str(dict: RtValue, k: *const u8, n: usize) -> RtValue;
    /// Dict from `n` (key, value) pairs (later duplicates win, or `unique`: the caller checked
    /// the keys are distinct); `pairs` in collector-visible memory.
    pub fn rt__dict_from_pairs(pairs: *const RtValue, n: usize, unique: bool) -> RtValue;
    /// Empty dict with room for `cap` entries.
    pub fn rt__dict_new_cap(cap: usize) -> RtValue;
    /// Error value with code, message bytes (UTF-8) and details (dict or nil).
    pub fn rt__error_make(code: u32, msg: *const u8, n: usize, details: RtValue) -> RtValue;
    /// Handle value owning one reference to `data`.
    pub fn rt__handle_new(vt: *const HandleVTable, data: *const ()) -> RtValue;
    /// Gets a new owner of a handle's data: 0 ok, 1 not a handle, 2 other type, 3 closed.
    pub fn rt__handle_acquire(v: RtValue, type_name: *const u8, n: usize, out: *mut *const ()) -> u32;
    /// Closes a handle: 0 closed now, 1 not a handle, 3 already closed.
    pub fn rt__handle_close(v: RtValue) -> u32;
    /// Borrows a handle's data for one call, announced in a hazard slot of the
    /// calling thread: 0 borrowed (clear `*slot` with a plain store and a
    /// compiler fence), 4 borrowed (clear with a SeqCst swap), 5 an owner was
    /// taken instead (`*slot` null), 1 not a handle, 2 other type, 3 closed.
    /// After clearing, a handle state (`HandleObj.closed`) other than 0 means
    /// `rt__handle_unborrow_slow` must run (ffi_core/src/handle.rs).
    pub fn rt__handle_borrow(
        v: RtValue,
        type_name: *const u8,
        n: usize,
        out: *mut *const (),
        slot: *mut *const core::sync::atomic::AtomicPtr<HandleObj>,
    ) -> u32;
    /// The slow end of a borrow whose handle was closed meanwhile.
    pub fn rt__handle_unborrow_slow(v: RtValue);
    /// Capability decision: 1 allowed, 0 denied, -1 unknown capability. Audited.
    pub fn rt__cap_decide(cap: *const u8, cn: usize, res: *const u8, rn: usize, func: *const u8, fnn: usize) -> i32;
    /// Adds a library's entries to the process registry.
    pub fn rt__registry_add(entries: *const *const Entry, n: usize);
    /// Registers the calling thread with the collector if it is not yet.
    pub fn rt__thread_enter();
    /// The policy in force: a dict of every capability, true / false / its scopes.
    pub fn rt_cap_current() -> RtValue;

    /// 0 while the policy is allow-all and no audit log is open: the capability fast path.
    pub static RT_CAP_SLOW: AtomicU32;
    /// Incremented on every registry change.
    pub static RT_REGISTRY_GEN: AtomicU64;
}

/// Decodes the heap pointer of a word tagged `TAG_HEAP` whose header carries the magic.
/// Returns null for anything else.
///
/// # Safety
/// `v` must be a word produced by this runtime (or an immediate); a forged
/// pointer-tagged word is rejected only if it does not point into readable
/// memory carrying the magic, so hosts must pass real values.
#[inline]
pub unsafe fn heap_ptr(v: RtValue) -> *mut Header {
    // No object lives in the first page: reject small forged words for free.
    if v & TAG_MASK != TAG_HEAP || v < 4096 {
        return core::ptr::null_mut();
    }
    let p = (v & !TAG_MASK) as *mut Header;
    if (*p).kind & 0xFFFF_0000 != HEAP_MAGIC {
        return core::ptr::null_mut();
    }
    p
}

/// Heap kind (`HK_*`) of a value, or 0 for immediates.
///
/// # Safety
/// As `heap_ptr`.
#[inline]
pub unsafe fn heap_kind(v: RtValue) -> u32 {
    let p = heap_ptr(v);
    if p.is_null() {
        0
    } else {
        (*p).kind & 0xFFFF
    }
}
