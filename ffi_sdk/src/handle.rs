//! Handles: native resources (locks, children, regexes...) behind a value.
//!
//! A handle owns one `Arc<T>`. Each call that uses it takes another owner
//! ([`Handle<T>`] argument) under the handle's lock, so `close` on another
//! thread never frees a resource in use: close drops the handle's owner and
//! the resource is released when the last user returns. Close is idempotent;
//! use after close is Error Closed; the collector closes unreachable handles.

use crate::abi::{self, HandleVTable, RtValue, TypeDesc};
use crate::args::kind_error;
use crate::error::{Code, Error, RtResult};
use crate::value::Value;
use std::marker::PhantomData;
use std::ops::Deref;
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

/// A handle argument: shared ownership of the resource for this call.
pub struct Handle<T: HandleType> {
    inner: Arc<T>,
    raw: RtValue,
}

impl<T: HandleType> Handle<T> {
    /// The handle value itself.
    pub fn value(&self) -> Value {
        Value::from_raw(self.raw)
    }
    /// The shared resource (to keep it past this call, e.g. in a thread).
    pub fn arc(&self) -> Arc<T> {
        self.inner.clone()
    }
    /// Closes the handle (idempotent; this call keeps its own owner until it returns).
    pub fn close(&self) -> bool {
        unsafe { abi::rt__handle_close(self.raw) == 0 }
    }
}

impl<T: HandleType> Deref for Handle<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<'a, T: HandleType> crate::FromArg<'a> for Handle<T> {
    const TY: TypeDesc = TypeDesc { name: "handle", sub: T::NAME, optional: false };
    fn from_arg(v: RtValue, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let mut out: *const () = std::ptr::null();
        let st = unsafe { abi::rt__handle_acquire(v, T::NAME.as_ptr(), T::NAME.len(), &mut out) };
        match st {
            0 => Ok(Handle { inner: unsafe { Arc::from_raw(out as *const T) }, raw: v }),
            3 => Err(Error::plain(
                Code::Closed,
                func,
                format!("argument {} ({name}) is a closed {} handle", idx + 1, T::NAME),
            )),
            _ => Err(kind_error(func, idx, name, &format!("a {} handle", T::NAME), Value::from_raw(v))),
        }
    }
}
