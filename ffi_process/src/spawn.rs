//! The engine under every function of this crate: the shared options,
//! program resolution and the capability check, spawning (own process
//! group, rlimits, signal dispositions), and a `poll` loop that feeds stdin
//! and drains stdout and stderr together, so no pipe ever fills up and
//! blocks the child (no deadlock whatever the output size).
//!
//! Every child runs under a supervisor process (`supervise.rs`) that
//! reaches all its descendants. Neither is a fork of the host on x86_64:
//! the supervisor is a `clone(CLONE_VM)` process and the program a
//! `clone(CLONE_VM | CLONE_VFORK)` of it (as `posix_spawn` makes one), so a
//! spawn copies no page tables whatever the host's size. Between clone and
//! exec they run only raw system calls (`sys.rs`: no libc wrapper, so no
//! `errno` of a host thread is written), async-signal-safe, with values and
//! buffers prepared before the spawn: no allocation, no lock, nothing of
//! ours (DEPENDENCIES.md: a child touching one of our mutexes hung). The
//! environment is copied into `NAME=value` strings before the spawn (the
//! child never reads the host's `environ`, which another thread may change).
//!
//! `start(.., wait_exec)`: a Child handle waits until the program has
//! exec'd (it needs the pid); a run does not, and an exec failure reaches
//! [`drive`] as a record from the supervisor (the same Error as before).
//!
//! Environment under a restricted policy (SPEC §7): see [`inherited_env`].

use crate::sandbox::{self, Limits};
use crate::supervise;
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a child's stdout or stderr goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Out {
    /// A pipe read by this library (the default for functions that return output).
    Capture,
    /// The host's own stream.
    Inherit,
    /// /dev/null.
    Null,
}

/// What a child reads on stdin.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum In {
    /// /dev/null (the default).
    Null,
    /// The host's own stdin.
    Inherit,
    /// These bytes through a pipe, then end of file.
    Data(Vec<u8>),
    /// A pipe kept open for the host to write to (a Child handle's
    /// `rt_process_write_stdin`), until closed.
    Pipe,
}

/// The options dict, read once in the same way by every function.
#[derive(Clone, Debug)]
pub struct Options {
    pub stdin: In,
    pub stdout: Out,
    pub stderr: Out,
    pub cwd: Option<PathBuf>,
    /// Set (`Some`) or remove (`None`) these variables.
    pub env: Vec<(String, Option<String>)>,
    pub clear_env: bool,
    pub text: bool,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub limits: Limits,
    pub kill_on_close: bool,
    /// Most bytes captured per stream (LimitExceeded beyond, the child and its descendants killed).
    pub max_output: usize,
    /// Past `max_output`, keep the first and last halves and count what was dropped
    /// instead of failing ([`Capped`]; set by rt_process_run_bounded, not an option key).
    pub truncate: bool,
}

/// Default of the `max_output` option: 64 MiB per stream.
pub const MAX_OUTPUT: usize = 64 << 20;

impl Options {
    /// Reads `opts` accepting only `known` keys; `out` is the default for stdout and stderr.
    pub fn read(func: &'static str, opts: &Opts, known: &[&str], out: Out) -> RtResult<Options> {
        opts.only(known)?;
        let mut o = Options {
            stdin: In::Null,
            stdout: out,
            stderr: out,
            cwd: None,
            env: Vec::new(),
            clear_env: opts.bool("clear_env")?.unwrap_or(false),
            text: opts.bool("text")?.unwrap_or(true),
            timeout: opts.int_in("timeout_ms", 0, i64::MAX)?.map(|ms| Duration::from_millis(ms as u64)),
            grace: Duration::from_millis(opts.int_in("grace_ms", 0, i64::MAX)?.unwrap_or(0) as u64),
            limits: Limits::default(),
            kill_on_close: opts.bool("kill_on_close")?.unwrap_or(true),
            max_output: opts.int_in("max_output", 0, i64::MAX)?.map_or(MAX_OUTPUT, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            truncate: false,
        };
        if !opts.get("grace_ms").is_nil() && known.contains(&"timeout_ms") && o.timeout.is_none() {
            return Err(Error::invalid(func, "option grace_ms needs timeout_ms", opts.get("grace_ms").describe()));
        }
        let inherit = opts.bool("inherit_stdin")?.unwrap_or(false);
        if let Some(data) = opts.bytes("stdin")? {
            if inherit {
                return Err(Error::invalid(func, "options stdin and inherit_stdin exclude each other", "inherit_stdin"));
            }
            o.stdin = In::Data(data.to_vec());
        } else if inherit {
            o.stdin = In::Inherit;
        }
        if opts.bool("stdin_pipe")?.unwrap_or(false) {
            if o.stdin != In::Null {
                return Err(Error::invalid(func, "option stdin_pipe excludes stdin and inherit_stdin", "stdin_pipe"));
            }
            o.stdin = In::Pipe;
        }
        o.stdout = out_mode(func, opts, "stdout", out)?;
        o.stderr = out_mode(func, opts, "stderr", out)?;
        if let Some(dir) = opts.text("cwd")? {
            let p = paths::validate(func, dir)?;
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::invalid(func, "working directory (option cwd) is not a directory", quote(dir))),
                Err(e) => return Err(Error::io(func, quote(dir), &e).with("option", "cwd")),
            }
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().map_err(|e| Error::io(func, "current directory", &e))?.join(p)
            };
            o.cwd = Some(abs);
        }
        let env = opts.get("env");
        if !env.is_nil() {
            o.env = read_env(func, env)?;
        }
        let lim = opts.get("limits");
        if !lim.is_nil() {
            o.limits = Limits::parse(func, lim)?;
        }
        Ok(o)
    }

    /// The child's PATH: the env option's, else the inherited one (see [`inherited_env`]), else `/bin:/usr/bin` (execvp's default).
    fn child_path(&self) -> OsString {
        let from_opts = self.env.iter().rev().find(|(k, _)| k == "PATH");
        let v = match from_opts {
            Some((_, v)) => v.as_ref().map(OsString::from),
            None => match inherited_env(self) {
                None => std::env::var_os("PATH"),
                Some(list) => list.into_iter().find(|(k, _)| k == "PATH").map(|(_, v)| v),
            },
        };
        v.unwrap_or_else(|| OsString::from("/bin:/usr/bin"))
    }

    /// The directory relative paths are taken from: the cwd option or the host's current directory.
    fn base_dir(&self, func: &'static str) -> RtResult<PathBuf> {
        match &self.cwd {
            Some(d) => Ok(d.clone()),
            None => std::env::current_dir().map_err(|e| Error::io(func, "current directory", &e)),
        }
    }
}

