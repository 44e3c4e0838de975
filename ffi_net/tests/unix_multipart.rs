//! Unix domain sockets (`rt_unix_socket_connect`, `rt_socket_unix_listen`,
//! `rt_socket_pair_create`) under the fs.write path policy, and multipart
//! uploads (`opts.multipart`, `rt_http_upload`) checked by an independent
//! parser: Python's `email` package in a child `http.server` on 127.0.0.1.

use ffi_net::http::*;
use ffi_net::socket::*;
use ffi_net::tcp::*;
use ffi_net::unix::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{dict, err, in_child, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::io::{BufRead, BufReader};
use std::time::Duration;

fn echo_once(l: Value) -> std::thread::JoinHandle<()> {
    let lr = l.raw() as usize;
    std::thread::spawn(move || {
        let a = ok(rt_socket_accept(lr as RtValue, dict(&[("timeout_ms", Value::int(5000))])));
        let s = a.get("socket");
        let line = ok(rt_io_tcp_read_line(s.raw()));
        ok(rt_io_tcp_write_text(s.raw(), text(&format!("got {}\n", line.as_text().unwrap()))));
        ok(rt_socket_close(s.raw()));
    })
}

#[test]
fn unix_listen_connect_and_pair() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sock");
    let ps = p.to_str().unwrap();
    let l = ok(rt_socket_unix_listen(text(ps), NIL));
    let j = echo_once(l);
    let c = ok(rt_unix_socket_connect(text(ps), dict(&[("timeout_ms", Value::int(2000))])));
    ok(rt_io_tcp_write_text(c.raw(), text("hello\n")));
    assert_eq!(ok(rt_io_tcp_read_line(c.raw())).as_text(), Some("got hello"));
    j.join().unwrap();
    ok(rt_socket_close(c.raw()));
    // The file stays; listening again needs opts.replace.
    assert_eq!(err(rt_socket_unix_listen(text(ps), NIL)).0, Code::AlreadyExists);
    ok(rt_socket_close(l.raw()));
    let l = ok(rt_socket_unix_listen(text(ps), dict(&[("replace", Value::TRUE)])));
    // A path longer than sun_path (108 bytes) works: it is reached through descriptors.
    let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    let lp = deep.join("long.sock");
    assert!(lp.to_str().unwrap().len() > 108);
    let l2 = ok(rt_socket_unix_listen(text(lp.to_str().unwrap()), NIL));
    let j = echo_once(l2);
    let c = ok(rt_unix_socket_connect(text(lp.to_str().unwrap()), NIL));
    ok(rt_io_tcp_write_text(c.raw(), text("deep\n")));
    assert_eq!(ok(rt_io_tcp_read_line(c.raw())).as_text(), Some("got deep"));
    j.join().unwrap();
    // Errors: nothing there, not a socket, nothing listening, abstract names, replace over a file.
    assert_eq!(err(rt_unix_socket_connect(text(dir.path().join("none").to_str().unwrap()), NIL)).0, Code::NotFound);
    let f = dir.path().join("file");
    std::fs::write(&f, "x").unwrap();
    assert_eq!(err(rt_unix_socket_connect(text(f.to_str().unwrap()), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_socket_unix_listen(text(f.to_str().unwrap()), dict(&[("replace", Value::TRUE)]))).0, Code::AlreadyExists);
    ok(rt_socket_close(l.raw()));
    let (c, m) = err(rt_unix_socket_connect(text(ps), NIL));
    assert_eq!(c, Code::Io, "{m}");
    assert_eq!(err(rt_unix_socket_connect(text("@abstract"), NIL)).0, Code::Unsupported);
    assert_eq!(err(rt_unix_socket_connect(text(""), NIL)).0, Code::InvalidArgument);
    // A pair.
    let pr = ok(rt_socket_pair_create());
    let (a, b) = (pr.at(0), pr.at(1));
    ok(rt_socket_send(a.raw(), text("ping"), NIL));
    assert_eq!(ok(rt_socket_recv(b.raw(), Value::int(10).raw(), dict(&[("timeout_ms", Value::int(1000))]))).as_bytes(), Some(&b"ping"[..]));
    ok(rt_socket_close(a.raw()));
    assert_eq!(ok(rt_socket_recv(b.raw(), Value::int(10).raw(), NIL)).as_bytes().map(<[u8]>::len), Some(0));
}

#[test]
fn unix_capability_is_the_path_policy() {
    in_child("unix_capability_is_the_path_policy", || {
        let allowed = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let good = allowed.path().join("ok.sock");
        let bad = other.path().join("no.sock");
        // Made before the policy narrows.
        let lb = ok(rt_socket_unix_listen(text(bad.to_str().unwrap()), NIL));
        std::os::unix::fs::symlink(&bad, allowed.path().join("link.sock")).unwrap();
        restrict(&format!("fs.write={};fs.read=false", allowed.path().canonicalize().unwrap().display()));
        let lg = ok(rt_socket_unix_listen(text(good.to_str().unwrap()), NIL));
        let j = echo_once(lg);
        let c = ok(rt_unix_socket_connect(text(good.to_str().unwrap()), NIL));
        ok(rt_io_tcp_write_text(c.raw(), text("in scope\n")));
        assert_eq!(ok(rt_io_tcp_read_line(c.raw())).as_text(), Some("got in scope"));
        j.join().unwrap();
        assert_eq!(err(rt_unix_socket_connect(text(bad.to_str().unwrap()), NIL)).0, Code::CapabilityDenied);
        assert_eq!(err(rt_socket_unix_listen(text(other.path().join("x.sock").to_str().unwrap()), NIL)).0, Code::CapabilityDenied);
        // A link inside the scope to a socket outside it is judged by where it leads.
        assert_eq!(err(rt_unix_socket_connect(text(allowed.path().join("link.sock").to_str().unwrap()), NIL)).0, Code::CapabilityDenied);
        std::hint::black_box(lb);
    });
}

/// Python's http.server answering each POST with the parts its `email` parser finds, as JSON.
const PY_SERVER: &str = r#"
import http.server, json, sys, email
from email import policy
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        n = int(self.headers['Content-Length'])
        body = self.rfile.read(n)
        head = b'Content-Type: ' + self.headers['Content-Type'].encode() + b'\r\nMIME-Version: 1.0\r\n\r\n'
        msg = email.message_from_bytes(head + body, policy=policy.HTTP)
        parts = []
        if msg.is_multipart():
            for p in msg.iter_parts():
                parts.append({'name': p.get_param('name', header='content-disposition'),
                              'filename': p.get_filename(),
                              'type': p['content-type'] and p.get_content_type(),
                              'data': p.get_payload(decode=True).hex()})
        out = json.dumps({'type': msg.get_content_type(), 'parts': parts}).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_PUT = do_POST
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

struct Py(std::process::Child, u16);
impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn py_server() -> Option<Py> {
    let mut c = std::process::Command::new("python3")
        .args(["-c", PY_SERVER])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(c.stdout.take()?).read_line(&mut line).ok()?;
    let port = line.trim().parse().ok()?;
    Some(Py(c, port))
}

fn parts_of(v: Value) -> serde_json::Value {
    let b = v.get("body").as_text().unwrap();
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: status {:?} body {b}", v.get("status").as_int()))
}

#[test]
fn multipart_parsed_by_python_email() {
    let Some(py) = py_server() else {
        eprintln!("python3 not found: multipart oracle skipped");
        return;
    };
    let url = format!("http://127.0.0.1:{}/up", py.1);
    let dir = tempfile::tempdir().unwrap();
    let fp = dir.path().join("photo.bin");
    let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&fp, &blob).unwrap();
    let parts = Value::array(4)
        .push(Value::dict().set("name", Value::text("title")).set("data", Value::text("héllo \"q\"\r\nline2")))
        .push(Value::dict().set("name", Value::text("file")).set("path", Value::text(fp.to_str().unwrap())))
        .push(
            Value::dict()
                .set("name", Value::text("doc"))
                .set("filename", Value::text("notes.json"))
                .set("content_type", Value::text("application/json"))
                .set("data", Value::text("{\"a\":1}")),
        )
        .push(Value::dict().set("name", Value::text("raw")).set("data", Value::bytes(b"\r\n--x\r\n\x00\xff")));
    let r = ok(rt_http_post(text(&url), NIL, dict(&[("multipart", parts), ("text", Value::TRUE)])));
    let j = parts_of(r);
    assert_eq!(j["type"], "multipart/form-data");
    let p = j["parts"].as_array().unwrap();
    assert_eq!(p.len(), 4, "{j}");
    assert_eq!(p[0]["name"], "title");
    assert!(p[0]["filename"].is_null());
    assert_eq!(hex(&p[0]["data"]), "héllo \"q\"\r\nline2".as_bytes());
    assert_eq!(p[1]["name"], "file");
    assert_eq!(p[1]["filename"], "photo.bin");
    assert_eq!(p[1]["type"], "application/octet-stream");
    assert_eq!(hex(&p[1]["data"]), blob);
    assert_eq!(p[2]["filename"], "notes.json");
    assert_eq!(p[2]["type"], "application/json");
    assert_eq!(hex(&p[2]["data"]), b"{\"a\":1}");
    assert_eq!(hex(&p[3]["data"]), b"\r\n--x\r\n\x00\xff");
    // rt_http_request with opts.multipart, and Simple's rt_http_upload.
    let one = Value::array(1).push(Value::dict().set("name", Value::text("k")).set("data", Value::text("v")));
    let r = ok(rt_http_request(text("PUT"), text(&url), dict(&[("multipart", one), ("text", Value::TRUE)])));
    assert_eq!(parts_of(r)["parts"][0]["name"], "k");
    let r = ok(rt_http_upload(text(&url), text(fp.to_str().unwrap()), text("upload"), dict(&[("text", Value::TRUE)])));
    let j = parts_of(r);
    assert_eq!(j["parts"][0]["name"], "upload");
    assert_eq!(j["parts"][0]["filename"], "photo.bin");
    assert_eq!(hex(&j["parts"][0]["data"]), blob);
    // Bad parts.
    let bad = |parts: Value| err(rt_http_post(text(&url), NIL, dict(&[("multipart", parts)]))).0;
    assert_eq!(bad(Value::array(0)), Code::InvalidArgument);
    assert_eq!(bad(Value::array(1).push(Value::text("x"))), Code::InvalidArgument);
    assert_eq!(bad(Value::array(1).push(Value::dict().set("data", Value::text("no name")))), Code::InvalidArgument);
    assert_eq!(bad(Value::array(1).push(Value::dict().set("name", Value::text("n")))), Code::InvalidArgument);
    assert_eq!(
        bad(Value::array(1).push(Value::dict().set("name", Value::text("n")).set("path", Value::text("/no/such/file")))),
        Code::NotFound
    );
    let one = Value::array(1).push(Value::dict().set("name", Value::text("k")).set("data", Value::text("v")));
    assert_eq!(err(rt_http_post(text(&url), text("body too"), dict(&[("multipart", one)]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_http_upload(text(&url), text("/no/such/file"), text("f"), NIL)).0, Code::NotFound);
    std::thread::sleep(Duration::from_millis(1));
}

fn hex(v: &serde_json::Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
