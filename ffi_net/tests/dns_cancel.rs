//! Deadlines and cancel tokens (docs/DEADLINES.md) while the system resolver
//! is still waiting: a real slow resolver, not a mock of `transport::resolve`.
//!
//! The test re-runs this binary (a fresh process: no unshare(2) inside the
//! multithreaded test process) under `unshare -m` (and `-n` with loopback up
//! where it works), with `/etc/resolv.conf` bind-mounted to `nameserver
//! 127.0.0.1` / `options timeout:30 attempts:1`, `/etc/hosts` to a copy
//! without the test name and `/etc/nsswitch.conf` to a copy whose hosts line
//! is `files dns`. The mounts live only in the child's mount namespace and go
//! with it. In the child a UDP socket on 127.0.0.1:53 (and a TCP listener on
//! 53) takes the queries and never answers, counting them: the test requires
//! at least one, so getaddrinfo really waited on it. Each case must return
//! Timeout / Cancelled within 1.5 s; repeated cancels must not grow
//! descriptors or threads; at the end the resolver answers NXDOMAIN and the
//! abandoned lookup threads must finish and release their sockets.
//!
//! Without root or a working `unshare -m` the test prints `SKIP dns_cancel:
//! <reason>` and passes; as root with `unshare -m` working the child must
//! run (a regression to skipping fails).

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_net::http::rt_http_get;
use ffi_net::socket::{rt_socket_close, rt_socket_connect, rt_socket_create};
use ffi_net::tcp::{rt_io_tcp_connect, rt_io_tcp_connect_timeout};
use ffi_net::ws::rt_ws_connect;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{cancel_new, cancel_trigger, dict, err, int, ok, text, with_cancel, with_deadline_us, NIL};
use ffi_sdk::{Code, Value};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The libtest name of the one test (the child runs it with `--exact`).
const TEST: &str = "dns_cancel";
/// Set in the child's environment.
const CHILD: &str = "RT_DNS_CANCEL_CHILD";
/// The child's last line when every case ran.
const MARKER: &str = "dns_cancel child: all cases ran";
/// A name in no hosts file: only DNS can answer it.
const NAME: &str = "slow-dns.test";
/// A name only the hosts copy knows (127.0.0.1): a lookup through the helper that succeeds.
const LOCAL: &str = "hosts-only.test";
/// Every stop must return within this after the call started (a loaded 2-core machine, debug build).
const BOUND: Duration = Duration::from_millis(1500);
/// The parent kills a child that runs longer than this (a lookup that ignored the deadline waits 30 s).
const WATCHDOG: Duration = Duration::from_secs(150);

#[test]
fn dns_cancel() {
    if std::env::var_os(CHILD).is_some() {
        child();
    } else {
        parent();
    }
}

// ---------------------------------------------------------------- parent

