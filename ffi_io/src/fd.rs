//! Open files behind handles, for Simple's descriptor-style externs
//! (`rt_file_open`, `rt_io_file_*`, `rt_fd_*` in `sffi/fs.spl`). Where Simple
//! passes a raw descriptor (`fd: i64`), we take a `File` handle: a raw
//! descriptor number would let any caller act on descriptors it never opened.
//! The file is opened through `ffi_sdk::beneath` (capability checked on the
//! canonical path) and closed by rt_file_close / rt_io_file_close /
//! rt_fd_close / rt_handle_close, or when the collector finalizes the handle.

use crate::common::{io_err, target};
use ffi_sdk::beneath::{Follow, WriteMode};
use ffi_sdk::prelude::*;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

/// An open file. Calls on one handle are serialized by its lock.
pub struct OpenFile {
    file: Mutex<File>,
    /// The path as given, for messages.
    pub path: String,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for OpenFile {
    const NAME: &'static str = "File";
}

impl OpenFile {
    fn with<T>(&self, f: impl FnOnce(&mut File) -> io::Result<T>, func: &'static str) -> RtResult<T> {
        let mut g = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g).map_err(|e| io_err(func, &self.path, &e))
    }
}

/// Opens `path` in `mode`: 0 read, 1 write (create or truncate), 2 append
/// (create), 3 read and write (existing file), 4 read and write (create,
/// keep content), 5 create new (Error AlreadyExists when the path exists).
fn open(func: &'static str, path: &str, mode: i64) -> RtResult<Value> {
    let w = |m: WriteMode| -> RtResult<File> {
        let t = target(func, "fs.write", path, Follow::Yes)?;
        t.open_write(m)
    };
    let file = match mode {
        0 => {
            let t = target(func, "fs.read", path, Follow::Yes)?;
            let f = t.open_read().map_err(|e| t.err(&e))?;
            if f.metadata().map_err(|e| io_err(func, path, &e))?.is_dir() {
                return Err(Error::invalid(func, "is a directory", path).with("path", path));
            }
            f
        }
        1 => w(WriteMode::REPLACE)?,
        2 => w(WriteMode::APPEND)?,
        3 => {
            target(func, "fs.read", path, Follow::Yes)?;
            w(WriteMode { create: false, truncate: false, read: true, ..WriteMode::REPLACE })?
        }
        4 => {
            target(func, "fs.read", path, Follow::Yes)?;
            w(WriteMode { truncate: false, read: true, ..WriteMode::REPLACE })?
        }
        5 => w(WriteMode::NEW)?,
        m => return Err(Error::invalid(func, "mode must be 0 read, 1 write, 2 append, 3 read-write, 4 read-write-create, 5 create-new", m)),
    };
    Ok(new_handle(OpenFile { file: Mutex::new(file), path: path.to_string() }))
}

/// Opens a file and returns a File handle. `mode`: 0 read, 1 write (create
/// or truncate), 2 append (create), 3 read-write (existing file), 4
/// read-write (create, keep content), 5 create new (AlreadyExists when
/// present). Reading needs fs.read, every other mode fs.write (3 and 4 both).
/// Simple declares `-> i32` (a descriptor): ours is the handle.
///
/// # Errors
/// - InvalidArgument: is a directory; mode must be 0 read, 1 write, 2 append, 3 read-write, 4 read-write-create, 5 create-new; path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<File>")]
pub fn rt_file_open(path: &str, mode: i64) -> RtResult<Value> {
    open(FN, path, mode)
}

/// Same as rt_file_open (Simple's `rt_io_file_open` name).
///
/// # Errors
/// - InvalidArgument: is a directory; mode must be 0 read, 1 write, 2 append, 3 read-write, 4 read-write-create, 5 create-new; path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "handle<File>")]
pub fn rt_io_file_open(path: &str, mode: i64) -> RtResult<Value> {
    open(FN, path, mode)
}

