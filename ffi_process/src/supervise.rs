//! The supervisor every child runs under, so that a timeout, a kill or a
//! close reaches every process the call started, including those that left
//! the process group (`setsid`) or were orphaned by a double fork.
//!
//! Process tree: host → supervisor (our direct child, "S") → program ("P").
//! S is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent
//! dies is reparented to S, so no descendant can leave S's subtree, even
//! after P itself has exited.
//!
//! How they are made, without copying the host's page tables (on x86_64):
//!
//! - The host creates S with `clone(CLONE_VM)` on a stack it mapped for it
//!   ([`launch`]): S is a separate process (own pid, descriptor table,
//!   signal actions, process group) that shares the host's memory, so it
//!   costs what a thread costs, whatever the size of the host. A `fork` of
//!   the host (the previous design) copies its page tables, and S's own
//!   fork of P copied them a second time: 2× `Command::output()` for `true`.
//! - S makes itself a subreaper, then starts P with
//!   `clone(CLONE_VM | CLONE_VFORK)` on a second stack, as `posix_spawn`
//!   does: S waits until P has called `execve` (or failed and exited). P
//!   sets its process group, stdio, working directory, rlimits and signal
//!   state, then execs. An exec failure is reported by P itself on the
//!   socket (record `e` + errno) before it exits with 127.
//! - S reports P's pid, closes every descriptor but its socket and serves
//!   the host until it has no child left.
//!
//! Because S and P-before-exec share the host's memory and the TLS pointer
//! of the host thread that spawned them, everything they run is raw system
//! calls from `sys.rs` (which do not write `errno`), on memory the host
//! prepared and keeps until S is known to have exited ([`SupMem`]): no
//! libc wrapper, no allocation, no lock, no panic path, all signals blocked
//! in S, and in P every signal with a handler reset to the default before
//! the mask is cleared. Other architectures fork S and P as plain copies
//! (the same code; slower, as before).
//!
//! Protocol on a `SOCK_SEQPACKET` socket pair:
//!
//! - S → host records of 5 bytes: `p` + P's pid (once P has exec'd), `e` +
//!   errno (from P or S: the program could not be started), `x` + P's wait
//!   status (when S reaps P).
//! - host → S commands: `K` kill every descendant with SIGKILL, reap them all, exit;
//!   `S` + signal: send that signal to every descendant; `D` detach (exit,
//!   leaving what still runs to init). End of file on the socket (the host
//!   went away) is `D`.
//! - S exits by itself once P has exited and it has no child left.
//!
//! `K` walks the tree (`/proc/<pid>/task/<tid>/children`, or a scan of
//! `/proc/*/stat` for S's own children where that file does not exist)
//! sending SIGKILL to each process as it is found, reaps, and repeats until
//! S has no child left, so a process that forks meanwhile is caught in the
//! next round. S signals only processes in its subtree that it has not
//! reaped, so a pid it signals cannot have been reused.
//!
//! Designs measured or weighed against this one (docs/bench/process.md):
//!
//! - The program itself as the subreaper (`PR_SET_CHILD_SUBREAPER` survives
//!   `execve`; checked on 6.18): one spawn, no S. Rejected: when the program
//!   exits first (`sh -c 'setsid sleep 1000 & echo started'`), its orphans
//!   are reparented to init at that moment, before the host can act, and a
//!   timeout can no longer find them (the hardening test "leader gone"). It
//!   also hands programs that do not expect them adopted children (zombies
//!   until they exit; a `wait(-1)` loop reaps statuses it never asked for).
//! - A small supervisor binary exec'd with `posix_spawn` (found via `dladdr`
//!   beside the library): a second exec per spawn (~the cost of one more
//!   spawn of a small static program), and a file to ship and find in
//!   target/{debug,release}, the Python package and install prefixes.
//! - std's fork + `pre_exec` with a small hook: one fork of the host, whose
//!   page-table copy is the cost being removed (1.4–2× for a big host).
//!
//! What S's sharing of the host's memory asks for, and how it is met:
//! S's stacks and [`Launch`] are freed (or reused by the next spawn) only
//! once S has been reaped; an S still running when its `Running` is dropped
//! keeps its memory (leaked, never freed under it). The library is linked
//! `-z nodelete`, so its code cannot be unmapped under S. S ends when the
//! host closes its end of the socket (exit, exec: it is close-on-exec), as
//! before. Its `/proc/<pid>/environ`, `maps` and RSS are the host's.

