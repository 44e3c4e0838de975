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

/// A Rust type that can live behind a handle. `NAME` is unique in the process.
pub trait HandleType: Send + Sync + 'static {
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
        // The handle's owner (borrowed) or ours keeps the count above zero.
        unsafe {
            Arc::increment_strong_count(self.ptr);
            Arc::from_raw(self.ptr)
        }
    }
    /// Closes the handle (idempotent; the resource stays alive until this call returns).
    pub fn close(&self) -> bool {
        unsafe { abi::rt__handle_close(self.raw) == 0 }
    }
}

impl<T: HandleType> Drop for Handle<T> {
    #[inline(always)]
    fn drop(&mut self) {
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
        unsafe { &*self.ptr }
    }
}

impl<'a, T: HandleType> crate::FromArg<'a> for Handle<T> {
    const TY: TypeDesc = TypeDesc { name: "handle", sub: T::NAME, optional: false };
    #[inline(always)]
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let mut out: *const () = std::ptr::null();
        let mut slot: *const AtomicPtr<HandleObj> = std::ptr::null();
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
