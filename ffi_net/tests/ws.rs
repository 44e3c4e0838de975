//! WebSocket (`rt_ws_*`) against servers started here on loopback only: an
//! echo server written with tungstenite directly (plain and over rustls
//! with an rcgen certificate), and our own server side (`rt_ws_accept`).

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use ffi_net::socket::*;
use ffi_net::ws::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{cancel_new, cancel_trigger, dict, err, in_child, ok, restrict, text, with_cancel, NIL};
use ffi_sdk::{Code, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Echoes text and binary; "silence" gets no answer; "bye" closes with 4000 "bye"; "ping-me" pings the client.
fn echo_conn<S: Read + Write>(mut ws: tungstenite::WebSocket<S>) {
    loop {
        let m = match ws.read() {
            Ok(m) => m,
            Err(_) => return,
        };
        let r = match m {
            Message::Text(t) if t.as_str() == "silence" => Ok(()),
            Message::Text(t) if t.as_str() == "bye" => {
                let _ = ws.close(Some(tungstenite::protocol::CloseFrame { code: 4000.into(), reason: "bye".into() }));
                let _ = ws.flush();
                continue;
            }
            Message::Text(t) if t.as_str() == "ping-me" => ws.send(Message::Ping(b"srv".to_vec().into())),
            Message::Text(t) if t.as_str() == "big" => ws.send(Message::binary(vec![7u8; 3 << 20])),
            Message::Text(t) => ws.send(Message::text(format!("echo:{t}"))),
            Message::Binary(b) => ws.send(Message::Binary(b)),
            _ => Ok(()),
        };
        if r.is_err() {
            return;
        }
    }
}

fn ws_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                // Checks a header the client sent, and offers the subprotocol it asked for.
                let cb = |req: &tungstenite::handshake::server::Request, mut resp: tungstenite::handshake::server::Response| {
                    if let Some(p) = req.headers().get("sec-websocket-protocol") {
                        let first = p.to_str().unwrap().split(',').next().unwrap().trim().to_string();
                        resp.headers_mut().insert("sec-websocket-protocol", first.parse().unwrap());
                    }
                    if req.uri().path() == "/deny" {
                        let mut r = tungstenite::handshake::server::ErrorResponse::new(Some("no".into()));
                        *r.status_mut() = tungstenite::http::StatusCode::FORBIDDEN;
                        return Err(r);
                    }
                    Ok(resp)
                };
                if let Ok(ws) = tungstenite::accept_hdr(s, cb) {
                    echo_conn(ws)
                }
            });
        }
    });
    port
}

fn wss_server() -> (u16, tempfile::NamedTempFile) {
    let (cfg, pem) = common::self_signed_tls();
    let mut ca = tempfile::NamedTempFile::new().unwrap();
    ca.write_all(pem.as_bytes()).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let t = rustls::StreamOwned::new(rustls::ServerConnection::new(cfg).unwrap(), s);
                if let Ok(ws) = tungstenite::accept(t) {
                    echo_conn(ws)
                }
            });
        }
    });
    (port, ca)
}

fn conn(url: &str, o: RtValue) -> Value {
    ok(rt_ws_connect(text(url), o))
}

