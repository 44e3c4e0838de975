//! HTTP client against servers started here on 127.0.0.1 / ::1 only:
//! tiny_http (routes below), raw TCP servers for broken responses, and a
//! rustls server with a certificate made by rcgen.

mod common;

use ffi_net::http::*;
use ffi_net::url::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{details, dict, err, in_child, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const BIG: usize = 8 << 20;

/// A tiny_http server on `host`, answering the routes used by these tests. Returns its port.
fn server(host: &str) -> u16 {
    let s = tiny_http::Server::http(format!("{host}:0")).expect("test server");
    let port = s.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for mut rq in s.incoming_requests() {
            std::thread::spawn(move || {
                let url = rq.url().to_string();
                let path = url.split('?').next().unwrap_or("").to_string();
                let hdr = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap();
                let r = match path.as_str() {
                    "/hello" => tiny_http::Response::from_string("hello").boxed(),
                    "/query" => tiny_http::Response::from_string(url.split_once('?').map(|x| x.1).unwrap_or("")).boxed(),
                    "/echo" => {
                        let mut b = Vec::new();
                        rq.as_reader().read_to_end(&mut b).unwrap();
                        let ct = rq.headers().iter().find(|h| h.field.equiv("content-type")).map(|h| h.value.to_string()).unwrap_or_default();
                        let m = rq.method().to_string();
                        tiny_http::Response::from_data(b).with_header(hdr("x-method", &m)).with_header(hdr("x-content-type", &ct)).boxed()
                    }
                    "/headers" => {
                        let v = |n: &'static str| rq.headers().iter().find(|h| h.field.equiv(n)).map(|h| h.value.to_string()).unwrap_or_default();
                        tiny_http::Response::from_string(format!("{}|{}", v("x-test"), v("authorization"))).boxed()
                    }
                    "/redirect" => tiny_http::Response::empty(302).with_header(hdr("location", "/hello")).boxed(),
                    "/redirect3" => tiny_http::Response::empty(301).with_header(hdr("location", "/redirect")).boxed(),
                    "/loop" => tiny_http::Response::empty(302).with_header(hdr("location", "/loop")).boxed(),
                    "/see-other" => tiny_http::Response::empty(303).with_header(hdr("location", "/echo")).boxed(),
                    "/to" => {
                        let target = url.split_once("?u=").map(|x| x.1).unwrap_or("").to_string();
                        tiny_http::Response::empty(302).with_header(hdr("location", &decode(&target))).boxed()
                    }
                    "/missing" => tiny_http::Response::from_string("nope").with_status_code(404).boxed(),
                    "/gzip" => {
                        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                        e.write_all(&b"gzip body ".repeat(1000)).unwrap();
                        tiny_http::Response::from_data(e.finish().unwrap()).with_header(hdr("content-encoding", "gzip")).boxed()
                    }
                    "/deflate" => {
                        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                        e.write_all(b"deflate body").unwrap();
                        tiny_http::Response::from_data(e.finish().unwrap()).with_header(hdr("content-encoding", "deflate")).boxed()
                    }
                    "/chunked" => {
                        let body = std::io::Cursor::new(b"chunk ".repeat(5000));
                        tiny_http::Response::new(200.into(), vec![], body, None, None).with_chunked_threshold(16).boxed()
                    }
                    "/big" => tiny_http::Response::from_data(vec![b'x'; BIG]).boxed(),
                    "/big-chunked" => {
                        tiny_http::Response::new(200.into(), vec![], std::io::Cursor::new(vec![b'y'; BIG]), None, None).boxed()
                    }
                    "/slow" => {
                        std::thread::sleep(Duration::from_millis(3000));
                        tiny_http::Response::from_string("late").boxed()
                    }
                    _ => tiny_http::Response::from_string("?").with_status_code(500).boxed(),
                };
                let _ = rq.respond(r);
            });
        }
    });
    port
}

fn decode(s: &str) -> String {
    String::from_utf8(ffi_net::url::decode_bytes(s.as_bytes())).unwrap()
}

fn opts(pairs: &[(&str, Value)]) -> RtValue {
    dict(pairs)
}

fn body_text(r: Value) -> String {
    let b = r.get("body");
    String::from_utf8(b.as_text_or_bytes().unwrap().to_vec()).unwrap()
}

