//! Files: existence, reading and writing (text and bytes), copy, delete,
//! append, atomic replacement, metadata, SHA-256.

use crate::common::{hex, io_err, target};
use ffi_sdk::atomic_file::AtomicFile;
use ffi_sdk::beneath::{self, Follow, Target, WriteMode};
use ffi_sdk::deadline;
use ffi_sdk::prelude::*;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// Reads a whole open file straight into a new bytes value sized from its
/// metadata (`Value::bytes_uninit`: no intermediate Vec, no second copy).
/// A file that shrank meanwhile is shortened; one that grew, or that reports
/// no size (/proc), takes the copying path.
///
/// Deadlines (docs/DEADLINES.md): while one is in force a regular file is
/// read in [`CHUNK`]s with a check between them, and a FIFO, socket or
/// character device is opened without blocking and waited for with poll, so
/// neither a huge file nor a FIFO with no writer outlives the deadline.
fn read_value(func: &'static str, path: &str, t: &Target) -> RtResult<Value> {
    if deadline::active() {
        if let Ok(st) = t.stat() {
            if !beneath::is(&st, libc::S_IFREG) && !beneath::is(&st, libc::S_IFDIR) {
                return read_pollable(func, path, t);
            }
        }
    }
    let mut f = t.open_read().map_err(|e| t.err(&e))?;
    let m = f.metadata().map_err(|e| io_err(func, path, &e))?;
    if m.is_dir() {
        return Err(Error::invalid(func, "is a directory", path).with("path", path));
    }
    let ioe = |e: io::Error| io_err(func, path, &e);
    let n = if m.is_file() { usize::try_from(m.len()).unwrap_or(usize::MAX) } else { 0 };
    if n == 0 {
        let mut all = Vec::new();
        f.read_to_end(&mut all).map_err(ioe)?;
        return Ok(Value::bytes(&all));
    }
    let (v, buf) = Value::bytes_uninit(n)?;
    let mut got = 0;
    let step = if deadline::active() { CHUNK } else { n };
    while got < n {
        match f.read(&mut buf[got..(got + step).min(n)]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ioe(e)),
        }
        deadline::check(func)?;
    }
    if got < n {
        v.truncate_blob(got);
        return Ok(v);
    }
    // Full: make sure the file did not grow meanwhile.
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).map_err(ioe)?;
    if rest.is_empty() {
        return Ok(v);
    }
    let mut all = Vec::with_capacity(n + rest.len());
    all.extend_from_slice(buf);
    all.extend_from_slice(&rest);
    Ok(Value::bytes(&all))
}

/// Bytes read, written or copied between two deadline checks while a
/// deadline or cancel token is in force (regular files have no timed wait).
const CHUNK: usize = 4 << 20;

/// [`read_value`] for a FIFO, socket or character device under a deadline:
/// opened with O_NONBLOCK (a FIFO's open would wait for a writer) and read
/// when poll says so; the bytes read before a stop are lost with the Error,
/// whose details give their count (`partial_len`).
fn read_pollable(func: &'static str, path: &str, t: &Target) -> RtResult<Value> {
    let mut f = t.open(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC, 0).map_err(|e| t.err(&e))?;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // Polled before every read: a FIFO no writer has opened yet reads as EOF, but
        // does not poll ready until one has (Linux).
        if let Err(stop) = deadline::poll_fd(func, f.as_raw_fd(), libc::POLLIN, None) {
            return Err(stop.with("partial_len", all.len()).with("path", path));
        }
        match f.read(&mut buf) {
            Ok(0) => return Ok(Value::bytes(&all)),
            Ok(k) => all.extend_from_slice(&buf[..k]),
            Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => {}
            Err(e) => return Err(io_err(func, path, &e)),
        }
    }
}

/// Writes `data` in [`CHUNK`]s, checking the deadline between them while
/// one is in force; a stop is Error Timeout / Cancelled with
/// `details.written`.
fn write_checked(func: &'static str, f: &mut File, data: &[u8]) -> RtResult<Result<(), io::Error>> {
    if !deadline::active() {
        return Ok(f.write_all(data));
    }
    let mut written = 0;
    for part in data.chunks(CHUNK) {
        deadline::check(func).map_err(|e| e.with("written", written))?;
        if let Err(e) = f.write_all(part) {
            return Ok(Err(e));
        }
        written += part.len();
    }
    Ok(Ok(()))
}

/// Whether something (a link itself included) is at the target's name.
fn present(t: &Target) -> bool {
    t.lstat().is_ok()
}

/// Writes `data` to the target (truncating, or appending). A file this call
/// created is removed again when the write fails, so no partial new file is left.
fn write_file(func: &'static str, path: &str, t: &Target, data: &[u8], append: bool) -> RtResult<()> {
    let existed = present(t);
    let mut f = t.open_write(if append { WriteMode::APPEND } else { WriteMode::REPLACE })?;
    let failed = match write_checked(func, &mut f, data) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => io_err(func, path, &e),
        Err(stop) => stop.with("path", path),
    };
    drop(f);
    if !existed {
        let _ = t.unlink();
    }
    Err(failed)
}