use crate::sys;
#[cfg(target_arch = "x86_64")]
use std::ffi::c_void;
use std::ffi::CString;
use std::io;
use std::os::raw::c_char;

pub const REC: usize = 5;
pub const TAG_PID: u8 = b'p';
pub const TAG_EXIT: u8 = b'x';
pub const TAG_ERR: u8 = b'e';
pub const CMD_KILL: u8 = b'K';
pub const CMD_DETACH: u8 = b'D';
pub const CMD_SIGNAL: u8 = b'S';

/// Memory the supervisor works in, allocated by the host before the spawn.
pub struct Scratch {
    pids: Vec<libc::pid_t>,
    rd: Vec<u8>,
    dents: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { pids: vec![0; 8192], rd: vec![0; 4096], dents: vec![0; 4096] }
    }
}

impl Default for Scratch {
    /// Empty (no buffers): what a Launch holds before `launch` gives it real ones.
    fn default() -> Self {
        Scratch { pids: Vec::new(), rd: Vec::new(), dents: Vec::new() }
    }
}

/// Everything S and P need, prepared (and allocated) by the host before the spawn.
pub struct Launch {
    exe: CString,
    _argv: Vec<CString>,
    argv_p: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_p: Vec<*const c_char>,
    cwd: Option<CString>,
    /// The descriptors that become P's 0, 1, 2 (-1: inherited as is). Each is above 2.
    stdio: [i32; 3],
    rl: [(u32, libc::rlimit); 5],
    n_rl: usize,
    reset_xfsz: bool,
    reset_xcpu: bool,
    /// S's end of the socket pair.
    sock: i32,
    scratch: Scratch,
    /// Top of P's stack (CLONE_VM only).
    pstack_top: usize,
    /// Send `p` + P's pid once P has exec'd (the host waits for it).
    report_pid: bool,
    /// A Landlock ruleset P restricts itself with before exec (confine.rs), or -1.
    ruleset: i32,
}

impl Launch {
    /// `stdio` descriptors must be above 2; `sock` is S's end of the socket pair.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        exe: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        cwd: Option<CString>,
        stdio: [i32; 3],
        rl: [(u32, libc::rlimit); 5],
        n_rl: usize,
        reset: (bool, bool),
        sock: i32,
        report_pid: bool,
    ) -> Launch {
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
        Launch {
            argv_p: ptrs(&argv),
            envp_p: ptrs(&envp),
            exe,
            _argv: argv,
            _envp: envp,
            cwd,
            stdio,
            rl,
            n_rl: n_rl.min(5),
            reset_xfsz: reset.0,
            reset_xcpu: reset.1,
            sock,
            scratch: Scratch::default(),
            pstack_top: 0,
            report_pid,
            ruleset: -1,
        }
    }

    /// P restricts itself with the Landlock ruleset `fd` (close-on-exec, kept
    /// open by the host until the launch returns) just before exec.
    pub fn confine(&mut self, fd: i32) {
        self.ruleset = fd;
    }
}

/// The stacks S and P run on: one mapping, a guard page under each.
struct Stacks {
    base: *mut u8,
    len: usize,
}

// SAFETY: `base` is an anonymous mapping owned by this value alone (no other pointer to it
// is kept by the host); S runs on it only while a SupMem holds it, so moving the owner to
// another thread (e.g. into FREE) transfers nothing that is shared.
unsafe impl Send for Stacks {}

/// Stacks and scratch buffers of supervisors that have exited, reused by the
/// next spawns (no mmap, mprotect, munmap or page faults on the common path).
static FREE: std::sync::Mutex<Vec<(Option<Stacks>, Scratch)>> = std::sync::Mutex::new(Vec::new());
const FREE_MAX: usize = 8;