#[track_caller]
fn expect(v: RtValue, want: Code, func: &str) -> String {
    let (c, m) = err(v);
    assert_eq!(c, want, "{m}");
    assert!(m.starts_with(func), "message should name {func}: {m}");
    m
}

#[test]
fn get_text_bytes_headers_query() {
    let p = server("127.0.0.1");
    let u = format!("http://127.0.0.1:{p}/hello");
    let r = ok(rt_http_get(text(&u), NIL));
    assert_eq!(r.get("status").as_int(), Some(200));
    assert_eq!(r.get("body").as_bytes(), Some(&b"hello"[..]));
    assert_eq!(r.get("headers").get("content-length").as_text(), Some("5"));
    let r = ok(rt_http_get(text(&u), opts(&[("text", Value::TRUE)])));
    assert_eq!(r.get("body").as_text(), Some("hello"));
    // Query parameters are encoded and appended.
    let q = Value::dict().set("a b", Value::text("x&y")).set("n", Value::text("1"));
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/query?z=0")), opts(&[("query", q), ("text", Value::TRUE)])));
    assert_eq!(r.get("body").as_text(), Some("z=0&a%20b=x%26y&n=1"));
    // Headers go out; user-info in the URL becomes Basic auth.
    let h = Value::dict().set("X-Test", Value::text("t1"));
    let r = ok(rt_http_get(text(&format!("http://me:s%20cret@127.0.0.1:{p}/headers")), opts(&[("headers", h)])));
    assert_eq!(body_text(r), "t1|Basic bWU6cyBjcmV0");
}

#[test]
fn post_put_patch_bodies_and_json() {
    let p = server("127.0.0.1");
    let u = text(&format!("http://127.0.0.1:{p}/echo"));
    let r = ok(rt_http_post(u, text("plain"), NIL));
    assert_eq!(body_text(r), "plain");
    assert!(r.get("headers").get("x-content-type").as_text().unwrap().starts_with("text/plain"));
    let r = ok(rt_http_post(u, ffi_sdk::testing::bytes(&[0, 1, 2]), text("application/x-thing")));
    assert_eq!(r.get("body").as_bytes(), Some(&[0u8, 1, 2][..]));
    assert_eq!(r.get("headers").get("x-content-type").as_text(), Some("application/x-thing"));
    let j = Value::dict().set("a", Value::int(1)).set("b", Value::text_array(["x"]));
    let r = ok(rt_http_post(u, j.raw(), NIL));
    assert_eq!(body_text(r), r#"{"a":1,"b":["x"]}"#);
    assert_eq!(r.get("headers").get("x-content-type").as_text(), Some("application/json"));
    let r = ok(rt_http_put(u, text("p"), NIL));
    assert_eq!(r.get("headers").get("x-method").as_text(), Some("PUT"));
    let r = ok(rt_http_patch(u, text("p"), NIL));
    assert_eq!(r.get("headers").get("x-method").as_text(), Some("PATCH"));
    let r = ok(rt_http_request(text("delete"), u, NIL));
    assert_eq!(r.get("headers").get("x-method").as_text(), Some("DELETE"));
    let r = ok(rt_http_request(text("POST"), u, opts(&[("body", Value::text("via opts"))])));
    assert_eq!(body_text(r), "via opts");
    let r = ok(rt_http_head(text(&format!("http://127.0.0.1:{p}/hello")), NIL));
    assert_eq!(r.get("status").as_int(), Some(200));
    assert_eq!(r.get("body").as_bytes().unwrap().len(), 0);
}

#[test]
fn redirects_followed_limited_and_303_becomes_get() {
    let p = server("127.0.0.1");
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/redirect3")), NIL));
    assert_eq!(body_text(r), "hello");
    assert!(r.get("url").as_text().unwrap().ends_with("/hello"));
    let m = expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/loop")), NIL), Code::LimitExceeded, "rt_http_get");
    assert!(m.contains("redirects"), "{m}");
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/redirect")), opts(&[("max_redirects", Value::int(0))])));
    assert_eq!(r.get("status").as_int(), Some(302));
    let r = ok(rt_http_post(text(&format!("http://127.0.0.1:{p}/see-other")), text("gone"), NIL));
    assert_eq!(r.get("headers").get("x-method").as_text(), Some("GET"));
    assert_eq!(body_text(r), "");
    // Authorization is not sent to another origin (another port here).
    let q = server("127.0.0.1");
    let to = encode(&format!("http://127.0.0.1:{q}/headers"));
    let h = Value::dict().set("Authorization", Value::text("Bearer secret")).set("X-Test", Value::text("kept"));
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/to?u={to}")), opts(&[("headers", h)])));
    assert_eq!(body_text(r), "kept|");
}

#[test]
fn status_errors_decoding_chunked() {
    let p = server("127.0.0.1");
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/missing")), NIL));
    assert_eq!(r.get("status").as_int(), Some(404));
    let v = rt_http_get(text(&format!("http://127.0.0.1:{p}/missing")), opts(&[("error_status", Value::TRUE)]));
    expect(v, Code::Io, "rt_http_get");
    assert_eq!(details(v).get("status").as_int(), Some(404));
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/gzip")), NIL));
    assert_eq!(body_text(r), "gzip body ".repeat(1000));
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/gzip")), opts(&[("decompress", Value::FALSE)])));
    assert_eq!(&r.get("body").as_bytes().unwrap()[..2], &[0x1f, 0x8b]);
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/deflate")), NIL));
    assert_eq!(body_text(r), "deflate body");
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/chunked")), NIL));
    assert_eq!(r.get("headers").get("transfer-encoding").as_text(), Some("chunked"));
    assert_eq!(body_text(r), "chunk ".repeat(5000));
}

#[test]
fn size_limit_before_memory_grows() {
    let p = server("127.0.0.1");
    let lim = opts(&[("max_bytes", Value::int(1 << 20))]);
    let m = expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/big")), lim), Code::LimitExceeded, "rt_http_get");
    assert!(m.contains("limit"), "{m}");
    expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/big-chunked")), lim), Code::LimitExceeded, "rt_http_get");
    let r = ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/big")), NIL));
    assert_eq!(r.get("body").as_bytes().unwrap().len(), BIG);
}

#[test]
fn timeouts_fire_on_time() {
    let p = server("127.0.0.1");
    let t = Instant::now();
    expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/slow")), opts(&[("timeout_ms", Value::int(300))])), Code::Timeout, "rt_http_get");
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(290) && e < Duration::from_millis(1500), "{e:?}");
    // A server that accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let q = l.local_addr().unwrap().port();
    let t = Instant::now();
    expect(rt_http_get(text(&format!("http://127.0.0.1:{q}/")), opts(&[("timeout_ms", Value::int(200))])), Code::Timeout, "rt_http_get");
    assert!(t.elapsed() < Duration::from_millis(1500));
    drop(l);
}

