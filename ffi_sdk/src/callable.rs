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

/// A host function behind a `Callback` handle.
#[repr(C)]
pub struct Callback {
    /// The function (`CallbackFn1` when `arity` is 1, `CallbackFn2` when 2).
    pub func: *const c_void,
    pub user_data: *mut c_void,
    /// 1 or 2.
    pub arity: u32,
    /// `CB_*` flags.
    pub flags: AtomicU32,
    /// Called with `user_data` when the last owner drops (null: none).
    pub release: AtomicPtr<c_void>,
}

// The host promises (docs/CONCURRENCY.md) that its function and user_data
// may be used from any thread.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

impl HandleType for Callback {
    const NAME: &'static str = "Callback";
}

impl Drop for Callback {
    fn drop(&mut self) {
        let r = self.release.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !r.is_null() {
            let f: ReleaseFn = unsafe { std::mem::transmute::<*mut c_void, ReleaseFn>(r) };
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
    /// A registered domain function.
    Function { name: String, addr: *const (), arity: u32 },
    /// A host callback.
    Callback(Arc<Callback>),
}

unsafe impl Send for Callable {}
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
            let st = unsafe { rt__callable_lookup(text.as_ptr(), text.len(), &mut arity, &mut addr) };
            return match st {
                0 => Ok(Callable::Function { name: text.to_string(), addr, arity }),
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
        if unsafe { abi::heap_kind(v.raw()) } == abi::HK_HANDLE {
            let mut out: *const () = std::ptr::null();
            let t = Callback::NAME;
            let st = unsafe { rt__handle_acquire(v.raw(), t.as_ptr(), t.len(), &mut out) };
            match st {
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
                let w = unsafe {
                    if cb.arity == 2 {
                        std::mem::transmute::<*const c_void, CallbackFn2>(cb.func)(cb.user_data, a(0), a(1))
                    } else {
                        std::mem::transmute::<*const c_void, CallbackFn1>(cb.func)(cb.user_data, a(0))
                    }
                };
                // The word is in a register of this registered thread now.
                if cb.flags.load(Ordering::Relaxed) & CB_RESULT_PINNED != 0 {
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
        abi::TAG_HEAP => unsafe { rt_value_valid(w) },
        _ => false,
    }
}

/// Registration of a thread the library starts, for its whole life: made
/// first thing on the thread, dropped last. Uses the attach bracket (depth
/// 1), so the host's own attach/detach inside a callback nest under it.
pub struct LibraryThread(());

impl LibraryThread {
    pub fn enter() -> LibraryThread {
        unsafe { rt_thread_attach() };
        LibraryThread(())
    }
}

impl Drop for LibraryThread {
    fn drop(&mut self) {
        unsafe { rt_thread_detach() };
    }
}

/// Registers the calling thread for good (rayon's start handler): pairs with [`library_thread_exit`].
pub fn library_thread_start() {
    unsafe { rt_thread_attach() };
}

/// Ends [`library_thread_start`] (rayon's exit handler).
pub fn library_thread_exit() {
    unsafe { rt_thread_detach() };
}