fn take_free() -> io::Result<(Option<Stacks>, Scratch)> {
    if let Some(a) = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop() {
        return Ok(a);
    }
    let stacks = if cfg!(target_arch = "x86_64") { Some(Stacks::new()?) } else { None };
    Ok((stacks, Scratch::new()))
}

const PAGE: usize = 4096;
const P_STACK: usize = 64 * 1024;
const S_STACK: usize = 128 * 1024;

impl Stacks {
    fn new() -> io::Result<Stacks> {
        let len = PAGE + P_STACK + PAGE + S_STACK;
        // SAFETY: mmap with a NULL hint creates a fresh anonymous mapping and touches no
        // existing memory; both mprotect ranges (the first page, and the page after P's
        // stack) lie inside the `len` bytes just mapped, as PAGE + P_STACK + PAGE <= len.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let s = Stacks { base: p.cast(), len };
            if libc::mprotect(p, PAGE, libc::PROT_NONE) != 0 || libc::mprotect(s.base.add(PAGE + P_STACK).cast(), PAGE, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(s)
        }
    }
    fn p_top(&self) -> usize {
        self.base as usize + PAGE + P_STACK
    }
    #[cfg(target_arch = "x86_64")]
    fn s_top(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping (the initial stack pointer).
        unsafe { self.base.add(self.len) }
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `new`, owned by this value; a
        // Stacks is dropped only once its S was reaped (SupMem leaks it while S may run), so
        // no thread or process still runs on it.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// The memory a running supervisor uses. Freed only after [`SupMem::release`]
/// (the supervisor is known to have exited); dropped before that, it is
/// leaked, since S may still be running in it.
pub struct SupMem {
    launch: *mut Launch,
    stacks: Option<Stacks>,
    released: bool,
}

// SAFETY: the host touches the Launch only to free it, after S has exited.
unsafe impl Send for SupMem {}
// SAFETY: `&SupMem` gives access to nothing: every method takes `&mut self` (or runs in
// Drop), so sharing references across threads cannot reach the raw `launch` pointer.
unsafe impl Sync for SupMem {}

impl SupMem {
    /// The supervisor has exited (reaped, or reaped by someone else): its memory may be freed.
    pub fn release(&mut self) {
        self.released = true;
    }
}

impl Drop for SupMem {
    fn drop(&mut self) {
        if self.released {
            // SAFETY: `self.launch` came from Box::into_raw in `launch` and is reclaimed only
            // here, once (`released` is set only after S was reaped, so S no longer reads it).
            let l = unsafe { Box::from_raw(self.launch) };
            let mut l = l;
            let scratch = std::mem::take(&mut l.scratch);
            let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < FREE_MAX && !scratch.pids.is_empty() {
                free.push((self.stacks.take(), scratch));
            }
        } else if let Some(s) = self.stacks.take() {
            // S may still run on these: leaked (as is the Launch).
            std::mem::forget(s);
        }
    }
}

/// Starts S (which starts P). Returns S's pid and the memory to keep until S has exited.
pub fn launch(mut l: Box<Launch>) -> io::Result<(libc::pid_t, SupMem)> {
    let (stacks, scratch) = take_free()?;
    l.scratch = scratch;
    let raw = Box::into_raw(l);
    let mut mem = SupMem { launch: raw, stacks, released: false };
    if let Some(s) = &mem.stacks {
        // SAFETY: `raw` came from Box::into_raw just above: valid, aligned, and not yet seen by
        // any other thread or process, since S has not been started.
        unsafe { (*raw).pstack_top = s.p_top() };
    }
    // S starts with every signal blocked (no host handler may run in it).
    // SAFETY: `sigset_t` is a plain C bit array, for which all-zero bytes are a valid value.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `all` and `old` are live, writable sigsets on this stack; pthread_sigmask only
    // changes this thread's mask, which is restored to `old` right after `start_sup`.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: start_sup's contract: `raw` (the leaked Box) and `mem.stacks` are owned by `mem`,
    // which the host does not touch until S is reaped and frees only then (an unreaped S's
    // memory is leaked, see SupMem); all signals are blocked on this thread, so S starts
    // with no host handler able to run in it.
    let pid = unsafe { start_sup(raw, mem.stacks.as_ref()) };
    // SAFETY: `old` is the mask saved by the pthread_sigmask above (a live local); a NULL
    // old-set pointer is allowed; only this thread's mask changes.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        mem.release();
        return Err(io::Error::from_raw_os_error((-pid) as i32));
    }
    if mem.stacks.is_none() {
        // A forked S works on its own copy.
        mem.release();
    }
    Ok((pid as libc::pid_t, mem))
}

/// # Safety
/// `l` stays valid (and untouched by the host) until S has exited; `stacks` too.
#[cfg(target_arch = "x86_64")]
unsafe fn start_sup(l: *mut Launch, stacks: Option<&Stacks>) -> sys::Ret {
    let Some(s) = stacks else { return -(libc::EINVAL as isize) };
    sys::clone_run((libc::CLONE_VM | libc::SIGCHLD) as usize, s.s_top(), sup_entry, l.cast())
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn start_sup(l: *mut Launch, _stacks: Option<&Stacks>) -> sys::Ret {
    // A plain fork without glibc's atfork handlers.
    let p = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0 as libc::c_long, 0 as libc::c_long, 0 as libc::c_long, 0 as libc::c_long);
    if p == 0 {
        sup_main(&mut *l);
    }
    if p < 0 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EAGAIN) as isize)
    } else {
        p as isize
    }
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn sup_entry(arg: *mut c_void) -> ! {
    sup_main(&mut *(arg as *mut Launch))
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn prog_entry(arg: *mut c_void) -> ! {
    prog_main(&*(arg as *const Launch))
}

/// P's process: vfork-style on its own stack where memory is shared, else a fork.
#[cfg(target_arch = "x86_64")]
unsafe fn start_prog(l: &mut Launch) -> sys::Ret {
    let top = l.pstack_top as *mut u8;
    sys::clone_run((libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as usize, top, prog_entry, (l as *mut Launch).cast())
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn start_prog(l: &mut Launch) -> sys::Ret {
    let p = sys::sc(libc::SYS_clone, &[(libc::CLONE_VFORK | libc::SIGCHLD) as usize, 0, 0, 0, 0]);
    if p == 0 {
        prog_main(l);
    }
    p
}

/// S: subreaper, own process group, starts P, then serves the host. Never returns.
unsafe fn sup_main(l: &mut Launch) -> ! {
    sys::sigmask_set(!0);
    sys::reset_handlers();
    sys::prctl(libc::PR_SET_NAME, c"rt-supervisor".as_ptr() as usize);
    let sock = l.sock;
    let r = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    if r < 0 {
        report(sock, TAG_ERR, (-r) as i32);
        sys::exit_group(0);
    }
    sys::setpgid(0, 0);
    let p = start_prog(l);
    if p < 0 {
        report(sock, TAG_ERR, (-p) as i32);
        sys::exit_group(0);
    }
    // P has exec'd, or reported its failure and exited (CLONE_VFORK waited for either).
    if l.report_pid {
        report(sock, TAG_PID, p as i32);
    }
    supervise(p as libc::pid_t, sock, &mut l.scratch)
}

/// P before exec: its own process group, stdio, cwd, rlimits, signal state; then execve. Never returns.
unsafe fn prog_main(l: &Launch) -> ! {
    let fail = |e: sys::Ret| -> ! {
        report(l.sock, TAG_ERR, (-e) as i32);
        sys::exit_group(127)
    };
    let r = sys::setpgid(0, 0);
    if r < 0 {
        fail(r);
    }
    for (i, fd) in l.stdio.iter().enumerate() {
        if *fd >= 0 {
            // fd > 2, so never equal to i: dup3 gives a descriptor without close-on-exec.
            let r = sys::retry(|| sys::dup3(*fd, i as i32));
            if r < 0 {
                fail(r);
            }
        }
    }
    if let Some(d) = &l.cwd {
        let r = sys::chdir(d.as_ptr());
        if r < 0 {
            fail(r);
        }
    }
    for (res, lim) in l.rl.iter().take(l.n_rl) {
        let r = sys::prlimit(*res, lim, std::ptr::null_mut());
        if r < 0 {
            fail(r);
        }
    }
    // As std does; and SIGXFSZ/SIGXCPU when the host ignores them (Python does), so limits bite.
    sys::sig_default(libc::SIGPIPE);
    if l.reset_xfsz {
        sys::sig_default(libc::SIGXFSZ);
    }
    if l.reset_xcpu {
        sys::sig_default(libc::SIGXCPU);
    }
    if l.ruleset >= 0 {
        // Landlock needs no_new_privs (or CAP_SYS_ADMIN); both are inherited across exec.
        let r = sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1);
        if r < 0 {
            fail(r);
        }
        let r = sys::landlock_restrict_self(l.ruleset);
        if r < 0 {
            fail(r);
        }
    }
    // Handlers were reset by S (inherited here): clearing the mask runs no host code.
    sys::sigmask_set(0);
    let r = sys::execve(l.exe.as_ptr(), l.argv_p.as_ptr(), l.envp_p.as_ptr());
    // Block again so nothing runs between the failure and the exit.
    sys::sigmask_set(!0);
    fail(r)
}

unsafe fn report(sock: i32, tag: u8, v: i32) {
    let b = v.to_le_bytes();
    let rec = [tag, b[0], b[1], b[2], b[3]];
    sys::send(sock, rec.as_ptr(), REC, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
}

#[allow(clippy::unnecessary_cast)] // RLIMIT_NOFILE is a u32 on glibc, a c_int elsewhere
unsafe fn close_all_but(keep: i32) {
    let k = keep as u32;
    let mut ok = true;
    if k > 0 {
        ok &= sys::close_range(0, k - 1) == 0;
    }
    ok &= sys::close_range(k.saturating_add(1), u32::MAX) == 0;
    if !ok {
        // Kernels before 5.9: close one by one up to the descriptor limit.
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let max = if sys::prlimit(libc::RLIMIT_NOFILE as u32, std::ptr::null(), &mut l) == 0 { l.rlim_cur.min(1 << 20) as i32 } else { 1024 };
        let mut fd = 0;
        while fd < max {
            if fd != keep {
                sys::close(fd);
            }
            fd += 1;
        }
    }
}

/// Reaps what has exited (`block`: waits for one first). Returns whether any child is left.
unsafe fn reap(prog: libc::pid_t, sock: i32, prog_done: &mut bool, mut block: bool) -> bool {
    loop {
        let mut st: i32 = 0;
        let r = sys::wait4(-1, &mut st, if block { 0 } else { libc::WNOHANG });
        if r > 0 {
            if r as libc::pid_t == prog && !*prog_done {
                *prog_done = true;
                report(sock, TAG_EXIT, st);
            }
            block = false;
            continue;
        }
        if r == 0 {
            return true;
        }
        if r == -(libc::EINTR as isize) {
            continue;
        }
        return false;
    }
}

fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) as u32 & 63)
}

