//! Raw system calls for the code that runs between the spawn and the
//! program's `execve` and for the supervisor (`supervise.rs`).
//!
//! On x86_64 the supervisor and the program's process before exec share the
//! host's memory (`CLONE_VM`, see `supervise.rs`) and run with the TLS
//! pointer of the host thread that spawned them. So they must not call libc
//! wrappers: those write `errno`, which would be that host thread's `errno`.
//! These functions make the `syscall` instruction directly and return
//! `-errno` on failure, touching no memory but what the call itself names.
//!
//! Elsewhere the supervisor is a forked copy (own memory) and these are thin
//! wrappers over `libc::syscall`; the `errno` they write is the copy's own.

pub use libc::{c_long, c_void};

/// Result of a raw call: `>= 0` success, `-errno` failure.
pub type Ret = isize;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn sc6(n: c_long, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> Ret {
    let ret: isize;
    // SAFETY (caller): the arguments are valid for system call `n`. The kernel clobbers rcx and r11 only.
    core::arch::asm!(
        "syscall",
        inlateout("rax") n as isize => ret,
        in("rdi") a1,
        in("rsi") a2,
        in("rdx") a3,
        in("r10") a4,
        in("r8") a5,
        in("r9") a6,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub unsafe fn sc6(n: c_long, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> Ret {
    // Only reached in a forked copy of the host (its own memory and errno).
    let r = libc::syscall(n, a1, a2, a3, a4, a5, a6);
    if r < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as isize)
    } else {
        r as isize
    }
}

#[inline(always)]
pub unsafe fn sc(n: c_long, a: &[usize]) -> Ret {
    let g = |i: usize| a.get(i).copied().unwrap_or(0);
    sc6(n, g(0), g(1), g(2), g(3), g(4), g(5))
}

/// Calls `f` until it does not fail with EINTR.
#[inline(always)]
pub fn retry(mut f: impl FnMut() -> Ret) -> Ret {
    loop {
        let r = f();
        if r != -(libc::EINTR as isize) {
            return r;
        }
    }
}

pub unsafe fn getpid() -> i32 {
    sc(libc::SYS_getpid, &[]) as i32
}
pub unsafe fn close(fd: i32) -> Ret {
    sc(libc::SYS_close, &[fd as usize])
}
pub unsafe fn read(fd: i32, buf: *mut u8, n: usize) -> Ret {
    sc(libc::SYS_read, &[fd as usize, buf as usize, n])
}
pub unsafe fn open(path: *const libc::c_char, flags: i32) -> Ret {
    sc(libc::SYS_openat, &[libc::AT_FDCWD as isize as usize, path as usize, flags as usize, 0])
}
pub unsafe fn getdents64(fd: i32, buf: *mut u8, n: usize) -> Ret {
    sc(libc::SYS_getdents64, &[fd as usize, buf as usize, n])
}
pub unsafe fn send(fd: i32, buf: *const u8, n: usize, flags: i32) -> Ret {
    sc(libc::SYS_sendto, &[fd as usize, buf as usize, n, flags as usize, 0, 0])
}
pub unsafe fn recv(fd: i32, buf: *mut u8, n: usize, flags: i32) -> Ret {
    sc(libc::SYS_recvfrom, &[fd as usize, buf as usize, n, flags as usize, 0, 0])
}
pub unsafe fn kill(pid: i32, sig: i32) -> Ret {
    sc(libc::SYS_kill, &[pid as isize as usize, sig as usize])
}
/// `wait4(pid, &status, options, NULL)`.
pub unsafe fn wait4(pid: i32, status: &mut i32, options: i32) -> Ret {
    sc(libc::SYS_wait4, &[pid as isize as usize, status as *mut i32 as usize, options as usize, 0])
}
pub unsafe fn prctl(op: i32, a2: usize) -> Ret {
    sc(libc::SYS_prctl, &[op as usize, a2, 0, 0, 0])
}
pub unsafe fn landlock_restrict_self(ruleset: i32) -> Ret {
    sc(libc::SYS_landlock_restrict_self, &[ruleset as usize, 0])
}
pub unsafe fn setpgid(pid: i32, pgid: i32) -> Ret {
    sc(libc::SYS_setpgid, &[pid as usize, pgid as usize])
}
pub unsafe fn dup3(old: i32, new: i32) -> Ret {
    sc(libc::SYS_dup3, &[old as usize, new as usize, 0])
}
pub unsafe fn chdir(path: *const libc::c_char) -> Ret {
    sc(libc::SYS_chdir, &[path as usize])
}
pub unsafe fn prlimit(res: u32, new: *const libc::rlimit, old: *mut libc::rlimit) -> Ret {
    sc(libc::SYS_prlimit64, &[0, res as usize, new as usize, old as usize])
}
pub unsafe fn execve(path: *const libc::c_char, argv: *const *const libc::c_char, envp: *const *const libc::c_char) -> Ret {
    sc(libc::SYS_execve, &[path as usize, argv as usize, envp as usize])
}
pub unsafe fn exit_group(code: i32) -> ! {
    loop {
        sc(libc::SYS_exit_group, &[code as usize]);
    }
}
pub unsafe fn poll(fds: *mut libc::pollfd, n: usize, ms: i32) -> Ret {
    // ppoll with a relative timeout (poll itself is missing on some architectures).
    let ts;
    let tsp = if ms < 0 {
        0usize
    } else {
        ts = libc::timespec { tv_sec: (ms / 1000) as libc::time_t, tv_nsec: ((ms % 1000) as libc::c_long) * 1_000_000 };
        &ts as *const libc::timespec as usize
    };
    sc(libc::SYS_ppoll, &[fds as usize, n, tsp, 0, 8])
}
pub unsafe fn close_range(first: u32, last: u32) -> Ret {
    sc(libc::SYS_close_range, &[first as usize, last as usize, 0])
}
pub unsafe fn signalfd(mask: &u64, flags: i32) -> Ret {
    sc(libc::SYS_signalfd4, &[usize::MAX, mask as *const u64 as usize, 8, flags as usize])
}

/// The kernel's `struct sigaction` (x86_64 and the generic layout: handler, flags, restorer, mask).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KSigaction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

/// Sets the signal mask of this task (all 64 signals: bit `n-1` is signal n).
pub unsafe fn sigmask_set(mask: u64) -> Ret {
    sc(libc::SYS_rt_sigprocmask, &[libc::SIG_SETMASK as usize, &mask as *const u64 as usize, 0, 8])
}

pub unsafe fn sigaction(sig: i32, new: Option<&KSigaction>, old: Option<&mut KSigaction>) -> Ret {
    let n = new.map_or(0, |p| p as *const KSigaction as usize);
    let o = old.map_or(0, |p| p as *mut KSigaction as usize);
    sc(libc::SYS_rt_sigaction, &[sig as usize, n, o, 8])
}

/// Puts `sig` back to its default action.
pub unsafe fn sig_default(sig: i32) -> Ret {
    let dfl = KSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    sigaction(sig, Some(&dfl), None)
}

/// Every signal whose action is a handler (host code) goes back to the default;
/// ignored ones stay ignored (as across exec).
pub unsafe fn reset_handlers() {
    let mut sig = 1;
    while sig <= 64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            let mut old = KSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
            if sigaction(sig, None, Some(&mut old)) == 0 && old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN {
                sig_default(sig);
            }
        }
        sig += 1;
    }
}

/// `clone(flags, stack_top)` whose child calls `f(arg)` on the new stack and never returns.
/// Returns the child's pid in the parent, or `-errno`.
///
/// # Safety
/// `stack_top` is the 16-byte aligned top of a mapping that outlives the child's use of it;
/// `f` never returns and runs only code that is safe in a task sharing (with `CLONE_VM`) the
/// caller's memory and TLS pointer: raw system calls from this module, no allocation, no lock.
#[cfg(target_arch = "x86_64")]
pub unsafe fn clone_run(flags: usize, stack_top: *mut u8, f: unsafe extern "C" fn(*mut c_void) -> !, arg: *mut c_void) -> Ret {
    let ret: isize;
    core::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The child: rsp is `stack_top` (16-byte aligned, as `call` expects). No frame to return to.
        "xor ebp, ebp",
        "mov rdi, r12",
        "call r13",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone as isize => ret,
        in("rdi") flags,
        in("rsi") stack_top,
        in("rdx") 0usize,
        in("r10") 0usize,
        in("r8") 0usize,
        in("r12") arg,
        in("r13") f,
        lateout("rcx") _,
        lateout("r11") _,
    );
    ret
}