/// The status of a target; NotFound (and a path through a file) as None.
fn stat_opt(t: &Target) -> RtResult<Option<libc::stat>> {
    match t.stat() {
        Ok(st) => Ok(Some(st)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(t.err(&e)),
    }
}

/// True when `path` names a regular file (symlinks followed); false when nothing
/// is there or it is another kind (a directory: use rt_path_exists). Error for
/// other failures (e.g. a parent that cannot be searched).
///
/// # Errors
/// - InvalidArgument: the path is empty, contains a NUL byte, or names '/', '.' or '..'
/// - PermissionDenied: a directory on the path cannot be searched
/// - Io: any other failure of stat (details.errno)
///
/// # Example
/// rt_file_exists("/etc/hostname") -> true
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_exists(path: &str) -> RtResult<bool> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    Ok(stat_opt(&t)?.is_some_and(|st| beneath::is(&st, libc::S_IFREG)))
}

/// Reads a file as UTF-8 text.
///
/// # Errors
/// - NotFound: the file (or a directory on its path) does not exist
/// - InvalidArgument: the path names a directory, or a component of it is not a directory
/// - PermissionDenied: the operating system refused to open it
/// - Parse: the content is not UTF-8 (details.position = the first bad byte); read it with rt_file_read_bytes instead
/// - Io: any other read failure (details.errno)
///
/// # Example
/// rt_file_read_text("/tmp/hello.txt") -> "hello from simple-rt\n"
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "text")]
pub fn rt_file_read_text(path: &str) -> RtResult<Value> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    read_value(FN, path, &t)?.blob_into_text().map_err(|pos| {
        Error::new(
            Code::Parse,
            FN,
            format!("content is not UTF-8 (invalid byte at offset {pos}); use rt_file_read_bytes"),
            path,
        )
        .with("position", pos)
        .with("path", path)
    })
}

/// Reads a file as bytes (binary-safe).
///
/// # Errors
/// - NotFound: the file (or a directory on its path) does not exist
/// - InvalidArgument: the path names a directory, or a component of it is not a directory
/// - PermissionDenied: the operating system refused to open it
/// - Io: any other read failure (details.errno)
///
/// # Example
/// rt_file_read_bytes("/tmp/hello.txt") -> b"hello from simple-rt\n"
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "bytes")]
pub fn rt_file_read_bytes(path: &str) -> RtResult<Value> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    read_value(FN, path, &t)
}

/// Writes text to a file, creating it or replacing its content. A new file is removed again when the write fails.
/// Not atomic: see rt_file_atomic_write.
///
/// # Errors
/// - NotFound: a directory on the path does not exist
/// - InvalidArgument: the path names a directory, or a component of it is not a directory
/// - PermissionDenied: the operating system refused to create or open it
/// - Io: the write failed (details.errno; ENOSPC, EIO...)
///
/// # Example
/// rt_file_write_text("/tmp/hello.txt", "hello from simple-rt\n") -> nil
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write_text(path: &str, text: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    write_file(FN, path, &t, text.as_bytes(), false)
}

/// Writes bytes (or text as UTF-8) to a file, creating it or replacing its content.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write_bytes(path: &str, data: &[u8]) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    write_file(FN, path, &t, data, false)
}

/// Appends text to a file, creating it when missing (O_APPEND: concurrent
/// appenders do not overwrite each other).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_append_text(path: &str, text: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    write_file(FN, path, &t, text.as_bytes(), true)
}

/// Copies a regular file's content and permissions to `dst` (created or replaced); returns the number of bytes
/// copied. Needs fs.read for src and fs.write for dst.
///
/// # Errors
/// - InvalidArgument: both name the same file
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_copy(src: &str, dst: &str) -> RtResult<u64> {
    let s = target(FN, "fs.read", src, Follow::Yes)?;
    let d = target(FN, "fs.write", dst, Follow::Yes)?;
    let mut sf = s.open_read().map_err(|e| s.err(&e))?;
    let sm = sf.metadata().map_err(|e| io_err(FN, src, &e))?;
    if sm.is_dir() {
        return Err(Error::invalid(FN, "source is a directory", src).with("path", src));
    }
    let existed = present(&d);
    let keep = WriteMode { truncate: false, ..WriteMode::REPLACE };
    let mut df = d.open_write(keep)?;
    let dm = df.metadata().map_err(|e| io_err(FN, dst, &e))?;
    if dm.dev() == sm.dev() && dm.ino() == sm.ino() {
        return Err(Error::invalid(FN, "source and destination are the same file", format!("{src} -> {dst}")));
    }
    let mut stopped = None;
    let copied = (if dm.is_file() { df.set_len(0) } else { Ok(()) })
        .and_then(|()| {
            if !deadline::active() {
                return io::copy(&mut sf, &mut df);
            }
            // Under a deadline: CHUNK at a time (still copy_file_range), checked between.
            let mut total = 0;
            loop {
                if let Err(e) = deadline::check(FN) {
                    stopped = Some(e.with("written", total));
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                match io::copy(&mut (&mut sf).take(CHUNK as u64), &mut df)? {
                    0 => return Ok(total),
                    k => total += k,
                }
            }
        })
        .and_then(|n| df.set_permissions(fs::Permissions::from_mode(sm.permissions().mode() & 0o7777)).map(|()| n));
    match copied {
        Ok(n) => Ok(n),
        Err(e) => {
            drop(df);
            if !existed {
                let _ = d.unlink();
            }
            Err(stopped.unwrap_or_else(|| io_err(FN, format!("{src} -> {dst}"), &e)))
        }
    }
}

/// Deletes a file (a symlink itself, not its target).
///
/// # Errors
/// - InvalidArgument: for a directory (use rt_dir_remove)
/// - NotFound: it is missing
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_file_delete(path: &str) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::No)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    if beneath::is(&st, libc::S_IFDIR) {
        return Err(Error::invalid(FN, "is a directory (use rt_dir_remove)", path).with("path", path));
    }
    t.unlink().map_err(|e| t.err(&e))
}

