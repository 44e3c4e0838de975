//! Callables (docs/CONCURRENCY.md): what threads and parallel map run.
//!
//! A callable value is either
//! - a text naming a registered domain function (`"rt_sha256_hash"`),
//!   resolved once through the registry and called with the arity it
//!   declares; or
//! - a `Callback` handle made by `rt_callback_new` / `rt_callback_new2`
//!   (ffi_core): a host function `RtValue (*)(void *user_data, RtValue...)`
//!   plus its `user_data`, callable from any thread.
//!
//! [`Callback`] is the shared type behind the handle: ffi_core makes it,
//! every domain library reads it through [`crate::Handle`]. Its layout is
//! `repr(C)` and it is defined once, here.
//!
//! Threads: a library thread that calls a callable must be registered with
//! the collector for its whole life ([`LibraryThread`]), so that the host's
//! own attach/detach pairs inside a callback (CPython's binding brackets
//! every call) nest instead of unregistering the thread.

use crate::abi::{self, RtValue};
use crate::error::{Code, Error, RtResult};
use crate::handle::HandleType;
use crate::value::Value;
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;

/// `RtValue (*)(void *user_data, RtValue arg)`.
pub type CallbackFn1 = unsafe extern "C" fn(*mut c_void, RtValue) -> RtValue;
/// `RtValue (*)(void *user_data, RtValue a, RtValue b)`.
pub type CallbackFn2 = unsafe extern "C" fn(*mut c_void, RtValue, RtValue) -> RtValue;
/// `void (*)(void *user_data)`: runs once when the callback is released.
pub type ReleaseFn = unsafe extern "C" fn(*mut c_void);

/// Flag: the callback returns its result pinned (one pin); the library
/// drops that pin once the word sits where the collector sees it. For hosts
/// that cannot keep a returned word reachable after they return (CPython).
pub const CB_RESULT_PINNED: u32 = 1;

/// A host function behind a `Callback` handle. The fields are private: `call`
/// and `drop` call through `func` and `release`, so only [`Callback::new`] and
/// [`Callback::set_release`], whose callers vouch for the pointers, set them.
#[repr(C)]
pub struct Callback {
    /// The function (`CallbackFn1` when `arity` is 1, `CallbackFn2` when 2).
    func: *const c_void,
    user_data: *mut c_void,
    /// 1 or 2.
    arity: u32,
    /// `CB_*` flags.
    flags: AtomicU32,
    /// Called with `user_data` when the last owner drops (null: none).
    release: AtomicPtr<c_void>,
}

