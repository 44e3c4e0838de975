//! Sockets on 127.0.0.1 / ::1 only: TCP and UDP, timeouts, Simple's
//! `rt_io_tcp_*`, bad input and capability scopes.

use ffi_net::socket::*;
use ffi_net::tcp::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{bytes, dict, err, in_child, int, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::{Duration, Instant};

#[track_caller]
fn expect(v: RtValue, want: Code, func: &str) -> String {
    let (c, m) = err(v);
    assert_eq!(c, want, "{m}");
    assert!(m.starts_with(func), "message should name {func}: {m}");
    m
}

fn listener(fam: &str, host: &str) -> (RtValue, i64) {
    let s = ok(rt_socket_create(text(fam), text("tcp"))).raw();
    ok(rt_socket_set_option(s, text("reuseaddr"), Value::TRUE.raw()));
    ok(rt_socket_bind(s, text(host), int(0)));
    ok(rt_socket_listen(s, int(16)));
    let port = ok(rt_socket_local_addr(s)).get("port").as_int().unwrap();
    (s, port)
}

fn tcp_round_trip(fam: &str, host: &str) {
    let (l, port) = listener(fam, host);
    let c = ok(rt_socket_create(text(fam), text("tcp"))).raw();
    ok(rt_socket_connect(c, text(host), int(port), dict(&[("timeout_ms", Value::int(2000))])));
    ok(rt_socket_set_option(c, text("nodelay"), Value::TRUE.raw()));
    let a = ok(rt_socket_accept(l, dict(&[("timeout_ms", Value::int(2000))])));
    let s = a.get("socket").raw();
    assert_eq!(a.get("port").as_int(), ok(rt_socket_local_addr(c)).get("port").as_int());
    assert_eq!(ok(rt_socket_send(c, text("ping"), NIL)).as_int(), Some(4));
    assert_eq!(ok(rt_socket_recv(s, int(100), dict(&[("timeout_ms", Value::int(2000))]))).as_bytes(), Some(&b"ping"[..]));
    ok(rt_socket_send(s, bytes(b"pong"), NIL));
    assert_eq!(ok(rt_socket_recv(c, int(100), NIL)).as_bytes(), Some(&b"pong"[..]));
    assert_eq!(ok(rt_socket_peer_addr(c)).get("port").as_int(), Some(port));
    ok(rt_socket_shutdown(c, text("write")));
    assert_eq!(ok(rt_socket_recv(s, int(100), NIL)).as_bytes(), Some(&b""[..]));
    for h in [c, s, l] {
        ok(rt_socket_close(h));
        ok(rt_socket_close(h));
    }
    expect(rt_socket_send(c, text("x"), NIL), Code::Closed, "rt_socket_send");
}

#[test]
fn tcp_ipv4_and_ipv6() {
    tcp_round_trip("ipv4", "127.0.0.1");
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        tcp_round_trip("ipv6", "::1");
    }
}

#[test]
fn udp_send_to_recv_from() {
    let a = ok(rt_socket_create(int(4), text("udp"))).raw();
    ok(rt_socket_bind(a, text("127.0.0.1"), int(0)));
    let port = ok(rt_socket_local_addr(a)).get("port").as_int().unwrap();
    let b = ok(rt_socket_create(int(4), text("udp"))).raw();
    assert_eq!(ok(rt_socket_send_to(b, text("dgram"), text("127.0.0.1"), int(port))).as_int(), Some(5));
    let r = ok(rt_socket_recv_from(a, int(64), dict(&[("timeout_ms", Value::int(2000))])));
    assert_eq!(r.get("data").as_bytes(), Some(&b"dgram"[..]));
    assert_eq!(r.get("host").as_text(), Some("127.0.0.1"));
}

#[test]
fn timeouts_fire_on_time() {
    let (l, port) = listener("ipv4", "127.0.0.1");
    let t = Instant::now();
    expect(rt_socket_accept(l, dict(&[("timeout_ms", Value::int(200))])), Code::Timeout, "rt_socket_accept");
    assert!(t.elapsed() >= Duration::from_millis(190) && t.elapsed() < Duration::from_millis(1000));
    let c = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
    ok(rt_socket_connect(c, text("127.0.0.1"), int(port), NIL));
    let t = Instant::now();
    expect(rt_socket_recv(c, int(10), dict(&[("timeout_ms", Value::int(200))])), Code::Timeout, "rt_socket_recv");
    assert!(t.elapsed() < Duration::from_millis(1000));
}