#[test]
fn text_binary_ping_close_plain() {
    let port = ws_server();
    let ws = conn(&format!("ws://127.0.0.1:{port}/chat"), dict(&[("protocols", Value::text_array(["p1", "p2"])), ("timeout_ms", Value::int(5000))]));
    assert_eq!(ok(rt_ws_send(ws.raw(), text("hi"), NIL)), Value::TRUE);
    assert_eq!(ok(rt_ws_receive(ws.raw(), dict(&[("timeout_ms", Value::int(5000))]))).as_text(), Some("echo:hi"));
    ok(rt_ws_send(ws.raw(), Value::bytes(&[0, 1, 255]).raw(), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_bytes(), Some(&[0u8, 1, 255][..]));
    // A ping of ours comes back as a pong; a ping of the server's is answered and skipped.
    ok(rt_ws_ping(ws.raw(), text("p")));
    let m = ok(rt_ws_receive_message(ws.raw(), dict(&[("timeout_ms", Value::int(5000))])));
    assert_eq!(m.get("kind").as_text(), Some("pong"));
    assert_eq!(m.get("data").as_bytes(), Some(&b"p"[..]));
    ok(rt_ws_send(ws.raw(), text("ping-me"), NIL));
    ok(rt_ws_send(ws.raw(), text("after"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_text(), Some("echo:after"));
    // A 3 MiB message arrives whole.
    ok(rt_ws_send(ws.raw(), text("big"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_bytes().map(<[u8]>::len), Some(3 << 20));
    // Receive with a timeout: nothing consumed, the next message still arrives.
    ok(rt_ws_send(ws.raw(), text("silence"), NIL));
    let t = Instant::now();
    let (c, _) = err(rt_ws_receive(ws.raw(), dict(&[("timeout_ms", Value::int(150))])));
    assert_eq!(c, Code::Timeout);
    assert!(t.elapsed() >= Duration::from_millis(140) && t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    ok(rt_ws_send(ws.raw(), text("later"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_text(), Some("echo:later"));
    // The peer closes: its close frame, then nil.
    ok(rt_ws_send(ws.raw(), text("bye"), NIL));
    let m = ok(rt_ws_receive_message(ws.raw(), NIL));
    assert_eq!(m.get("kind").as_text(), Some("close"));
    assert_eq!(m.get("code").as_int(), Some(4000));
    assert_eq!(m.get("reason").as_text(), Some("bye"));
    assert!(ok(rt_ws_receive(ws.raw(), NIL)).is_nil());
    assert_eq!(ok(rt_ws_close(ws.raw(), NIL)), Value::TRUE);
    assert_eq!(ok(rt_ws_close(ws.raw(), NIL)), Value::TRUE);
    assert_eq!(err(rt_ws_send(ws.raw(), text("x"), NIL)).0, Code::Closed);
}

#[test]
fn close_from_our_side_and_concurrent_send_while_receiving() {
    let port = ws_server();
    let ws = conn(&format!("ws://localhost:{port}/"), NIL);
    let raw = ws.raw() as usize;
    // One thread waits in receive (not holding the connection), the other sends.
    let r = std::thread::spawn(move || ok(rt_ws_receive(raw as RtValue, dict(&[("timeout_ms", Value::int(5000))]))).as_text().map(str::to_string));
    std::thread::sleep(Duration::from_millis(100));
    ok(rt_ws_send(ws.raw(), text("x"), dict(&[("timeout_ms", Value::int(2000))])));
    assert_eq!(r.join().unwrap().as_deref(), Some("echo:x"));
    let t = Instant::now();
    assert_eq!(ok(rt_ws_close(ws.raw(), dict(&[("code", Value::int(1001)), ("reason", Value::text("going"))]))), Value::TRUE);
    assert!(t.elapsed() < Duration::from_millis(900), "the server answered the close: {:?}", t.elapsed());
}

#[test]
fn wss_through_rustls_with_ca_file() {
    let (port, ca) = wss_server();
    let ws = conn(&format!("wss://localhost:{port}/"), dict(&[("ca_file", Value::text(ca.path().to_str().unwrap()))]));
    ok(rt_ws_send(ws.raw(), text("secure"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), dict(&[("timeout_ms", Value::int(5000))]))).as_text(), Some("echo:secure"));
    ok(rt_ws_send(ws.raw(), text("silence"), NIL));
    assert_eq!(err(rt_ws_receive(ws.raw(), dict(&[("timeout_ms", Value::int(100))]))).0, Code::Timeout);
    ok(rt_ws_send(ws.raw(), text("big"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_bytes().map(<[u8]>::len), Some(3 << 20));
    ok(rt_ws_close(ws.raw(), NIL));
    // Without the CA the platform verifier rejects the certificate: an Error saying TLS.
    let (c, m) = err(rt_ws_connect(text(&format!("wss://localhost:{port}/")), dict(&[("timeout_ms", Value::int(5000))])));
    assert_eq!(c, Code::Io, "{m}");
    assert!(m.contains("TLS") || m.contains("certificate"), "{m}");
}

#[test]
fn our_server_side_with_our_client() {
    let l = ok(rt_socket_create(Value::int(4).raw(), text("tcp")));
    ok(rt_socket_bind(l.raw(), text("127.0.0.1"), Value::int(0).raw()));
    ok(rt_socket_listen(l.raw(), Value::int(8).raw()));
    let port = ok(rt_socket_local_addr(l.raw())).get("port").as_int().unwrap();
    let lr = l.raw() as usize;
    let srv = std::thread::spawn(move || {
        let a = ok(rt_socket_accept(lr as RtValue, dict(&[("timeout_ms", Value::int(5000))])));
        let ws = ok(rt_ws_accept(a.get("socket").raw(), dict(&[("timeout_ms", Value::int(5000))])));
        // Echo until the client closes.
        loop {
            let m = ok(rt_ws_receive(ws.raw(), dict(&[("timeout_ms", Value::int(5000))])));
            if m.is_nil() {
                break;
            }
            let out = match m.as_text() {
                Some(t) => Value::text(&t.to_uppercase()),
                None => m,
            };
            ok(rt_ws_send(ws.raw(), out.raw(), NIL));
        }
        ok(rt_ws_close(ws.raw(), NIL));
    });
    let ws = conn(&format!("ws://127.0.0.1:{port}/"), dict(&[("timeout_ms", Value::int(5000))]));
    ok(rt_ws_send(ws.raw(), text("shout"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_text(), Some("SHOUT"));
    ok(rt_ws_send(ws.raw(), Value::bytes(b"raw").raw(), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_bytes(), Some(&b"raw"[..]));
    ok(rt_ws_close(ws.raw(), NIL));
    srv.join().unwrap();
    // A plain HTTP request is no upgrade: Error, not a hang.
    let lr2 = l.raw() as usize;
    let srv = std::thread::spawn(move || {
        let a = ok(rt_socket_accept(lr2 as RtValue, dict(&[("timeout_ms", Value::int(5000))])));
        err(rt_ws_accept(a.get("socket").raw(), dict(&[("timeout_ms", Value::int(5000))]))).0
    });
    let mut c = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let code = srv.join().unwrap();
    assert!(matches!(code, Code::Parse | Code::Io), "{code:?}");
}

#[test]
fn cancel_and_timeouts_are_prompt() {
    let port = ws_server();
    let ws = conn(&format!("ws://127.0.0.1:{port}/"), NIL);
    // The token is kept alive in `tok` (on this registered thread's stack) until after the join;
    // `tr` and `wr` are the raw words of `tok` and `ws`, which this test keeps alive likewise.
    let tok = cancel_new();
    let (tr, wr) = (tok.raw() as usize, ws.raw() as usize);
    let h = std::thread::spawn(move || {
        with_cancel(tr as RtValue, || {
            let t = Instant::now();
            let v = rt_ws_receive(wr as RtValue, NIL);
            (err(v).0, t.elapsed())
        })
    });
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    cancel_trigger(tok.raw());
    let (c, _) = h.join().unwrap();
    assert_eq!(c, Code::Cancelled);
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    // Still usable afterwards: nothing was consumed.
    ok(rt_ws_send(ws.raw(), text("still"), NIL));
    assert_eq!(ok(rt_ws_receive(ws.raw(), NIL)).as_text(), Some("echo:still"));
    std::hint::black_box(tok);
    // A handshake the server never answers times out on time.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let t = Instant::now();
    let (c, _) = err(rt_ws_connect(text(&format!("ws://127.0.0.1:{p}/")), dict(&[("timeout_ms", Value::int(200))])));
    assert_eq!(c, Code::Timeout);
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    drop(l);
}

#[test]
fn refused_upgrade_and_bad_input() {
    let port = ws_server();
    let (c, m) = err(rt_ws_connect(text(&format!("ws://127.0.0.1:{port}/deny")), NIL));
    assert_eq!(c, Code::Io, "{m}");
    assert!(m.contains("403"), "{m}");
    assert_eq!(err(rt_ws_connect(text("http://127.0.0.1/"), NIL)).0, Code::Unsupported);
    assert_eq!(err(rt_ws_connect(text("ws//x"), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_ws_connect(text("ws://u:p@127.0.0.1/"), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_ws_connect(text("ws://127.0.0.1:99999/"), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_ws_connect(text("ws://127.0.0.1/"), dict(&[("nope", Value::TRUE)]))).0, Code::InvalidArgument);
    // Nothing listens there (port 1 on loopback): refused.
    assert_eq!(err(rt_ws_connect(text("ws://127.0.0.1:1/"), NIL)).0, Code::Io);
    let ws = conn(&format!("ws://127.0.0.1:{port}/"), NIL);
    assert_eq!(err(rt_ws_send(ws.raw(), Value::int(3).raw(), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_ws_ping(ws.raw(), Value::bytes(&[0; 200]).raw())).0, Code::LimitExceeded);
    assert_eq!(err(rt_ws_close(ws.raw(), dict(&[("code", Value::int(5))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_ws_receive(text("not a handle"), NIL)).0, Code::TypeMismatch);
    ok(rt_ws_close(ws.raw(), NIL));
}

#[test]
fn capability_scopes() {
    in_child("capability_scopes", || {
        let port = ws_server();
        restrict("net.connect=localhost:1");
        let (c, m) = err(rt_ws_connect(text(&format!("ws://127.0.0.1:{port}/")), NIL));
        assert_eq!(c, Code::CapabilityDenied, "{m}");
        let (c, _) = err(rt_ws_connect(text(&format!("ws://localhost:{port}/")), NIL));
        assert_eq!(c, Code::CapabilityDenied);
    });
}