fn out_mode(func: &'static str, opts: &Opts, key: &str, default: Out) -> RtResult<Out> {
    match opts.text(key)? {
        None => Ok(default),
        Some("capture") => Ok(Out::Capture),
        Some("inherit") => Ok(Out::Inherit),
        Some("null") => Ok(Out::Null),
        Some(other) => Err(Error::invalid(func, format!("option {key} must be \"capture\", \"inherit\" or \"null\""), quote(other))),
    }
}

/// The env option: a dict of name to text (set) or nil (remove).
fn read_env(func: &'static str, env: Value) -> RtResult<Vec<(String, Option<String>)>> {
    if !env.is_dict() {
        return Err(Error::invalid(func, "option env must be a dict of name to text or nil", env.describe()));
    }
    let mut out = Vec::with_capacity(env.len());
    for (k, v) in env.entries() {
        let Some(name) = k.as_text() else {
            return Err(Error::invalid(func, "option env: names must be text", k.describe()));
        };
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(Error::invalid(func, "option env: a name must be non-empty without '=' or NUL", quote(name)));
        }
        let val = if v.is_nil() {
            None
        } else {
            match v.as_text() {
                Some(s) if !s.contains('\0') => Some(s.to_string()),
                Some(s) => return Err(Error::invalid(func, format!("option env: the value of {name} contains a NUL byte"), quote(s))),
                None => return Err(Error::invalid(func, format!("option env: the value of {name} must be text or nil"), v.describe())),
            }
        };
        out.push((name.to_string(), val));
    }
    Ok(out)
}

/// Rejects NUL bytes in the program and the arguments (they cannot reach exec).
pub fn check_argv(func: &'static str, program: &str, args: &[String]) -> RtResult<()> {
    if program.is_empty() {
        return Err(Error::invalid(func, "program is empty", "\"\""));
    }
    if program.contains('\0') {
        return Err(Error::invalid(func, "program contains a NUL byte", quote(program)));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err(Error::invalid(func, format!("args item {i} contains a NUL byte"), quote(a)).with("item", i));
        }
    }
    Ok(())
}

/// A variable read by the dynamic loader: `LD_*` (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT...) or `DYLD_*`.
pub fn loader_var(name: &[u8]) -> bool {
    name.starts_with(b"LD_") || name.starts_with(b"DYLD_")
}

/// The host variables a child inherits, before the env option applies:
/// `None` = the whole environment (allow-all, or both `env.read` and
/// `process.spawn` unscoped); otherwise the list. Rule (SPEC §7): under a
/// restricted policy a child inherits only the variables `env.read` lets the
/// caller read (every one when env.read is unscoped), and `LD_*`/`DYLD_*`
/// only when `process.spawn` is unscoped. `clear_env` inherits nothing.
/// Asked without audit records (the library's own question).
pub fn inherited_env(o: &Options) -> Option<Vec<(OsString, OsString)>> {
    if o.clear_env {
        return Some(Vec::new());
    }
    if cap::allow_all() {
        return None;
    }
    let all_vars = cap::query("env.read", "");
    let spawn_all = cap::query("process.spawn", "");
    if all_vars && spawn_all {
        return None;
    }
    let keep = |k: &std::ffi::OsStr| {
        let b = k.as_bytes();
        if loader_var(b) && !spawn_all {
            return false;
        }
        // A name that is not UTF-8 cannot be named in a scope: inherited only with unscoped env.read.
        all_vars || k.to_str().is_some_and(|n| cap::query("env.read", n))
    };
    Some(std::env::vars_os().filter(|(k, _)| keep(k)).collect())
}

/// SPEC §7: an env option that sets any `LD_*` or `DYLD_*` variable needs unscoped process.spawn.
pub fn check_loader_env(func: &'static str, o: &Options) -> RtResult<()> {
    let risky = o.env.iter().find(|(k, v)| v.is_some() && loader_var(k.as_bytes()));
    if let Some((k, _)) = risky {
        cap::check(func, "process.spawn", "").map_err(|mut e| {
            e.message.push_str(&format!(" (unscoped: the env option sets {k})"));
            e
        })?;
    }
    Ok(())
}

