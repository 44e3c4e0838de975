//! More file operations, under the names Simple's standard library calls
//! (`sffi/io.spl`, `sffi/fs.spl`, `io/file_ops.spl`). Thin names share the
//! implementation of ours (`file.rs`) and report their own name in errors;
//! the rest open every file through `ffi_sdk::beneath` like `file.rs`.

use crate::common::{io_err, renamed, target};
use crate::file;
use ffi_sdk::beneath::{self, Follow, WriteMode};
use ffi_sdk::prelude::*;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Simple's name for rt_file_read_text (the `_rv` runtime-value variant).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "text")]
pub fn rt_file_read_text_rv(path: &str) -> RtResult<Value> {
    renamed(FN, "rt_file_read_text", file::__rt_file_read_text(path))
}

/// Simple's name for rt_file_read_text (declared `-> text?`: ours is text or an Error).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "text")]
pub fn rt_fs_read_text(path: &str) -> RtResult<Value> {
    renamed(FN, "rt_file_read_text", file::__rt_file_read_text(path))
}

/// The lines of a UTF-8 text file, without their `\n` (or `\r\n`) ends; a final line end does not add an empty
/// line ("" gives []).
///
/// # Errors
/// - NotFound: the path (or a directory on it) does not exist
/// - Parse: the content is not UTF-8
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "array<text>")]
pub fn rt_file_read_lines(path: &str) -> RtResult<Value> {
    let v = renamed(FN, "rt_file_read_text", file::__rt_file_read_text(path))?;
    let s = v.as_text().unwrap_or_default();
    let out = Value::array(0);
    for l in s.lines() {
        out.push(Value::text(l));
    }
    Ok(out)
}

/// Simple's `rt_write_file`: rt_file_write_text under another name.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_write_file(path: &str, content: &str) -> RtResult<()> {
    renamed(FN, "rt_file_write_text", file::__rt_file_write_text(path, content))
}

/// Writes text or bytes to a file (created or replaced, as rt_file_write_bytes)
/// and returns the number of bytes written.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write(path: &str, content: &[u8]) -> RtResult<u64> {
    renamed(FN, "rt_file_write_bytes", file::__rt_file_write_bytes(path, content))?;
    Ok(content.len() as u64)
}

/// Simple's name for rt_file_delete (a symlink itself.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: missing)
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_file_remove(path: &str) -> RtResult<()> {
    renamed(FN, "rt_file_delete", file::__rt_file_delete(path))
}

/// Simple's name for rt_file_delete.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: the path (or a directory on it) does not exist
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_io_file_delete(path: &str) -> RtResult<()> {
    renamed(FN, "rt_file_delete", file::__rt_file_delete(path))
}

/// Simple's name for rt_file_exists (true only for a regular file).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_io_file_exists(path: &str) -> RtResult<bool> {
    renamed(FN, "rt_file_exists", file::__rt_file_exists(path))
}

/// Simple's name for rt_file_exists (true only for a regular file).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_exists_str(path: &str) -> RtResult<bool> {
    renamed(FN, "rt_file_exists", file::__rt_file_exists(path))
}

/// SHA-256 of a file's content as 64 hex digits (Simple's `rt_file_hash`;
/// rt_file_hash_sha256's streaming implementation).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_hash(path: &str) -> RtResult<String> {
    renamed(FN, "rt_file_hash_sha256", file::__rt_file_hash_sha256(path))
}

/// Last modification time in unix microseconds (rt_file_modified_time under Simple's name).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_modified(path: &str) -> RtResult<i64> {
    renamed(FN, "rt_file_modified_time", file::__rt_file_modified_time(path))
}

/// Permission bits of a file (`st_mode & 0o7777`, e.g. 0o644 = 420; symlinks followed).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_mode(path: &str) -> RtResult<i64> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    Ok((st.st_mode & 0o7777) as i64)
}

static KIND: Key = Key::new("kind");
static SIZE: Key = Key::new("size");
static MODE: Key = Key::new("mode");
static MTIME: Key = Key::new("modified_us");
static INODE: Key = Key::new("inode");
static NLINK: Key = Key::new("nlink");
static UID: Key = Key::new("uid");
static GID: Key = Key::new("gid");

fn kind_name(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "char_device",
        libc::S_IFBLK => "block_device",
        _ => "other",
    }
}