#[test]
fn bad_input_is_an_error() {
    expect(rt_socket_create(text("ipx"), text("tcp")), Code::InvalidArgument, "rt_socket_create");
    expect(rt_socket_create(text("ipv4"), text("sctp")), Code::InvalidArgument, "rt_socket_create");
    let s = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
    expect(rt_socket_connect(s, text("127.0.0.1"), int(70000), NIL), Code::OutOfRange, "rt_socket_connect");
    expect(rt_socket_connect(s, text("127.0.0.1"), int(-1), NIL), Code::OutOfRange, "rt_socket_connect");
    expect(rt_socket_connect(s, text("nonexistent.invalid"), int(80), NIL), Code::NotFound, "rt_socket_connect");
    expect(rt_socket_connect(s, text("bad host"), int(80), NIL), Code::InvalidArgument, "rt_socket_connect");
    expect(rt_socket_connect(s, text("127.0.0.1"), int(1), NIL), Code::Io, "rt_socket_connect");
    expect(rt_socket_connect(int(5), text("127.0.0.1"), int(1), NIL), Code::TypeMismatch, "rt_socket_connect");
    expect(rt_socket_set_option(s, text("nosuch"), Value::TRUE.raw()), Code::InvalidArgument, "rt_socket_set_option");
    expect(rt_socket_set_option(s, text("nodelay"), int(3)), Code::InvalidArgument, "rt_socket_set_option");
    expect(rt_socket_shutdown(s, text("sideways")), Code::InvalidArgument, "rt_socket_shutdown");
    expect(rt_socket_recv(s, int(0), NIL), Code::OutOfRange, "rt_socket_recv");
    expect(rt_socket_listen(s, int(0)), Code::OutOfRange, "rt_socket_listen");
    expect(rt_socket_peer_addr(s), Code::Io, "rt_socket_peer_addr");
    expect(rt_io_tcp_connect(text("no-port")), Code::InvalidArgument, "rt_io_tcp_connect");
    expect(rt_io_tcp_connect(text("127.0.0.1:99999")), Code::OutOfRange, "rt_io_tcp_connect");
    expect(rt_io_tcp_socket_create(int(5)), Code::InvalidArgument, "rt_io_tcp_socket_create");
}

#[test]
fn simple_tcp_api() {
    let l = ok(rt_io_tcp_bind(text("127.0.0.1:0"))).raw();
    let a = ok(rt_io_tcp_local_addr(l)).as_text().unwrap().to_string();
    let c = ok(rt_io_tcp_connect_timeout(text(&a), int(2000))).raw();
    let s = ok(rt_io_tcp_accept_timeout(l, int(2000))).raw();
    ok(rt_io_tcp_set_nodelay(c, Value::TRUE.raw()));
    ok(rt_io_tcp_write_text(c, text("line one\r\nline two\nrest")));
    ok(rt_io_tcp_flush(c));
    ok(rt_io_tcp_shutdown(c, int(1)));
    assert_eq!(ok(rt_io_tcp_read_line(s)).as_text(), Some("line one"));
    assert_eq!(ok(rt_io_tcp_drain_line(s)).as_int(), Some(8));
    assert_eq!(ok(rt_io_tcp_read(s, int(100))).as_bytes(), Some(&b"rest"[..]));
    assert!(ok(rt_io_tcp_read(s, int(100))).is_nil());
    assert!(ok(rt_io_tcp_read_line(s)).is_nil());
    assert_eq!(ok(rt_io_tcp_peer_addr(s)).as_text(), ok(rt_io_tcp_local_addr(c)).as_text());
    ok(rt_io_tcp_set_read_timeout(c, int(100)));
    expect(rt_io_tcp_read(c, int(10)), Code::Timeout, "rt_io_tcp_read");
    for h in [c, s, l] {
        ok(rt_io_tcp_close(h));
    }
}

#[test]
fn cap_connect_and_listen_scopes() {
    in_child("cap_connect_and_listen_scopes", || {
        let (l, port) = listener("ipv4", "127.0.0.1");
        let _ = l;
        restrict(&format!("net.connect=127.0.0.1:{port};net.listen=[::1]:*"));
        let c = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
        ok(rt_socket_connect(c, text("localhost"), int(port), NIL));
        let d = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
        let m = expect(rt_socket_connect(d, text("127.0.0.1"), int(port + 1), NIL), Code::CapabilityDenied, "rt_socket_connect");
        assert!(m.contains("net.connect"), "{m}");
        expect(rt_io_tcp_connect(text(&format!("127.0.0.2:{port}"))), Code::CapabilityDenied, "rt_io_tcp_connect");
        let u = ok(rt_socket_create(text("ipv4"), text("udp"))).raw();
        expect(rt_socket_send_to(u, text("x"), text("127.0.0.1"), int(9)), Code::CapabilityDenied, "rt_socket_send_to");
        let b = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
        expect(rt_socket_bind(b, text("127.0.0.1"), int(0)), Code::CapabilityDenied, "rt_socket_bind");
        expect(rt_io_tcp_bind(text("127.0.0.1:0")), Code::CapabilityDenied, "rt_io_tcp_bind");
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            let b6 = ok(rt_socket_create(text("ipv6"), text("tcp"))).raw();
            ok(rt_socket_bind(b6, text("::1"), int(0)));
        }
    });
}

#[test]
fn cap_wildcard_denies_loopback() {
    in_child("cap_wildcard_denies_loopback", || {
        restrict("net.connect=*.example.org,!*.evil.example.org");
        let c = ok(rt_socket_create(text("ipv4"), text("tcp"))).raw();
        expect(rt_socket_connect(c, text("127.0.0.1"), int(1), NIL), Code::CapabilityDenied, "rt_socket_connect");
        expect(rt_socket_connect(c, text("localhost"), int(1), NIL), Code::CapabilityDenied, "rt_socket_connect");
    });
}
