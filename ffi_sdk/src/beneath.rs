//! File system access that a scoped policy cannot be talked out of: paths
//! are resolved once, checked, and then acted on through directory
//! descriptors, never by name again (docs/SECURITY.md, "Paths").
//!
//! A [`Target`] is what one operation acts on: a directory descriptor and
//! one name inside it.
//! - While the capability the function needs is unscoped (allow-all, or
//!   this capability untouched by the policy), the target is the path as
//!   given, relative to the working directory (`AT_FDCWD`): no resolution
//!   cost. Operations on a link itself still never follow it, whatever the
//!   spelling (`link/`, `link/.`, `link//` name the link).
//! - Under a scoped capability:
//!   1. plan: the canonical form of the path ([`crate::paths::resolve`];
//!      for operations on a link itself, the canonical parent joined with
//!      the final name) is checked against the policy (allow and deny
//!      scopes);
//!   2. walk: the directory that holds the final name is opened by
//!      following exactly that canonical form from `/`, with no symlink
//!      allowed at any step (one `openat2(RESOLVE_NO_SYMLINKS |
//!      RESOLVE_NO_MAGICLINKS)` call, or a component-by-component
//!      `O_NOFOLLOW` walk where the kernel lacks openat2);
//!   3. act: the operation runs on (descriptor, name) with `*at` calls that
//!      never follow a final symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).
//!
//!   The object acted on is therefore reached by a symlink-free path equal
//!   to the one the policy allowed. A symlink swapped in after the check
//!   makes the call fail (Error CapabilityDenied, "changed while in use");
//!   it can never redirect it. This is stronger than resolving beneath the
//!   scope root (RESOLVE_BENEATH), which would still follow a link inside
//!   the scope into a denied sub-scope.
//!
//! Hard links: under a scoped `fs.write`, opening for writing a regular
//! file that has more than one link (it may also live outside the scope)
//! is refused unless the policy holds `fs.hardlink`. Reads are allowed:
//! a link in the scope is the file, as for a pnpm-style store.

use crate::cap;
use crate::error::{quote, Code, Error, RtResult};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the final component means to the operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Follow {
    /// A final symlink is followed (read, write, stat).
    Yes,
    /// The final component itself is acted on (delete, remove, create, rename).
    No,
}

/// One resolved operand: a directory descriptor (or the working directory)
/// and a name in it. See the module docs.
pub struct Target {
    /// None: `AT_FDCWD` (unscoped: `name` is the path as given).
    dir: Option<OwnedFd>,
    /// Components of the parent that do not exist yet, below `dir` (scoped only).
    missing: Vec<CString>,
    name: CString,
    scoped: bool,
    follow: bool,
    /// The path ended in `/` or `/.`: it must be a directory.
    must_dir: bool,
    func: &'static str,
    cap: &'static str,
    /// The canonical path that was checked (scoped only).
    canon: Option<PathBuf>,
    /// The path as the caller gave it (messages).
    pub path: String,
}

