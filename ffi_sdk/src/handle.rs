//! Handles: native resources (locks, children, regexes...) behind a value.
//!
//! A handle owns one `Arc<T>`. Each call that uses it borrows that owner for
//! the call ([`Handle<T>`] argument), announced in a hazard slot of the
//! calling thread (no shared read-modify-write per call), so `close` on
//! another thread never frees a resource in use: close drops the handle's
//! owner once no borrow is in flight, or the last borrower out drops it.
//! Close is idempotent; use after close is Error Closed; the collector closes
//! unreachable handles. The protocol and its proof: ffi_core/src/handle.rs.

use crate::abi::{self, HandleObj, HandleVTable, RtValue, TypeDesc};
use crate::args::kind_error;
use crate::error::{Code, Error, RtResult};
use crate::value::Value;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{compiler_fence, AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;

/// A Rust type that can live behind a handle.
///
/// # Safety
/// `NAME` is unique among the handle types of the process: a handle is
/// told apart from others by it alone (its words cross libraries), so a
/// second type with the same `NAME` would let a handle of one be borrowed
/// as the other. tests/tests/handle_names.rs checks the workspace's types.
pub unsafe trait HandleType: Send + Sync + 'static {
    const NAME: &'static str;
}

unsafe extern "C" fn acquire<T: HandleType>(p: *const ()) {
    Arc::increment_strong_count(p as *const T);
}
unsafe extern "C" fn release<T: HandleType>(p: *const ()) {
    drop(Arc::from_raw(p as *const T));
}

struct Vt<T>(PhantomData<T>);
impl<T: HandleType> Vt<T> {
    const VT: &'static HandleVTable =
        &HandleVTable { type_name: T::NAME, acquire: acquire::<T>, release: release::<T> };
}

/// Wraps `value` in a new handle value.
pub fn new_handle<T: HandleType>(value: T) -> Value {
    let data = Arc::into_raw(Arc::new(value)) as *const ();
    // SAFETY: `Vt::<T>::VT` is a `'static` vtable whose acquire/release are the ones for `Arc<T>`,
    // and `data` is one strong count of an `Arc<T>`, moved into the handle (core releases it
    // through the vtable itself when the allocation fails, so it is never leaked or used twice).
    Value::from_raw(unsafe { abi::rt__handle_new(Vt::<T>::VT, data) })
}

/// A handle argument: the resource, borrowed for this call (or, when the
/// thread has no free hazard slot, shared ownership of it).
///
/// A borrow takes no owner: it is announced in a hazard slot of the calling
/// thread, and `close` on another thread leaves the resource alive until the
/// borrow ends (ffi_core/src/handle.rs has the argument). Not `Send`: it ends
/// on the thread and in the call that made it; use [`Handle::arc`] to keep
/// the resource past the call.
pub struct Handle<T: HandleType> {
    ptr: *const T,
    raw: RtValue,
    /// The borrow's hazard slot, with bit 0 set when it is cleared with a
    /// SeqCst swap (fence mode) rather than a plain store; 0 when this holds
    /// an owner.
    slot: usize,
    _t: PhantomData<*const T>,
}

impl<T: HandleType> Handle<T> {
    /// The handle value itself.
    pub fn value(&self) -> Value {
        Value::from_raw(self.raw)
    }
    /// A new owner of the resource (to keep it past this call, e.g. in a thread).
    pub fn arc(&self) -> Arc<T> {
        // SAFETY: `self.ptr` came from `Arc::<T>::into_raw` (new_handle) and the count is above
        // zero for as long as `self` lives: the handle's owner is kept alive by our hazard slot
        // (the borrow protocol of ffi_core/src/handle.rs), or `self` holds an owner of its own.
        // The increment is the count the returned `Arc` owns.
        unsafe {
            Arc::increment_strong_count(self.ptr);
            Arc::from_raw(self.ptr)
        }
    }
    /// Closes the handle (idempotent; the resource stays alive until this call returns).
    pub fn close(&self) -> bool {
        // SAFETY: `self.raw` is this call's handle argument, a live handle word (kept reachable
        // by the caller for the call); close takes the header lock and never frees the resource
        // under our borrow, which lives on until `self` drops.
        unsafe { abi::rt__handle_close(self.raw) == 0 }
    }
}

impl<T: HandleType> Drop for Handle<T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `slot == 0`: `self` holds one strong count of the `Arc<T>` behind `ptr` (code 5
        // of `rt__handle_borrow`), given back here exactly once. Otherwise `slot & !1` is our
        // thread's hazard slot in core's `Rec`, which is never freed, so the `&AtomicPtr` is
        // valid; `raw` is the call's handle argument, still reachable, so its `HandleObj` is
        // live and `closed` (a u32 core only accesses atomically) may be viewed as `AtomicU32`.
        // Clearing the slot then reading the state with the fence of the mode core chose (bit 0)
        // is the unborrow half of the Dekker protocol in ffi_core/src/handle.rs.
        unsafe {
            if self.slot == 0 {
                drop(Arc::from_raw(self.ptr));
                return;
            }
            let s = &*((self.slot & !1) as *const AtomicPtr<HandleObj>);
            // The handle object stays reachable: it is this call's argument.
            let obj = (self.raw & !abi::TAG_MASK) as *const HandleObj;
            let st = &*(std::ptr::addr_of!((*obj).closed) as *const AtomicU32);
            let state = if self.slot & 1 != 0 {
                s.swap(std::ptr::null_mut(), Ordering::SeqCst);
                st.load(Ordering::SeqCst)
            } else {
                s.store(std::ptr::null_mut(), Ordering::Release);
                compiler_fence(Ordering::SeqCst);
                st.load(Ordering::Relaxed)
            };
            if state != 0 {
                abi::rt__handle_unborrow_slow(self.raw);
            }
        }
    }
}

impl<T: HandleType> Deref for Handle<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is the data of an `Arc<T>` (the handle's type was checked by name) that
        // our borrow or owner keeps alive until `self` drops, which the returned `&T` cannot
        // outlive; `T: Sync` makes the shared reference fine across threads.
        unsafe { &*self.ptr }
    }
}

impl<'a, T: HandleType> crate::FromArg<'a> for Handle<T> {
    const TY: TypeDesc = TypeDesc { name: "handle", sub: T::NAME, optional: false };
    #[inline(always)]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let mut out: *const () = std::ptr::null();
        let mut slot: *const AtomicPtr<HandleObj> = std::ptr::null();
        // SAFETY: `v` is this call's argument (a live runtime word by the `Value` contract; core
        // checks it is a handle); the name pointer and length are the `'static` `T::NAME`; `out`
        // and `slot` are writable locals on this stack.
        let st = unsafe { abi::rt__handle_borrow(v, T::NAME.as_ptr(), T::NAME.len(), &mut out, &mut slot) };
        let slot = match st {
            0 => slot as usize,
            4 => slot as usize | 1,
            5 => 0,
            _ => return Err(arg_error::<T>(st, v, func, idx, name)),
        };
        Ok(Handle { ptr: out as *const T, raw: v, slot, _t: PhantomData })
    }
}

#[cold]
#[inline(never)]
fn arg_error<T: HandleType>(st: u32, v: RtValue, func: &'static str, idx: usize, name: &'static str) -> Error {
    if st == 3 {
        Error::plain(Code::Closed, func, format!("argument {} ({name}) is a closed {} handle", idx + 1, T::NAME))
    } else {
        kind_error(func, idx, name, &format!("a {} handle", T::NAME), Value::from_raw(v))
    }
}