unsafe fn supervise(prog: libc::pid_t, sock: i32, scratch: &mut Scratch) -> ! {
    // Our copies of the child's stdio and of every host descriptor must not keep them open.
    close_all_but(sock);
    let chld = bit(libc::SIGCHLD);
    let sfd = sys::signalfd(&chld, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) as i32;
    let mut prog_done = false;
    loop {
        if !reap(prog, sock, &mut prog_done, false) {
            sys::exit_group(0);
        }
        let mut fds = [
            libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
        ];
        let n = if sfd >= 0 { 2 } else { 1 };
        let to = if sfd >= 0 { -1 } else { 50 };
        if sys::poll(fds.as_mut_ptr(), n, to) < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128 * 4];
            while sys::read(sfd, info.as_mut_ptr(), info.len()) > 0 {}
        }
        if fds[0].revents != 0 {
            let mut cmd = [0u8; 8];
            let k = sys::recv(sock, cmd.as_mut_ptr(), cmd.len(), libc::MSG_DONTWAIT);
            if k < 0 {
                if k == -(libc::EINTR as isize) || k == -(libc::EAGAIN as isize) {
                    continue;
                }
                sys::exit_group(0);
            }
            if k == 0 {
                // The host went away or dropped us: detach.
                sys::exit_group(0);
            }
            match cmd[0] {
                CMD_KILL => {
                    kill_all(prog, sock, &mut prog_done, scratch);
                    sys::exit_group(0);
                }
                CMD_SIGNAL if k >= 2 => {
                    let sig = cmd[1] as i32;
                    if sig == libc::SIGKILL {
                        kill_all(prog, sock, &mut prog_done, scratch);
                        sys::exit_group(0);
                    }
                    signal_tree(sig, scratch);
                }
                CMD_DETACH => sys::exit_group(0),
                _ => {}
            }
        }
    }
}

