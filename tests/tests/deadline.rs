//! Deadlines and cancellation (docs/DEADLINES.md) across every library:
//! every function the registry marks blocking returns Timeout / Cancelled at
//! once under a deadline already passed or a token already triggered, and
//! the blocking domains stop mid-wait (deadline hit, cancel from another
//! thread) leaving nothing behind (processes, fds, temp files, locks).
//!
//! One test runs the sections in order on purpose: the fd and process counts
//! before/after are only meaningful without other tests of this binary
//! running beside them. Times are printed, and asserted loosely (< 1 s) on
//! this shared, loaded machine.

#![deny(clippy::undocumented_unsafe_blocks)]

use rt_tests::*;
use std::time::{Duration, Instant};

const TIMEOUT: u32 = 7;
const CANCELLED: u32 = 18;

struct Dl {
    set: extern "C" fn(i64) -> i64,
    at: extern "C" fn(i64) -> i64,
    restore: extern "C" fn(i64),
    clear: extern "C" fn(),
    remaining: extern "C" fn() -> i64,
    trigger_signal_safe: extern "C" fn(u64) -> i32,
}

fn dl() -> Dl {
    let c = core();
    let f = |n: &str| c.lib.addr(n).unwrap_or_else(|| panic!("{n} is not exported"));
    // SAFETY: each target type is the function's prototype in include/simple_rt.h
    // (`int64_t rt_deadline_set(int64_t)`, `int64_t rt_deadline_at(int64_t)`, `void
    // rt_deadline_restore(int64_t)`, `void rt_deadline_clear(void)`, `int64_t
    // rt_deadline_remaining(void)`, `int32_t rt_cancel_trigger_signal_safe(uint64_t)`); the
    // addresses come from core, which is never unloaded.
    unsafe {
        Dl {
            set: std::mem::transmute::<*mut libc::c_void, extern "C" fn(i64) -> i64>(f("rt_deadline_set")),
            at: std::mem::transmute::<*mut libc::c_void, extern "C" fn(i64) -> i64>(f("rt_deadline_at")),
            restore: std::mem::transmute::<*mut libc::c_void, extern "C" fn(i64)>(f("rt_deadline_restore")),
            clear: std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(f("rt_deadline_clear")),
            remaining: std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> i64>(f("rt_deadline_remaining")),
            trigger_signal_safe: std::mem::transmute::<*mut libc::c_void, extern "C" fn(u64) -> i32>(
                f("rt_cancel_trigger_signal_safe"),
            ),
        }
    }
}