/// A raw server that announces `len` bytes, sends `sent`, then closes.
fn truncating_server(len: usize, sent: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            let _ = s.write_all(&vec![b'z'; sent]);
            let _ = s.flush();
            drop(s);
        }
    });
    port
}

#[test]
fn server_closing_mid_body_is_an_error() {
    let p = truncating_server(100_000, 5_000);
    let m = expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/")), NIL), Code::Io, "rt_http_get");
    assert!(m.contains("127.0.0.1"), "{m}");
}

fn dir_names(d: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn download_streams_checks_sha_and_leaves_nothing_on_failure() {
    let p = server("127.0.0.1");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("big.bin");
    let r = ok(rt_http_download(text(&format!("http://127.0.0.1:{p}/big")), text(out.to_str().unwrap()), NIL));
    assert_eq!(r.get("bytes").as_int(), Some(BIG as i64));
    let want = ring::digest::digest(&ring::digest::SHA256, &vec![b'x'; BIG]);
    let hex: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(r.get("sha256").as_text(), Some(hex.as_str()));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), BIG as u64);
    // Wrong sha256: no file replaced, no temp left.
    let out2 = d.path().join("bad.bin");
    let bad = opts(&[("sha256", Value::text(&"0".repeat(64)))]);
    expect(rt_http_download(text(&format!("http://127.0.0.1:{p}/hello")), text(out2.to_str().unwrap()), bad), Code::Io, "rt_http_download");
    // Interrupted halfway.
    let q = truncating_server(1_000_000, 500_000);
    expect(rt_http_download(text(&format!("http://127.0.0.1:{q}/")), text(out2.to_str().unwrap()), NIL), Code::Io, "rt_http_download");
    // Timeout.
    expect(
        rt_http_download(text(&format!("http://127.0.0.1:{p}/slow")), text(out2.to_str().unwrap()), opts(&[("timeout_ms", Value::int(200))])),
        Code::Timeout,
        "rt_http_download",
    );
    // 404 writes nothing.
    expect(rt_http_download(text(&format!("http://127.0.0.1:{p}/missing")), text(out2.to_str().unwrap()), NIL), Code::Io, "rt_http_download");
    assert_eq!(dir_names(d.path()), vec!["big.bin".to_string()]);
}