fn euid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("Uid:"))?;
    l.split_whitespace().nth(2)?.parse().ok()
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn parent() {
    let root = euid() == Some(0);
    let unshare_ok = quiet(Command::new("unshare").args(["-m", "true"]));
    if !root || !unshare_ok {
        let why = if !root { "not running as root (mount --bind needs it)" } else { "`unshare -m true` failed" };
        println!("SKIP dns_cancel: {why}");
        return;
    }
    // From here the child case must run: any failure to set it up fails the test.
    let (_guard, dir) = ffi_sdk::testing::tmp();
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n").unwrap();
    let hosts_orig = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let hosts = dir.join("hosts");
    let mut kept: String = hosts_orig.lines().filter(|l| !l.contains(NAME)).map(|l| format!("{l}\n")).collect();
    kept.push_str(&format!("127.0.0.1 {LOCAL}\n"));
    std::fs::write(&hosts, kept).unwrap();
    // nsswitch: print what the machine says; the child gets a copy whose hosts line is `files dns`.
    let nss = dir.join("nsswitch.conf");
    let nss_arg = match std::fs::read_to_string("/etc/nsswitch.conf") {
        Ok(t) => {
            let line = t.lines().find(|l| l.trim_start().starts_with("hosts:")).unwrap_or("(no hosts line)");
            eprintln!("dns_cancel: /etc/nsswitch.conf says `{}`; the child uses `hosts: files dns`", line.trim());
            let mut out: String =
                t.lines().filter(|l| !l.trim_start().starts_with("hosts:")).map(|l| format!("{l}\n")).collect();
            out.push_str("hosts: files dns\n");
            std::fs::write(&nss, out).unwrap();
            nss.to_str().unwrap().to_string()
        }
        Err(e) => {
            eprintln!("dns_cancel: no /etc/nsswitch.conf ({e}): glibc's default reaches dns");
            String::new()
        }
    };
    // A private network namespace (loopback up) keeps port 53 ours alone; else the shared one.
    let netns = quiet(Command::new("unshare").args(["-mn", "sh", "-c", "ip link set lo up"]));
    let (flags, lo) = if netns { ("-mn", "ip link set lo up && ") } else { ("-m", "") };
    eprintln!("dns_cancel: child under `unshare {flags}`");
    let script = format!(
        "{lo}mount --bind \"$1\" /etc/resolv.conf && mount --bind \"$2\" /etc/hosts && \
         {{ [ -z \"$3\" ] || mount --bind \"$3\" /etc/nsswitch.conf; }} && \
         exec \"$0\" --exact {TEST} --nocapture --test-threads=1"
    );
    let exe = std::env::current_exe().unwrap();
    let mut ch = Command::new("unshare")
        .args([flags, "sh", "-c", &script])
        .arg(&exe)
        .arg(&resolv)
        .arg(&hosts)
        .arg(&nss_arg)
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the child under unshare");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(ch.stdout.take().unwrap()));
    let errs = drain(Box::new(ch.stderr.take().unwrap()));
    let t = Instant::now();
    let st = loop {
        if let Some(st) = ch.try_wait().unwrap() {
            break Some(st);
        }
        if t.elapsed() > WATCHDOG {
            let _ = ch.kill(); // our own child, by its pid
            let _ = ch.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, errs) = (out.join().unwrap(), errs.join().unwrap());
    eprintln!("---- child stdout\n{out}---- child stderr\n{errs}---- child took {:?}", t.elapsed());
    let st = st.unwrap_or_else(|| panic!("the child ran past {WATCHDOG:?} and was killed"));
    assert!(st.success(), "the child failed: {st}");
    assert!(out.contains(MARKER) || errs.contains(MARKER), "the child did not run the cases (no `{MARKER}`)");
}

// ---------------------------------------------------------------- child: the silent resolver

/// A DNS server on 127.0.0.1:53 that takes queries and, until `answer` is set, never replies.
struct Dns {
    udp: AtomicUsize,
    tcp: AtomicUsize,
    /// "name type" of each UDP query, in order.
    seen: Mutex<Vec<String>>,
    /// Queries held unanswered (packet, sender).
    held: Mutex<Vec<(Vec<u8>, SocketAddr)>>,
    /// From now on, answer NXDOMAIN (held queries first).
    answer: AtomicBool,
}

/// The question's name and type, and where the question section ends.
fn question(p: &[u8]) -> Option<(String, u16, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = *p.get(i)? as usize;
        i += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(p.get(i..i + n)?).into_owned());
        i += n;
    }
    let t = u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]);
    Some((labels.join("."), t, i + 4))
}

/// An NXDOMAIN reply to query `q` (its id and question, no records).
fn nxdomain(q: &[u8]) -> Option<Vec<u8>> {
    let (_, _, end) = question(q)?;
    let mut r = q.get(..end)?.to_vec();
    r[2] = 0x80 | (q[2] & 0x01); // QR, RD copied
    r[3] = 0x83; // RA, RCODE 3
    r[6..12].fill(0); // no answer, authority or additional records
    Some(r)
}

fn start_dns() -> Arc<Dns> {
    let udp = UdpSocket::bind("127.0.0.1:53").expect("binding 127.0.0.1:53/udp in the child");
    let tcp = TcpListener::bind("127.0.0.1:53").expect("binding 127.0.0.1:53/tcp in the child");
    udp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let d = Arc::new(Dns {
        udp: AtomicUsize::new(0),
        tcp: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
        held: Mutex::new(Vec::new()),
        answer: AtomicBool::new(false),
    });
    let du = d.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        loop {
            if du.answer.load(Ordering::SeqCst) {
                for (q, from) in du.held.lock().unwrap().drain(..) {
                    if let Some(r) = nxdomain(&q) {
                        let _ = udp.send_to(&r, from);
                    }
                }
            }
            let Ok((n, from)) = udp.recv_from(&mut b) else { continue };
            du.udp.fetch_add(1, Ordering::SeqCst);
            let q = b[..n].to_vec();
            let (name, t, _) = question(&q).unwrap_or_default();
            let t = match t {
                1 => "A".to_string(),
                28 => "AAAA".to_string(),
                o => o.to_string(),
            };
            du.seen.lock().unwrap().push(format!("{name} {t}"));
            du.held.lock().unwrap().push((q, from));
        }
    });
    let dt = d.clone();
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        for s in tcp.incoming().flatten() {
            dt.tcp.fetch_add(1, Ordering::SeqCst);
            conns.push(s); // accepted, never answered
        }
    });
    d
}