fn errno(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| errno(libc::EINVAL))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn retry<F: FnMut() -> libc::c_int>(mut f: F) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `openat` returning an owned descriptor (always O_CLOEXEC).
pub fn openat(dir: RawFd, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a NUL-terminated `&CStr` borrowed for the whole call; `dir` is only
    // passed to the kernel (a bad descriptor is EBADF, not memory unsafety).
    let fd = retry(|| unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    // SAFETY: `fd` was just returned by a successful openat, so it is open and owned by
    // nobody else: the OwnedFd becomes its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat`; `nofollow` does not follow a final symlink.
pub fn statat(dir: RawFd, name: &CStr, nofollow: bool) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    let flags = if nofollow { libc::AT_SYMLINK_NOFOLLOW } else { 0 };
    // SAFETY: `name` is a live NUL-terminated C string and `st` points at writable space
    // for one `libc::stat` on this stack.
    retry(|| unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded (`?` above), so the kernel filled the whole `stat`.
    Ok(unsafe { st.assume_init() })
}

/// `fstat` of an open descriptor.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points at writable space for one `libc::stat`; `fd` only goes to the kernel.
    retry(|| unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded (`?` above), so the kernel filled the whole `stat`.
    Ok(unsafe { st.assume_init() })
}

/// Whether a stat is of this file type (`libc::S_IFDIR`, ...).
pub fn is(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// The names in a directory (not `.`/`..`), in directory order.
pub fn read_names(dir: RawFd) -> io::Result<Vec<CString>> {
    Ok(read_entries(dir)?.into_iter().map(|(n, _)| n).collect())
}

/// The entries of a directory (not `.`/`..`) with their `d_type`
/// (`libc::DT_DIR`, `DT_LNK`, ...; `DT_UNKNOWN` when the file system does
/// not say: stat it), in directory order.
pub fn read_entries(dir: RawFd) -> io::Result<Vec<(CString, u8)>> {
    // fdopendir takes the descriptor: give it its own, positioned at the start.
    let own = openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = own.as_raw_fd();
    // SAFETY: `raw` is the descriptor of `own`, which this function owns; on success the
    // DIR takes it over (`own` is forgotten just below, closedir closes it), on failure
    // `own` still owns it and closes it on return.
    let d = unsafe { libc::fdopendir(raw) };
    if d.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(own);
    let mut out = Vec::new();
    let res = loop {
        // SAFETY: `__errno_location` returns this thread's errno slot, always valid to write;
        // cleared so a NULL from readdir64 can be told apart (end vs error).
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `d` is the non-NULL DIR from fdopendir, not yet closed, used by this thread only.
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            // SAFETY: reads this thread's errno slot, always valid.
            let e = unsafe { *libc::__errno_location() };
            break if e == 0 { Ok(()) } else { Err(errno(e)) };
        }
        // SAFETY: `ent` is non-NULL, so it points at readdir's current entry, valid until the
        // next readdir64/closedir on `d`; `d_name` is NUL-terminated. Name and `d_type` are
        // copied out before the next call.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            // SAFETY: `ent` is still the current, valid entry (no readdir64 since).
            out.push((name.to_owned(), unsafe { (*ent).d_type }));
        }
    };
    // SAFETY: `d` is the DIR from fdopendir, closed exactly once, here (it also closes `raw`).
    unsafe { libc::closedir(d) };
    res.map(|()| out)
}

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// Opens the absolute directory `abs` with no symlink followed anywhere:
/// one openat2 call. None when the kernel (or a seccomp filter) lacks it.
fn openat2_nosymlinks(abs: &CStr) -> Option<io::Result<OwnedFd>> {
    if NO_OPENAT2.load(Ordering::Relaxed) {
        return None;
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2(2) with AT_FDCWD, the NUL-terminated absolute path `abs` (borrowed for
    // the call) and `how`, a `#[repr(C)]` open_how (three u64, the v0 layout) on this stack
    // whose exact size is passed; the kernel only reads both.
    let r = retry(|| unsafe {
        libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, abs.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
            as libc::c_int
    });
    match r {
        // SAFETY: `fd` was just returned by a successful openat2: open and owned by no one else.
        Ok(fd) => Some(Ok(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM | libc::E2BIG)) => {
            NO_OPENAT2.store(true, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// Opens the directory `abs` (canonical, absolute) without following any
/// symlink. Stops at the first missing component: returns the deepest
/// existing directory and the names below it that are missing. A
/// component that is a symlink is ELOOP (the path changed since it was
/// resolved).
fn walk_nofollow(abs: &Path) -> io::Result<(OwnedFd, Vec<CString>)> {
    if let Some(r) = openat2_nosymlinks(&cstr(abs.as_os_str().as_bytes())?) {
        match r {
            Ok(fd) => return Ok((fd, Vec::new())),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {} // find where it stops below
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV)) => {} // tell which
            Err(e) => return Err(e),
        }
    }
    let comps: Vec<CString> = abs
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(cstr(s.as_bytes())),
            _ => None,
        })
        .collect::<io::Result<_>>()?;
    let mut fd = openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for (i, c) in comps.iter().enumerate() {
        match openat(fd.as_raw_fd(), c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
            Ok(next) => fd = next,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((fd, comps[i..].to_vec())),
            // A symlink where the plan saw a directory is a change; a file is a file.
            Err(e) => return Err(classify(fd.as_raw_fd(), c, e)),
        }
    }
    Ok((fd, Vec::new()))
}

/// `p` without trailing `/` and `/.` (`link/.` → `link`), and whether any
/// were there. `/` stays `/`; `.` stays `.`. (The name an operation on an
/// entry itself acts on.)
pub fn strip_trailing(p: &str) -> (&str, bool) {
    let mut s = p;
    let mut dir = false;
    loop {
        if s.len() > 1 && s.ends_with('/') {
            s = &s[..s.len() - 1];
        } else if s.len() > 2 && s.ends_with("/.") {
            s = &s[..s.len() - 2];
        } else if s == "/." {
            s = "/";
        } else {
            break;
        }
        dir = true;
    }
    (s, dir)
}

/// Whether `cap` is held unscoped (every resource, no exception): then its
/// paths need no resolution. Not audited.
pub fn unscoped(cap: &'static str) -> bool {
    cap::allow_all() || cap::query(cap, "")
}

/// Resolves `path` for one operation needing `cap`: validated (not empty,
/// no NUL), checked against the policy on its canonical form and opened as
/// described in the module docs. Errors: InvalidArgument, CapabilityDenied,
/// and the I/O errors of resolving (NotFound for a missing parent is left
/// to the operation, so creating functions can create it).
pub fn resolve(func: &'static str, cap_name: &'static str, path: &str, follow: Follow) -> RtResult<Target> {
    crate::paths::validate(func, path)?;
    let (stripped, must_dir) = strip_trailing(path);
    let mut t = Target {
        dir: None,
        missing: Vec::new(),
        name: CString::default(),
        scoped: false,
        follow: follow == Follow::Yes,
        must_dir,
        func,
        cap: cap_name,
        canon: None,
        path: path.to_string(),
    };
    let sp = Path::new(stripped);
    if follow == Follow::No && sp.file_name().is_none() {
        // `/`, `.`, `x/..`: as rm(1), an operation on an entry itself needs its name.
        return Err(Error::invalid(func, "path names '/', '.' or '..', not an entry: name the directory itself", quote(path))
            .with("path", path));
    }
    if unscoped(cap_name) {
        let name = if t.follow { path } else { stripped };
        t.name = cstr(name.as_bytes()).map_err(|e| t.err(&e))?;
        return Ok(t);
    }
    t.scoped = true;
    if let Some((fd, canon)) = fast_path(sp, follow) {
        cap::check(func, cap_name, &canon.to_string_lossy())?;
        t.name = cstr(canon.file_name().unwrap_or_default().as_bytes()).map_err(|e| t.err(&e))?;
        t.dir = Some(fd);
        t.canon = Some(canon);
        return Ok(t);
    }
    let canon = match (follow, sp.file_name()) {
        (Follow::No, Some(name)) => {
            let parent = match sp.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            crate::paths::resolve(parent).map_err(|e| t.err(&e))?.join(name)
        }
        _ => crate::paths::resolve(sp).map_err(|e| t.err(&e))?,
    };
    cap::check(func, cap_name, &canon.to_string_lossy())?;
    let (parent, name): (PathBuf, &OsStr) = match (canon.parent(), canon.file_name()) {
        (Some(d), Some(n)) => (d.to_path_buf(), n),
        _ => (PathBuf::from("/"), OsStr::new(".")),
    };
    t.name = cstr(name.as_bytes()).map_err(|e| t.err(&e))?;
    // A benign rename between plan and walk is retried by the caller's next
    // call; here one mismatch is a refusal (it can be an attack in progress).
    let (fd, missing) = walk_nofollow(&parent).map_err(|e| t.err(&e))?;
    t.dir = Some(fd);
    t.missing = missing;
    t.canon = Some(canon);
    Ok(t)
}

/// The common case in one call: a path that is already canonical (no `.`,
/// `..`, empty component or symlink). Its parent opens with
/// RESOLVE_NO_SYMLINKS, which proves it canonical, and its final name is
/// not a link (or is acted on itself). Relative paths are taken from the
/// working directory (getcwd is canonical). None: take the general path.
fn fast_path(sp: &Path, follow: Follow) -> Option<(OwnedFd, PathBuf)> {
    let lexical = sp.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !lexical || NO_OPENAT2.load(Ordering::Relaxed) {
        return None;
    }
    // Rebuilt from its components: the kernel opens exactly the string the
    // policy checks (`a//b` and `a/./b` become `a/b`).
    let rel: PathBuf = sp.components().collect();
    let abs = if sp.is_absolute() { rel } else { std::env::current_dir().ok()?.join(rel) };
    let (parent, name) = (abs.parent()?, abs.file_name()?);
    let fd = openat2_nosymlinks(&cstr(parent.as_os_str().as_bytes()).ok()?)?.ok()?;
    if follow == Follow::Yes {
        match statat(fd.as_raw_fd(), &cstr(name.as_bytes()).ok()?, true) {
            Ok(st) if is(&st, libc::S_IFLNK) => return None,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(_) => return None,
        }
    }
    Some((fd, abs))
}

impl Target {
    /// The directory descriptor the name is relative to.
    pub fn dirfd(&self) -> RawFd {
        self.dir.as_ref().map_or(libc::AT_FDCWD, |d| d.as_raw_fd())
    }

    /// The name in [`Self::dirfd`]: one component when scoped, the path when not.
    pub fn name(&self) -> &CStr {
        &self.name
    }

    /// Whether the capability was scoped (the target was resolved and walked).
    pub fn scoped(&self) -> bool {
        self.scoped
    }

    /// The canonical path the policy allowed (None when unscoped): entries
    /// found below it by descriptor walks are at this path joined with their names.
    pub fn canonical(&self) -> Option<&Path> {
        self.canon.as_deref()
    }

    fn nofollow(&self) -> bool {
        self.scoped || !self.follow
    }

    /// The Error for an I/O failure on this target: a symlink met where the
    /// resolved path had none is CapabilityDenied; the rest as Error::io.
    pub fn err(&self, e: &io::Error) -> Error {
        if self.scoped && e.raw_os_error() == Some(libc::ELOOP) {
            return Error::new(
                Code::CapabilityDenied,
                self.func,
                "a symlink appeared in the path after it was checked (changed while in use); refused",
                quote(&self.path),
            )
            .with("path", self.path.as_str());
        }
        Error::io(self.func, quote(&self.path), e).with("path", self.path.as_str())
    }

    fn ready(&self) -> io::Result<()> {
        if self.missing.is_empty() {
            Ok(())
        } else {
            Err(errno(libc::ENOENT))
        }
    }

    fn check_kind(&self, st: &libc::stat) -> io::Result<()> {
        if self.scoped && self.follow && is(st, libc::S_IFLNK) {
            return Err(errno(libc::ELOOP));
        }
        if self.must_dir && !is(st, libc::S_IFDIR) {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(())
    }

    /// Status of the target (a final symlink followed for [`Follow::Yes`]).
    pub fn stat(&self) -> io::Result<libc::stat> {
        self.ready()?;
        let st = statat(self.dirfd(), &self.name, self.nofollow())?;
        self.check_kind(&st)?;
        Ok(st)
    }

    /// Status of the final name itself (a symlink is not followed), with no
    /// check of what kind it is.
    pub fn lstat(&self) -> io::Result<libc::stat> {
        self.ready()?;
        statat(self.dirfd(), &self.name, true)
    }

    /// Opens the target with `flags` (O_CLOEXEC added; O_NOFOLLOW added
    /// when scoped or for [`Follow::No`]). For writing use [`Self::open_write`].
    pub fn open(&self, flags: i32, mode: u32) -> io::Result<File> {
        self.ready()?;
        let nf = if self.nofollow() { libc::O_NOFOLLOW } else { 0 };
        let fd = openat(self.dirfd(), &self.name, flags | nf, mode)?;
        if self.must_dir || self.scoped {
            self.check_kind(&fstat(fd.as_raw_fd())?)?;
        }
        Ok(File::from(fd))
    }

    /// Opens for reading.
    pub fn open_read(&self) -> io::Result<File> {
        self.open(libc::O_RDONLY, 0)
    }

    /// Opens for writing: `append` or not, `create` a missing file (mode
    /// 0666 minus the umask), `truncate` after the checks. Under a scoped
    /// fs.write a regular file with more than one hard link is refused
    /// (CapabilityDenied) unless the policy holds `fs.hardlink`.
    pub fn open_write(&self, w: WriteMode) -> RtResult<File> {
        let mut flags = if w.read { libc::O_RDWR } else { libc::O_WRONLY };
        if w.append {
            flags |= libc::O_APPEND;
        }
        if w.create {
            flags |= libc::O_CREAT;
        }
        if w.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        }
        if !self.scoped && w.truncate {
            flags |= libc::O_TRUNC; // nothing to check first
        }
        let f = self.open(flags, w.mode).map_err(|e| self.err(&e))?;
        if self.scoped {
            let st = fstat(f.as_raw_fd()).map_err(|e| self.err(&e))?;
            refuse_links(self.func, &self.path, &st)?;
            // O_TRUNC's meaning: only a regular file is truncated.
            if w.truncate && is(&st, libc::S_IFREG) {
                f.set_len(0).map_err(|e| self.err(&e))?;
            }
        }
        Ok(f)
    }

    /// Creates a directory (the final name; never follows).
    pub fn mkdir(&self, mode: u32) -> io::Result<()> {
        self.ready()?;
        // SAFETY: `self.name` is a NUL-terminated CString owned by `self`, alive for the call;
        // the directory descriptor is only passed to the kernel.
        retry(|| unsafe { libc::mkdirat(self.dirfd(), self.name.as_ptr(), mode as libc::mode_t) }).map(drop)
    }

    /// Creates the directory and every missing parent (mode 0777 minus the
    /// umask); fine when it is a directory already. Each created directory
    /// is entered without following symlinks.
    pub fn mkdir_all(&self) -> io::Result<()> {
        if !self.scoped {
            // `new/.` and `new/` name `new`: std cannot create the spelled form.
            let p = std::str::from_utf8(self.name.to_bytes()).map_err(|_| errno(libc::EINVAL))?;
            return std::fs::create_dir_all(strip_trailing(p).0);
        }
        let mut cur: Option<OwnedFd> = None;
        for c in &self.missing {
            let at = cur.as_ref().map_or(self.dirfd(), |d| d.as_raw_fd());
            // SAFETY: `c` is a NUL-terminated CString of `self.missing`, alive for the call; `at` is
            // `self`'s directory or the OwnedFd in `cur`, both open while the call runs.
            match retry(|| unsafe { libc::mkdirat(at, c.as_ptr(), 0o777) }) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            cur = Some(openat(at, c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).map_err(|e| classify(at, c, e))?);
        }
        let at = cur.as_ref().map_or(self.dirfd(), |d| d.as_raw_fd());
        // SAFETY: `self.name` is a live NUL-terminated CString; `at` is open (as above).
        match retry(|| unsafe { libc::mkdirat(at, self.name.as_ptr(), 0o777) }) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let st = statat(at, &self.name, true)?;
                if is(&st, libc::S_IFDIR) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the final name if it is not a directory (a symlink itself).
    pub fn unlink(&self) -> io::Result<()> {
        self.ready()?;
        // SAFETY: `self.name` is a live NUL-terminated CString owned by `self`.
        retry(|| unsafe { libc::unlinkat(self.dirfd(), self.name.as_ptr(), 0) }).map(drop)
    }

    /// Removes the final name if it is an empty directory.
    pub fn rmdir(&self) -> io::Result<()> {
        self.ready()?;
        // SAFETY: `self.name` is a live NUL-terminated CString owned by `self`.
        retry(|| unsafe { libc::unlinkat(self.dirfd(), self.name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
    }

    /// Removes the directory named by the final name and everything under
    /// it, through descriptors: no symlink is ever followed (they are
    /// removed). Entries that vanish meanwhile are skipped. Under a scoped
    /// capability every entry is checked on its path (a deny scope inside
    /// the tree stops the removal with CapabilityDenied before that entry is
    /// touched; what was removed before stays removed, as with `rm -r`).
    pub fn remove_all(&self) -> RtResult<()> {
        self.ready().map_err(|e| self.err(&e))?;
        // Checked before each entry: the deadline (entries removed before a stop stay removed,
        // as for any failure) and, scoped, the policy at the entry's real location.
        let check = |rel: &Path| -> RtResult<()> {
            crate::deadline::check(self.func)?;
            match &self.canon {
                Some(c) => cap::check(self.func, self.cap, &c.join(rel).to_string_lossy()),
                None => Ok(()),
            }
        };
        remove_tree(self.dirfd(), &self.name, &check).map_err(|e| match e {
            TreeError::Io(e) => self.err(&e),
            TreeError::Rt(e) => e,
        })
    }

    /// Opens the target as a directory for reading (listing, walking, `*at` work).
    pub fn open_dir(&self) -> io::Result<OwnedFd> {
        self.ready()?;
        let nf = if self.nofollow() { libc::O_NOFOLLOW } else { 0 };
        openat(self.dirfd(), &self.name, libc::O_RDONLY | libc::O_DIRECTORY | nf, 0).map_err(|e| classify(self.dirfd(), &self.name, e))
    }

    /// The directory that holds the final name, as a descriptor opened for
    /// reading (it can be fsynced), and that name. Unscoped, a final symlink
    /// is resolved first for [`Follow::Yes`], so the name is the real file.
    pub fn split(&self) -> io::Result<(OwnedFd, CString)> {
        self.ready()?;
        if self.scoped {
            let d = openat(self.dirfd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .or_else(|_| openat(self.dirfd(), c".", libc::O_PATH | libc::O_DIRECTORY, 0))?;
            return Ok((d, self.name.clone()));
        }
        let p = Path::new(OsStr::from_bytes(self.name.to_bytes()));
        let real;
        let p = if self.follow {
            real = crate::paths::resolve(p)?;
            real.as_path()
        } else {
            p
        };
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = p.file_name().ok_or_else(|| errno(libc::EISDIR))?;
        let d = openat(libc::AT_FDCWD, &cstr(parent.as_os_str().as_bytes())?, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok((d, cstr(name.as_bytes())?))
    }
}

/// Under a scoped fs.write: a regular file, or a Unix socket, with other
/// links is refused unless `fs.hardlink` is held (shared by [`Target`] and
/// descriptor-based writers, and by socket connects: one of the other links
/// may be outside the scope, and writing to the file or connecting to the
/// socket would reach it).
pub fn refuse_links(func: &'static str, path: &str, st: &libc::stat) -> RtResult<()> {
    let (what, act, risk) = if is(st, libc::S_IFREG) {
        ("file", "writing through it", "change a file")
    } else if is(st, libc::S_IFSOCK) {
        ("socket", "connecting through it", "reach a socket")
    } else {
        return Ok(());
    };
    if st.st_nlink > 1 && !cap::query("fs.hardlink", "") {
        return Err(Error::new(
            Code::CapabilityDenied,
            func,
            format!(
                "the {what} has {} hard links: {act} could {risk} outside the scope (grant fs.hardlink to allow)",
                st.st_nlink
            ),
            quote(path),
        )
        .with("capability", "fs.hardlink")
        .with("path", path));
    }
    Ok(())
}

/// An ENOTDIR/ELOOP from opening `name` in `dir` with O_NOFOLLOW: ELOOP
/// when a symlink is there (something changed, or a link where a directory
/// must be), the error itself otherwise (a file is a file).
fn classify(dir: RawFd, name: &CStr, e: io::Error) -> io::Error {
    if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) {
        if statat(dir, name, true).is_ok_and(|st| is(&st, libc::S_IFLNK)) {
            return errno(libc::ELOOP);
        }
    }
    e
}

/// How [`Target::open_write`] opens.
#[derive(Clone, Copy, Debug)]
pub struct WriteMode {
    pub append: bool,
    pub create: bool,
    pub create_new: bool,
    pub truncate: bool,
    pub read: bool,
    pub mode: u32,
}

impl WriteMode {
    /// Create or replace the content.
    pub const REPLACE: WriteMode = WriteMode { append: false, create: true, create_new: false, truncate: true, read: false, mode: 0o666 };
    /// Create or append.
    pub const APPEND: WriteMode = WriteMode { append: true, create: true, create_new: false, truncate: false, read: false, mode: 0o666 };
    /// Create a new file; fails when the name exists.
    pub const NEW: WriteMode = WriteMode { append: false, create: false, create_new: true, truncate: false, read: false, mode: 0o666 };
}

/// Why [`remove_tree`] stopped.
pub enum TreeError {
    Io(io::Error),
    /// The check refused an entry.
    Rt(Error),
}

impl From<io::Error> for TreeError {
    fn from(e: io::Error) -> TreeError {
        TreeError::Io(e)
    }
}

/// Removes the directory `name` in `parent` and everything under it,
/// descending through descriptors opened with O_NOFOLLOW (iterative: depth
/// is bounded by open descriptors, not the stack). `check` is asked about
/// every entry below the root (its path relative to the root) before it is removed.
pub fn remove_tree(parent: RawFd, name: &CStr, check: &dyn Fn(&Path) -> RtResult<()>) -> Result<(), TreeError> {
    let st = statat(parent, name, true)?;
    if !is(&st, libc::S_IFDIR) {
        return Err(errno(libc::ENOTDIR).into());
    }
    struct Frame {
        fd: OwnedFd,
        name: CString,
        left: Vec<CString>,
    }
    let open = |at: RawFd, n: &CStr| -> io::Result<Frame> {
        let fd = openat(at, n, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).map_err(|e| classify(at, n, e))?;
        let left = read_names(fd.as_raw_fd())?;
        Ok(Frame { fd, name: n.to_owned(), left })
    };
    // The path of the directory being emptied, relative to the tree's root.
    let mut rel = PathBuf::new();
    let mut stack = vec![open(parent, name)?];
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.left.pop() else {
            let done = stack.pop().expect("non-empty");
            rel.pop();
            let at = stack.last().map_or(parent, |f| f.fd.as_raw_fd());
            // SAFETY: `done.name` is a NUL-terminated CString owned by the popped frame, alive to
            // the end of this block; `at` is `parent` or the fd of the frame below, still open.
            match retry(|| unsafe { libc::unlinkat(at, done.name.as_ptr(), libc::AT_REMOVEDIR) }) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !stack.is_empty() => {}
                Err(e) => return Err(e.into()),
            }
            continue;
        };
        let dfd = top.fd.as_raw_fd();
        check(&rel.join(OsStr::from_bytes(child.to_bytes()))).map_err(TreeError::Rt)?;
        let st = match statat(dfd, &child, true) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        if is(&st, libc::S_IFDIR) {
            match open(dfd, &child) {
                Ok(f) => {
                    rel.push(OsStr::from_bytes(child.to_bytes()));
                    stack.push(f);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            // SAFETY: `child` is a NUL-terminated CString owned here; `dfd` belongs to the top
            // frame, which stays on the stack (open) during the call.
            match retry(|| unsafe { libc::unlinkat(dfd, child.as_ptr(), 0) }) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::strip_trailing;

    #[test]
    fn trailing_spellings_name_the_link() {
        for (i, o, d) in [
            ("a/link", "a/link", false),
            ("a/link/", "a/link", true),
            ("a/link//", "a/link", true),
            ("a/link/.", "a/link", true),
            ("a/link/./", "a/link", true),
            ("a/link/./.", "a/link", true),
            ("/", "/", false),
            ("/.", "/", true),
            (".", ".", false),
            ("./", ".", true),
            ("a/..", "a/..", false),
        ] {
            assert_eq!(strip_trailing(i), (o, d), "{i}");
        }
    }
}
