//! The supervisor every child runs under, so that a timeout, a kill or a
//! close reaches every process the call started, including those that left
//! the process group (`setsid`) or were orphaned by a double fork.
//!
//! Process tree: host → supervisor (our direct child, "S") → program ("P").
//! `spawn::start` forks with std's `Command`; in the forked child a
//! `pre_exec` hook makes it a child subreaper (`PR_SET_CHILD_SUBREAPER`) and
//! forks again with a raw `clone` (no atfork handlers). The inner child (P)
//! leaves for its own process group and returns to std, which execs the
//! program; the outer one (S) never returns: it closes every descriptor but
//! its end of a `SOCK_SEQPACKET` socket pair and serves the host:
//!
//! - S → host records of 5 bytes: `p` + P's pid (at once), `x` + P's wait status (when it reaps P).
//! - host → S commands: `K` kill every descendant with SIGKILL, reap them all, exit;
//!   `S` + signal: send that signal to every descendant; `D` detach (exit,
//!   leaving what still runs to init). End of file on the socket (the host
//!   went away) is `D`.
//! - S exits by itself once P has exited and it has no child left.
//!
//! Every descendant is found because none can leave S's subtree: a process
//! whose parent dies is reparented to S (the nearest subreaper). `K` walks the
//! tree (`/proc/<pid>/task/<tid>/children`, or a scan of `/proc/*/stat` for
//! S's own children where that file does not exist) sending SIGKILL to each
//! process as it is found, reaps, and repeats until S has no child left, so a
//! process that forks meanwhile is caught in the next round.
//!
//! Everything S and P do runs in a fork of a multithreaded process: raw
//! system calls only (async-signal-safe), no allocation (the buffers are
//! allocated before the fork, [`Scratch`]), no lock, no panic path.

use std::io;
use std::os::fd::RawFd;

pub const REC: usize = 5;
pub const TAG_PID: u8 = b'p';
pub const TAG_EXIT: u8 = b'x';
pub const CMD_KILL: u8 = b'K';
pub const CMD_DETACH: u8 = b'D';
pub const CMD_SIGNAL: u8 = b'S';

/// Memory the supervisor works in, allocated by the host before the fork.
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
    fn default() -> Self {
        Scratch::new()
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Called in std's forked child (the future supervisor) from `pre_exec`:
/// returns `Ok` in the program's process (std then execs it), never returns
/// in the supervisor. `child_setup` runs in the program's process only.
///
/// # Safety
/// Only in a freshly forked child; `sock` is the supervisor's end of the socket pair.
pub unsafe fn fork_program(sock: RawFd, scratch: &mut Scratch, child_setup: &mut dyn FnMut() -> io::Result<()>) -> io::Result<()> {
    if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) != 0 {
        return Err(io::Error::last_os_error());
    }
    // A plain fork without glibc's atfork handlers (the other arguments are unused with these flags).
    let p = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0 as libc::c_long, 0 as libc::c_long, 0 as libc::c_long, 0 as libc::c_long);
    if p < 0 {
        return Err(io::Error::last_os_error());
    }
    if p == 0 {
        // The program: not a subreaper, its own process group, then the caller's setup.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong);
        if libc::setpgid(0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        return child_setup();
    }
    supervise(p as libc::pid_t, sock, scratch)
}

unsafe fn report(sock: RawFd, tag: u8, v: i32) {
    let b = v.to_le_bytes();
    let rec = [tag, b[0], b[1], b[2], b[3]];
    libc::send(sock, rec.as_ptr().cast(), REC, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
}

unsafe fn close_all_but(keep: RawFd) {
    let k = keep as libc::c_uint;
    let mut ok = true;
    if k > 0 {
        ok &= libc::syscall(libc::SYS_close_range, 0 as libc::c_uint, k - 1, 0 as libc::c_uint) == 0;
    }
    ok &= libc::syscall(libc::SYS_close_range, k + 1, libc::c_uint::MAX, 0 as libc::c_uint) == 0;
    if !ok {
        // Kernels before 5.9: close one by one up to the descriptor limit.
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 { l.rlim_cur.min(1 << 20) as i32 } else { 1024 };
        for fd in 0..max {
            if fd != keep {
                libc::close(fd);
            }
        }
    }
}

/// Reaps what has exited (`block`: waits for one first). Returns whether any child is left.
unsafe fn reap(prog: libc::pid_t, sock: RawFd, prog_done: &mut bool, mut block: bool) -> bool {
    loop {
        let mut st: libc::c_int = 0;
        let r = libc::waitpid(-1, &mut st, if block { 0 } else { libc::WNOHANG });
        if r > 0 {
            if r == prog && !*prog_done {
                *prog_done = true;
                report(sock, TAG_EXIT, st);
            }
            block = false;
            continue;
        }
        if r == 0 {
            return true;
        }
        if errno() == libc::EINTR {
            continue;
        }
        return false;
    }
}

unsafe fn supervise(prog: libc::pid_t, sock: RawFd, scratch: &mut Scratch) -> ! {
    // Our copies of the child's stdio and of std's exec-error pipe must not keep them open.
    close_all_but(sock);
    libc::prctl(libc::PR_SET_NAME, c"rt-supervisor".as_ptr() as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong);
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    let mut chld: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut chld);
    libc::sigaddset(&mut chld, libc::SIGCHLD);
    let sfd = libc::signalfd(-1, &chld, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
    report(sock, TAG_PID, prog);
    let mut prog_done = false;
    loop {
        if !reap(prog, sock, &mut prog_done, false) {
            libc::_exit(0);
        }
        let mut fds = [
            libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
        ];
        let n = if sfd >= 0 { 2 } else { 1 };
        let to = if sfd >= 0 { -1 } else { 50 };
        if libc::poll(fds.as_mut_ptr(), n, to) < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128 * 4];
            while libc::read(sfd, info.as_mut_ptr().cast(), info.len()) > 0 {}
        }
        if fds[0].revents != 0 {
            let mut cmd = [0u8; 8];
            let k = libc::recv(sock, cmd.as_mut_ptr().cast(), cmd.len(), libc::MSG_DONTWAIT);
            if k < 0 {
                let e = errno();
                if e == libc::EINTR || e == libc::EAGAIN {
                    continue;
                }
                libc::_exit(0);
            }
            if k == 0 {
                // The host went away or dropped us: detach.
                libc::_exit(0);
            }
            match cmd[0] {
                CMD_KILL => {
                    kill_all(prog, sock, &mut prog_done, scratch);
                    libc::_exit(0);
                }
                CMD_SIGNAL if k >= 2 => {
                    let sig = cmd[1] as libc::c_int;
                    if sig == libc::SIGKILL {
                        kill_all(prog, sock, &mut prog_done, scratch);
                        libc::_exit(0);
                    }
                    signal_tree(sig, scratch);
                }
                CMD_DETACH => libc::_exit(0),
                _ => {}
            }
        }
    }
}