enum Probe {
    Ok,
    Missing,
    Denied(&'static str),
}

fn probe(p: &Path) -> Probe {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Probe::Denied("is a directory, not a program"),
        Ok(_) => {
            let Ok(c) = CString::new(p.as_os_str().as_bytes()) else { return Probe::Missing };
            // SAFETY: `c` is a CString (NUL-terminated, no interior NUL) alive for the call;
            // access only reads the path.
            if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
                Probe::Ok
            } else {
                Probe::Denied("is not executable")
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Probe::Denied("cannot be reached (permission denied)"),
        Err(_) => Probe::Missing,
    }
}

/// Finds the file to exec and checks `process.spawn` on its canonical path.
/// A program with a `/` is taken relative to the cwd option (or the host's
/// current directory); a bare name is searched in the child's PATH (see
/// [`Options::child_path`]; relative PATH entries against the same directory).
pub fn resolve(func: &'static str, program: &str, o: &Options) -> RtResult<PathBuf> {
    let base = o.base_dir(func)?;
    let exe = if program.contains('/') {
        // components() drops interior `.`: `./x` execs as `<cwd>/x`.
        let p: PathBuf = base.join(program).components().collect();
        // Check before touching the file, on the canonical form (works for missing files too).
        cap::check_path(func, "process.spawn", &p)?;
        match probe(&p) {
            Probe::Ok => return Ok(p),
            Probe::Missing => return Err(not_found(func, program, "program not found")),
            Probe::Denied(why) => {
                return Err(Error::new(Code::PermissionDenied, func, format!("program {why}"), quote(program)).with("program", program))
            }
        }
    } else {
        let mut denied: Option<(PathBuf, &'static str)> = None;
        let mut found = None;
        for dir in std::env::split_paths(&o.child_path()) {
            let dir = if dir.as_os_str().is_empty() { base.clone() } else { base.join(dir) };
            let cand = dir.join(program);
            match probe(&cand) {
                Probe::Ok => {
                    found = Some(cand);
                    break;
                }
                Probe::Denied(why) => {
                    if denied.is_none() {
                        denied = Some((cand, why));
                    }
                }
                Probe::Missing => {}
            }
        }
        match (found, denied) {
            (Some(p), _) => p,
            (None, Some((p, why))) => {
                return Err(Error::new(Code::PermissionDenied, func, format!("program {why}"), p.display())
                    .with("program", program))
            }
            (None, None) => return Err(not_found(func, program, "program not found in PATH")),
        }
    };
    if !cap::allow_all() {
        let canon = std::fs::canonicalize(&exe).map_err(|e| Error::io(func, exe.display(), &e))?;
        cap::check(func, "process.spawn", &canon.to_string_lossy())?;
    }
    Ok(exe)
}

fn not_found(func: &'static str, program: &str, what: &str) -> Error {
    Error::not_found(func, what, quote(program)).with("program", program)
}

/// The host's end of the socket to a child's supervisor (shared by the pump and the handle).
#[derive(Clone)]
pub struct Control(Arc<OwnedFd>);

impl Control {
    fn send(&self, cmd: &[u8]) -> bool {
        // SAFETY: send on our own socket; MSG_NOSIGNAL: no SIGPIPE once the supervisor is gone.
        unsafe { libc::send(self.0.as_raw_fd(), cmd.as_ptr().cast(), cmd.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) == cmd.len() as isize }
    }
    /// SIGKILL to every descendant; the supervisor reaps them all and exits. False if it is already gone.
    pub fn kill_all(&self) -> bool {
        self.send(&[supervise::CMD_KILL])
    }
    /// `sig` to every descendant (SIGKILL: as [`Control::kill_all`]). False if the supervisor is gone.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        if sig == libc::SIGKILL {
            return self.kill_all();
        }
        self.send(&[supervise::CMD_SIGNAL, sig as u8])
    }
    /// The supervisor exits and leaves what still runs to init (a finished run whose daemons closed its output).
    pub fn detach(&self) -> bool {
        self.send(&[supervise::CMD_DETACH])
    }
}

/// A spawned child (its supervisor, our direct child) and our ends of its pipes.
pub struct Running {
    /// The supervisor: our child, reaped by us.
    pub pid: libc::pid_t,
    /// The program (the supervisor's child; also its process group id).
    pub prog: libc::pid_t,
    /// Readable when the supervisor exits (None on kernels without pidfd: then polled).
    pidfd: Option<OwnedFd>,
    /// The memory the supervisor runs in (shared with us on x86_64): freed once it is reaped.
    sup_mem: supervise::SupMem,
    /// The supervisor has been reaped (by us, or by someone else: ECHILD).
    pub sup_reaped: bool,
    pub ctl: Control,
    /// The supervisor's socket has not reached end of file.
    pub ctl_open: bool,
    /// The program's exit, as its supervisor reported it.
    pub prog_exit: Option<Exit>,
    /// The program could not be started: errno (from the program's process before exec, or the supervisor).
    pub start_err: Option<i32>,
    argv0: String,
    limited: bool,
    stdin: Option<OwnedFd>,
    /// Our end of an `In::Pipe` stdin (non-blocking), for the Child handle to keep.
    pub stdin_pipe: Option<OwnedFd>,
    input: Vec<u8>,
    written: usize,
    /// Our read ends of stdout [0] and stderr [1], until end of file.
    pub out: [Option<OwnedFd>; 2],
}

/// Whether the host has `sig` ignored (an ignored disposition survives exec).
fn ignored(sig: libc::c_int) -> bool {
    // SAFETY: all-zero bytes are a valid `sigaction`; with a NULL new action sigaction changes
    // nothing and only writes the current disposition into `old`, a live local.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take no pointers; the descriptor is borrowed from `fd`, an
    // OwnedFd open for the whole call, so no other owner's descriptor is changed.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: the raw pidfd_open syscall takes (pid, flags) by value and no pointers; it
    // returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: `fd` >= 0 was just returned by pidfd_open, so it is open and referenced
        // nowhere else: the OwnedFd becomes its only owner and closes it once.
        Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

/// A close-on-exec SOCK_SEQPACKET pair; both ends above 2 (std dup2s the child's stdio onto 0-2).
fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a live, writable `[c_int; 2]`, the two slots socketpair fills.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both slots hold new open descriptors referenced
    // nowhere else; each OwnedFd becomes the only owner of one.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above2(a)?, above2(b)?))
}