/// Status of a path (symlinks followed) as a dict `{kind, size, mode,
/// modified_us, inode, nlink, uid, gid}`; kind is "file", "dir", "symlink",
/// "fifo", "socket", "char_device", "block_device". Simple declares `-> i64`
/// (a size or status code): ours is the dict.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified", ret = "dict")]
pub fn rt_file_stat(path: &str) -> RtResult<Value> {
    let t = target(FN, "fs.read", path, Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    let d = Value::record(&[
        (&KIND, Value::text(kind_name(&st))),
        (&SIZE, Value::int(st.st_size)),
        (&MODE, Value::int((st.st_mode & 0o7777) as i64)),
        (&MTIME, Value::int(st.st_mtime.saturating_mul(1_000_000).saturating_add(st.st_mtime_nsec / 1000))),
        (&INODE, Value::int(st.st_ino as i64)),
        (&NLINK, Value::int(st.st_nlink as i64)),
        (&UID, Value::int(st.st_uid as i64)),
        (&GID, Value::int(st.st_gid as i64)),
    ]);
    if d.is_error() {
        return Err(Error::from_value(d));
    }
    Ok(d)
}

/// Moves (renames) `src` to `dst`, replacing a file at `dst`: a symlink is moved itself. Across file systems
/// (EXDEV) a regular file is copied (with its permissions) and the source removed. Needs fs.write on both paths.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: `src` is missing
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Unsupported: moving a non-file across file systems: <src> -> <dst>
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_move(src: &str, dst: &str) -> RtResult<()> {
    let s = target(FN, "fs.write", src, Follow::No)?;
    let d = target(FN, "fs.write", dst, Follow::No)?;
    let (sd, sn) = s.split().map_err(|e| s.err(&e))?;
    let (dd, dn) = d.split().map_err(|e| d.err(&e))?;
    if d.scoped() {
        if let Ok(st) = beneath::statat(dd.as_raw_fd(), &dn, true) {
            if beneath::is(&st, libc::S_IFREG) {
                beneath::refuse_links(FN, dst, &st)?;
            }
        }
    }
    // SAFETY: two directory descriptors and two NUL-terminated names.
    if unsafe { libc::renameat(sd.as_raw_fd(), sn.as_ptr(), dd.as_raw_fd(), dn.as_ptr()) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EXDEV) {
        return Err(io_err(FN, format!("{src} -> {dst}"), &e));
    }
    let st = s.lstat().map_err(|e| s.err(&e))?;
    if !beneath::is(&st, libc::S_IFREG) {
        return Err(Error::unsupported(FN, format!("moving a non-file across file systems: {src} -> {dst}")));
    }
    renamed(FN, "rt_file_copy", file::__rt_file_copy(src, dst))?;
    s.unlink().map_err(|e| s.err(&e))
}

/// fsyncs a file (or directory) so its content and metadata reach the disk.
fn sync_path(func: &'static str, path: &str) -> RtResult<()> {
    let t = target(func, "fs.write", path, Follow::Yes)?;
    let f = t.open(libc::O_RDONLY, 0).map_err(|e| t.err(&e))?;
    f.sync_all().map_err(|e| io_err(func, path, &e))
}

/// Flushes a file's content and metadata to the disk (fsync). Needs fs.write.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_sync(path: &str) -> RtResult<()> {
    sync_path(FN, path)
}

/// Same as rt_file_sync (Simple's `io/file_ops.spl` name).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_fsync(path: &str) -> RtResult<()> {
    sync_path(FN, path)
}

/// Creates a new file with `content`. The new file is removed again when the write fails.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - AlreadyExists: anything (a dangling symlink included) is at the path
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_create_excl(path: &str, content: &[u8]) -> RtResult<()> {
    let t = target(FN, "fs.write", path, Follow::No)?;
    let mut f = t.open_write(WriteMode::NEW)?;
    if let Err(e) = f.write_all(content) {
        drop(f);
        let _ = t.unlink();
        return Err(io_err(FN, path, &e));
    }
    Ok(())
}

/// rt_file_atomic_write, then the permission bits `mode` (0..=0o7777) set on
/// the new file before it replaces the old one (the rename is the last step).
///
/// # Errors
/// - InvalidArgument: is a directory; path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: could not create a unique temporary file
/// - OutOfRange: mode must be 0..=0o7777
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_atomic_write_mode(path: &str, content: &[u8], mode: i64) -> RtResult<()> {
    if !(0..=0o7777).contains(&mode) {
        return Err(Error::new(Code::OutOfRange, FN, "mode must be 0..=0o7777", mode));
    }
    file::atomic_write(FN, path, content, Some(mode as u32))
}