unsafe fn kill_all(prog: libc::pid_t, sock: i32, prog_done: &mut bool, scratch: &mut Scratch) {
    loop {
        signal_tree(libc::SIGKILL, scratch);
        if !reap(prog, sock, prog_done, true) {
            return;
        }
    }
}

/// A path built on the stack: `/proc/<a>/task/<b>/children` and the like.
struct PathBuf64 {
    b: [u8; 64],
    n: usize,
}

impl PathBuf64 {
    fn new() -> PathBuf64 {
        PathBuf64 { b: [0; 64], n: 0 }
    }
    fn s(&mut self, s: &[u8]) -> &mut Self {
        for &c in s {
            if self.n < 63 {
                if let Some(x) = self.b.get_mut(self.n) {
                    *x = c;
                }
                self.n += 1;
            }
        }
        self
    }
    fn num(&mut self, v: i32) -> &mut Self {
        let mut d = [0u8; 12];
        let mut k = 0usize;
        let mut v = v.max(0) as u32;
        loop {
            if let Some(x) = d.get_mut(k) {
                *x = b'0' + (v % 10) as u8;
            }
            k += 1;
            v /= 10;
            if v == 0 || k == d.len() {
                break;
            }
        }
        while k > 0 {
            k -= 1;
            let c = d.get(k).copied().unwrap_or(b'0');
            self.s(&[c]);
        }
        self
    }
    fn c(&mut self) -> *const c_char {
        if let Some(x) = self.b.get_mut(self.n.min(63)) {
            *x = 0;
        }
        self.b.as_ptr().cast()
    }
}

