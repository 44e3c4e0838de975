//! A spawned program sees no more of the file system than the policy lets
//! its parent's calls see (docs/SECURITY.md, "Processes: file system").
//!
//! While the policy scopes `fs.read` or `fs.write` (anything but granted
//! whole), the program runs under a Landlock ruleset (Linux 6.2+, ABI 3)
//! built here, in the host, before the spawn; the program's process applies
//! it with two raw system calls just before `execve` (supervise.rs), so it
//! holds for the program and every process it starts, and cannot be undone.
//!
//! The ruleset handles reading (read files, list directories, execute) when
//! `fs.read` is scoped, writing (write, truncate, create, remove, rename,
//! link) when `fs.write` is, and allows:
//! - beneath each `fs.read` scope: reading; beneath each `fs.write` scope: writing;
//! - what a program needs to start, read-only: the program file itself, the
//!   interpreter named by its `#!` line, the system's library directories
//!   and `/etc/ld.so.cache`, and the programs the parent may start (beneath
//!   each `process.spawn` scope, or the standard `bin` directories when
//!   `process.spawn` is granted whole);
//! - `/dev/null` (read, write), `/dev/zero`, `/dev/random`, `/dev/urandom` (read).
//!
//! While `process.spawn` is scoped, executing is handled even when `fs.read`
//! is whole: a child, and its children, can start only the programs the
//! parent may (beneath the `process.spawn` scopes, plus the program itself,
//! its interpreter and the dynamic loader's directories).
//!
//! Nothing else: no `/etc`, `/home`, `/tmp` or `/proc` unless a scope names
//! them.
//!
//! A confined child may signal, and connect to abstract Unix sockets of,
//! only its own descendants (Landlock ABI 6, Linux 6.12, where present):
//! the runtime's host has no call that reaches other processes that way.
//!
//! TCP (Landlock ABI 4, Linux 6.7, where the kernel has it): while
//! `net.connect` and `net.http` are both narrowed to scopes with ports (or
//! dropped), the child may connect only to those ports; while `net.listen`
//! is, bind only those. Landlock filters by port, not host, so the hosts of
//! the scopes are not enforced on a child, and a scope without a port (any
//! port of a host) leaves that direction whole. Landlock cannot express an exception inside an allowed directory,
//! so a policy with `!scope` entries for a handled capability cannot be
//! passed on: the spawn is Error Unsupported, as it is on a kernel without
//! Landlock ABI 3 (the message says which).
//!
//! Making a ruleset costs ~0.1 ms (twenty-odd opens and rules); the last
//! eight are kept for the next spawns of the same program under the same
//! policy, checked against the device and inode of the program and scopes
//! (~6 us to find it again: one read of the policy and the checks).

use ffi_sdk::cap::{self, Scope};
use ffi_sdk::prelude::*;
use landlock::{
    AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope as LlScope, ABI,
};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const V: ABI = ABI::V3;

/// Read-only, beneath these when they exist: where the loader and the
/// libraries every dynamically linked program needs live.
const LIB_DIRS: [&str; 7] = ["/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib"];
/// The programs a child may start when `process.spawn` is granted whole.
const BIN_DIRS: [&str; 7] = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/libexec"];

fn read_rights() -> BitFlags<AccessFs> {
    AccessFs::from_read(V)
}

fn write_rights() -> BitFlags<AccessFs> {
    AccessFs::from_write(V)
}

/// The grants a child's confinement is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Policy {
    read: Scope,
    write: Scope,
    spawn: Scope,
    connect: Scope,
    http: Scope,
    listen: Scope,
}

impl Policy {
    fn now() -> Policy {
        let [read, write, spawn, connect, http, listen] =
            cap::scopes(["fs.read", "fs.write", "process.spawn", "net.connect", "net.http", "net.listen"]);
        Policy { read, write, spawn, connect, http, listen }
    }

    fn fs_handled(&self) -> BitFlags<AccessFs> {
        let mut h = BitFlags::<AccessFs>::empty();
        if self.read != Scope::All {
            h |= read_rights();
        }
        if self.write != Scope::All {
            h |= write_rights();
        }
        if self.spawn != Scope::All {
            h |= AccessFs::Execute;
        }
        h
    }