// ---------------------------------------------------------------- child: the cases

/// Open descriptors of this process: (all, sockets). Cancel tokens add eventfds (one per token
/// slot, reused once a token is collected), so the leak check counts sockets: getaddrinfo's.
fn fds() -> (usize, usize) {
    let Ok(d) = std::fs::read_dir("/proc/self/fd") else { return (0, 0) };
    let links: Vec<String> =
        d.flatten().filter_map(|e| std::fs::read_link(e.path()).ok()).map(|l| l.to_string_lossy().into_owned()).collect();
    (links.len(), links.iter().filter(|l| l.starts_with("socket:")).count())
}

/// Threads of this process named `rt-resolve` (the lookup helpers).
fn resolvers() -> usize {
    let Ok(d) = std::fs::read_dir("/proc/self/task") else { return 0 };
    d.flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "rt-resolve"))
        .count()
}

/// One case's outcome.
struct Outcome {
    code: Code,
    msg: String,
    took: Duration,
    /// After the trigger (cancel cases).
    late: Option<Duration>,
}

/// Runs `f` on a fresh thread (no deadline, no token of this thread leaks into it).
fn plain(f: impl FnOnce() -> RtValue + Send + 'static) -> Outcome {
    std::thread::spawn(move || {
        let t = Instant::now();
        let (code, msg) = err(f());
        Outcome { code, msg, took: t.elapsed(), late: None }
    })
    .join()
    .unwrap()
}

/// Runs `f` on a fresh thread, expecting success: None, or the Error's code and message.
fn plain_ok(f: impl FnOnce() -> RtValue + Send + 'static) -> Option<(Code, String)> {
    std::thread::spawn(move || Value::from_raw(f()).error()).join().unwrap()
}

/// Runs `f` on a fresh thread under a deadline of `ms`.
fn deadline(ms: i64, f: impl FnOnce() -> RtValue + Send + 'static) -> Outcome {
    plain(move || with_deadline_us(ms * 1000, f))
}

/// Runs `f` on a fresh thread with a fresh token bound, triggered from this thread after `after`.
fn cancelled(after: Duration, f: impl FnOnce() -> RtValue + Send + 'static) -> Outcome {
    // The token stays alive in `tok` (this thread's stack, black_box after the join) while the
    // other thread has its raw word bound.
    let tok = cancel_new();
    let tr = tok.raw() as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let t = Instant::now();
        let (code, msg) = with_cancel(tr as RtValue, || err(f()));
        let _ = tx.send(Instant::now());
        (code, msg, t.elapsed())
    });
    std::thread::sleep(after);
    let t = Instant::now();
    cancel_trigger(tok.raw());
    let (code, msg, took) = h.join().unwrap();
    let done = rx.recv().unwrap();
    std::hint::black_box(tok);
    Outcome { code, msg, took, late: Some(done.saturating_duration_since(t)) }
}

struct Run {
    fails: Vec<String>,
}

impl Run {
    fn expect(&mut self, case: &str, func: &str, want: Code, o: Outcome) {
        let late = o.late.map(|l| format!(", {l:?} after the cancel")).unwrap_or_default();
        eprintln!("dns_cancel: {case}: {} in {:?}{late}: {}", o.code.name(), o.took, o.msg);
        if o.code != want {
            self.fails.push(format!("{case}: expected {}, got {}: {}", want.name(), o.code.name(), o.msg));
        }
        if !o.msg.starts_with(func) {
            self.fails.push(format!("{case}: the message does not name {func}: {}", o.msg));
        }
        if o.took >= BOUND {
            self.fails.push(format!("{case}: took {:?} (bound {BOUND:?})", o.took));
        }
    }
    fn check(&mut self, ok: bool, what: String) {
        eprintln!("dns_cancel: {what}");
        if !ok {
            self.fails.push(what);
        }
    }
}

