//! Files: existence, reading and writing (text and bytes), copy, delete,
//! append, atomic replacement, metadata, SHA-256.

use crate::common::{checked, checked_nofollow, hex, io_err, parent_dir};
use ffi_sdk::prelude::*;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

/// Reads a whole file straight into a new bytes value sized from its
/// metadata (`Value::bytes_uninit`: no intermediate Vec, no second copy).
/// A file that shrank meanwhile is shortened; one that grew, or that reports
/// no size (/proc), takes the copying path.
fn read_value(func: &'static str, path: &str, p: &Path) -> RtResult<Value> {
    let mut f = File::open(p).map_err(|e| io_err(func, path, &e))?;
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
    while got < n {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ioe(e)),
        }
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

/// Writes `data` to `p` (truncating, or appending). A file this call created
/// is removed again when the write fails, so no partial new file is left.
fn write_file(func: &'static str, path: &str, p: &Path, data: &[u8], append: bool) -> RtResult<()> {
    let existed = fs::symlink_metadata(p).is_ok();
    let mut o = OpenOptions::new();
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    let mut f = o.create(true).open(p).map_err(|e| io_err(func, path, &e))?;
    if let Err(e) = f.write_all(data) {
        drop(f);
        if !existed {
            let _ = fs::remove_file(p);
        }
        return Err(io_err(func, path, &e));
    }
    Ok(())
}

/// True when `path` names a regular file (symlinks followed); false when nothing
/// is there or it is another kind (a directory: use rt_path_exists). Error for
/// other failures (e.g. a parent that cannot be searched).
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_exists(path: &str) -> RtResult<bool> {
    let p = checked(FN, "fs.read", path)?;
    match fs::metadata(p) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(io_err(FN, path, &e)),
    }
}

/// Reads a file as UTF-8 text. Error Parse (details.position = first bad byte)
/// when the content is not UTF-8: read it with rt_file_read_bytes instead.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "text")]
pub fn rt_file_read_text(path: &str) -> RtResult<Value> {
    let p = checked(FN, "fs.read", path)?;
    read_value(FN, path, p)?.blob_into_text().map_err(|pos| {
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
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified", ret = "bytes")]
pub fn rt_file_read_bytes(path: &str) -> RtResult<Value> {
    let p = checked(FN, "fs.read", path)?;
    read_value(FN, path, p)
}

/// Writes text to a file, creating it or replacing its content. A new file
/// is removed again when the write fails. Not atomic: see rt_file_atomic_write.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write_text(path: &str, text: &str) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    write_file(FN, path, p, text.as_bytes(), false)
}

/// Writes bytes (or text as UTF-8) to a file, creating it or replacing its content.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_write_bytes(path: &str, data: &[u8]) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    write_file(FN, path, p, data, false)
}

/// Appends text to a file, creating it when missing (O_APPEND: concurrent
/// appenders do not overwrite each other).
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_append_text(path: &str, text: &str) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    write_file(FN, path, p, text.as_bytes(), true)
}

/// Copies a regular file's content and permissions to `dst` (created or
/// replaced); returns the number of bytes copied. Needs fs.read for src and
/// fs.write for dst. Error InvalidArgument when both name the same file.
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_copy(src: &str, dst: &str) -> RtResult<u64> {
    let s = checked(FN, "fs.read", src)?;
    let d = checked(FN, "fs.write", dst)?;
    let sm = fs::metadata(s).map_err(|e| io_err(FN, src, &e))?;
    if sm.is_dir() {
        return Err(Error::invalid(FN, "source is a directory", src).with("path", src));
    }
    let dst_meta = fs::metadata(d).ok();
    if let Some(dm) = &dst_meta {
        if dm.dev() == sm.dev() && dm.ino() == sm.ino() {
            return Err(Error::invalid(FN, "source and destination are the same file", format!("{src} -> {dst}")));
        }
    }
    match fs::copy(s, d) {
        Ok(n) => Ok(n),
        Err(e) => {
            if dst_meta.is_none() && fs::symlink_metadata(d).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(d);
            }
            Err(io_err(FN, format!("{src} -> {dst}"), &e))
        }
    }
}