/// Calls `f` for each decimal number in the file at `path` (streaming through `rd`). False if it cannot be opened.
unsafe fn numbers_in(path: &mut PathBuf64, rd: &mut [u8], f: &mut dyn FnMut(i32)) -> bool {
    let fd = sys::open(path.c(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let fd = fd as i32;
    let mut cur: i64 = -1;
    loop {
        let k = sys::retry(|| sys::read(fd, rd.as_mut_ptr(), rd.len()));
        if k <= 0 {
            break;
        }
        for &c in rd.iter().take(k as usize) {
            if c.is_ascii_digit() {
                cur = if cur < 0 { 0 } else { cur };
                cur = (cur * 10 + (c - b'0') as i64).min(i32::MAX as i64);
            } else if cur >= 0 {
                f(cur as i32);
                cur = -1;
            }
        }
    }
    if cur >= 0 {
        f(cur as i32);
    }
    sys::close(fd);
    true
}

/// Calls `f` for each numeric entry of the directory at `path`.
unsafe fn numeric_entries(path: &mut PathBuf64, dents: &mut [u8], f: &mut dyn FnMut(i32)) {
    let fd = sys::open(path.c(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    let fd = fd as i32;
    loop {
        let k = sys::getdents64(fd, dents.as_mut_ptr(), dents.len());
        if k <= 0 {
            break;
        }
        let k = (k as usize).min(dents.len());
        let mut off = 0usize;
        // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
        while off + 19 < k {
            let reclen = match (dents.get(off + 16), dents.get(off + 17)) {
                (Some(a), Some(b)) => u16::from_ne_bytes([*a, *b]) as usize,
                _ => break,
            };
            if reclen == 0 {
                break;
            }
            let mut v: i64 = 0;
            let mut digits = 0;
            let mut numeric = true;
            for &c in dents.iter().take(off + reclen.min(k - off)).skip(off + 19) {
                if c == 0 {
                    break;
                }
                if c.is_ascii_digit() && digits < 10 {
                    v = v * 10 + (c - b'0') as i64;
                    digits += 1;
                } else {
                    numeric = false;
                    break;
                }
            }
            if numeric && digits > 0 && v <= i32::MAX as i64 {
                f(v as i32);
            }
            off += reclen;
        }
    }
    sys::close(fd);
}

/// The children of process `pid` (every thread's), through `/proc/<pid>/task/<tid>/children`.
/// False when the kernel has no such file (CONFIG_PROC_CHILDREN off).
unsafe fn children_of(pid: i32, rd: &mut [u8], dents: &mut [u8], f: &mut dyn FnMut(i32)) -> bool {
    let mut any = false;
    let mut tids = [0i32; 64];
    let mut nt = 0usize;
    let mut dir = PathBuf64::new();
    dir.s(b"/proc/").num(pid).s(b"/task");
    numeric_entries(&mut dir, dents, &mut |t| {
        // Threads past 64: their children are found once the process is killed (reparented to us).
        if let Some(x) = tids.get_mut(nt) {
            *x = t;
            nt += 1;
        }
    });
    if nt == 0 {
        // Gone, or /proc/<pid>/task unreadable: the main thread's file alone.
        tids[0] = pid;
        nt = 1;
    }
    for &t in tids.iter().take(nt) {
        let mut p = PathBuf64::new();
        p.s(b"/proc/").num(pid).s(b"/task/").num(t).s(b"/children");
        any |= numbers_in(&mut p, rd, f);
    }
    any
}

/// Our direct children by a scan of `/proc/*/stat` (where the children files do not exist).
unsafe fn scan_children(me: i32, rd: &mut [u8], dents: &mut [u8], f: &mut dyn FnMut(i32)) {
    let mut dir = PathBuf64::new();
    dir.s(b"/proc");
    numeric_entries(&mut dir, dents, &mut |pid| {
        let mut p = PathBuf64::new();
        p.s(b"/proc/").num(pid).s(b"/stat");
        let fd = sys::open(p.c(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let k = sys::read(fd as i32, rd.as_mut_ptr(), rd.len().min(512));
        sys::close(fd as i32);
        if k <= 0 {
            return;
        }
        let Some(line) = rd.get(..(k as usize).min(rd.len())) else { return };
        // "pid (comm) S ppid ...": the last ')' ends comm.
        let Some(close) = line.iter().rposition(|c| *c == b')') else { return };
        let mut field = 0;
        let mut v: i64 = -1;
        for &c in line.iter().skip(close + 1) {
            if c == b' ' {
                if v >= 0 {
                    break;
                }
                field += 1;
                continue;
            }
            if field == 2 && c.is_ascii_digit() {
                v = if v < 0 { 0 } else { v };
                v = (v * 10 + (c - b'0') as i64).min(i32::MAX as i64);
            }
        }
        if v == me as i64 {
            f(pid);
        }
    });
}

/// Sends `sig` to every descendant (breadth first, each as soon as it is found).
unsafe fn signal_tree(sig: i32, scratch: &mut Scratch) {
    let me = sys::getpid();
    let Scratch { pids, rd, dents } = scratch;
    let mut n = 0usize;
    {
        let mut found = |c: i32| {
            if c > 1 && c != me {
                sys::kill(c, sig);
                if let Some(x) = pids.get_mut(n) {
                    *x = c;
                    n += 1;
                }
            }
        };
        if !children_of(me, rd, dents, &mut found) {
            scan_children(me, rd, dents, &mut found);
        }
    }
    let mut i = 0usize;
    while i < n {
        let Some(&q) = pids.get(i) else { break };
        i += 1;
        let mut found = |c: i32| {
            if c > 1 && c != me {
                sys::kill(c, sig);
                if let Some(x) = pids.get_mut(n) {
                    *x = c;
                    n += 1;
                }
            }
        };
        children_of(q, rd, dents, &mut found);
    }
}
