//! Deadlines and cancel tokens (docs/DEADLINES.md) in every step of the
//! network functions: connect to a blackhole (a loopback listener whose
//! accept queue is full, so SYNs are dropped: nothing outside the machine is
//! contacted), the TLS handshake with a silent server, writing a request
//! body to a server that does not read, and a download whose server stalls
//! or trickles. Each stop must be prompt and leave no temporary file.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_net::http::*;
use ffi_net::tcp::*;
use ffi_net::ws::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{cancel_new, cancel_trigger, dict, err, text, with_cancel, with_deadline_us, NIL};
use ffi_sdk::{Code, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// The most a stop may take after its trigger (a loaded 2-core machine, debug build).
const PROMPT: Duration = Duration::from_millis(700);

/// Runs `f` on a thread with a fresh token bound, triggers it after `after`; the Error code and
/// how long after the trigger the call returned.
fn cancelled_after(after: Duration, f: impl FnOnce() -> RtValue + Send + 'static) -> (Code, Duration) {
    // The token is kept alive in `tok` (on this registered thread's stack, black_box after the
    // join) while the thread has its raw word `tr` bound.
    let tok = cancel_new();
    let tr = tok.raw() as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let v = with_cancel(tr as RtValue, || {
            let v = f();
            let _ = tx.send(Instant::now());
            v
        });
        err(v)
    });
    std::thread::sleep(after);
    let t = Instant::now();
    cancel_trigger(tok.raw());
    let (c, m) = h.join().unwrap();
    let done = rx.recv().unwrap();
    std::hint::black_box(tok);
    assert!(c == Code::Cancelled, "{m}");
    (c, done.saturating_duration_since(t))
}

/// Runs `f` under a deadline of `ms`: the Error code and the time it took.
fn under_deadline(ms: i64, f: impl FnOnce() -> RtValue + Send + 'static) -> (Code, Duration) {
    std::thread::spawn(move || {
        let t = Instant::now();
        let v = with_deadline_us(ms * 1000, f);
        (err(v).0, t.elapsed())
    })
    .join()
    .unwrap()
}

/// A loopback listener that never accepts, with its queue filled: connects to it hang.
/// None when the kernel completes them anyway (then the connect tests are skipped).
fn blackhole() -> Option<(socket2::Socket, Vec<socket2::Socket>, u16)> {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    l.listen(0).unwrap();
    let port = l.local_addr().unwrap().as_socket().unwrap().port();
    let mut fill = Vec::new();
    for _ in 0..4 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&l.local_addr().unwrap());
        fill.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let probe = std::net::TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_millis(300));
    if probe.is_ok() {
        eprintln!("cancel: the kernel accepted a connect to a full queue; blackhole tests skipped");
        return None;
    }
    Some((l, fill, port))
}

/// Runs `f` against a fresh blackhole (a full queue stays a blackhole only until the filling
/// sockets retransmit their SYNs, about 1 s).
fn with_blackhole(f: impl FnOnce(u16)) {
    match blackhole() {
        Some((_l, _fill, port)) => f(port),
        None => {}
    }
}

#[test]
fn connect_to_a_blackhole_stops_promptly() {
    with_blackhole(|port| {
        let u = format!("http://127.0.0.1:{port}/");
        let (_, late) = cancelled_after(Duration::from_millis(200), move || rt_http_get(text(&u), NIL));
        eprintln!("cancel: rt_http_get connecting to a blackhole returned {late:?} after the cancel");
        assert!(late < PROMPT, "{late:?}");
    });
    with_blackhole(|port| {
        let u = format!("https://127.0.0.1:{port}/");
        let (c, took) = under_deadline(300, move || rt_http_get(text(&u), NIL));
        assert_eq!(c, Code::Timeout);
        eprintln!("cancel: rt_http_get connecting to a blackhole under a 300 ms deadline took {took:?}");
        assert!(took < Duration::from_millis(300) + PROMPT, "{took:?}");
    });
    with_blackhole(|port| {
        // The request's own connect timeout too.
        let u = format!("http://127.0.0.1:{port}/");
        let t = Instant::now();
        let (c, _) = err(rt_http_get(text(&u), dict(&[("connect_timeout_ms", Value::int(200))])));
        assert_eq!(c, Code::Timeout);
        assert!(t.elapsed() < Duration::from_millis(200) + PROMPT, "{:?}", t.elapsed());
    });
    with_blackhole(|port| {
        let a = format!("127.0.0.1:{port}");
        let (_, late) = cancelled_after(Duration::from_millis(150), move || rt_io_tcp_connect(text(&a)));
        assert!(late < PROMPT, "{late:?}");
    });
    with_blackhole(|port| {
        let u = format!("ws://127.0.0.1:{port}/");
        let (_, late) = cancelled_after(Duration::from_millis(150), move || rt_ws_connect(text(&u), NIL));
        eprintln!("cancel: rt_ws_connect to a blackhole returned {late:?} after the cancel");
        assert!(late < PROMPT, "{late:?}");
    });
}