/// Deletes a file (a symlink itself, not its target). Error NotFound when it
/// is missing, InvalidArgument for a directory (use rt_dir_remove).
#[rt_fn(cap = "fs.write", scoped, tier = "verified")]
pub fn rt_file_delete(path: &str) -> RtResult<()> {
    let p = checked_nofollow(FN, "fs.write", path)?;
    let m = fs::symlink_metadata(p).map_err(|e| io_err(FN, path, &e))?;
    if m.is_dir() {
        return Err(Error::invalid(FN, "is a directory (use rt_dir_remove)", path).with("path", path));
    }
    fs::remove_file(p).map_err(|e| io_err(FN, path, &e))
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file unless disarmed.
struct TempGuard(Option<PathBuf>);
impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Replaces a file's content atomically: readers see the old or the new
/// content, never a mix, also after a crash. Writes a uniquely named temp
/// file in the same directory, fsyncs it, renames it over the target and
/// fsyncs the directory. Keeps the permission bits of the file it replaces
/// (a new file gets 0666 minus the umask) and, where the process may, its owner. A symlink is followed: its target
/// is replaced and the link kept. The temp file never outlives a failure.
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_file_atomic_write(path: &str, data: &[u8]) -> RtResult<()> {
    let p = checked(FN, "fs.write", path)?;
    // Resolve symlinks so the link survives and the temp file shares the target's file system.
    let target = ffi_sdk::paths::resolve(p).map_err(|e| io_err(FN, path, &e))?;
    if target.file_name().is_none() {
        return Err(Error::invalid(FN, "path has no file name", path));
    }
    let old = match fs::metadata(&target) {
        Ok(m) if m.is_dir() => return Err(Error::invalid(FN, "is a directory", path).with("path", path)),
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(FN, path, &e)),
    };
    let dir = parent_dir(&target);
    let mut guard = TempGuard(None);
    let mut file = None;
    for _ in 0..16 {
        let nanos = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(
            ".rt-atomic.{}.{}.{:x}.tmp",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed),
            nanos
        ));
        match OpenOptions::new().write(true).create_new(true).mode(0o666).open(&tmp) {
            Ok(f) => {
                guard.0 = Some(tmp);
                file = Some(f);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(FN, path, &e)),
        }
    }
    let Some(mut f) = file else {
        return Err(Error::new(Code::Io, FN, "could not create a unique temporary file", dir.display()));
    };
    let tmp = guard.0.clone().unwrap_or_default();
    let step = |e: io::Error| io_err(FN, path, &e);
    if let Some(m) = &old {
        // Owner: kept when this process may (root, or the same owner); mode: always.
        if m.uid() != f.metadata().map_err(step)?.uid() {
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        }
        f.set_permissions(fs::Permissions::from_mode(m.permissions().mode() & 0o7777)).map_err(step)?;
    }
    f.write_all(data).map_err(step)?;
    f.sync_all().map_err(step)?;
    drop(f);
    fs::rename(&tmp, &target).map_err(step)?;
    guard.0 = None;
    let d = File::open(&dir).map_err(|e| io_err(FN, dir.display(), &e))?;
    d.sync_all().map_err(|e| {
        let mut err = io_err(FN, dir.display(), &e);
        err.message = format!("{} (the new content is in place, but syncing its directory failed)", err.message);
        err
    })
}

/// Last modification time in microseconds since the Unix epoch (symlinks followed).
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_modified_time(path: &str) -> RtResult<i64> {
    let p = checked(FN, "fs.read", path)?;
    let m = fs::metadata(p).map_err(|e| io_err(FN, path, &e))?;
    let t = m.modified().map_err(|e| io_err(FN, path, &e))?;
    Ok(match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    })
}

/// Size of a file in bytes (symlinks followed). Error InvalidArgument for a directory.
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_file_size(path: &str) -> RtResult<u64> {
    let p = checked(FN, "fs.read", path)?;
    let m = fs::metadata(p).map_err(|e| io_err(FN, path, &e))?;
    if m.is_dir() {
        return Err(Error::invalid(FN, "is a directory", path).with("path", path));
    }
    Ok(m.len())
}

/// Read buffer of the streaming hash: constant memory whatever the file size.
pub const HASH_BUF: usize = 256 * 1024;

/// SHA-256 of a file's content as 64 lowercase hex digits, streamed through
/// a fixed 256 KiB buffer (constant memory). Same implementation as
/// ffi_crypto's `rt_sha256_hash` (ring: SHA-NI or AVX assembly chosen at run time).
#[rt_fn(cap = "fs.read", scoped, blocking, tier = "verified")]
pub fn rt_file_hash_sha256(path: &str) -> RtResult<String> {
    let p = checked(FN, "fs.read", path)?;
    let mut f = File::open(p).map_err(|e| io_err(FN, path, &e))?;
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