/// A close-on-exec descriptor above 2 (so that P's dup3 onto 0-2 never meets it).
fn above2(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes no pointers; `fd` is an OwnedFd held open for the call.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` >= 0 is the new descriptor fcntl just made, referenced nowhere else; the
    // OwnedFd becomes its only owner (the original is closed when `fd` drops).
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// A close-on-exec pipe: (read end, write end), both above 2.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a live, writable `[c_int; 2]`, the two slots pipe2 fills.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both slots hold new open descriptors referenced nowhere
    // else; each OwnedFd becomes the only owner of one.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above2(r)?, above2(w)?))
}

/// /dev/null opened close-on-exec, above 2.
fn dev_null(write: bool) -> io::Result<OwnedFd> {
    let mode = if write { libc::O_WRONLY } else { libc::O_RDONLY };
    // SAFETY: `c"/dev/null"` is a static NUL-terminated C string; no mode argument is read
    // without O_CREAT.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), mode | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` >= 0 was just returned by open, so it is open and referenced nowhere else:
    // the OwnedFd becomes its only owner.
    above2(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One output stream: (our read end, the child's end).
fn out_fds(o: Out) -> io::Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    Ok(match o {
        Out::Capture => {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        }
        Out::Inherit => (None, None),
        Out::Null => (None, Some(dev_null(true)?)),
    })
}

fn cstring(func: &'static str, what: &str, b: &[u8]) -> RtResult<CString> {
    CString::new(b).map_err(|_| Error::invalid(func, format!("{what} contains a NUL byte"), quote(&String::from_utf8_lossy(b))))
}

/// The child's environment as `NAME=value` strings: the inherited variables
/// ([`inherited_env`]) with the env option applied over them.
fn child_envp(o: &Options) -> Vec<CString> {
    let base: Vec<(OsString, OsString)> = inherited_env(o).unwrap_or_else(|| std::env::vars_os().collect());
    let mut vars: Vec<(OsString, OsString)> = if o.env.is_empty() {
        base
    } else {
        let mut m: std::collections::BTreeMap<OsString, OsString> = base.into_iter().collect();
        for (k, v) in &o.env {
            match v {
                Some(v) => m.insert(OsString::from(k), OsString::from(v)),
                None => m.remove(std::ffi::OsStr::new(k)),
            };
        }
        m.into_iter().collect()
    };
    vars.retain(|(k, _)| !k.is_empty());
    vars.into_iter()
        .filter_map(|(k, v)| {
            let mut b = Vec::with_capacity(k.len() + v.len() + 1);
            b.extend_from_slice(k.as_bytes());
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).ok()
        })
        .collect()
}

/// The error of a program that could not be started (as std's `spawn` reports it).
fn spawn_error(func: &'static str, argv0: &str, limited: bool, e: io::Error) -> Error {
    let mut err = Error::io(func, quote(argv0), &e).with("program", argv0);
    if limited && e.kind() == io::ErrorKind::PermissionDenied {
        err.message.push_str(" (or a limit above the hard limit)");
    }
    err
}

/// Spawns `exe` (argv[0] = `argv0`) under a supervisor, in its own process group, with `limits` applied.
/// `wait_exec`: returns once the program has exec'd (its pid in `prog`) or with the error that
/// stopped it; otherwise at once, and an exec failure arrives as `start_err` (see [`drive`]).
pub fn start(func: &'static str, argv0: &str, exe: &Path, args: &[String], o: &Options, limits: &Limits, wait_exec: bool) -> RtResult<Running> {
    // Everything the processes do before exec, computed (and allocated) now.
    let exe_c = cstring(func, "program", exe.as_os_str().as_bytes())?;
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(cstring(func, "program", argv0.as_bytes())?);
    for a in args {
        argv.push(cstring(func, "argument", a.as_bytes())?);
    }
    let envp = child_envp(o);
    let cwd = match &o.cwd {
        Some(d) => Some(cstring(func, "cwd", d.as_os_str().as_bytes())?),
        None => None,
    };
    let (rl, n) = limits.rlimits();
    let rl: [(u32, libc::rlimit); 5] = rl.map(|(r, l)| (r as u32, l));
    // Python and some shells ignore SIGXFSZ; a limit must bite in the child (like subprocess's restore_signals).
    let reset = (ignored(libc::SIGXFSZ), ignored(libc::SIGXCPU));
    let pipe_err = |e: io::Error| Error::io(func, "pipe", &e);
    let (stdin_ours, stdin_theirs) = match &o.stdin {
        In::Null => (None, Some(dev_null(false).map_err(pipe_err)?)),
        In::Inherit => (None, None),
        In::Data(_) | In::Pipe => {
            let (r, w) = pipe().map_err(pipe_err)?;
            (Some(w), Some(r))
        }
    };
    let (out_ours, out_theirs) = out_fds(o.stdout).map_err(pipe_err)?;
    let (err_ours, err_theirs) = out_fds(o.stderr).map_err(pipe_err)?;
    let (ours, theirs) = socket_pair().map_err(|e| Error::io(func, "socketpair", &e))?;
    let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
    let stdio = [raw(&stdin_theirs), raw(&out_theirs), raw(&err_theirs)];
    let ruleset = crate::confine::ruleset(func, exe)?;
    let mut launch = supervise::Launch::new(exe_c, argv, envp, cwd, stdio, rl, n, reset, theirs.as_raw_fd(), wait_exec);
    if let Some(fd) = &ruleset {
        launch.confine(fd.as_raw_fd());
    }
    let launched = supervise::launch(Box::new(launch));
    // S has its own copies of these (or failed to start).
    drop((theirs, stdin_theirs, out_theirs, err_theirs, ruleset));
    let (pid, mem) = launched.map_err(|e| spawn_error(func, argv0, n > 0, e))?;
    let mut r = Running {
        pid,
        prog: 0,
        pidfd: pidfd_open(pid),
        sup_mem: mem,
        sup_reaped: false,
        ctl: Control(Arc::new(ours)),
        ctl_open: true,
        prog_exit: None,
        start_err: None,
        argv0: argv0.to_string(),
        limited: n > 0,
        stdin: stdin_ours,
        stdin_pipe: None,
        input: match &o.stdin {
            In::Data(d) => d.clone(),
            _ => Vec::new(),
        },
        written: 0,
        out: [out_ours, err_ours],
    };
    if wait_exec {
        // The supervisor reports the program's pid once it has exec'd, or why it could not start it.
        match r.recv_record(true) {
            Some((supervise::TAG_PID, p)) if p > 0 => r.prog = p,
            Some((supervise::TAG_ERR, e)) => {
                r.start_err = Some(e);
                return Err(r.start_failed(func));
            }
            _ => {
                r.abandon(false);
                return Err(Error::plain(Code::Io, func, format!("the supervisor of {} did not report the program's pid", quote(argv0))));
            }
        }
    }
    let nb = [Some(&*r.ctl.0), r.stdin.as_ref(), r.out[0].as_ref(), r.out[1].as_ref()]
        .into_iter()
        .flatten()
        .try_for_each(set_nonblocking);
    if let Err(e) = nb {
        r.abandon(false);
        return Err(Error::io(func, "pipe", &e));
    }
    if o.stdin == In::Pipe {
        r.stdin_pipe = r.stdin.take();
    } else if r.input.is_empty() {
        r.stdin = None;
    }
    Ok(r)
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }
    pub fn signal(self) -> Option<i32> {
        match self {
            Exit::Code(_) => None,
            Exit::Signal(s) => Some(s),
        }
    }
}

