//! Simple's raw mapping calls (`io/file_ops.spl`: `rt_mmap`, `rt_munmap`,
//! `rt_msync`, `rt_madvise`) over MappedFile handles: where Simple gets an
//! address and passes `(addr, size)` back, ours hands out a MappedFile handle
//! and takes it back; no address ever reaches the caller, so nothing can
//! touch a mapping after it is unmapped (the handle is closed: Error Closed).
//! Read a mapping with rt_file_mmap_slice / rt_file_mmap_len, write a
//! writable one with rt_file_mmap_write.

use super::{Map, MappedFile};
use crate::common::{io_err, target};
use ffi_sdk::beneath::{Follow, WriteMode};
use ffi_sdk::prelude::*;
use memmap2::{Advice, MmapOptions, UncheckedAdvice};
use std::sync::RwLock;

/// Simple's `readonly: i64` (0 = writable), or a bool.
fn readonly_arg(func: &'static str, v: Value) -> RtResult<bool> {
    if let Some(b) = v.as_bool() {
        return Ok(b);
    }
    if let Some(i) = v.as_int() {
        return Ok(i != 0);
    }
    Err(ffi_sdk::args::kind_error(func, 3, "readonly", "bool or int", v))
}

/// Maps `size` bytes of `path` from `offset` (`size` 0: to the end of the file) and returns a MappedFile handle
/// (Simple gets an address: ours is the handle). `readonly` true / nonzero: a read-only private mapping (needs
/// fs.read); false / 0: a shared writable mapping (needs fs.read and fs.write), written with rt_file_mmap_write and
/// flushed with rt_msync; changes reach the file. The window must lie inside the file (OutOfRange otherwise:
/// a mapping never extends a file). Read with rt_file_mmap_slice / rt_file_mmap_len; rt_munmap (or
/// rt_handle_close) unmaps. SIGBUS caveat of rt_file_mmap_read applies (a file truncated by others).
///
/// # Errors
/// - InvalidArgument: size must not be negative (0 maps to the end of the file); offset must not be negative; only regular files can be mapped; is a directory
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: offset <off> is past the end of the file (<total> bytes); offset <off> + size <l> is past the end of the file (<total> bytes); offset <offset> is past the end of the file (<size> bytes); offset <offset> + length <l> is past the end of the file (<size> bytes)
/// - LimitExceeded: mapping too large
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<MappedFile>")]
pub fn rt_mmap(path: &str, size: i64, offset: i64, readonly: Value) -> RtResult<Value> {
    let ro = readonly_arg(FN, readonly)?;
    if size < 0 {
        return Err(Error::invalid(FN, "size must not be negative (0 maps to the end of the file)", size));
    }
    if offset < 0 {
        return Err(Error::invalid(FN, "offset must not be negative", offset));
    }
    let length = (size > 0).then_some(size as u64);
    if ro {
        let map = super::map_file(FN, path, offset as u64, length, false)?;
        return Ok(new_handle(MappedFile { map: Map::Ro(map), path: path.to_string() }));
    }
    // Writable: both capabilities, then one descriptor opened read-write (never created or truncated).
    target(FN, "fs.read", path, Follow::Yes)?;
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    let f = t.open_write(WriteMode { append: false, create: false, create_new: false, truncate: false, read: true, mode: 0o666 })?;
    let m = f.metadata().map_err(|e| io_err(FN, path, &e))?;
    if !m.is_file() {
        return Err(Error::invalid(FN, "only regular files can be mapped", path).with("path", path));
    }
    let (off, total) = (offset as u64, m.len());
    if off > total {
        return Err(Error::new(Code::OutOfRange, FN, format!("offset {off} is past the end of the file ({total} bytes)"), path));
    }
    let len = match length {
        None => total - off,
        Some(l) if l <= total - off => l,
        Some(l) => {
            return Err(Error::new(Code::OutOfRange, FN, format!("offset {off} + size {l} is past the end of the file ({total} bytes)"), path))
        }
    };
    let len = usize::try_from(len).map_err(|_| Error::new(Code::LimitExceeded, FN, "mapping too large", len))?;
    // SAFETY: a shared mapping of a regular file we opened read-write; see the SIGBUS caveat above.
    let map = unsafe { MmapOptions::new().offset(off).len(len).map_mut(&f) }.map_err(|e| io_err(FN, path, &e))?;
    Ok(new_handle(MappedFile { map: Map::Rw(RwLock::new(map)), path: path.to_string() }))
}

/// Checks Simple's `size` argument against the mapping: nil or 0 means all of it; another value must be the
/// mapping's length (a part of a mapping cannot be unmapped here).
fn whole(func: &'static str, map: &MappedFile, size: Option<i64>) -> RtResult<()> {
    match size {
        None | Some(0) => Ok(()),
        Some(s) if s == map.len() as i64 => Ok(()),
        Some(s) => Err(Error::invalid(func, format!("size must be the mapping's length ({} bytes), 0 or nil", map.len()), s)),
    }
}