fn code(c: &Core, v: RtValue) -> Option<u32> {
    c.error(v).map(|e| e.0)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Processes whose command line contains `marker`.
fn procs_with(marker: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let s = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if s.contains(marker) {
                n += 1;
            }
        }
    }
    n
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what} not reached within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` under a deadline `ms` from now; returns the result and how long past the deadline it returned.
fn timed(d: &Dl, ms: i64, f: impl FnOnce() -> RtValue) -> (RtValue, Duration, Duration) {
    let t0 = Instant::now();
    let prev = (d.set)(ms * 1000);
    let v = f();
    let took = t0.elapsed();
    (d.restore)(prev);
    let late = took.saturating_sub(Duration::from_millis(ms as u64));
    (v, took, late)
}

/// A token, pinned (shared with other threads as a word), and its signal-safe id.
fn token(c: &Core) -> (RtValue, u64) {
    let t = c.ok(c.call("rt_cancel_new", &[]));
    (c.value_pin)(t);
    let id = c.get_int(c.ok(c.call("rt_cancel_id", &[t]))).unwrap() as u64;
    (t, id)
}

/// Triggers `tok` from another thread after `ms`.
fn cancel_later(tok: RtValue, ms: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let c = core();
        c.ok(c.call("rt_cancel_trigger", &[tok]));
    })
}

#[test]
fn deadlines_and_cancellation() {
    open_all();
    let c = core();
    let d = dl();
    host_surface(c, &d);
    every_blocking_function(c, &d);
    sleep_mid_operation(c, &d);
    process_mid_operation(c, &d);
    file_lock_mid_operation(c, &d);
    pipe_read_mid_operation(c, &d);
    net_mid_operation(c, &d);
    archive_mid_operation(c, &d);
    cli_mid_operation(c, &d);
    concurrent_mid_operation(c, &d);
    crypto_mid_operation(c, &d);
    file_mid_operation(c, &d);
    (d.clear)();
}

fn host_surface(c: &Core, d: &Dl) {
    assert_eq!((d.remaining)(), -1, "no deadline at first");
    let p0 = (d.set)(10_000_000);
    assert_eq!(p0, -1);
    let r = (d.remaining)();
    assert!(r > 9_000_000 && r <= 10_000_000, "remaining {r}");
    // An inner scope cannot extend its caller's deadline.
    let p1 = (d.set)(60_000_000);
    assert!((d.remaining)() <= 10_000_000, "a nested set only shortens");
    (d.restore)(p1);
    let p2 = (d.set)(1_000_000);
    assert!((d.remaining)() <= 1_000_000);
    (d.restore)(p2);
    assert!((d.remaining)() > 1_000_000, "restore puts the outer deadline back");
    (d.restore)(p0);
    assert_eq!((d.remaining)(), -1);
    // Absolute deadline in Unix microseconds.
    let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let p = (d.at)(now_unix + 2_000_000);
    let r = (d.remaining)();
    assert!(r > 1_500_000 && r <= 2_000_000, "rt_deadline_at: remaining {r}");
    (d.restore)(p);
    let p = (d.set)(-5);
    assert_eq!((d.remaining)(), 0, "a passed deadline has 0 left");
    (d.clear)();
    assert_eq!((d.remaining)(), -1);
    let _ = p;
    // Tokens.
    let (t, id) = token(c);
    assert_eq!(c.call("rt_cancel_is_cancelled", &[t]), FALSE);
    assert_eq!((d.trigger_signal_safe)(id), 1);
    assert_eq!(c.call("rt_cancel_is_cancelled", &[t]), TRUE);
    c.ok(c.call("rt_cancel_trigger", &[t]));
    assert_eq!((d.trigger_signal_safe)(12345 << 16 | 65535), 0, "an unknown id triggers nothing");
    assert_eq!(c.call("rt_cancel_unbind", &[]), FALSE, "nothing bound");
    (c.value_unpin)(t);
}

fn every_blocking_function(c: &Core, d: &Dl) {
    let blocking: Vec<(String, u32)> = c
        .registry()
        .iter()
        .filter(|e| e["blocking"] == true && e["host"] != true)
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["arity"].as_u64().unwrap() as u32))
        .collect();
    assert!(blocking.len() > 50, "the registry lists the blocking functions ({})", blocking.len());
    // Arguments that would make most of them block or work: nil everywhere (the deadline is checked first).
    let (tok, _) = token(c);
    c.ok(c.call("rt_cancel_trigger", &[tok]));
    let mut worst = Duration::ZERO;
    for (name, arity) in &blocking {
        let args = vec![NIL; *arity as usize];
        let prev = (d.set)(-1);
        let t = Instant::now();
        let v = c.call(name, &args);
        worst = worst.max(t.elapsed());
        (d.restore)(prev);
        assert_eq!(code(c, v), Some(TIMEOUT), "{name} under a passed deadline: {:?}", c.error(v));
        c.ok(c.call("rt_cancel_bind", &[tok]));
        let v = c.call(name, &args);
        assert_eq!(c.call("rt_cancel_unbind", &[]), TRUE);
        assert_eq!(code(c, v), Some(CANCELLED), "{name} with a triggered token: {:?}", c.error(v));
    }
    (c.value_unpin)(tok);
    eprintln!("deadline: {} blocking functions return Timeout / Cancelled up front; slowest {worst:?}", blocking.len());
    assert!(worst < Duration::from_millis(100));
}

fn sleep_mid_operation(c: &Core, d: &Dl) {
    let (v, took, late) = timed(d, 200, || c.call("rt_sleep_ms", &[c.int(10_000)]));
    assert_eq!(code(c, v), Some(TIMEOUT));
    eprintln!("deadline: rt_sleep_ms(10000) under a 200 ms deadline returned after {took:?} ({late:?} late)");
    assert!(took >= Duration::from_millis(190) && late < Duration::from_secs(1));
    let (tok, _) = token(c);
    let (v, took) = cancel_during(c, tok, 150, || c.call("rt_sleep_ms", &[c.int(10_000)]));
    assert_eq!(code(c, v), Some(CANCELLED));
    eprintln!("deadline: rt_sleep_ms cancelled from another thread at 150 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
}

fn process_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_process_run") {
        return;
    }
    // Made first: a token's eventfd stays with its slot for the life of the process (by design).
    let (tok, _) = token(c);
    let fds = fd_count();
    // A tree: sh, a background sleep and a foreground sleep, each marked.
    let marker = format!("sleep 31{}", std::process::id() % 1000);
    let script = format!("{marker}1 & {marker}2; wait");
    let (v, took, late) =
        timed(d, 300, || c.call("rt_process_run", &[c.text("sh"), c.text_array(&["-c", &script]), NIL]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_process_run(sh -c 'sleep & sleep') under 300 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
    wait_until("the process tree gone", Duration::from_secs(2), || procs_with(&marker) == 0);

    // Spawn, then wait under a token cancelled from another thread.
    let child = c.ok(c.call("rt_process_spawn", &[c.text("sh"), c.text_array(&["-c", &script]), NIL]));
    let (v, took) = cancel_during(c, tok, 200, || c.call("rt_process_wait", &[child, NIL]));
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    eprintln!("deadline: rt_process_wait cancelled at 200 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    wait_until("the spawned tree gone", Duration::from_secs(2), || procs_with(&marker) == 0);
    c.ok(c.call("rt_handle_close", &[child]));
    // And rt_shell under a deadline.
    if c.has("rt_shell") {
        let (v, took, _) = timed(d, 200, || c.call("rt_shell", &[c.text(&script), NIL]));
        assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
        eprintln!("deadline: rt_shell under 200 ms returned after {took:?}");
        wait_until("the shell tree gone", Duration::from_secs(2), || procs_with(&marker) == 0);
    }
    c.collect();
    wait_until("fds back", Duration::from_secs(2), || fd_count() <= fds);
}

fn file_lock_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_file_lock") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.lock");
    let p = c.text(path.to_str().unwrap());
    (c.value_pin)(p);
    let held = c.ok(c.call("rt_file_lock", &[p, NIL]));
    let (tok, _) = token(c);
    let fds = fd_count();
    // Another thread waits for it under a deadline; it must not end up holding it.
    let h = std::thread::spawn(move || {
        let c = core();
        let d = dl();
        timed(&d, 250, || c.call("rt_file_lock", &[p, NIL])).0
    });
    let v = h.join().unwrap();
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    // Cancelled wait.
    let h = std::thread::spawn(move || {
        let c = core();
        c.ok(c.call("rt_cancel_bind", &[tok]));
        let t = Instant::now();
        let v = c.call("rt_file_lock", &[p, NIL]);
        (code(c, v), t.elapsed())
    });
    cancel_later(tok, 150).join().unwrap();
    let (cd, took) = h.join().unwrap();
    assert_eq!(cd, Some(CANCELLED));
    eprintln!("deadline: rt_file_lock cancelled at 150 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    assert_eq!(fd_count(), fds, "no descriptor left by the stopped waits");
    c.ok(c.call("rt_handle_close", &[held]));
    // Nobody holds it now: a try-lock succeeds.
    let again = c.ok(c.call("rt_file_try_lock", &[p, NIL]));
    c.ok(c.call("rt_handle_close", &[again]));
    let _ = d;
    (c.value_unpin)(p);
    (c.value_unpin)(tok);
}

fn pipe_read_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_fd_read_until") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("f");
    let cp = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `cp` is a NUL-terminated CString alive for the call.
    assert_eq!(unsafe { libc::mkfifo(cp.as_ptr(), 0o600) }, 0);
    // Keep a writer open so the open for reading does not wait and the read waits for data.
    let fifo2 = fifo.clone();
    let w = std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(fifo2).unwrap());
    let f = c.ok(c.call("rt_file_open", &[c.text(fifo.to_str().unwrap()), c.int(0)]));
    let writer = w.join().unwrap();
    let (v, took, late) = timed(d, 200, || c.call("rt_fd_read_until", &[f, c.int(10), c.int(100)]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_fd_read_until on a FIFO under 200 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
    // Nothing lost: data written now is read whole.
    use std::io::Write;
    (&writer).write_all(b"line\n").unwrap();
    // (stop byte absent, max = the length: read_until's seek-back after a stop byte needs a seekable file)
    let v = c.ok(c.call("rt_fd_read_until", &[f, c.int(0), c.int(5)]));
    assert_eq!(c.get_text(v).as_deref(), Some("line\n"));
    c.ok(c.call("rt_handle_close", &[f]));
    drop(writer);

    // Writing more than the pipe holds to a reader that does not read: Timeout, details.written.
    let fifo2 = fifo.clone();
    let r = std::thread::spawn(move || std::fs::File::open(fifo2).unwrap());
    let w = c.ok(c.call("rt_file_open", &[c.text(fifo.to_str().unwrap()), c.int(1)]));
    let reader = r.join().unwrap();
    let big = c.bytes(&vec![7u8; 1 << 20]);
    let (v, took, late) = timed(d, 200, || c.call("rt_fd_write", &[w, big, NIL]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    let written = c.get_int(c.get((c.error_details)(v), "written")).unwrap();
    eprintln!("deadline: rt_fd_write(1 MiB) to a full FIFO under 200 ms returned after {took:?} ({late:?} late), {written} bytes written");
    assert!(late < Duration::from_secs(1) && written > 0 && written < 1 << 20);
    c.ok(c.call("rt_handle_close", &[w]));
    drop(reader);
}

fn net_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_io_tcp_accept") {
        return;
    }
    let (tok, _) = token(c);
    let (tok2, _) = token(c); // made first: a token's eventfd stays with its slot
    let fds = fd_count();
    let l = c.ok(c.call("rt_io_tcp_bind", &[c.text("127.0.0.1:0")]));
    c.ok(c.call("rt_io_tcp_listen", &[l, c.int(8)]));
    let addr = c.get_text(c.call("rt_io_tcp_local_addr", &[l])).unwrap();
    let (v, took, late) = timed(d, 200, || c.call("rt_io_tcp_accept", &[l]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_io_tcp_accept under 200 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
    // A connection, then a read cancelled from another thread; data sent later is not lost.
    let client = std::net::TcpStream::connect(&addr).unwrap();
    let s = c.ok(c.call("rt_io_tcp_accept", &[l]));
    c.ok(c.call("rt_cancel_bind", &[tok]));
    let t = Instant::now();
    let h = cancel_later(tok, 150);
    let v = c.call("rt_io_tcp_read", &[s, c.int(100)]);
    let took = t.elapsed();
    h.join().unwrap();
    c.call("rt_cancel_unbind", &[]);
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    eprintln!("deadline: rt_io_tcp_read cancelled at 150 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    use std::io::Write;
    (&client).write_all(b"hi\n").unwrap();
    let v = c.ok(c.call("rt_io_tcp_read_line", &[s]));
    assert_eq!(c.get_text(v).as_deref(), Some("hi"));
    // Sending more than the socket buffers hold to a peer that does not read.
    let big = c.bytes(&vec![1u8; 64 << 20]);
    let (v, took, late) = timed(d, 200, || c.call("rt_io_tcp_write", &[s, big]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    let sent = c.get_int(c.get((c.error_details)(v), "sent")).unwrap_or(-1);
    eprintln!("deadline: rt_io_tcp_write(64 MiB) to a peer not reading, under 200 ms, returned after {took:?} ({late:?} late), {sent} bytes sent");
    assert!(late < Duration::from_secs(1) && sent > 0 && sent < 64 << 20);
    c.ok(c.call("rt_io_tcp_close", &[s]));
    c.ok(c.call("rt_io_tcp_close", &[l]));
    drop(client);
    (c.value_unpin)(tok);

    // A download whose server stalls mid-body: Timeout, and no temporary file left.
    if c.has("rt_http_download") {
        let srv = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = srv.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
            let _ = s.write_all(&[b'x'; 1000]);
            std::thread::sleep(Duration::from_millis(1500));
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let url = format!("http://127.0.0.1:{port}/big");
        let (v, took, late) = timed(d, 300, || {
            c.call("rt_http_download", &[c.text(&url), c.text(path.to_str().unwrap()), NIL])
        });
        assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
        eprintln!("deadline: rt_http_download (server stalls) under 300 ms returned after {took:?} ({late:?} late)");
        assert!(late < Duration::from_secs(1));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
        server.join().unwrap();
    }
    // The same stall, cancelled from another thread: the read waiting for the server wakes.
    if c.has("rt_http_get") {
        let srv = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = srv.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nxx");
            std::thread::sleep(Duration::from_millis(1500));
        });
        let tok = tok2;
        let (v, took) = cancel_during(c, tok, 150, || c.call("rt_http_get", &[c.text(&format!("http://127.0.0.1:{port}/slow")), NIL]));
        assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
        eprintln!("deadline: rt_http_get (server stalls) cancelled at 150 ms returned after {took:?}");
        assert!(took < Duration::from_secs(1));
        server.join().unwrap();
    }
    c.collect();
    wait_until("net fds back", Duration::from_secs(2), || fd_count() <= fds);
}

fn archive_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_tar_create") {
        return;
    }
    // Enough entries (xz at level 9) that the archive takes longer than the deadline.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..400 {
        let body: Vec<u8> = (0..16384u32).map(|k| (k.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8).collect();
        std::fs::write(src.join(format!("f{i:04}")), body).unwrap();
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let archive = out.join("a.tar.xz");
    let opts = c.dict(&[("level", c.int(9))]);
    let (v, took, late) = timed(d, 100, || {
        c.call("rt_tar_create", &[c.text(archive.to_str().unwrap()), c.text(src.to_str().unwrap()), opts])
    });
    match code(c, v) {
        Some(TIMEOUT) => {
            eprintln!("deadline: rt_tar_create (400 entries, xz -9) under 100 ms returned after {took:?} ({late:?} late)");
            assert!(late < Duration::from_secs(1));
            let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
            assert!(left.is_empty(), "partial archive left behind: {left:?}");
        }
        None => eprintln!("deadline: rt_tar_create finished within 100 ms ({took:?}): mid-operation stop not exercised"),
        other => panic!("rt_tar_create: {other:?} {:?}", c.error(v)),
    }
}

fn cli_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_watch_poll") {
        return;
    }
    let opts = c.dict(&[("timeout_ms", c.int(5000))]);
    (c.value_pin)(opts);
    let (v, took, late) = timed(d, 200, || c.call("rt_signal_poll", &[opts]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_signal_poll(timeout_ms 5000) under 200 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
    // A watch: cancelled from another thread while it waits, then an event made later is still delivered.
    let dir = tempfile::tempdir().unwrap();
    let w = c.ok(c.call("rt_watch_path", &[c.text(dir.path().to_str().unwrap()), NIL]));
    let (tok, _) = token(c);
    let (v, took) = cancel_during(c, tok, 150, || c.call("rt_watch_poll", &[w, opts]));
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    eprintln!("deadline: rt_watch_poll cancelled at 150 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    std::fs::write(dir.path().join("new.txt"), b"x").unwrap();
    let v = c.ok(c.call("rt_watch_poll", &[w, opts]));
    assert!((c.array_len)(v) >= 1, "the event after the cancel is delivered");
    c.ok(c.call("rt_watch_close", &[w]));
    (c.value_unpin)(opts);
}

fn concurrent_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_channel_recv") {
        return;
    }
    // Channel: recv under a deadline, then a value sent later is received (nothing lost).
    let ch = c.ok(c.call("rt_channel_create", &[c.int(1)]));
    (c.value_pin)(ch);
    let (v, took, late) = timed(d, 200, || c.call("rt_channel_recv", &[ch, NIL]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_channel_recv under 200 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
    // A full bounded channel: send cancelled from another thread; the queued value stays, the new one is not sent.
    c.ok(c.call("rt_channel_send", &[ch, c.int(1), NIL]));
    let (tok, _) = token(c);
    let (v, took) = cancel_during(c, tok, 150, || c.call("rt_channel_send", &[ch, c.int(2), NIL]));
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    eprintln!("deadline: rt_channel_send (full) cancelled at 150 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    assert_eq!(c.get_int(c.ok(c.call("rt_channel_recv", &[ch, NIL]))), Some(1));
    assert_eq!(c.get_int(c.call("rt_channel_len", &[ch])), Some(0), "the cancelled send queued nothing");
    (c.value_unpin)(ch);

    // Mutex held by this thread: another thread's lock under a deadline times out and takes nothing.
    let m = c.ok(c.call("rt_mutex_new", &[c.int(0)]));
    (c.value_pin)(m);
    c.ok(c.call("rt_mutex_lock", &[m, NIL]));
    let h = std::thread::spawn(move || {
        let c = core();
        let d = dl();
        let (v, took, _) = timed(&d, 200, || c.call("rt_mutex_lock", &[m, NIL]));
        (code(c, v), took)
    });
    let (cd, took) = h.join().unwrap();
    assert_eq!(cd, Some(TIMEOUT));
    eprintln!("deadline: rt_mutex_lock under 200 ms returned after {took:?}");
    assert!(took < Duration::from_secs(1));
    c.ok(c.call("rt_mutex_unlock", &[m, NIL]));
    assert_eq!(c.call("rt_mutex_is_locked", &[m]), FALSE, "the stopped waiter took nothing");
    (c.value_unpin)(m);

    // A spawned thread inherits the deadline: its sleep stops at the parent's deadline.
    let prev = (d.set)(200_000);
    let th = c.ok(c.call("rt_thread_spawn", &[c.text("rt_sleep_ms"), c.int(10_000), NIL]));
    (d.restore)(prev);
    let t = Instant::now();
    let v = c.call("rt_thread_join", &[th, NIL]);
    let took = t.elapsed();
    assert_eq!(code(c, v), Some(TIMEOUT), "the thread inherited the deadline: {:?}", c.error(v));
    eprintln!("deadline: a spawned thread's rt_sleep_ms stopped at the parent's 200 ms deadline (join took {took:?})");
    assert!(took < Duration::from_secs(1));
    // Join itself, cancelled.
    let th = c.ok(c.call("rt_thread_spawn", &[c.text("rt_sleep_ms"), c.int(600), NIL]));
    let (tok, _) = token(c);
    let (v, took) = cancel_during(c, tok, 100, || c.call("rt_thread_join", &[th, NIL]));
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    eprintln!("deadline: rt_thread_join cancelled at 100 ms returned after {took:?}");
    c.ok(c.call("rt_thread_join", &[th, NIL]));
    // Parallel map workers inherit it too.
    let arr = (c.array_new)(4);
    for _ in 0..4 {
        (c.array_push)(arr, c.int(10_000));
    }
    let (v, took, late) = timed(d, 200, || c.call("rt_parallel_map", &[c.text("rt_sleep_ms"), arr, NIL]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_parallel_map(rt_sleep_ms x4) under 200 ms returned after {took:?} ({late:?} late)");
    assert!(late < Duration::from_secs(1));
}

/// Runs `f` with `tok` bound, triggering it from another thread after `ms`; unbinds and
/// unpins it; returns `f`'s result and how long it took.
fn cancel_during(c: &Core, tok: RtValue, ms: u64, f: impl FnOnce() -> RtValue) -> (RtValue, Duration) {
    c.ok(c.call("rt_cancel_bind", &[tok]));
    let t = Instant::now();
    let h = cancel_later(tok, ms);
    let v = f();
    let took = t.elapsed();
    h.join().unwrap();
    c.call("rt_cancel_unbind", &[]);
    (c.value_unpin)(tok);
    (v, took)
}

/// Runs `name(args)` under a fresh token cancelled after 150 ms.
fn cancelled_call(c: &Core, name: &str, args: &[RtValue]) -> (RtValue, Duration) {
    cancel_during(c, token(c).0, 150, || c.call(name, args))
}

/// Key derivations have no hook between passes: under a deadline or token they run on a
/// helper thread and the call returns promptly (the abandoned work finishes on its own).
fn crypto_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_argon2_hash") {
        return;
    }
    // About 1-3 s in a debug build: long enough to be stopped, short enough to finish on its own.
    let opts = c.dict(&[("m_cost", c.int(16384)), ("t_cost", c.int(4))]);
    let pw = c.bytes(b"correct horse");
    let t = Instant::now();
    let h = c.call("rt_argon2_hash", &[pw, opts]);
    let full = t.elapsed();
    let hash = c.get_text(c.ok(h)).unwrap();
    let (v, took, late) = timed(d, 20, || c.call("rt_argon2_hash", &[pw, opts]));
    match code(c, v) {
        Some(TIMEOUT) => {
            eprintln!("deadline: rt_argon2_hash ({full:?} unhindered) under 20 ms returned after {took:?} ({late:?} late)");
            assert!(late < Duration::from_millis(500));
        }
        None => eprintln!("deadline: rt_argon2_hash finished within 20 ms ({took:?}): stop not exercised"),
        other => panic!("rt_argon2_hash: {other:?} {:?}", c.error(v)),
    }
    if full > Duration::from_millis(400) {
        let (v, took) = cancelled_call(c, "rt_argon2_verify", &[pw, c.text(&hash), c.dict(&[])]);
        assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
        eprintln!("deadline: rt_argon2_verify ({full:?} unhindered) cancelled at 150 ms returned after {took:?}");
        assert!(took < full && took < Duration::from_secs(1));
    }
    // Unhindered by a scope that is never hit, the result is the real one.
    let prev = (d.set)(600_000_000);
    let ok = c.call("rt_argon2_verify", &[pw, c.text(&hash), c.dict(&[])]);
    (d.restore)(prev);
    assert_eq!(c.ok(ok), 0x0B, "true: the password matches");
    let wrong = c.call("rt_argon2_verify", &[c.bytes(b"wrong"), c.text(&hash), c.dict(&[])]);
    assert_eq!(c.ok(wrong), 0x13, "false: it does not");
    let (v, took, late) = timed(d, 20, || {
        c.call("rt_derive_key_pbkdf2", &[pw, c.bytes(b"salt"), c.int(10_000_000), c.int(32)])
    });
    match code(c, v) {
        Some(TIMEOUT) => {
            eprintln!("deadline: rt_derive_key_pbkdf2 (10^7 iterations) under 20 ms returned after {took:?} ({late:?} late)");
            assert!(late < Duration::from_millis(500));
        }
        None => eprintln!("deadline: rt_derive_key_pbkdf2 finished within 20 ms ({took:?}): stop not exercised"),
        other => panic!("rt_derive_key_pbkdf2: {other:?} {:?}", c.error(v)),
    }
}

/// A FIFO with no writer: rt_file_read_bytes (whose open would block) stops on the deadline
/// and on a cancel, leaving no descriptor behind; with a writer it reads everything.
fn file_mid_operation(c: &Core, d: &Dl) {
    if !c.has("rt_file_read_bytes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let cpath = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `cpath` is a NUL-terminated CString alive for the call.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let p = c.text(fifo.to_str().unwrap());
    let before = fd_count();
    let (v, took, late) = timed(d, 200, || c.call("rt_file_read_bytes", &[p]));
    assert_eq!(code(c, v), Some(TIMEOUT), "{:?}", c.error(v));
    eprintln!("deadline: rt_file_read_bytes of a FIFO with no writer under 200 ms returned after {took:?} ({late:?} late)");
    assert!(took >= Duration::from_millis(190) && late < Duration::from_secs(1));
    assert_eq!(fd_count(), before, "descriptors left behind");
    let (v, took) = cancelled_call(c, "rt_file_read_text", &[p]);
    assert_eq!(code(c, v), Some(CANCELLED), "{:?}", c.error(v));
    assert!(took < Duration::from_secs(1));
    // A writer that sends in two parts: everything is read, under a deadline never hit.
    let w = fifo.clone();
    let h = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(w).unwrap();
        use std::io::Write;
        f.write_all(b"hello ").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        f.write_all(b"fifo").unwrap();
    });
    let prev = (d.set)(10_000_000);
    let v = c.call("rt_file_read_text", &[p]);
    (d.restore)(prev);
    h.join().unwrap();
    assert_eq!(c.get_text(c.ok(v)).as_deref(), Some("hello fifo"));
    // A regular file larger than one chunk is read and copied whole under a deadline.
    let big = dir.path().join("big");
    let body: Vec<u8> = (0..(9u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&big, &body).unwrap();
    let prev = (d.set)(60_000_000);
    let v = c.call("rt_file_read_bytes", &[c.text(big.to_str().unwrap())]);
    let copy = dir.path().join("copy");
    let n = c.call("rt_file_copy", &[c.text(big.to_str().unwrap()), c.text(copy.to_str().unwrap())]);
    (d.restore)(prev);
    assert!(c.get_bytes(c.ok(v)).unwrap() == body);
    assert_eq!(c.get_int(c.ok(n)), Some(body.len() as i64));
    assert!(std::fs::read(&copy).unwrap() == body);
}