/// Replaces a file's content atomically: readers see the old or the new
/// content, never a mix, also after a crash. Writes a uniquely named temp
/// file in the same directory, fsyncs it, renames it over the target and
/// fsyncs the directory. Keeps the permission bits of the file it replaces
/// (a new file gets 0666 minus the umask) and, where the process may, its
/// owner. A symlink is followed: its target is replaced and the link kept.
/// The temp file never outlives a failure. Under a scoped fs.write a file
/// with other hard links is refused (CapabilityDenied) unless fs.hardlink is held.
///
/// # Errors
/// - InvalidArgument: the destination is a directory, not a file; path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_atomic_write(path: &str, data: &[u8]) -> RtResult<()> {
    atomic_write(FN, path, data, None)
}

/// rt_file_atomic_write for `func`; `mode` (permission bits) replaces the kept or default mode.
pub fn atomic_write(func: &'static str, path: &str, data: &[u8], mode: Option<u32>) -> RtResult<()> {
    let t = target(func, "fs.write", path, Follow::Yes)?;
    let step = |e: io::Error| t.err(&e);
    // The temporary beside the real file (the link survives, the same file system), the
    // destination checked first (ffi_sdk::atomic_file).
    let mut out = AtomicFile::create(func, &t, path, 0o666)?;
    let Some(f) = out.file.as_mut() else { return Err(Error::internal(func, "output file missing")) };
    if let Some(st) = &out.old {
        // Owner: kept when this process may (root, or the same owner); mode: always.
        if st.st_uid != f.metadata().map_err(step)?.uid() {
            let _ = std::os::unix::fs::fchown(&*f, Some(st.st_uid), Some(st.st_gid));
        }
        f.set_permissions(fs::Permissions::from_mode(st.st_mode & 0o7777)).map_err(step)?;
    }
    if let Some(m) = mode {
        f.set_permissions(fs::Permissions::from_mode(m)).map_err(step)?;
    }
    f.write_all(data).map_err(step)?;
    f.sync_all().map_err(step)?;
    let d = out.dir().0.try_clone().map_err(step)?;
    out.commit().map_err(step)?;
    // SAFETY: fsync takes no pointers; `d` is an open descriptor of the directory owned here.
    if unsafe { libc::fsync(d.as_raw_fd()) } != 0 {
        let e = io::Error::last_os_error();
        // An O_PATH descriptor (unreadable directory) cannot be synced: the rename stands.
        if e.raw_os_error() != Some(libc::EBADF) {
            let mut err = step(e);
            err.message = format!("{} (the new content is in place, but syncing its directory failed)", err.message);
            return Err(err);
        }
    }
    Ok(())
}

/// Last modification time in microseconds since the Unix epoch (symlinks followed).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_modified_time(path: &str) -> RtResult<i64> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    Ok(st.st_mtime.saturating_mul(1_000_000).saturating_add(st.st_mtime_nsec / 1000))
}

/// Size of a file in bytes (symlinks followed).
///
/// # Errors
/// - InvalidArgument: for a directory
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_size(path: &str) -> RtResult<u64> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    if beneath::is(&st, libc::S_IFDIR) {
        return Err(Error::invalid(FN, "is a directory", path).with("path", path));
    }
    Ok(st.st_size as u64)
}

/// Read buffer of the streaming hash: constant memory whatever the file size.
pub const HASH_BUF: usize = 256 * 1024;

/// SHA-256 of a file's content as 64 lowercase hex digits, streamed through
/// a fixed 256 KiB buffer (constant memory). Same implementation as
/// ffi_crypto's `rt_sha256_hash` (ring: SHA-NI or AVX assembly chosen at run time).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_hash_sha256(path: &str) -> RtResult<String> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let mut f = t.open_read().map_err(|e| t.err(&e))?;
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; HASH_BUF];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(FN, path, &e)),
        }
    }
    Ok(hex(h.finish().as_ref()))
}