/// What one `step` saw.
#[derive(Default, Clone, Copy)]
pub struct Step {
    /// The supervisor may have exited (pidfd readable, or the polling fallback's tick).
    pub child_ready: bool,
}

const CHUNK: usize = 64 * 1024;

impl Running {
    /// Whether stdout or stderr is still open.
    pub fn pipes_open(&self) -> bool {
        self.out[0].is_some() || self.out[1].is_some()
    }

    /// Waits up to `timeout` (None = no limit) for something to do, then
    /// writes pending stdin and reads all available output into `sink(stream, bytes)`.
    pub fn step(&mut self, timeout: Option<Duration>, watch_child: bool, sink: &mut dyn FnMut(usize, &[u8])) -> io::Result<Step> {
        const OUT0: u8 = 0;
        const OUT1: u8 = 1;
        const IN: u8 = 2;
        const CHILD: u8 = 3;
        const CTL: u8 = 4;
        const CANCEL: u8 = 5;
        let mut fds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 9];
        let mut tags = [0u8; 9];
        let mut n = 0;
        // A bound cancel token's eventfd wakes the poll (docs/DEADLINES.md); the caller re-checks.
        // (Not once triggered: the caller is then killing the child, and the eventfd stays readable.)
        let mut cfds = [-1i32; 4];
        let nc = if ffi_sdk::deadline::active() && ffi_sdk::deadline::status().is_none() {
            ffi_sdk::deadline::cancel_fds(&mut cfds)
        } else {
            0
        };
        for &fd in &cfds[..nc] {
            fds[n] = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            tags[n] = CANCEL;
            n += 1;
        }
        for (s, fd) in self.out.iter().enumerate() {
            if let Some(fd) = fd {
                fds[n] = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                tags[n] = if s == 0 { OUT0 } else { OUT1 };
                n += 1;
            }
        }
        if let Some(fd) = &self.stdin {
            fds[n] = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
            tags[n] = IN;
            n += 1;
        }
        if self.ctl_open {
            fds[n] = libc::pollfd { fd: self.ctl.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            tags[n] = CTL;
            n += 1;
        }
        let mut fallback = false;
        if watch_child {
            match &self.pidfd {
                Some(fd) => {
                    fds[n] = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                    tags[n] = CHILD;
                    n += 1;
                }
                None => fallback = true,
            }
        }
        let mut ms: libc::c_int = match timeout {
            None => -1,
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        if fallback {
            ms = if ms < 0 { 20 } else { ms.min(20) };
        }
        // SAFETY: `fds` is a live local array and its first `n` entries (n <= len, the stores
        // above are bounds-checked) were initialised above; poll writes only their `revents`.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, ms) };
        let mut step = Step { child_ready: fallback };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(step) } else { Err(e) };
        }
        for i in 0..n {
            if fds[i].revents == 0 {
                continue;
            }
            match tags[i] {
                OUT0 => self.read_out(0, sink),
                OUT1 => self.read_out(1, sink),
                IN => self.write_in(),
                CTL => self.read_ctl(),
                CANCEL => {}
                _ => step.child_ready = true,
            }
        }
        Ok(step)
    }

    /// One record from the supervisor: Some((tag, value)); None at end of file or when none is there (`block`: waits).
    fn recv_record(&mut self, block: bool) -> Option<(u8, i32)> {
        let mut b = [0u8; supervise::REC];
        loop {
            let flags = if block { 0 } else { libc::MSG_DONTWAIT };
            // SAFETY: `b` is a live, writable REC-byte local and recv is given `b.len()`, so the
            // kernel writes inside it; the socket is borrowed from `self.ctl`, open meanwhile.
            let k = unsafe { libc::recv(self.ctl.0.as_raw_fd(), b.as_mut_ptr().cast(), b.len(), flags) };
            if k == supervise::REC as isize {
                return Some((b[0], i32::from_le_bytes([b[1], b[2], b[3], b[4]])));
            }
            if k < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return None,
                    _ => {}
                }
            }
            if k <= 0 {
                self.ctl_open = false;
                return None;
            }
            // A short record (not sent by a supervisor): ignored.
        }
    }

    fn record(&mut self, tag: u8, v: i32) {
        match tag {
            supervise::TAG_EXIT => self.prog_exit = Some(decode(v)),
            supervise::TAG_ERR => self.start_err = Some(v),
            supervise::TAG_PID if v > 0 => self.prog = v,
            _ => {}
        }
    }

    /// The program could not be started (`start_err`): ends the supervisor and gives the error.
    pub fn start_failed(&mut self, func: &'static str) -> Error {
        // The supervisor reaps the failed program and exits by itself; K only hastens it.
        self.abandon(false);
        let e = io::Error::from_raw_os_error(self.start_err.unwrap_or(libc::EIO));
        spawn_error(func, &self.argv0, self.limited, e)
    }

    /// Reads the supervisor's records now available.
    pub fn read_ctl(&mut self) {
        while self.ctl_open {
            match self.recv_record(false) {
                Some((tag, v)) => self.record(tag, v),
                None => return,
            }
        }
    }

    /// After the supervisor was reaped: the records it left, up to end of file.
    pub fn drain_ctl(&mut self) {
        while self.ctl_open {
            match self.recv_record(false) {
                Some((tag, v)) => self.record(tag, v),
                None => {
                    // Nothing buffered and the peer is dead: end of file next, or EAGAIN if a copy lingers elsewhere.
                    self.ctl_open = false;
                }
            }
        }
    }

    fn read_out(&mut self, s: usize, sink: &mut dyn FnMut(usize, &[u8])) {
        let mut buf = [0u8; CHUNK];
        // At most 16 chunks per call: a writer that keeps the pipe full must not keep us here (the caller
        // checks deadlines and limits between steps).
        for _ in 0..16 {
            let Some(fd) = &self.out[s] else { return };
            // SAFETY: `buf` is a live, writable CHUNK-byte local and read is given CHUNK, so the
            // kernel writes inside it; `fd` is borrowed from `self.out[s]`, open meanwhile.
            let k = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), CHUNK) };
            if k > 0 {
                sink(s, &buf[..k as usize]);
                if (k as usize) < CHUNK {
                    return;
                }
            } else if k == 0 {
                self.out[s] = None;
                return;
            } else {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return,
                    // Any other failure ends the stream like end of file.
                    _ => {
                        self.out[s] = None;
                        return;
                    }
                }
            }
        }
    }

    /// Writes the next stdin chunk with SIGPIPE blocked for this thread (a
    /// child that closed its stdin must not kill a host with default SIGPIPE).
    fn write_in(&mut self) {
        let Some(fd) = &self.stdin else { return };
        let end = (self.written + CHUNK).min(self.input.len());
        let chunk = &self.input[self.written..end];
        let (k, err) = write_nosigpipe(fd.as_raw_fd(), chunk);
        if k >= 0 {
            self.written += k as usize;
            if self.written >= self.input.len() {
                self.stdin = None;
            }
        } else if !matches!(err, Some(libc::EINTR) | Some(libc::EAGAIN)) {
            // EPIPE: the child stopped reading; the rest of the input is dropped (as Python does).
            self.stdin = None;
        }
    }

    /// Kills every descendant and reaps the supervisor without looking at the output (error paths).
    pub fn abandon(&mut self, reaped: bool) {
        self.stdin = None;
        self.out = [None, None];
        if !reaped && !self.sup_reaped {
            self.ctl.kill_all();
            let _ = self.reap_blocking();
        }
    }

    fn reaped(&mut self, r: &io::Result<Option<Exit>>) {
        // Exited and reaped, or reaped by someone else (ECHILD): either way it runs no more.
        if !matches!(r, Ok(None)) && !matches!(r, Err(e) if e.kind() == io::ErrorKind::Interrupted) {
            self.sup_reaped = true;
            self.sup_mem.release();
        }
    }

    /// Reaps the supervisor if it has exited: Ok(None) while it runs; Err(ECHILD) if someone else reaped it.
    pub fn try_reap(&mut self) -> io::Result<Option<Exit>> {
        let r = try_reap(self.pid);
        self.reaped(&r);
        r
    }

    /// Waits for the supervisor to exit and reaps it.
    pub fn reap_blocking(&mut self) -> io::Result<Exit> {
        let r = reap_blocking(self.pid).map(Some);
        self.reaped(&r);
        r.map(|x| x.unwrap_or(Exit::Signal(libc::SIGKILL)))
    }
}

