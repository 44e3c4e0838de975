//! HTTP server throughput on loopback, side by side in one run: 10,000
//! GETs of a 13-byte body from 16 concurrent keep-alive clients (a minimal
//! raw-socket client, so the server is what is measured) against
//! - `rt_http_server_start` with a route whose handler is a host callback
//!   (what Simple or Python does), 4 serving threads;
//! - the same server in pull mode (`rt_http_server_next` + `_respond`, 4 threads);
//! - tiny_http called directly (4 threads: recv + respond), the crate underneath;
//! - Python's `http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive, TCP_NODELAY, backlog 128), a child process.
//!
//! Rounds are interleaved and the best of each kept. Run: `cargo bench -p ffi_net --bench server`.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_net::server::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{dict, ok, text, NIL};
use ffi_sdk::Value;
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const TOTAL: usize = 10_000;
const ROUNDS: usize = 3;
const BODY: &str = "hello, world\n";

extern "C" {
    fn rt_callback_new(f: *mut c_void, user_data: *mut c_void) -> RtValue;
    fn rt_thread_attach() -> u32;
}

unsafe extern "C" fn hello(_: *mut c_void, _rq: RtValue) -> RtValue {
    Value::text(BODY).raw()
}

/// One keep-alive client: `n` GETs in sequence, each response read whole and checked.
fn client(port: u16, n: usize) -> usize {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ok_count = 0;
    let req = format!("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut line = String::new();
    for _ in 0..n {
        w.write_all(req.as_bytes()).unwrap();
        let mut len = 0usize;
        let mut status_ok = false;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => panic!("server closed the connection"),
                Ok(_) => {}
                Err(e) => panic!("port {port}: no response after {ok_count} of {n}: {e}"),
            }
            if line.starts_with("HTTP/1.") {
                status_ok = line.as_bytes()[9..12] == *b"200";
            }
            let l = line.to_ascii_lowercase();
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        if status_ok && body == BODY.as_bytes() {
            ok_count += 1;
        }
    }
    ok_count
}

/// Requests per second for TOTAL requests from CLIENTS clients.
fn load(port: u16) -> f64 {
    let t = Instant::now();
    let per = TOTAL / CLIENTS;
    let hs: Vec<_> = (0..CLIENTS).map(|_| std::thread::spawn(move || client(port, per))).collect();
    let good: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(good, per * CLIENTS, "every response must be 200 with the body");
    (per * CLIENTS) as f64 / t.elapsed().as_secs_f64()
}

fn rt_routes() -> (Value, u16) {
    let s = ok(rt_http_server_create(Value::int(0).raw(), dict(&[("threads", Value::int(4))])));
    let port = ok(rt_http_server_port(s.raw())).as_int().unwrap() as u16;
    // SAFETY: `hello` is an `unsafe extern "C" fn(*mut c_void, RtValue) -> RtValue`, the arity-1
    // callback signature rt_callback_new expects; user data NULL is allowed (the callback ignores it).
    let cb = ok(unsafe { rt_callback_new(hello as *mut c_void, std::ptr::null_mut()) });
    ok(rt_http_server_route(s.raw(), text("GET"), text("/hello"), cb.raw()));
    let raw = s.raw() as usize;
    std::thread::spawn(move || rt_http_server_start(raw as RtValue));
    (s, port)
}

fn rt_pull() -> (Value, u16) {
    let s = ok(rt_http_server_create(Value::int(0).raw(), NIL));
    let port = ok(rt_http_server_port(s.raw())).as_int().unwrap() as u16;
    for _ in 0..4 {
        let raw = s.raw() as usize;
        std::thread::spawn(move || {
            // A host thread that keeps values: registered with the collector (docs/CONCURRENCY.md).
            // SAFETY: core's `uint32_t rt_thread_attach(void)`: no arguments; this host thread stays
            // registered until it exits (never detached), as a thread keeping values must.
            unsafe { rt_thread_attach() };
            loop {
                let rq = Value::from_raw(rt_http_server_next(raw as RtValue, NIL));
                if rq.is_error() {
                    return;
                }
                rt_http_request_respond(rq.raw(), text(BODY));
            }
        });
    }
    (s, port)
}

fn tiny() -> u16 {
    let s = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = s.server_addr().to_ip().unwrap().port();
    for _ in 0..4 {
        let s = s.clone();
        std::thread::spawn(move || {
            for rq in s.incoming_requests() {
                let _ = rq.respond(tiny_http::Response::from_string(BODY));
            }
        });
    }
    port
}

const PY: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def do_GET(self):
        b = b'hello, world\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.request_queue_size = 128
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn python() -> Option<(std::process::Child, u16)> {
    let mut c = std::process::Command::new("python3").args(["-c", PY]).stdout(std::process::Stdio::piped()).spawn().ok()?;
    let mut line = String::new();
    BufReader::new(c.stdout.take()?).read_line(&mut line).ok()?;
    Some((c, line.trim().parse().ok()?))
}

fn main() {
    let (_s1, p_routes) = rt_routes();
    let (_s2, p_pull) = rt_pull();
    let p_tiny = tiny();
    let py = python();
    std::thread::sleep(Duration::from_millis(200));
    eprintln!("ports: rt routes {p_routes}, rt pull {p_pull}, tiny_http {p_tiny}, python {:?}", py.as_ref().map(|x| x.1));
    let mut best = [0f64; 4];
    for round in 1..=ROUNDS {
        let mut row = Vec::new();
        let only = std::env::var("RT_BENCH_ONLY").ok();
        for (i, p) in [Some(p_routes), Some(p_pull), Some(p_tiny), py.as_ref().map(|x| x.1)].into_iter().enumerate() {
            let Some(p) = p else { continue };
            if only.as_ref().is_some_and(|o| o != &i.to_string()) {
                continue;
            }
            let r = load(p);
            best[i] = best[i].max(r);
            row.push(format!("{r:.0}"));
        }
        println!("round {round}: rt routes / rt pull / tiny_http / python req/s: {}", row.join(" / "));
    }
    println!(
        "server best of {ROUNDS}: rt routes {:.0} req/s, rt pull {:.0}, tiny_http direct {:.0}, python http.server {:.0}",
        best[0], best[1], best[2], best[3]
    );
    println!(
        "ratios: rt routes / tiny_http {:.2}, rt pull / tiny_http {:.2}, rt routes / python {:.1}",
        best[0] / best[2],
        best[1] / best[2],
        if best[3] > 0.0 { best[0] / best[3] } else { f64::NAN }
    );
    if let Some((mut c, _)) = py {
        let _ = c.kill();
        let _ = c.wait();
    }
}
