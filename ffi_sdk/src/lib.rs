//! Rust API for simple-rt domain crates, over the C exports of
//! `libffi_core.so`. Stateless by design: it is compiled into every domain
//! library, and all process state (heap, policy, registry) lives in ffi_core.
//!
//! A domain function is only its logic:
//! ```ignore
//! /// Reads a file as UTF-8 text.
//! #[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
//! pub fn rt_file_read_text(path: &str) -> RtResult<String> {
//!     let t = beneath::resolve(FN, "fs.read", path, beneath::Follow::Yes)?;
//!     let mut f = t.open_read().map_err(|e| t.err(&e))?;
//!     let mut s = String::new();
//!     std::io::Read::read_to_string(&mut f, &mut s).map_err(|e| t.err(&e))?;
//!     Ok(s)
//! }
//! ```

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod abi;
pub mod args;
pub mod atomic_file;
pub mod bench;
pub mod beneath;
pub mod boundary;
pub mod build;
pub mod callable;
pub mod cap;
pub mod deadline;
pub mod error;
pub mod handle;
pub mod lock;
pub mod opts;
pub mod paths;
pub mod registry;
pub mod ret;
pub mod testing;
pub mod value;

pub use args::{Array, Dict, FromArg};
pub use error::{Code, Error, RtResult};
pub use ffi_macros::{rt_fn, rt_host};
pub use handle::{new_handle, Handle, HandleType};
pub use abi::TypeDesc;
pub use opts::Opts;
pub use ret::IntoRet;
pub use value::{ArrayBuilder, Items, Key, Root, Value};

/// Everything a domain file needs: `use ffi_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{beneath, cap, new_handle, paths, rt_fn, Array, Code, Dict, Error, Handle, HandleType, Key, Opts, Root, RtResult, Value};
}