/// One `write(2)` of `buf` to `fd` with SIGPIPE blocked for the calling
/// thread (a child that closed its end must not kill a host with the default
/// SIGPIPE action; a SIGPIPE raised by this write is consumed, one pending
/// before is left). Returns the count (or -1) and the errno of a failure.
pub fn write_nosigpipe(fd: std::os::fd::RawFd, buf: &[u8]) -> (isize, Option<i32>) {
    // SAFETY: every sigset is a zeroed (valid) local that the sig* calls initialise or fill;
    // the masks changed are this thread's own and restored to `old` before returning;
    // `write` reads `buf.len()` bytes from the live slice `buf`; `fd` is only handed to the
    // kernel (a bad one is EBADF); sigtimedwait with a NULL info pointer is allowed.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let k = libc::write(fd, buf.as_ptr().cast(), buf.len());
        let err = if k < 0 { io::Error::last_os_error().raw_os_error() } else { None };
        if err == Some(libc::EPIPE) && !was_pending {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (k, err)
    }
}

fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Reaps `pid` if it has exited: Ok(None) while it runs; Err(ECHILD) if someone else reaped it.
fn try_reap(pid: libc::pid_t) -> io::Result<Option<Exit>> {
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: `st` is a live, writable c_int, the one status waitpid may write; `pid` is
        // our child, not yet reaped by us, so the call cannot reap an unrelated process.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Ok(Some(decode(st)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits for `pid` to exit and reaps it.
fn reap_blocking(pid: libc::pid_t) -> io::Result<Exit> {
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: `st` is a live, writable c_int, the one status waitpid may write; `pid` is
        // our child, not yet reaped by us, so the call cannot reap an unrelated process.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Ok(decode(st));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The exit status could not be read: someone else reaped our child.
pub fn lost_error(func: &'static str, e: &io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ECHILD) {
        Error::plain(Code::Io, func, "the child's exit status was taken by someone else (is SIGCHLD ignored, or does another thread call waitpid(-1)?)")
    } else {
        Error::io(func, "waitpid", e)
    }
}

/// What a finished run produced.
pub struct Outcome {
    pub exit: Exit,
    pub out: [Vec<u8>; 2],
    pub timed_out: bool,
    /// Bytes dropped from the middle of each stream (`Options::truncate` only).
    pub omitted: [u64; 2],
}

/// The marker put between the kept head and tail of a truncated stream
/// (Simple's `rt_process_run_bounded` marker; not counted in the budget).
pub fn truncation_marker(omitted: u64) -> String {
    format!("\n[output truncated: {omitted} bytes omitted]\n")
}

/// A captured stream bounded to `max` bytes that keeps going past it: the
/// first half and the last half are kept, the middle is counted and dropped.
pub struct Capped {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    head_max: usize,
    tail_max: usize,
    total: u64,
}

impl Capped {
    pub fn new(max: usize) -> Capped {
        let head_max = max.div_ceil(2);
        Capped { head: Vec::new(), tail: Default::default(), head_max, tail_max: max - head_max, total: 0 }
    }

    pub fn push(&mut self, b: &[u8]) {
        self.total += b.len() as u64;
        let h = (self.head_max - self.head.len()).min(b.len());
        self.head.extend_from_slice(&b[..h]);
        let rest = &b[h..];
        if self.tail_max == 0 || rest.is_empty() {
            return;
        }
        let rest = &rest[rest.len().saturating_sub(self.tail_max)..];
        let over = (self.tail.len() + rest.len()).saturating_sub(self.tail_max);
        self.tail.drain(..over);
        self.tail.extend(rest);
    }

    /// The kept bytes (head, marker, tail when something was dropped) and the
    /// number of bytes dropped. `text`: the cuts are moved to UTF-8 character
    /// boundaries (the bytes of a split character count as dropped).
    pub fn finish(self, text: bool) -> (Vec<u8>, u64) {
        let Capped { mut head, tail, total, .. } = self;
        let mut tail: Vec<u8> = tail.into();
        let mut omitted = total - head.len() as u64 - tail.len() as u64;
        if omitted == 0 {
            head.extend_from_slice(&tail);
            return (head, 0);
        }
        if text {
            if let Err(e) = std::str::from_utf8(&head) {
                if e.error_len().is_none() {
                    omitted += (head.len() - e.valid_up_to()) as u64;
                    head.truncate(e.valid_up_to());
                }
            }
            let skip = tail.iter().take(3).take_while(|b| **b & 0xC0 == 0x80).count();
            omitted += skip as u64;
            tail.drain(..skip);
        }
        head.extend_from_slice(truncation_marker(omitted).as_bytes());
        head.extend_from_slice(&tail);
        (head, omitted)
    }
}

/// How long output is still read after the supervisor killed everything and
/// was reaped (a process outside the tree, handed the pipe, may hold it open).
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// Appends `b` to a captured stream of at most `max` bytes; false (and
/// nothing appended past `max`) when it does not fit. Grows the buffer
/// without overshooting `max` by more than a doubling would.
pub fn append_bounded(buf: &mut Vec<u8>, b: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(buf.len());
    let fits = b.len() <= room;
    let b = if fits { b } else { &b[..room] };
    if buf.capacity() - buf.len() < b.len() {
        let want = (buf.capacity() * 2).max(buf.len() + b.len()).min(max.max(buf.len() + b.len()));
        buf.reserve_exact(want - buf.len());
    }
    buf.extend_from_slice(b);
    fits
}

/// Error LimitExceeded for a stream past `max_output`.
pub fn output_limit_error(func: &'static str, stream: &str, max: usize, program: &str) -> Error {
    Error::new(
        Code::LimitExceeded,
        func,
        format!("{stream} exceeded max_output ({max} bytes); the program and its descendants were killed"),
        quote(program),
    )
    .with("stream", stream)
    .with("max_output", max as i64)
}

/// Runs a started child to completion on the calling thread: feeds stdin,
/// collects output (at most `max_output` bytes per stream) until the
/// program has exited and both pipes reached end of file. On timeout:
/// SIGTERM to every descendant, `grace` later SIGKILL to every descendant
/// (at once when grace is zero), through the supervisor. When the program
/// has exited and its output ended, descendants still running (daemons
/// that closed the output) are left alone, as before.
pub fn drive(func: &'static str, mut r: Running, o: &Options, program: &str) -> RtResult<Outcome> {
    let deadline = o.timeout.map(|t| Instant::now() + t);
    let (grace, max) = (o.grace, o.max_output);
    let mut out: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut capped: Option<[Capped; 2]> = o.truncate.then(|| [Capped::new(max), Capped::new(max)]);
    let mut overflow: Option<usize> = None;
    let mut sup: Option<Exit> = None;
    let mut sup_ready = false;
    let mut reaped_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut detached = false;
    // The thread's deadline / cancel token (docs/DEADLINES.md): Error Timeout / Cancelled after every
    // descendant is killed at once (no grace) and the supervisor reaped.
    let mut abort: Option<Code> = None;
    let thread_deadline = ffi_sdk::deadline::remaining().map(|d| Instant::now() + d);
    loop {
        if r.start_err.is_some() {
            return Err(r.start_failed(func));
        }
        let now = Instant::now();
        if abort.is_none() {
            abort = ffi_sdk::deadline::status();
            if abort.is_some() && !killed {
                timed_out = true;
                r.ctl.kill_all();
                killed = true;
            }
        }
        if let Some(d) = deadline {
            if !timed_out && now >= d {
                timed_out = true;
                kill_at = Some(now + grace);
                if !grace.is_zero() {
                    r.ctl.signal(libc::SIGTERM);
                }
            }
        }
        if !killed && (overflow.is_some() || kill_at.is_some_and(|k| now >= k)) {
            r.ctl.kill_all();
            killed = true;
        }
        if sup_ready && sup.is_none() {
            match r.try_reap() {
                Ok(Some(x)) => {
                    sup = Some(x);
                    reaped_at = Some(now);
                    r.drain_ctl();
                }
                Ok(None) => sup_ready = false,
                Err(e) => {
                    r.abandon(true);
                    return Err(lost_error(func, &e));
                }
            }
        }
        let prog_done = r.prog_exit.is_some() || sup.is_some();
        if prog_done && !r.pipes_open() && sup.is_none() && !detached && !killed && !timed_out {
            r.ctl.detach();
            detached = true;
            // The supervisor exits at once now (it has reaped the program, and leaves what else runs):
            // reap it here rather than sleep in poll for its pidfd first.
            if r.prog_exit.is_some() {
                match r.reap_blocking() {
                    Ok(x) => {
                        sup = Some(x);
                        reaped_at = Some(now);
                        r.drain_ctl();
                    }
                    Err(e) => {
                        r.abandon(true);
                        return Err(lost_error(func, &e));
                    }
                }
                continue;
            }
        }
        if let Some(at) = reaped_at {
            if !r.pipes_open() {
                break;
            }
            if (killed || timed_out) && now >= at + DRAIN_AFTER_KILL {
                break;
            }
        }
        let mut wake: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        if !timed_out {
            consider(deadline);
        }
        if abort.is_none() {
            consider(thread_deadline);
        }
        if !killed {
            consider(kill_at);
        }
        if killed || timed_out {
            consider(reaped_at.map(|k| k + DRAIN_AFTER_KILL));
        }
        let to = wake.map(|w| w.saturating_duration_since(now));
        let watch = sup.is_none();
        let step = r.step(to, watch, &mut |s, b| {
            if let Some(c) = capped.as_mut() {
                c[s].push(b);
            } else if overflow.is_none() && !append_bounded(&mut out[s], b, max) {
                overflow = Some(s);
            }
        });
        match step {
            Ok(st) => {
                if watch && st.child_ready {
                    sup_ready = true;
                }
            }
            Err(e) => {
                r.abandon(sup.is_some());
                return Err(Error::io(func, "poll", &e));
            }
        }
    }
    if r.start_err.is_some() {
        return Err(r.start_failed(func));
    }
    if let Some(code) = abort {
        return Err(ffi_sdk::deadline::error(func, code).with("program", program));
    }
    if let Some(s) = overflow {
        return Err(output_limit_error(func, ["stdout", "stderr"][s], max, program));
    }
    let exit = r.prog_exit.or(sup).unwrap_or(Exit::Signal(libc::SIGKILL));
    let mut omitted = [0u64; 2];
    if let Some([c0, c1]) = capped {
        let (a, n0) = c0.finish(o.text);
        let (b, n1) = c1.finish(o.text);
        out = [a, b];
        omitted = [n0, n1];
    }
    Ok(Outcome { exit, out, timed_out, omitted })
}

/// Checks, resolves and runs `program` to completion (the body of the `rt_process_run*` functions).
pub fn execute(func: &'static str, program: &str, args: &[String], o: &Options) -> RtResult<Outcome> {
    check_argv(func, program, args)?;
    check_loader_env(func, o)?;
    let exe = resolve(func, program, o)?;
    let limits = sandbox::effective(func, &o.limits)?;
    let r = start(func, program, &exe, args, o, &limits, false)?;
    drive(func, r, o, program)
}

/// A captured stream as text (Error Parse on invalid UTF-8) or bytes.
pub fn stream_value(func: &'static str, name: &str, bytes: &[u8], text: bool, captured: bool) -> RtResult<Value> {
    if !captured {
        return Ok(Value::NIL);
    }
    if !text {
        return Ok(Value::bytes(bytes));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Value::text(s)),
        Err(e) => Err(utf8_error(func, name, e.valid_up_to())),
    }
}

/// Error Parse for output that is not UTF-8 at byte `pos` of stream `name`.
pub fn utf8_error(func: &'static str, name: &str, pos: usize) -> Error {
    Error::parse(func, format!("{name} is not valid UTF-8 at byte {pos}; pass the option text: false to get bytes"), name)
        .with("stream", name)
        .with("position", pos)
}

/// The result dict of a run: `{stdout, stderr, code, signal, timed_out}`.
pub fn outcome_value(func: &'static str, oc: &Outcome, o: &Options) -> RtResult<Value> {
    // Decode both before allocating the dict, so an error leaves nothing half built.
    let so = stream_value(func, "stdout", &oc.out[0], o.text, o.stdout == Out::Capture)?;
    let se = stream_value(func, "stderr", &oc.out[1], o.text, o.stderr == Out::Capture)?;
    let d = Value::dict();
    d.set("stdout", so);
    d.set("stderr", se);
    d.set("code", oc.exit.code().map_or(Value::NIL, |c| Value::int(c as i64)));
    d.set("signal", oc.exit.signal().map_or(Value::NIL, |s| Value::int(s as i64)));
    d.set("timed_out", Value::bool(oc.timed_out));
    Ok(d)
}