/// Accepts connections and holds them open without reading or writing.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn tls_handshake_and_body_write_stalls_stop_promptly() {
    let port = silent_server();
    let u = format!("https://127.0.0.1:{port}/");
    let (_, late) = cancelled_after(Duration::from_millis(200), move || rt_http_get(text(&u), NIL));
    eprintln!("cancel: rt_http_get in a TLS handshake with a silent server returned {late:?} after the cancel");
    assert!(late < PROMPT, "{late:?}");
    // A 64 MiB body to a server that never reads: the write blocks once the socket buffers fill.
    let u = format!("http://127.0.0.1:{port}/upload");
    let (_, late) = cancelled_after(Duration::from_millis(300), move || {
        rt_http_post(text(&u), Value::bytes(&vec![b'z'; 64 << 20]).raw(), NIL)
    });
    eprintln!("cancel: rt_http_post writing to a server that does not read returned {late:?} after the cancel");
    assert!(late < PROMPT, "{late:?}");
    let u = format!("http://127.0.0.1:{port}/upload");
    let (c, took) = under_deadline(300, move || rt_http_post(text(&u), Value::bytes(&vec![b'z'; 64 << 20]).raw(), NIL));
    assert_eq!(c, Code::Timeout);
    assert!(took < Duration::from_millis(300) + PROMPT, "{took:?}");
    let u = format!("ws://127.0.0.1:{port}/");
    let (_, late) = cancelled_after(Duration::from_millis(150), move || rt_ws_connect(text(&u), NIL));
    assert!(late < PROMPT, "{late:?}");
}

/// Sends the head of a 100 MiB response and `first` bytes, then trickles a byte every 20 ms (or stalls).
fn half_server(trickle: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
                let _ = s.write_all(&vec![b'd'; 1 << 20]);
                for _ in 0..500 {
                    std::thread::sleep(Duration::from_millis(20));
                    if trickle && s.write_all(b"d").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn download_cancelled_mid_body_leaves_no_file() {
    for trickle in [false, true] {
        let port = half_server(trickle);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let (u, p) = (format!("http://127.0.0.1:{port}/big"), path.to_str().unwrap().to_string());
        let (_, late) = cancelled_after(Duration::from_millis(300), move || rt_http_download(text(&u), text(&p), NIL));
        eprintln!("cancel: rt_http_download mid-body (trickle: {trickle}) returned {late:?} after the cancel");
        assert!(late < PROMPT, "{late:?}");
        assert!(leftovers(dir.path()).is_empty(), "left: {:?}", leftovers(dir.path()));
        let (u, p) = (format!("http://127.0.0.1:{port}/big"), path.to_str().unwrap().to_string());
        let (c, took) = under_deadline(400, move || rt_http_download(text(&u), text(&p), NIL));
        assert_eq!(c, Code::Timeout);
        assert!(took < Duration::from_millis(400) + PROMPT, "{took:?}");
        assert!(leftovers(dir.path()).is_empty(), "left: {:?}", leftovers(dir.path()));
        // A plain GET reading the body stops too.
        let u = format!("http://127.0.0.1:{port}/big");
        let (_, late) = cancelled_after(Duration::from_millis(300), move || rt_http_get(text(&u), NIL));
        assert!(late < PROMPT, "{late:?}");
    }
}