    /// The TCP ports a child may connect to (a raw connection or HTTP: either
    /// grant) and bind; None where Landlock cannot narrow it (a grant whole,
    /// or a scope without a port, which allows any port of its host).
    fn tcp(&self) -> (Option<Vec<u16>>, Option<Vec<u16>>) {
        (ports(&[&self.connect, &self.http]), ports(&[&self.listen]))
    }

    fn confines(&self) -> bool {
        let (c, b) = self.tcp();
        !self.fs_handled().is_empty() || c.is_some() || b.is_some()
    }
}

/// The ports of host scopes (`host:port`, `[v6]:port`); None if one is whole
/// or allows any port. Landlock filters TCP by port only: the hosts of the
/// scopes are not enforced on a child.
fn ports(scopes: &[&Scope]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for s in scopes {
        match s {
            Scope::All => return None,
            Scope::Nothing => {}
            Scope::Some { allow, .. } => {
                for a in allow {
                    let port = match a.strip_prefix('[') {
                        Some(v6) => v6.split_once("]:").map(|x| x.1),
                        None if a.matches(':').count() == 1 => a.split_once(':').map(|x| x.1),
                        None => None,
                    };
                    out.push(port.and_then(|p| p.parse::<u16>().ok())?);
                }
            }
        }
    }
    Some(out)
}

/// A ruleset made for one policy and program, reused by the next spawns of
/// that program under that policy while the program file and the scope
/// directories are the same files (device and inode): a rule names the file
/// it was made on, so a replaced one needs a new ruleset.
struct Made {
    key: (Policy, PathBuf),
    files: Vec<(u64, u64)>,
    fd: Arc<OwnedFd>,
}

static MADE: Mutex<Vec<Made>> = Mutex::new(Vec::new());
const MADE_MAX: usize = 8;

/// Device and inode of the program and of each path scope (0, 0 for one missing).
fn identities(exe: &Path, p: &Policy) -> Vec<(u64, u64)> {
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).unwrap_or((0, 0));
    let mut v = vec![id(exe)];
    for s in [&p.read, &p.write, &p.spawn] {
        if let Scope::Some { allow, .. } = s {
            v.extend(allow.iter().map(|p| id(Path::new(p))));
        }
    }
    v
}

/// The Landlock ruleset for a program at `exe` (canonical) under the policy
/// in force, as a close-on-exec descriptor; None when the policy leaves
/// nothing to confine (fs.read and fs.write whole, TCP not narrowable).
pub fn ruleset(func: &'static str, exe: &Path) -> RtResult<Option<Arc<OwnedFd>>> {
    if cap::allow_all() {
        return Ok(None);
    }
    let policy = Policy::now();
    if !policy.confines() {
        return Ok(None);
    }
    let files = identities(exe, &policy);
    let key = (policy, exe.to_path_buf());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = made.iter().find(|m| m.key == key && m.files == files) {
        return Ok(Some(m.fd.clone()));
    }
    let Some(fd) = make(func, exe, &key.0)? else { return Ok(None) };
    let fd = Arc::new(fd);
    made.retain(|m| m.key != key);
    if made.len() == MADE_MAX {
        made.remove(0);
    }
    made.push(Made { key, files, fd: fd.clone() });
    Ok(Some(fd))
}

