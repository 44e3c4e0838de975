//! Advisory file locks (flock(2) through std `File::lock`), held by a handle.
//!
//! A lock belongs to the open file behind its handle: it excludes other
//! processes and other handles of this process alike, and is released by
//! rt_file_unlock, rt_handle_close, the collector finalizing an unreachable
//! handle, or the process exiting. Locks are advisory: they bind only
//! programs that also take them (flock(1), fcntl.flock, other runtimes);
//! reads and writes of a locked file still work. rt_file_atomic_write
//! replaces the file (a new inode), so a lock held on the old file no longer
//! guards the path: lock a separate lock file (`x.lock`) around it.

use crate::common::{io_err, target};
use ffi_sdk::beneath::Follow;
use ffi_sdk::prelude::*;
use std::fs::{File, TryLockError};
use std::io;
use std::time::{Duration, Instant};

/// A held lock on an open file.
pub struct FileLock {
    file: File,
    /// The path as given, for messages.
    pub path: String,
    /// Shared (true) or exclusive (false).
    pub shared: bool,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for FileLock {
    const NAME: &'static str = "FileLock";
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes it immediate.
        let _ = self.file.unlock();
    }
}

/// Opens the file to lock: read-only when it exists (flock needs no write
/// access), created (with fs.write) when it does not and `create` is set.
fn open_for_lock(func: &'static str, path: &str, create: bool) -> RtResult<File> {
    let t = target(func, "fs.read", path, Follow::Yes)?;
    match t.open_read() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            let w = target(func, "fs.write", path, Follow::Yes)?;
            // Only creates: an existing file is not written, so no hard-link rule applies.
            w.open(libc::O_RDWR | libc::O_CREAT, 0o666).map_err(|e| w.err(&e))
        }
        Err(e) => Err(t.err(&e)),
    }
}

fn try_take(file: &File, shared: bool) -> Result<(), TryLockError> {
    if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    }
}

fn busy(func: &'static str, path: &str, shared: bool) -> Error {
    let what = if shared { "shared" } else { "exclusive" };
    Error::new(Code::Busy, func, format!("the file is locked by another holder ({what} lock wanted)"), path)
        .with("path", path)
}

/// Locks a file and returns a FileLock handle; blocks until the lock is granted. Release it with rt_file_unlock
/// or rt_handle_close. Directories can be locked too.
///
/// # Options
/// - shared (bool, default false): bool, exclusive
/// - timeout_ms (int >= 0): int: give up with Error Timeout after this long
/// - create (bool, default true): bool, create a missing file, which needs fs.write
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<FileLock>")]
pub fn rt_file_lock(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["shared", "timeout_ms", "create"])?;
    let shared = opts.bool("shared")?.unwrap_or(false);
    let timeout = opts.int_in("timeout_ms", 0, i64::MAX / 1_000_000)?;
    let create = opts.bool("create")?.unwrap_or(true);
    let file = open_for_lock(FN, path, create)?;
    // flock(2) has no timed form: with a timeout, or while a deadline or cancel token may apply
    // (docs/DEADLINES.md), try and back off (1..50 ms), the pauses waking at once on the
    // thread's deadline or a triggered token (then Error Timeout / Cancelled, no lock taken).
    let timeout = match timeout {
        None if ffi_sdk::deadline::active() => Some(i64::MAX / 1_000_000),
        t => t,
    };
    match timeout {
        None => loop {
            let r = if shared { file.lock_shared() } else { file.lock() };
            match r {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(FN, path, &e)),
            }
        },
        Some(ms) => {
            let deadline = Instant::now() + Duration::from_millis(ms as u64);
            let mut pause = Duration::from_millis(1);
            loop {
                match try_take(&file, shared) {
                    Ok(()) => break,
                    Err(TryLockError::WouldBlock) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(Error::new(
                                Code::Timeout,
                                FN,
                                format!("the file stayed locked by another holder for {ms} ms"),
                                path,
                            )
                            .with("path", path));
                        }
                        ffi_sdk::deadline::poll_fd(FN, -1, 0, Some(pause.min(deadline - now)))?;
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(TryLockError::Error(e)) => return Err(io_err(FN, path, &e)),
                }
            }
        }
    }
    Ok(new_handle(FileLock { file, path: path.to_string(), shared }))
}

/// Tries to lock a file without waiting: a FileLock handle, or Error Busy when another holder (process or handle)
/// has a conflicting lock.
///
/// # Options
/// - shared (bool, default false): bool
/// - create (bool, default true): bool
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; an unknown option, or an option of the wrong kind or range
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Busy: the file is locked by another holder (<what> lock wanted)
#[rt_fn(cap = "fs.read", scoped, tier = "verified", ret = "handle<FileLock>")]
pub fn rt_file_try_lock(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["shared", "create"])?;
    let shared = opts.bool("shared")?.unwrap_or(false);
    let create = opts.bool("create")?.unwrap_or(true);
    let file = open_for_lock(FN, path, create)?;
    loop {
        match try_take(&file, shared) {
            Ok(()) => return Ok(new_handle(FileLock { file, path: path.to_string(), shared })),
            Err(TryLockError::WouldBlock) => return Err(busy(FN, path, shared)),
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(TryLockError::Error(e)) => return Err(io_err(FN, path, &e)),
        }
    }
}

/// Releases a lock taken by rt_file_lock / rt_file_try_lock and closes its handle.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Closed: it was released already; `lock` was closed
#[rt_fn(tier = "verified")]
pub fn rt_file_unlock(lock: Handle<FileLock>) -> RtResult<()> {
    lock.file.unlock().map_err(|e| io_err(FN, &lock.path, &e))?;
    lock.close();
    Ok(())
}