unsafe fn kill_all(prog: libc::pid_t, sock: RawFd, prog_done: &mut bool, scratch: &mut Scratch) {
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
                self.b[self.n] = c;
                self.n += 1;
            }
        }
        self
    }
    fn num(&mut self, v: i32) -> &mut Self {
        let mut d = [0u8; 12];
        let mut k = 0;
        let mut v = v.max(0) as u32;
        loop {
            d[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 || k == d.len() {
                break;
            }
        }
        while k > 0 {
            k -= 1;
            let c = d[k];
            self.s(&[c]);
        }
        self
    }
    fn c(&mut self) -> *const libc::c_char {
        self.b[self.n.min(63)] = 0;
        self.b.as_ptr().cast()
    }
}

/// Calls `f` for each decimal number in the file at `path` (streaming through `rd`). False if it cannot be opened.
unsafe fn numbers_in(path: &mut PathBuf64, rd: &mut [u8], f: &mut dyn FnMut(i32)) -> bool {
    let fd = libc::open(path.c(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let mut cur: i64 = -1;
    loop {
        let k = libc::read(fd, rd.as_mut_ptr().cast(), rd.len());
        if k < 0 && errno() == libc::EINTR {
            continue;
        }
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
    libc::close(fd);
    true
}

/// Calls `f` for each numeric entry of the directory at `path`.
unsafe fn numeric_entries(path: &mut PathBuf64, dents: &mut [u8], f: &mut dyn FnMut(i32)) {
    let fd = libc::open(path.c(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    loop {
        let k = libc::syscall(libc::SYS_getdents64, fd, dents.as_mut_ptr(), dents.len());
        if k <= 0 {
            break;
        }
        let k = k as usize;
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
    libc::close(fd);
}

/// The children of process `pid` (every thread's), through `/proc/<pid>/task/<tid>/children`.
/// False when the kernel has no such file (CONFIG_PROC_CHILDREN off).
unsafe fn children_of(pid: i32, rd: &mut [u8], dents: &mut [u8], f: &mut dyn FnMut(i32)) -> bool {
    let mut any = false;
    let mut tids = [0i32; 64];
    let mut nt = 0usize;
    let mut more = false;
    let mut dir = PathBuf64::new();
    dir.s(b"/proc/").num(pid).s(b"/task");
    numeric_entries(&mut dir, dents, &mut |t| {
        if nt < tids.len() {
            tids[nt] = t;
            nt += 1;
        } else {
            more = true;
        }
    });
    if nt == 0 {
        // Gone, or /proc/<pid>/task unreadable: the main thread's file alone.
        tids[0] = pid;
        nt = 1;
    }
    let _ = more; // threads past 64: their children are found once the process is killed (reparented to us)
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
        let fd = libc::open(p.c(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let k = libc::read(fd, rd.as_mut_ptr().cast(), rd.len().min(512));
        libc::close(fd);
        if k <= 0 {
            return;
        }
        let line = &rd[..(k as usize).min(rd.len())];
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
unsafe fn signal_tree(sig: libc::c_int, scratch: &mut Scratch) {
    let me = libc::getpid();
    let Scratch { pids, rd, dents } = scratch;
    let cap = pids.len();
    let mut n = 0usize;
    {
        let mut found = |c: i32| {
            if c > 1 && c != me {
                libc::kill(c, sig);
                if n < cap {
                    pids[n] = c;
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
        let q = pids[i];
        i += 1;
        let mut found = |c: i32| {
            if c > 1 && c != me {
                libc::kill(c, sig);
                if n < cap {
                    pids[n] = c;
                    n += 1;
                }
            }
        };
        children_of(q, rd, dents, &mut found);
    }
}