/// The ruleset; None when only TCP was to be narrowed and the kernel cannot.
fn make(func: &'static str, exe: &Path, p: &Policy) -> RtResult<Option<OwnedFd>> {
    let handled = p.fs_handled();
    for (name, s) in [("fs.read", &p.read), ("fs.write", &p.write)] {
        if let Scope::Some { deny, .. } = s {
            if !deny.is_empty() {
                return Err(Error::new(
                    Code::Unsupported,
                    func,
                    format!("{name} has exceptions (!{}) inside its scopes, and a child process can only be confined to whole directories (Landlock); drop the exception or the spawn", deny[0]),
                    "",
                ));
            }
        }
    }
    let unsupported = |e: &dyn std::fmt::Display| {
        Error::new(
            Code::Unsupported,
            func,
            format!("the policy scopes fs.read or fs.write, and a child process cannot be confined to it here: Landlock ABI 3 (Linux 6.2) is needed ({e})"),
            "",
        )
    };
    let (connect, bind) = p.tcp();
    let mut net = BitFlags::<AccessNet>::empty();
    if connect.is_some() {
        net |= AccessNet::ConnectTcp;
    }
    if bind.is_some() {
        net |= AccessNet::BindTcp;
    }
    // File-system rights must hold (HardRequirement); TCP rights (ABI 4, Linux 6.7) where the
    // kernel has them (BestEffort: an older kernel leaves TCP as it is, docs/SECURITY.md).
    let mut r = Ruleset::default();
    if !handled.is_empty() {
        r = r.set_compatibility(CompatLevel::HardRequirement).handle_access(handled).map_err(|e| unsupported(&e))?;
    }
    if !net.is_empty() {
        r = r.set_compatibility(CompatLevel::BestEffort).handle_access(net).map_err(|e| unsupported(&e))?;
    }
    // A confined child signals and reaches over abstract Unix sockets only its own domain
    // (itself and its descendants): the runtime gives its host no call that signals or
    // connects to other processes that way (ABI 6, Linux 6.12, where present).
    r = r
        .set_compatibility(CompatLevel::BestEffort)
        .scope(LlScope::Signal | LlScope::AbstractUnixSocket)
        .map_err(|e| unsupported(&e))?;
    let mut rs = match r.create() {
        Ok(rs) => rs,
        // Only TCP to narrow, on a kernel without it: nothing to confine.
        Err(_) if handled.is_empty() => return Ok(None),
        Err(e) => return Err(unsupported(&e)),
    };
    let connect = connect.iter().flatten().map(|port| NetPort::new(*port, AccessNet::ConnectTcp));
    let bind = bind.iter().flatten().map(|port| NetPort::new(*port, AccessNet::BindTcp));
    for rule in connect.chain(bind) {
        rs = rs.add_rule(rule).map_err(|e| Error::new(Code::Io, func, format!("cannot add a TCP port to the child's confinement: {e}"), ""))?;
    }
    if handled.is_empty() {
        return Ok(RulesetCreated::into(rs));
    }
    let mut rules: Vec<(PathBuf, BitFlags<AccessFs>)> = Vec::new();
    if let Scope::Some { allow, .. } = &p.read {
        rules.extend(allow.iter().map(|p| (PathBuf::from(p), read_rights())));
    }
    if let Scope::Some { allow, .. } = &p.write {
        rules.extend(allow.iter().map(|p| (PathBuf::from(p), write_rights())));
    }
    if p.read != Scope::All || p.spawn != Scope::All {
        // Reading and executing what a program needs to start (only executing when
        // fs.read is whole: the rights not handled are dropped below).
        let start = read_rights();
        rules.push((exe.to_path_buf(), start));
        if let Some(i) = interpreter(exe) {
            rules.push((i, start));
        }
        rules.extend(LIB_DIRS.iter().map(|d| (PathBuf::from(d), start)));
        rules.push((PathBuf::from("/etc/ld.so.cache"), start));
        match &p.spawn {
            Scope::Some { allow, .. } => rules.extend(allow.iter().map(|p| (PathBuf::from(p), start))),
            Scope::All => rules.extend(BIN_DIRS.iter().map(|d| (PathBuf::from(d), start))),
            Scope::Nothing => {}
        }
        for d in ["/dev/zero", "/dev/random", "/dev/urandom"] {
            rules.push((PathBuf::from(d), AccessFs::ReadFile.into()));
        }
    }
    rules.push((PathBuf::from("/dev/null"), AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate));
    for (path, access) in rules {
        // A scope or system directory that does not exist grants nothing (it
        // may appear later; the ruleset is made for this spawn only).
        let Ok(fd) = PathFd::new(&path) else { continue };
        let mut access = access & handled;
        if !std::fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            access &= AccessFs::from_file(V);
        }
        if access.is_empty() {
            continue;
        }
        rs = rs.add_rule(PathBeneath::new(fd, access)).map_err(|e| {
            Error::new(Code::Io, func, format!("cannot add {} to the child's file-system confinement: {e}", path.display()), "")
        })?;
    }
    let fd: Option<OwnedFd> = RulesetCreated::into(rs);
    fd.map(Some).ok_or_else(|| unsupported(&"no ruleset was created"))
}

/// The interpreter a `#!` line at the start of `exe` names (canonical), if any.
fn interpreter(exe: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut head = [0u8; 256];
    // Non-blocking, and only a regular file is read: a FIFO named as the program must not
    // stall the spawn (execve refuses it anyway).
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(exe).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let n = f.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let path = std::str::from_utf8(line).ok()?.split_whitespace().next()?;
    std::fs::canonicalize(path).ok()
}
