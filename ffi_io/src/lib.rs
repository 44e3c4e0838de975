//! ffi_io: files, directories, environment, paths, glob, locks, mmap.
//! `fileops.rs`, `dirops.rs` and `fd.rs` (File handles) serve the names Simple's
//! standard library calls, sharing the implementations of `file.rs` and `dir.rs`.
//!
//! Every function that touches the disk checks `fs.read` / `fs.write` on the
//! canonical path before it touches anything (SPEC §7); the environment
//! functions check `env.read` / `env.write` by variable name.
//!
//! Error codes shared by the whole crate: a missing file or parent is
//! NotFound; a directory where a file is expected (or the reverse) is
//! InvalidArgument; an empty path or a NUL in a path is InvalidArgument; a
//! name too long for the file system is InvalidArgument; a refused open is
//! PermissionDenied; a held lock is Busy; anything else from the operating
//! system is Io with `errno` in the details.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod common;
pub mod dir;
pub mod dirops;
pub mod env;
pub mod fd;
pub mod file;
pub mod fileops;
pub mod glob;
pub mod lock;
pub mod mmap;
pub mod path;