#[test]
fn bad_input_is_an_error() {
    for (u, c) in [
        ("not a url", Code::InvalidArgument),
        ("ftp://127.0.0.1/x", Code::Unsupported),
        ("http://", Code::InvalidArgument),
        ("http://:80/", Code::InvalidArgument),
        ("http://127.0.0.1:99999/", Code::InvalidArgument),
    ] {
        expect(rt_http_get(text(u), NIL), c, "rt_http_get");
    }
    expect(rt_http_get(Value::int(3).raw(), NIL), Code::TypeMismatch, "rt_http_get");
    expect(rt_http_get(text("http://127.0.0.1:1/"), opts(&[("bogus", Value::TRUE)])), Code::InvalidArgument, "rt_http_get");
    expect(rt_http_get(text("http://127.0.0.1:1/"), opts(&[("timeout_ms", Value::text("x"))])), Code::InvalidArgument, "rt_http_get");
    expect(rt_http_request(text("GE T"), text("http://127.0.0.1:1/"), NIL), Code::InvalidArgument, "rt_http_request");
    expect(rt_http_post(text("http://127.0.0.1:1/"), Value::int(1).raw(), NIL), Code::TypeMismatch, "rt_http_post");
    // Nothing listens on port 1: connection refused is Io with errno.
    let v = rt_http_get(text("http://127.0.0.1:1/"), NIL);
    let (c, m) = err(v);
    assert!(matches!(c, Code::Io), "{m}");
    // DNS failure on a reserved name (never a public host).
    expect(rt_http_get(text("http://nonexistent.invalid/"), NIL), Code::NotFound, "rt_http_get");
    // A password in the URL never appears in a message.
    let (_, m) = err(rt_http_get(text("http://user:hunter2@127.0.0.1:1/x?token=abc"), NIL));
    assert!(!m.contains("hunter2") && !m.contains("token=abc"), "{m}");
    // URL encoding round trip and bad UTF-8.
    assert_eq!(ok(rt_http_url_encode(text("a b/ü~"))).as_text(), Some("a%20b%2F%C3%BC~"));
    assert_eq!(ok(rt_http_url_decode(text("a%20b%2F%C3%BC~"))).as_text(), Some("a b/ü~"));
    expect(rt_http_url_decode(text("%FF")), Code::Parse, "rt_http_url_decode");
}

#[test]
fn simple_client_handle() {
    let p = server("127.0.0.1");
    let c = ok(rt_http_client_create()).raw();
    ok(rt_http_client_set_header(c, text("X-Test"), text("from-client")));
    ok(rt_http_client_set_timeout(c, Value::int(5000).raw()));
    let r = ok(rt_http_client_request(c, text("GET"), text(&format!("http://127.0.0.1:{p}/headers")), NIL, NIL));
    assert_eq!(body_text(r), "from-client|");
    let hs = Value::text_array(["X-Test: per-call"]);
    let r = ok(rt_http_client_request(c, text("GET"), text(&format!("http://127.0.0.1:{p}/headers")), hs.raw(), NIL));
    assert_eq!(body_text(r), "per-call|");
    expect(rt_http_client_set_header(c, text("bad name"), text("v")), Code::InvalidArgument, "rt_http_client_set_header");
    ok(rt_http_client_destroy(c));
    ok(rt_http_client_destroy(c));
    expect(rt_http_client_request(c, text("GET"), text("http://127.0.0.1:1/"), NIL, NIL), Code::Closed, "rt_http_client_request");
}

/// A rustls server with an rcgen certificate for localhost / 127.0.0.1; returns (port, CA PEM).
fn tls_server() -> (u16, String) {
    let (cfg, pem) = common::self_signed_tls();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut t = rustls::StreamOwned::new(conn, s);
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match t.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let _ = t.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure");
                let _ = t.flush();
                t.conn.send_close_notify();
                let _ = t.flush();
            });
        }
    });
    (port, pem)
}