/// Reads `size` bytes at `offset` (pread). Shorter at the end of the file.
fn read_at(func: &'static str, path: &str, offset: i64, size: i64) -> RtResult<Vec<u8>> {
    if offset < 0 || size < 0 {
        return Err(Error::new(Code::OutOfRange, func, "offset and size must be >= 0", format!("offset {offset}, size {size}")));
    }
    let t = target(func, "fs.read", path, Follow::Yes)?;
    let f = t.open_read().map_err(|e| t.err(&e))?;
    let len = f.metadata().map_err(|e| io_err(func, path, &e))?.len();
    let want = (size as u64).min(len.saturating_sub(offset as u64)) as usize;
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match f.read_at(&mut buf[got..], offset as u64 + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(func, path, &e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn utf8(func: &'static str, path: &str, b: Vec<u8>) -> RtResult<String> {
    String::from_utf8(b).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        Error::new(Code::Parse, func, format!("content is not UTF-8 (invalid byte at offset {pos})"), path).with("position", pos)
    })
}

/// Up to `size` bytes of a file from byte `offset`, as UTF-8 text (shorter or "" past the end).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: the window is not UTF-8 (a cut through a multi-byte character included)
/// - OutOfRange: for negative values
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_read_text_at(path: &str, offset: i64, size: i64) -> RtResult<String> {
    utf8(FN, path, read_at(FN, path, offset, size)?)
}

/// Same as rt_file_read_text_at (Simple declares `-> text?`: ours is text or an Error).
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: content is not UTF-8 (invalid byte at offset <pos>)
/// - OutOfRange: offset and size must be >= 0
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_read_text_at_checked(path: &str, offset: i64, size: i64) -> RtResult<String> {
    utf8(FN, path, read_at(FN, path, offset, size)?)
}

/// Writes `data` at byte `offset` of an existing file (pwrite; the file grows when the write passes its end, a
/// gap reads as zeros) and returns the number of bytes written.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the file is missing
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: offset must be >= 0
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write_text_at(path: &str, offset: i64, data: &[u8]) -> RtResult<u64> {
    if offset < 0 {
        return Err(Error::new(Code::OutOfRange, FN, "offset must be >= 0", offset));
    }
    let t = target(FN, "fs.write", path, Follow::Yes)?;
    let keep = WriteMode { create: false, truncate: false, ..WriteMode::REPLACE };
    let f = t.open_write(keep)?;
    f.write_all_at(data, offset as u64).map_err(|e| io_err(FN, path, &e))?;
    Ok(data.len() as u64)
}

/// True when `path` is a regular file itself: a symlink (to anything) is
/// false, as is a missing path.
///
/// # Errors
/// - InvalidArgument: path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_is_regular_no_follow(path: &str) -> RtResult<bool> {
    let t = target(FN, "fs.read", path, Follow::No)?;
    match t.lstat() {
        Ok(st) => Ok(beneath::is(&st, libc::S_IFREG)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(t.err(&e)),
    }
}

/// Reads a regular file that is not a symlink (O_NOFOLLOW, checked on the open descriptor) as UTF-8 text,
/// refusing one larger than `max_bytes` (LimitExceeded) before reading it.
///
/// # Errors
/// - InvalidArgument: for a symlink or a non-regular file (fifo, device: never opened for blocking reads)
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: content is not UTF-8 (invalid byte at offset <pos>)
/// - OutOfRange: max_bytes must be >= 0
/// - LimitExceeded: file has … bytes, more than max_bytes <max_bytes>; file grew past max_bytes <max_bytes>
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_read_regular_no_follow_bounded(path: &str, max_bytes: i64) -> RtResult<String> {
    if max_bytes < 0 {
        return Err(Error::new(Code::OutOfRange, FN, "max_bytes must be >= 0", max_bytes));
    }
    let t = target(FN, "fs.read", path, Follow::No)?;
    let f = match t.open(libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::invalid(FN, "is a symlink", path).with("path", path));
        }
        Err(e) => return Err(t.err(&e)),
    };
    let m = f.metadata().map_err(|e| io_err(FN, path, &e))?;
    if !m.is_file() {
        return Err(Error::invalid(FN, "is not a regular file", path).with("path", path));
    }
    if m.len() > max_bytes as u64 {
        return Err(Error::new(Code::LimitExceeded, FN, format!("file has {} bytes, more than max_bytes {max_bytes}", m.len()), path));
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    f.take(max_bytes as u64 + 1).read_to_end(&mut buf).map_err(|e| io_err(FN, path, &e))?;
    if buf.len() as u64 > max_bytes as u64 {
        return Err(Error::new(Code::LimitExceeded, FN, format!("file grew past max_bytes {max_bytes}"), path));
    }
    utf8(FN, path, buf)
}

/// A whole file read through a read-only mapping, as bytes (Simple declares
/// `[i64]`: ours is bytes). Same rules as rt_file_mmap_read.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "bytes")]
pub fn rt_file_mmap_read_bytes(path: &str) -> RtResult<Value> {
    renamed(FN, "rt_file_mmap_read", crate::mmap::__rt_file_mmap_read(path, Opts::new(FN, Value::NIL)))
}

/// A whole file read through a read-only mapping, as UTF-8 text (Error Parse otherwise).
///
/// # Errors
/// - Parse: content is not UTF-8 (invalid byte at offset <pos>)
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "text")]
pub fn rt_file_mmap_read_text(path: &str) -> RtResult<Value> {
    let v = renamed(FN, "rt_file_mmap_read", crate::mmap::__rt_file_mmap_read(path, Opts::new(FN, Value::NIL)))?;
    v.blob_into_text().map_err(|pos| {
        Error::new(Code::Parse, FN, format!("content is not UTF-8 (invalid byte at offset {pos})"), path).with("position", pos)
    })
}