fn socket_case(f: impl FnOnce(RtValue) -> RtValue + Send + 'static) -> impl FnOnce() -> RtValue + Send + 'static {
    move || {
        let s = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
        let r = f(s);
        ok(rt_socket_close(s));
        r
    }
}

fn child() {
    let rc = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(rc.contains("nameserver 127.0.0.1") && rc.contains("timeout:30"), "the bind mount is not in force: {rc:?}");
    let dns = start_dns();
    let fd0 = fds();
    let mut run = Run { fails: Vec::new() };
    let http = format!("http://{NAME}/");
    let hp = format!("{NAME}:80");
    let ws = format!("ws://{NAME}/");

    let u = http.clone();
    run.expect("rt_http_get {timeout_ms: 300}", "rt_http_get", Code::Timeout, plain(move || {
        rt_http_get(text(&u), dict(&[("timeout_ms", Value::int(300))]))
    }));
    let q = dns.udp.load(Ordering::SeqCst);
    run.check(q >= 1, format!("the resolver got {q} queries during the first case (must be >= 1: getaddrinfo waited on it)"));

    let u = http.clone();
    run.expect("rt_http_get cancelled at 200 ms", "rt_http_get", Code::Cancelled, cancelled(Duration::from_millis(200), move || {
        rt_http_get(text(&u), NIL)
    }));
    let u = http.clone();
    run.expect("rt_http_get under a 300 ms thread deadline", "rt_http_get", Code::Timeout, deadline(300, move || {
        rt_http_get(text(&u), NIL)
    }));
    run.expect(
        "rt_socket_connect under a 300 ms thread deadline",
        "rt_socket_connect",
        Code::Timeout,
        deadline(300, socket_case(|s| rt_socket_connect(s, text(NAME), int(80), NIL))),
    );
    run.expect(
        "rt_socket_connect cancelled at 200 ms",
        "rt_socket_connect",
        Code::Cancelled,
        cancelled(Duration::from_millis(200), socket_case(|s| rt_socket_connect(s, text(NAME), int(80), NIL))),
    );
    let a = hp.clone();
    run.expect("rt_io_tcp_connect under a 300 ms thread deadline", "rt_io_tcp_connect", Code::Timeout, deadline(300, move || {
        rt_io_tcp_connect(text(&a))
    }));
    let u = ws.clone();
    run.expect("rt_ws_connect cancelled at 200 ms", "rt_ws_connect", Code::Cancelled, cancelled(Duration::from_millis(200), move || {
        rt_ws_connect(text(&u), NIL)
    }));
    // The functions' own timeouts, no thread deadline.
    run.expect(
        "rt_socket_connect {timeout_ms: 300}",
        "rt_socket_connect",
        Code::Timeout,
        plain(socket_case(|s| rt_socket_connect(s, text(NAME), int(80), dict(&[("timeout_ms", Value::int(300))])))),
    );
    let a = hp.clone();
    run.expect("rt_io_tcp_connect_timeout(300)", "rt_io_tcp_connect_timeout", Code::Timeout, plain(move || {
        rt_io_tcp_connect_timeout(text(&a), int(300))
    }));
    let u = ws.clone();
    run.expect("rt_ws_connect {timeout_ms: 300}", "rt_ws_connect", Code::Timeout, plain(move || {
        rt_ws_connect(text(&u), dict(&[("timeout_ms", Value::int(300))]))
    }));

    // The cancel case 20 times: descriptors and lookup threads must not grow per call.
    let (f1, r1, q1) = (fds(), resolvers(), dns.udp.load(Ordering::SeqCst));
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let u = http.clone();
        let o = cancelled(Duration::from_millis(200), move || rt_http_get(text(&u), NIL));
        worst = worst.max(o.took);
        if o.code != Code::Cancelled || o.took >= BOUND {
            run.fails.push(format!("repeat {i}: {} in {:?}: {}", o.code.name(), o.took, o.msg));
        }
    }
    ffi_sdk::testing::collect(); // the triggered tokens' slots (and eventfds) become reusable
    let (f2, r2, q2) = (fds(), resolvers(), dns.udp.load(Ordering::SeqCst));
    eprintln!("dns_cancel: 20 cancelled rt_http_get: slowest {worst:?}; queries {q1} -> {q2}");
    run.check(
        f2.1 <= f1.1 + 1,
        format!("descriptors (all, sockets) before / after 20 cancels: {f1:?} / {f2:?} (at the start {fd0:?})"),
    );
    run.check(r2 <= r1 + 1, format!("rt-resolve threads before / after 20 cancels: {r1} / {r2}"));
    // 20 more: the first round's tokens were collected, so their slots (eventfds) are reused and
    // no descriptor of any kind is added.
    for i in 0..20 {
        let u = http.clone();
        let o = cancelled(Duration::from_millis(50), move || rt_http_get(text(&u), NIL));
        if o.code != Code::Cancelled || o.took >= BOUND {
            run.fails.push(format!("second round {i}: {} in {:?}: {}", o.code.name(), o.took, o.msg));
        }
    }
    ffi_sdk::testing::collect();
    let (f2b, r2b) = (fds(), resolvers());
    run.check(
        f2b.0 <= f2.0 + 2 && f2b.1 <= f1.1 + 1 && r2b <= r1 + 1,
        format!("after 20 more cancels: descriptors (all, sockets) {f2b:?}, rt-resolve threads {r2b}"),
    );

    // Distinct names each get one lookup (threads bounded by the names in flight, not by calls).
    for i in 0..4 {
        let u = format!("http://n{}.{NAME}/", i % 2);
        let o = deadline(100, move || rt_http_get(text(&u), NIL));
        if o.code != Code::Timeout || o.took >= BOUND {
            run.fails.push(format!("distinct names {i}: {} in {:?}: {}", o.code.name(), o.took, o.msg));
        }
    }
    let r4 = resolvers();
    run.check(r4 == r2b + 2, format!("rt-resolve threads after 2 calls each for 2 more names: {r4} (before {r2b})"));

    // The abandoned lookups end when the resolver answers (here: NXDOMAIN now, instead of the
    // 30 s timeout): their threads exit and their sockets close.
    let held = dns.held.lock().unwrap().len();
    dns.answer.store(true, Ordering::SeqCst);
    let t = Instant::now();
    while resolvers() > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (f3, r3) = (fds(), resolvers());
    run.check(r3 == 0, format!("after answering {held} held queries: {r3} rt-resolve threads left after {:?}", t.elapsed()));
    run.check(f3.1 <= fd0.1, format!("descriptors (all, sockets) after the lookups ended: {f3:?} (at the start {fd0:?})"));

    // A lookup through the helper (own timeout given) still gives real answers: a name in the
    // hosts file connects on the right port, and the resolver's NXDOMAIN is NotFound.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port() as i64;
    let t = Instant::now();
    let c = plain_ok(socket_case(move |s| rt_socket_connect(s, text(LOCAL), int(port), dict(&[("timeout_ms", Value::int(2000))]))));
    run.check(c.is_none(), format!("rt_socket_connect({LOCAL}, {port}, {{timeout_ms: 2000}}): {c:?} in {:?}", t.elapsed()));
    let a = format!("{LOCAL}:{port}");
    let t = Instant::now();
    let c = plain_ok(move || {
        let h = rt_io_tcp_connect_timeout(text(&a), int(2000));
        if !Value::from_raw(h).is_error() {
            ok(rt_socket_close(h));
        }
        h
    });
    run.check(c.is_none(), format!("rt_io_tcp_connect_timeout({LOCAL}:{port}, 2000): {c:?} in {:?}", t.elapsed()));
    drop(l);
    let u = http.clone();
    let o = plain(move || rt_http_get(text(&u), dict(&[("timeout_ms", Value::int(2000))])));
    run.check(
        o.code == Code::NotFound && o.took < BOUND,
        format!("rt_http_get {{timeout_ms: 2000}} once the resolver answers NXDOMAIN: {} in {:?}: {}", o.code.name(), o.took, o.msg),
    );
    let o = plain(socket_case(|s| rt_socket_connect(s, text(NAME), int(80), dict(&[("timeout_ms", Value::int(2000))]))));
    run.check(
        o.code == Code::NotFound && o.took < BOUND,
        format!("rt_socket_connect {{timeout_ms: 2000}} once the resolver answers NXDOMAIN: {} in {:?}: {}", o.code.name(), o.took, o.msg),
    );

    let seen = dns.seen.lock().unwrap().clone();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for s in &seen {
        match kinds.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => kinds.push((s.clone(), 1)),
        }
    }
    let total = dns.udp.load(Ordering::SeqCst);
    eprintln!("dns_cancel: the resolver saw {total} UDP queries {kinds:?}, {} TCP connections", dns.tcp.load(Ordering::SeqCst));
    run.check(total >= 1, format!("UDP queries in all: {total} (must be >= 1)"));
    assert!(run.fails.is_empty(), "dns_cancel failures:\n  {}", run.fails.join("\n  "));
    println!("{MARKER}");
}