impl Callback {
    /// A callback of `arity` (1 or 2) for the host function `func`.
    ///
    /// # Safety
    /// `func` is non-null and is a `CallbackFn1` when `arity` is 1, a
    /// `CallbackFn2` when it is 2, which may be called with `user_data` from
    /// any thread, several at once (the host's promise, docs/CONCURRENCY.md).
    pub unsafe fn new(func: *const c_void, user_data: *mut c_void, arity: u32) -> Callback {
        debug_assert!(!func.is_null() && (arity == 1 || arity == 2));
        Callback { func, user_data, arity, flags: AtomicU32::new(0), release: AtomicPtr::new(std::ptr::null_mut()) }
    }
    /// Number of arguments (1 or 2).
    pub fn arity(&self) -> u32 {
        self.arity
    }
    /// Replaces the `CB_*` flags.
    ///
    /// # Safety
    /// With `CB_RESULT_PINNED`, the function returns every result holding one
    /// pin that the library may drop (dropping a pin it does not hold would
    /// drop another holder's).
    pub unsafe fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Release);
    }
    /// Sets the function run with `user_data` when the callback is released;
    /// false (nothing changed) when one is set already.
    ///
    /// # Safety
    /// `release` is a `ReleaseFn` (as `void *`) that may be called once with
    /// `user_data`, from any thread.
    pub unsafe fn set_release(&self, release: *mut c_void) -> bool {
        self.release.compare_exchange(std::ptr::null_mut(), release, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

// SAFETY: the raw pointers are the host's function and `user_data`, which `Callback::new`'s and
// `set_release`'s contracts (the host's promise, docs/CONCURRENCY.md) allow to be called and
// passed from any thread, several at once; Rust never dereferences `user_data`. `flags` and
// `release` are atomics; the private `func`, `user_data` and `arity` are set only by `new`.
unsafe impl Send for Callback {}
// SAFETY: as for `Send`: shared use only calls the host function concurrently (allowed by the
// host's promise) and touches the atomics.
unsafe impl Sync for Callback {}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Callback {
    const NAME: &'static str = "Callback";
}

impl Drop for Callback {
    fn drop(&mut self) {
        let r = self.release.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !r.is_null() {
            // SAFETY: a non-null `release` was stored only by `set_release`, whose caller vouched
            // that it is a `ReleaseFn` passed as `void *` (a host `RtCallbackRelease`); a data and a
            // code pointer have the same size and representation on the platforms supported.
            let f: ReleaseFn = unsafe { std::mem::transmute::<*mut c_void, ReleaseFn>(r) };
            // SAFETY: the swap to null makes this the one call, with the `user_data` the host
            // registered alongside, after the last owner is gone (as the host was promised).
            unsafe { f(self.user_data) };
        }
    }
}

extern "C" {
    fn rt__callable_lookup(name: *const u8, n: usize, arity: *mut u32, addr: *mut *const ()) -> u32;
    fn rt__handle_acquire(v: RtValue, type_name: *const u8, n: usize, out: *mut *const ()) -> u32;
    fn rt_value_valid(v: RtValue) -> bool;
    fn rt_thread_attach() -> u32;
    fn rt_thread_detach() -> u32;
}

/// A resolved callable, ready to be called from any registered thread.
#[derive(Clone)]
pub enum Callable {
    /// A registered domain function (made only by [`Callable::from_value`]:
    /// `resolved` cannot be built elsewhere, so `addr` and `arity` are the registry's).
    Function { name: String, addr: *const (), arity: u32, resolved: Resolved },
    /// A host callback.
    Callback(Arc<Callback>),
}

/// Proof that a [`Callable::Function`] came from the registry lookup; it has no
/// public constructor.
#[derive(Clone, Copy, Debug)]
pub struct Resolved(());

// SAFETY: `Function.addr` is the code address of a registered `extern "C"` domain function
// (stateless, callable from any registered thread); `Callback` holds an `Arc<Callback>`, which
// is Send + Sync itself. Nothing is mutated through a shared `Callable`.
unsafe impl Send for Callable {}
// SAFETY: as for `Send`.
unsafe impl Sync for Callable {}

type F0 = extern "C" fn() -> RtValue;
type F1 = extern "C" fn(RtValue) -> RtValue;
type F2 = extern "C" fn(RtValue, RtValue) -> RtValue;
type F3 = extern "C" fn(RtValue, RtValue, RtValue) -> RtValue;
type F4 = extern "C" fn(RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F5 = extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F6 = extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F7 = extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F8 = extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;

impl Callable {
    /// Resolves argument `idx` (`name`) of `func`: a function name or a
    /// Callback handle. Errors: TypeMismatch (other kinds, nil), NotFound
    /// (unknown name), InvalidArgument (a host-surface function), Closed.
    pub fn from_value(func: &'static str, idx: usize, name: &str, v: Value) -> RtResult<Callable> {
        if let Some(text) = v.as_text() {
            let mut arity = 0u32;
            let mut addr: *const () = std::ptr::null();
            // SAFETY: pointer and length of the live text `text` (its value `v` is this call's
            // argument, reachable until we return); `arity` and `addr` are writable locals.
            let st = unsafe { rt__callable_lookup(text.as_ptr(), text.len(), &mut arity, &mut addr) };
            return match st {
                0 => Ok(Callable::Function { name: text.to_string(), addr, arity, resolved: Resolved(()) }),
                2 => Err(Error::invalid(
                    func,
                    format!("argument {} ({name}) names a host-surface function (C types), not a callable", idx + 1),
                    crate::error::quote(text),
                )),
                _ => Err(Error::not_found(
                    func,
                    format!("argument {} ({name}) names no registered function", idx + 1),
                    crate::error::quote(text),
                )),
            };
        }
        // SAFETY: `Value` contract: `v` is a live runtime word, so `heap_kind` reads a live header or gives 0.
        if unsafe { abi::heap_kind(v.raw()) } == abi::HK_HANDLE {
            let mut out: *const () = std::ptr::null();
            let t = Callback::NAME;
            // SAFETY: `v` is a live handle word (checked just above); the name is the `'static`
            // `Callback::NAME`; `out` is a writable local.
            let st = unsafe { rt__handle_acquire(v.raw(), t.as_ptr(), t.len(), &mut out) };
            match st {
                // SAFETY: code 0: core checked the handle's type name is `Callback` (made only by
                // `new_handle::<Callback>`, so `out` came from `Arc::<Callback>::into_raw`) and
                // took one strong count for us, which the new `Arc` now owns.
                0 => return Ok(Callable::Callback(unsafe { Arc::from_raw(out as *const Callback) })),
                3 => {
                    return Err(Error::plain(
                        Code::Closed,
                        func,
                        format!("argument {} ({name}) is a closed Callback handle", idx + 1),
                    ))
                }
                _ => {}
            }
        }
        Err(crate::args::kind_error(func, idx, name, "a function name (text) or a Callback handle", v))
    }

    /// Number of arguments it takes.
    pub fn arity(&self) -> u32 {
        match self {
            Callable::Function { arity, .. } => *arity,
            Callable::Callback(cb) => cb.arity,
        }
    }

    /// Names it for messages: the function name, or `callback`.
    pub fn describe(&self) -> String {
        match self {
            Callable::Function { name, .. } => name.clone(),
            Callable::Callback(_) => "callback".to_string(),
        }
    }

    /// Error InvalidArgument unless it takes `n` arguments.
    pub fn expect_arity(&self, func: &str, n: u32) -> RtResult<()> {
        if self.arity() == n {
            return Ok(());
        }
        Err(Error::invalid(
            func,
            format!("the callable must take {n} argument{}", if n == 1 { "" } else { "s" }),
            format!("{} takes {}", self.describe(), self.arity()),
        ))
    }

    /// Calls it with `args` (exactly its arity; missing ones are nil). The
    /// caller is a registered thread and keeps `args` reachable. A word a
    /// callback returns that is no valid value becomes Error Internal.
    pub fn call(&self, func: &str, args: &[RtValue]) -> RtValue {
        let a = |i: usize| args.get(i).copied().unwrap_or(abi::NIL);
        match self {
            // SAFETY: `addr` and `arity` come from `rt__callable_lookup` (only `from_value` can
            // build this variant: `Resolved` has no public constructor), which returns only `#[rt_fn]` entries: `extern "C" fn` taking exactly
            // `arity` `RtValue` words and returning one (host-surface functions with C types are
            // refused), so the transmute to the `F<arity>` type matches its real signature. The
            // words passed are the caller's live `args` or NIL, on a registered thread (doc above).
            Callable::Function { addr, arity, .. } => unsafe {
                let p = *addr;
                match arity {
                    0 => std::mem::transmute::<*const (), F0>(p)(),
                    1 => std::mem::transmute::<*const (), F1>(p)(a(0)),
                    2 => std::mem::transmute::<*const (), F2>(p)(a(0), a(1)),
                    3 => std::mem::transmute::<*const (), F3>(p)(a(0), a(1), a(2)),
                    4 => std::mem::transmute::<*const (), F4>(p)(a(0), a(1), a(2), a(3)),
                    5 => std::mem::transmute::<*const (), F5>(p)(a(0), a(1), a(2), a(3), a(4)),
                    6 => std::mem::transmute::<*const (), F6>(p)(a(0), a(1), a(2), a(3), a(4), a(5)),
                    7 => std::mem::transmute::<*const (), F7>(p)(a(0), a(1), a(2), a(3), a(4), a(5), a(6)),
                    8 => std::mem::transmute::<*const (), F8>(p)(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7)),
                    _ => Error::internal(func, format!("registry arity {arity} above 8")).into_value().raw(),
                }
            },
            Callable::Callback(cb) => {
                // SAFETY: `Callback::new`'s contract (its only constructor; the fields are
                // private): `cb.func` is a non-null `CallbackFn2` when `arity` is 2, else a
                // `CallbackFn1`, callable with `user_data` from any thread; the words are the
                // caller's live `args` (or NIL), on a registered thread.
                let w = unsafe {
                    if cb.arity == 2 {
                        std::mem::transmute::<*const c_void, CallbackFn2>(cb.func)(cb.user_data, a(0), a(1))
                    } else {
                        std::mem::transmute::<*const c_void, CallbackFn1>(cb.func)(cb.user_data, a(0))
                    }
                };
                // The word is in a register of this registered thread now.
                if cb.flags.load(Ordering::Relaxed) & CB_RESULT_PINNED != 0 {
                    // SAFETY: with CB_RESULT_PINNED the function returned `w` holding one pin for
                    // us (`set_flags`' contract), so `w` is a live runtime word; dropping that pin
                    // is safe now that `w` sits in this registered thread's registers/stack.
                    unsafe { abi::rt_value_unpin(w) };
                }
                if !word_ok(w) {
                    return Error::new(Code::Internal, func, "callback returned an invalid value word", format!("{w:#x}"))
                        .into_value()
                        .raw();
                }
                w
            }
        }
    }
}

/// Cheap validity check of a word a host returned: immediates by their
/// bits, heap words by `rt_value_valid` (the collector's object map).
#[inline]
pub fn word_ok(w: RtValue) -> bool {
    match w & abi::TAG_MASK {
        abi::TAG_INT | abi::TAG_FLOAT => true,
        abi::TAG_SPECIAL => matches!(w, abi::NIL | abi::TRUE | abi::FALSE),
        // SAFETY: `rt_value_valid` takes any word by value and only looks it up in the
        // collector's object map (it never dereferences an unknown word).
        abi::TAG_HEAP => unsafe { rt_value_valid(w) },
        _ => false,
    }
}

/// Registration of a thread the library starts, for its whole life: made
/// first thing on the thread, dropped last. Uses the attach bracket (depth
/// 1), so the host's own attach/detach inside a callback nest under it.
/// Not `Send`: the detach in `drop` must run on the thread it registered.
pub struct LibraryThread(std::marker::PhantomData<*const ()>);

impl LibraryThread {
    pub fn enter() -> LibraryThread {
        // SAFETY: core's `uint32_t rt_thread_attach(void)`, no arguments; it registers the
        // calling thread (or deepens its bracket), callable from any thread.
        unsafe { rt_thread_attach() };
        LibraryThread(std::marker::PhantomData)
    }
}

impl Drop for LibraryThread {
    fn drop(&mut self) {
        // SAFETY: core's `uint32_t rt_thread_detach(void)`, no arguments; it ends the attach made
        // by `enter` on this same thread (the guard is not `Send`, so it drops where it was made).
        unsafe { rt_thread_detach() };
    }
}

/// Registers the calling thread for good (rayon's start handler): pairs with [`library_thread_exit`].
pub fn library_thread_start() {
    // SAFETY: core's `uint32_t rt_thread_attach(void)`: no arguments, any thread.
    unsafe { rt_thread_attach() };
}

/// Ends [`library_thread_start`] (rayon's exit handler).
pub fn library_thread_exit() {
    // SAFETY: core's `uint32_t rt_thread_detach(void)`: no arguments; it pairs with the
    // `library_thread_start` of this thread (an unpaired one only unregisters this thread).
    unsafe { rt_thread_detach() };
}