fn close(func: &'static str, f: &Handle<OpenFile>) -> RtResult<()> {
    // Data written through the handle is in the kernel already (no user-space buffer).
    f.with(|_| Ok(()), func)?;
    f.close();
    Ok(())
}

/// Closes a File handle (Error Closed when it was closed already).
///
/// # Errors
/// - Closed: `file` was closed
#[rt_fn(tier = "verified")]
pub fn rt_file_close(file: Handle<OpenFile>) -> RtResult<()> {
    close(FN, &file)
}

/// Closes a File handle (Simple's `rt_io_file_close` name).
///
/// # Errors
/// - Closed: `file` was closed
#[rt_fn(tier = "verified")]
pub fn rt_io_file_close(file: Handle<OpenFile>) -> RtResult<()> {
    close(FN, &file)
}

/// Closes a File handle (Simple's `rt_fd_close` name).
///
/// # Errors
/// - Closed: `file` was closed
#[rt_fn(tier = "verified")]
pub fn rt_fd_close(file: Handle<OpenFile>) -> RtResult<()> {
    close(FN, &file)
}

/// Flushes a File handle's data and metadata to the disk (fdatasync + fsync).
///
/// # Errors
/// - Closed: `file` was closed
#[rt_fn(tier = "verified", blocking)]
pub fn rt_io_file_flush(file: Handle<OpenFile>) -> RtResult<()> {
    file.with(|f| f.flush().and_then(|()| f.sync_all()), FN)
}

/// Moves a File handle's position: `whence` 0 from the start, 1 from the current position, 2 from the end
/// (lseek); returns the new position.
///
/// # Errors
/// - InvalidArgument: for another whence or a position before the start
/// - Closed: `file` was closed
#[rt_fn(tier = "verified")]
pub fn rt_io_file_seek(file: Handle<OpenFile>, offset: i64, whence: i64) -> RtResult<u64> {
    let pos = match whence {
        0 if offset >= 0 => SeekFrom::Start(offset as u64),
        0 => return Err(Error::invalid(FN, "offset from the start must be >= 0", offset)),
        1 => SeekFrom::Current(offset),
        2 => SeekFrom::End(offset),
        w => return Err(Error::invalid(FN, "whence must be 0 (start), 1 (current) or 2 (end)", w)),
    };
    file.with(|f| f.seek(pos), FN)
}

/// Size in bytes of the file behind a File handle (fstat).
///
/// # Errors
/// - Closed: `file` was closed
#[rt_fn(tier = "verified")]
pub fn rt_io_file_meta_size(file: Handle<OpenFile>) -> RtResult<u64> {
    file.with(|f| f.metadata().map(|m| m.len()), FN)
}

