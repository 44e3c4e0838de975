//! Memory-mapped reading (memmap2): the content as bytes, or a handle that
//! keeps the mapping and hands out slices.
//!
//! Caution, as with every mmap: if another process truncates the file while
//! it is mapped, touching the vanished pages raises SIGBUS. The bytes form
//! copies the content out at once and unmaps (a window of one copy); a
//! MappedFile handle keeps the mapping until it is closed, so use it only on
//! files nobody truncates meanwhile (build outputs, caches, archives).

// Simple's rt_mmap / rt_munmap / rt_msync / rt_madvise over MappedFile handles, and rt_mmap_write.
#[path = "mmap_ops.rs"]
pub mod ops;

use crate::common::{io_err, target};
use ffi_sdk::beneath::Follow;
use ffi_sdk::prelude::*;
use memmap2::{Mmap, MmapMut, MmapOptions};
use std::sync::RwLock;

/// A mapping of (part of) a file: read-only (rt_file_mmap_read, rt_mmap with
/// readonly) or shared and writable (rt_mmap with readonly 0, `mmap_ops.rs`).
pub struct MappedFile {
    pub(crate) map: Map,
    /// The path as given, for messages.
    pub path: String,
}

/// The mapping itself. A writable one is written under the lock, so a slice
/// never sees a write half done by this library.
pub(crate) enum Map {
    Ro(Mmap),
    Rw(RwLock<MmapMut>),
}

impl MappedFile {
    pub(crate) fn len(&self) -> usize {
        match &self.map {
            Map::Ro(m) => m.len(),
            Map::Rw(m) => m.read().unwrap_or_else(|e| e.into_inner()).len(),
        }
    }
    /// Runs `f` on the mapped bytes.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match &self.map {
            Map::Ro(m) => f(m),
            Map::Rw(m) => f(&m.read().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for MappedFile {
    const NAME: &'static str = "MappedFile";
}

/// Maps `path` read-only: `offset` bytes in, `length` bytes long (to the end when None).
pub(crate) fn map_file(func: &'static str, path: &str, offset: u64, length: Option<u64>, populate: bool) -> RtResult<Mmap> {
    let t = target(func, "fs.read", path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let m = f.metadata().map_err(|e| io_err(func, path, &e))?;
    if m.is_dir() {
        return Err(Error::invalid(func, "is a directory", path).with("path", path));
    }
    if !m.is_file() {
        return Err(Error::invalid(func, "only regular files can be mapped", path).with("path", path));
    }
    let size = m.len();
    if offset > size {
        return Err(Error::new(Code::OutOfRange, func, format!("offset {offset} is past the end of the file ({size} bytes)"), path));
    }
    let len = match length {
        None => size - offset,
        Some(l) if l <= size - offset => l,
        Some(l) => {
            return Err(Error::new(
                Code::OutOfRange,
                func,
                format!("offset {offset} + length {l} is past the end of the file ({size} bytes)"),
                path,
            ))
        }
    };
    let len = usize::try_from(len).map_err(|_| Error::new(Code::LimitExceeded, func, "mapping too large", len))?;
    let mut o = MmapOptions::new();
    o.offset(offset).len(len);
    if populate {
        o.populate();
    }
    // SAFETY: read-only private mapping; see the module note on truncation by others.
    unsafe { o.map(&f) }.map_err(|e| io_err(func, path, &e))
}

/// Maps a file read-only (memmap2). Without `handle`: the content as bytes, copied out of the mapping, which is
/// then unmapped. With `handle: true`: a MappedFile handle; read it with rt_file_mmap_len / rt_file_mmap_slice;
/// closing it (rt_handle_close) unmaps. SIGBUS caveat: see the module documentation.
///
/// # Options
/// - offset (int >= 0, default 0): offset
/// - length (int >= 0, default the whole file): ints, a window of the file
/// - handle (bool, default false): bool
///
/// # Errors
/// - InvalidArgument: is a directory; only regular files can be mapped; path names '/', '.' or '..', not an entry: name the directory itself; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: offset <offset> is past the end of the file (<size> bytes); offset <offset> + length <l> is past the end of the file (<size> bytes)
/// - LimitExceeded: mapping too large
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_mmap_read(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["offset", "length", "handle"])?;
    let offset = opts.int_in("offset", 0, i64::MAX)?.unwrap_or(0) as u64;
    let length = opts.int_in("length", 0, i64::MAX)?.map(|l| l as u64);
    let as_handle = opts.bool("handle")?.unwrap_or(false);
    let map = map_file(FN, path, offset, length, !as_handle)?;
    if as_handle {
        Ok(new_handle(MappedFile { map: Map::Ro(map), path: path.to_string() }))
    } else {
        Ok(Value::bytes(&map))
    }
}

/// Length in bytes of a MappedFile's mapping.
///
/// # Errors
/// - Closed: `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_file_mmap_len(map: Handle<MappedFile>) -> u64 {
    map.len() as u64
}

/// Copies `length` bytes at `offset` out of a MappedFile as bytes.
///
/// # Errors
/// - InvalidArgument: `offset` is negative; `length` is negative
/// - Closed: `map` was closed
/// - OutOfRange: the window passes the end of the mapping
#[rt_fn(tier = "verified", ret = "bytes")]
pub fn rt_file_mmap_slice(map: Handle<MappedFile>, offset: u64, length: u64) -> RtResult<Value> {
    let n = map.len() as u64;
    match offset.checked_add(length) {
        Some(end) if end <= n => Ok(map.with(|b| Value::bytes(&b[offset as usize..end as usize]))),
        _ => Err(Error::new(
            Code::OutOfRange,
            FN,
            format!("offset {offset} + length {length} is past the end of the mapping ({n} bytes)"),
            &map.path,
        )),
    }
}
