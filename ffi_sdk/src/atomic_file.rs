//! A file written under a fresh temporary name beside its destination and
//! renamed over it when complete: the one way every library replaces a
//! file (rt_file_atomic_write, archive outputs, downloads, object files).
//!
//! The destination's directory is held as a descriptor from the
//! [`beneath::Target`] walk, so the temporary, the checks and the rename all
//! happen in the directory the policy allowed, whatever is renamed or
//! swapped along the path meanwhile. Before anything is created:
//! - a directory at the destination is InvalidArgument;
//! - under a scoped capability, a symlink at the final name (one appeared
//!   since the walk) is CapabilityDenied, and an existing regular file with
//!   other hard links is CapabilityDenied unless `fs.hardlink` is held
//!   (docs/SECURITY.md, "Hard links": replacing it would detach the name
//!   from a file the policy never saw).
//!
//! The temporary, `.NAME.rt-atomic.PID.SEQ.tmp`, is opened `O_CREAT | O_EXCL |
//! O_NOFOLLOW` under a name made fresh per call (a process-wide sequence): an
//! entry planted under a temporary's name is never opened. Dropped
//! uncommitted, it is removed.

use crate::beneath::{self, Target};
use crate::error::{quote, Code, Error, RtResult};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// An output file under a temporary name beside its destination (module docs).
pub struct AtomicFile {
    /// The temporary, open for writing (taken by [`AtomicFile::commit`]).
    pub file: Option<File>,
    dir: OwnedFd,
    tmp: CString,
    name: CString,
    done: bool,
    /// The file the commit will replace, as it was when the temporary was made.
    pub old: Option<libc::stat>,
    /// (device, inode) of the file it will replace (when there is one) and of the temporary.
    pub ids: Vec<(u64, u64)>,
}

impl AtomicFile {
    /// Checks the destination `t` (resolved from `path` for `func`) and creates the
    /// temporary beside it (module docs); `mode` for the new file, before the umask.
    pub fn create(func: &'static str, t: &Target, path: &str, mode: u32) -> RtResult<AtomicFile> {
        let (dir, name) = t.split().map_err(|e| t.err(&e))?;
        let old = match beneath::statat(dir.as_raw_fd(), &name, true) {
            Ok(st) if beneath::is(&st, libc::S_IFDIR) => {
                return Err(Error::invalid(func, "the destination is a directory, not a file", quote(path)).with("path", path));
            }
            Ok(st) if t.scoped() && beneath::is(&st, libc::S_IFLNK) => return Err(t.err(&io::Error::from_raw_os_error(libc::ELOOP))),
            Ok(st) => {
                if t.scoped() {
                    beneath::refuse_links(func, path, &st)?;
                }
                Some(st)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(t.err(&e)),
        };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        for _ in 0..16 {
            let mut tmp = b".".to_vec();
            tmp.extend_from_slice(name.as_bytes());
            tmp.extend_from_slice(format!(".rt-atomic.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)).as_bytes());
            let tmp = CString::new(tmp).map_err(|_| Error::invalid(func, "path contains a NUL byte", quote(path)))?;
            match beneath::openat(dir.as_raw_fd(), &tmp, flags, mode) {
                Ok(fd) => {
                    let id = |st: &libc::stat| (st.st_dev, st.st_ino);
                    let mut ids: Vec<(u64, u64)> = old.iter().map(id).collect();
                    // Built first, so that its Drop removes the temporary on any failure below.
                    let mut out = AtomicFile { file: Some(File::from(fd)), dir, tmp, name, done: false, old, ids: Vec::new() };
                    let st = out.file.as_ref().map(|f| beneath::fstat(f.as_raw_fd()));
                    match st {
                        Some(Ok(st)) => ids.push(id(&st)),
                        Some(Err(e)) => return Err(t.err(&e)),
                        None => return Err(Error::internal(func, "output file missing")),
                    }
                    out.ids = ids;
                    return Ok(out);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(t.err(&e)),
            }
        }
        Err(Error::new(Code::Io, func, "could not create a unique temporary file", quote(path)))
    }

    /// The destination's directory (held open) and final name.
    pub fn dir(&self) -> (&OwnedFd, &CStr) {
        (&self.dir, &self.name)
    }

    /// Closes the temporary and renames it over the destination (in the held directory).
    pub fn commit(mut self) -> io::Result<()> {
        drop(self.file.take());
        let d = self.dir.as_raw_fd();
        // SAFETY: `tmp` and `name` are NUL-terminated CStrings owned by `self`, alive for the
        // call; `d` is borrowed from `self.dir`, an OwnedFd that stays open until `self` drops.
        if unsafe { libc::renameat(d, self.tmp.as_ptr(), d, self.name.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.done {
            drop(self.file.take());
            // SAFETY: `self.tmp` is a live NUL-terminated CString and `self.dir` an open OwnedFd,
            // both still owned by `self` (fields drop after this body); the result is ignored
            // on purpose (best-effort cleanup of our own temporary).
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}