/// `write_all` that, while a deadline or cancel token may apply (docs/DEADLINES.md), waits for
/// a pipe or FIFO to take more in poll(2): Error Timeout / Cancelled with `details.written` (the
/// bytes already written cannot be taken back).
fn write_all(func: &'static str, file: &Handle<OpenFile>, data: &[u8]) -> RtResult<()> {
    if !ffi_sdk::deadline::active() {
        return file.with(|f| f.write_all(data), func);
    }
    let mut stopped: Option<Error> = None;
    let r = file.with(
        |f| {
            use std::os::fd::AsRawFd;
            // A regular file never waits for room: one write_all.
            if f.metadata()?.is_file() {
                return f.write_all(data);
            }
            let mut off = 0;
            while off < data.len() {
                if let Err(e) = ffi_sdk::deadline::poll_fd(func, f.as_raw_fd(), libc::POLLOUT, None) {
                    stopped = Some(e.with("written", off));
                    return Err(io::Error::other("stopped"));
                }
                // POLLOUT on a pipe promises room for PIPE_BUF bytes: a larger write could block.
                let end = data.len().min(off + libc::PIPE_BUF);
                match f.write(&data[off..end]) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        },
        func,
    );
    match stopped {
        Some(e) => Err(e),
        None => r,
    }
}

/// Writes all of `data` (bytes or text) at the handle's position.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `file` was closed
#[rt_fn(tier = "verified", blocking)]
pub fn rt_io_file_write_all(file: Handle<OpenFile>, data: &[u8]) -> RtResult<()> {
    write_all(FN, &file, data)
}

/// Writes the first `len` bytes of `data` (all of it when `len` is nil or -1) and returns the number written.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `file` was closed
/// - OutOfRange: `len` exceeds `data`
#[rt_fn(tier = "verified", blocking)]
pub fn rt_fd_write(file: Handle<OpenFile>, data: &[u8], len: Option<i64>) -> RtResult<u64> {
    let n = match len {
        None | Some(-1) => data.len(),
        Some(n) if n >= 0 && (n as u64) <= data.len() as u64 => n as usize,
        Some(n) => {
            return Err(Error::new(Code::OutOfRange, FN, format!("len must be -1 or 0..={}", data.len()), n));
        }
    };
    write_all(FN, &file, &data[..n])?;
    Ok(n as u64)
}

/// Reads from the handle's position up to and including the first byte
/// `stop_byte` (0..=255), or `max` bytes (>= 1), or the end of the file,
/// whichever comes first; "" at the end. The result is text when it is
/// UTF-8, else bytes. The position is left just after what was returned.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - Closed: `file` was closed
/// - OutOfRange: stop_byte must be 0..=255; max must be 1..=2^30
#[rt_fn(tier = "verified", blocking, ret = "any")]
pub fn rt_fd_read_until(file: Handle<OpenFile>, stop_byte: i64, max: i64) -> RtResult<Value> {
    if !(0..=255).contains(&stop_byte) {
        return Err(Error::new(Code::OutOfRange, FN, "stop_byte must be 0..=255", stop_byte));
    }
    if !(1..=1 << 30).contains(&max) {
        return Err(Error::new(Code::OutOfRange, FN, "max must be 1..=2^30", max));
    }
    // A pipe or FIFO read waits in poll(2) for the thread's deadline and cancel token
    // (docs/DEADLINES.md). On Timeout / Cancelled nothing is consumed: what was read already is
    // given back (seek), or, where the file cannot seek (pipe), returned in the Error's details
    // (`partial`, `partial_len`).
    let mut stopped: Option<Error> = None;
    let out = file.with(
        |f| {
            let mut out = Vec::new();
            let mut buf = [0u8; 8192];
            while out.len() < max as usize {
                let want = buf.len().min(max as usize - out.len());
                if ffi_sdk::deadline::active() {
                    use std::os::fd::AsRawFd;
                    if let Err(e) = ffi_sdk::deadline::poll_fd(FN, f.as_raw_fd(), libc::POLLIN, None) {
                        let mut e = e;
                        if !out.is_empty() && f.seek(SeekFrom::Current(-(out.len() as i64))).is_err() {
                            e = e.with("partial", String::from_utf8_lossy(&out).into_owned()).with("partial_len", out.len());
                        }
                        stopped = Some(e);
                        return Err(io::Error::other("stopped"));
                    }
                }
                let n = match f.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    break;
                }
                if let Some(i) = buf[..n].iter().position(|&b| b as i64 == stop_byte) {
                    out.extend_from_slice(&buf[..=i]);
                    // Give back what was read past the stop byte.
                    f.seek(SeekFrom::Current(i as i64 + 1 - n as i64))?;
                    return Ok(out);
                }
                out.extend_from_slice(&buf[..n]);
            }
            Ok(out)
        },
        FN,
    );
    if let Some(e) = stopped {
        return Err(e);
    }
    let out = out?;
    Ok(match std::str::from_utf8(&out) {
        Ok(s) => Value::text(s),
        Err(_) => Value::bytes(&out),
    })
}