/// Unmaps a mapping made by rt_mmap or rt_file_mmap_read (closes its handle; a writable mapping's changes are
/// already in the file's pages). `size` nil, 0 or the mapping's length (Simple passes it); another value is
/// InvalidArgument. Simple: `-> bool`; ours nil.
///
/// # Errors
/// - InvalidArgument: size must be the mapping's length (… bytes), 0 or nil
/// - Closed: it was unmapped already; `map` was closed
#[rt_fn(tier = "verified")]
pub fn rt_munmap(map: Handle<MappedFile>, size: Option<i64>) -> RtResult<()> {
    whole(FN, &map, size)?;
    map.close();
    Ok(())
}

/// Writes the changes of a writable mapping to its file and waits for the write (msync MS_SYNC) — all of it, or
/// the first `size` bytes. A read-only mapping has nothing to write: nil at once. Simple: `-> bool`; ours nil.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `map` was closed
/// - OutOfRange: `size` passes the end
#[rt_fn(blocking, tier = "verified")]
pub fn rt_msync(map: Handle<MappedFile>, size: Option<i64>) -> RtResult<()> {
    let n = map.len();
    let upto = match size {
        None | Some(0) => n,
        Some(s) if s > 0 && s as u64 <= n as u64 => s as usize,
        Some(s) => return Err(Error::new(Code::OutOfRange, FN, format!("size must be in 0..={n} (the mapping's length)"), s)),
    };
    match &map.map {
        Map::Ro(_) => Ok(()),
        Map::Rw(m) => {
            let g = m.read().unwrap_or_else(|e| e.into_inner());
            g.flush_range(0, upto).map_err(|e| io_err(FN, &map.path, &e))
        }
    }
}

/// Advises the kernel how a mapping (all of it, or its first `size` bytes; nil or 0: all) will be used: `advice`
/// 0 normal, 1 random, 2 sequential, 3 will need, 4 don't need (POSIX_MADV_* numbers; the pages are dropped and
/// read again from the file when touched, nothing written is lost). Simple: `-> bool`; ours nil.
///
/// # Errors
/// - InvalidArgument: for another advice
/// - Io: an operating-system failure (details.errno)
/// - Closed: `map` was closed
/// - OutOfRange: for `size`
#[rt_fn(tier = "verified")]
pub fn rt_madvise(map: Handle<MappedFile>, size: Option<i64>, advice: i64) -> RtResult<()> {
    let n = map.len();
    let len = match size {
        None | Some(0) => n,
        Some(s) if s > 0 && s as u64 <= n as u64 => s as usize,
        Some(s) => return Err(Error::new(Code::OutOfRange, FN, format!("size must be in 0..={n} (the mapping's length)"), s)),
    };
    if len == 0 {
        return Ok(());
    }
    let safe = match advice {
        0 => Some(Advice::Normal),
        1 => Some(Advice::Random),
        2 => Some(Advice::Sequential),
        3 => Some(Advice::WillNeed),
        4 => None,
        _ => return Err(Error::invalid(FN, "advice must be 0 normal, 1 random, 2 sequential, 3 will need or 4 don't need", advice)),
    };
    let r = match (&map.map, safe) {
        (Map::Ro(m), Some(a)) => m.advise_range(a, 0, len),
        // SAFETY: MADV_DONTNEED on a private file mapping never written: its pages are read again from the file.
        (Map::Ro(m), None) => unsafe { m.unchecked_advise_range(UncheckedAdvice::DontNeed, 0, len) },
        (Map::Rw(m), a) => {
            let g = m.read().unwrap_or_else(|e| e.into_inner());
            match a {
                Some(a) => g.advise_range(a, 0, len),
                // SAFETY: MADV_DONTNEED on a shared file mapping: dirty pages stay in the page cache (not lost).
                None => unsafe { g.unchecked_advise_range(UncheckedAdvice::DontNeed, 0, len) },
            }
        }
    };
    r.map_err(|e| io_err(FN, &map.path, &e))
}

/// Copies `data` (bytes or text) into a writable mapping at `offset` and returns the number of bytes written (all
/// of `data`). The file sees it at once (a shared mapping); rt_msync makes it durable.
///
/// # Errors
/// - InvalidArgument: `offset` is negative
/// - PermissionDenied: on a read-only mapping
/// - Closed: `map` was closed
/// - OutOfRange: `offset + len(data)` passes the mapping's end
#[rt_fn(tier = "verified")]
pub fn rt_file_mmap_write(map: Handle<MappedFile>, offset: u64, data: &[u8]) -> RtResult<u64> {
    let Map::Rw(m) = &map.map else {
        return Err(Error::new(Code::PermissionDenied, FN, "the mapping is read-only (rt_mmap with readonly 0 maps for writing)", &map.path));
    };
    let mut g = m.write().unwrap_or_else(|e| e.into_inner());
    let n = g.len() as u64;
    match offset.checked_add(data.len() as u64) {
        Some(end) if end <= n => {
            g[offset as usize..end as usize].copy_from_slice(data);
            Ok(data.len() as u64)
        }
        _ => Err(Error::new(
            Code::OutOfRange,
            FN,
            format!("offset {offset} + {} bytes is past the end of the mapping ({n} bytes)", data.len()),
            &map.path,
        )),
    }
}