#[test]
fn tls_with_ca_file_and_certificate_errors() {
    let (p, pem) = tls_server();
    let d = tempfile::tempdir().unwrap();
    let ca = d.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let o = opts(&[("ca_file", Value::text(ca.to_str().unwrap()))]);
    let r = ok(rt_http_get(text(&format!("https://localhost:{p}/")), o));
    assert_eq!(body_text(r), "secure");
    let r = ok(rt_http_get(text(&format!("https://127.0.0.1:{p}/")), o));
    assert_eq!(body_text(r), "secure");
    // Not in the platform's roots: the Error says it is the certificate.
    let m = expect(rt_http_get(text(&format!("https://localhost:{p}/")), NIL), Code::Io, "rt_http_get");
    assert!(m.to_lowercase().contains("certificate"), "{m}");
    let bad = d.path().join("bad.pem");
    std::fs::write(&bad, "not pem").unwrap();
    expect(rt_http_get(text(&format!("https://localhost:{p}/")), opts(&[("ca_file", Value::text(bad.to_str().unwrap()))])), Code::Parse, "rt_http_get");
}

fn have_v6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn cap_host_port_scope() {
    in_child("cap_host_port_scope", || {
        let p = server("127.0.0.1");
        let q = server("127.0.0.1");
        restrict(&format!("net.http=127.0.0.1:{p}"));
        ok(rt_http_get(text(&format!("http://127.0.0.1:{p}/hello")), NIL));
        // localhost resolves to the allowed address: allowed by the address.
        ok(rt_http_get(text(&format!("http://localhost:{p}/hello")), NIL));
        let m = expect(rt_http_get(text(&format!("http://127.0.0.1:{q}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
        assert!(m.contains("net.http"), "{m}");
        // A redirect hop to a denied port is denied.
        let to = encode(&format!("http://127.0.0.1:{q}/hello"));
        expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/to?u={to}")), NIL), Code::CapabilityDenied, "rt_http_get");
        // Downloads too, and nothing is written.
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        expect(rt_http_download(text(&format!("http://127.0.0.1:{q}/hello")), text(f.to_str().unwrap()), NIL), Code::CapabilityDenied, "rt_http_download");
        assert!(!f.exists());
    });
}

#[test]
fn cap_name_scope_covers_its_addresses() {
    in_child("cap_name_scope_covers_its_addresses", || {
        let p = server("127.0.0.1");
        // Deny by name: the IP text of that name is denied too.
        restrict("net.http=*,!localhost");
        expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
        expect(rt_http_get(text(&format!("http://localhost:{p}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
    });
}

#[test]
fn cap_wildcard_scope() {
    in_child("cap_wildcard_scope", || {
        let p = server("127.0.0.1");
        restrict("net.http=*.example.org");
        // Loopback is not below example.org (and no name in the test reaches DNS beyond /etc/hosts).
        expect(rt_http_get(text(&format!("http://127.0.0.1:{p}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
        expect(rt_http_get(text(&format!("http://localhost:{p}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
    });
}

#[test]
fn cap_v6_any_port_scope() {
    if !have_v6() {
        eprintln!("no ::1 here; skipped");
        return;
    }
    in_child("cap_v6_any_port_scope", || {
        let p = server("[::1]");
        let q = server("127.0.0.1");
        restrict("net.http=[::1]:*");
        let r = ok(rt_http_get(text(&format!("http://[::1]:{p}/hello")), NIL));
        assert_eq!(body_text(r), "hello");
        expect(rt_http_get(text(&format!("http://127.0.0.1:{q}/hello")), NIL), Code::CapabilityDenied, "rt_http_get");
        // Redirect from ::1 to 127.0.0.1: the hop is denied.
        let to = encode(&format!("http://127.0.0.1:{q}/hello"));
        expect(rt_http_get(text(&format!("http://[::1]:{p}/to?u={to}")), NIL), Code::CapabilityDenied, "rt_http_get");
    });
}

#[test]
fn cap_dropped_entirely() {
    in_child("cap_dropped_entirely", || {
        restrict("net.http=false");
        expect(rt_http_get(text("http://127.0.0.1:1/"), NIL), Code::CapabilityDenied, "rt_http_get");
    });
}
