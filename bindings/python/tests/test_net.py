"""ffi_net and ffi_cli from Python: the HTTP server with Python handlers
(routes and pull mode) answered to our client and urllib, the HTTP client
against Python's http.server (query, headers, JSON, multipart, download with
sha256), WebSocket both ends, TCP / UDP / Unix sockets, deadlines and cancel
tokens on network waits (no file left), capability scopes; line reading,
passwords, signals and file watching without a terminal. Everything stays on
127.0.0.1 / ::1."""

import hashlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

import simple_rt

from helpers import PKG_DIR, raises, requires, run_child

pytestmark = requires("net")


# ----------------------------------------------------------------- helpers

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/big"):
            self._send(200, b"x" * (1 << 20), "application/octet-stream")
        elif self.path.startswith("/missing"):
            self._send(404, b"nope")
        elif self.path.startswith("/stall"):
            self.send_response(200)
            self.send_header("Content-Length", str(100 << 20))
            self.end_headers()
            self.wfile.write(b"s" * (1 << 20))
            self.wfile.flush()
            time.sleep(5)
        else:
            out = json.dumps({"path": self.path, "x": self.headers.get("X-Test")}).encode()
            self._send(200, out, "application/json")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        out = json.dumps({"type": self.headers.get("Content-Type"), "body": body.decode("latin-1")}).encode()
        self._send(200, out, "application/json")

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def pyserver():
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    s.daemon_threads = True
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % s.server_address[1]
    s.shutdown()


def _serve(server):
    """rt_http_server_start on a Python thread; returns (thread, result list)."""
    out = []
    t = threading.Thread(target=lambda: out.append(simple_rt.rt_http_server_start(server)), daemon=True)
    t.start()
    deadline = time.time() + 10
    while not simple_rt.rt_http_server_stats(server)["serving"]:
        assert time.time() < deadline
        time.sleep(0.005)
    return t, out


# ----------------------------------------------------------------- HTTP server

def test_server_routes_with_python_handlers():
    s = simple_rt.rt_http_server_create(0)
    port = simple_rt.rt_http_server_port(s)
    base = "http://127.0.0.1:%d" % port

    def hello(req):
        return "hello %s %s" % (simple_rt.rt_http_request_path(req), simple_rt.rt_http_request_query(req, "name"))

    def echo(req, resp):
        info = simple_rt.rt_http_request_info(req)
        simple_rt.rt_http_response_json(resp, {"method": info["method"], "body": info["body"].decode(),
                                               "h": simple_rt.rt_http_request_header(req, "x-test")})
        simple_rt.rt_http_response_set_status(resp, 201)

    def boom(req):
        raise ValueError("handler failed")

    def as_dict(req):
        return {"status": 418, "headers": {"X-Tea": "pot"}, "body": b"short and stout"}

    assert simple_rt.rt_http_server_route(s, "GET", "/hello", hello) is True
    simple_rt.rt_http_server_route(s, "POST", "/echo", echo)
    simple_rt.rt_http_server_route(s, "*", "/boom", boom)
    simple_rt.rt_http_server_route(s, "GET", "/tea/*", as_dict)
    t, out = _serve(s)
    try:
        r = simple_rt.rt_http_get(base + "/hello?name=ada", text=True)
        assert (r["status"], r["body"]) == (200, "hello /hello ada")
        r = simple_rt.rt_http_post(base + "/echo", "payload", {"headers": {"X-Test": "t"}, "text": True})
        assert r["status"] == 201
        assert json.loads(r["body"]) == {"method": "POST", "body": "payload", "h": "t"}
        assert simple_rt.rt_http_get(base + "/boom")["status"] == 500
        r = simple_rt.rt_http_get(base + "/tea/x")
        assert (r["status"], r["headers"]["x-tea"], r["body"]) == (418, "pot", b"short and stout")
        assert simple_rt.rt_http_get(base + "/other")["status"] == 404
        # Python's own client, several threads at once.
        res = []
        def fetch(i):
            with urllib.request.urlopen(base + "/hello?name=%d" % i) as f:
                res.append(f.read().decode())
        ts = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
        [x.start() for x in ts]
        [x.join() for x in ts]
        assert sorted(res) == sorted("hello /hello %d" % i for i in range(8))
        # A response is counted once it has been written: the client may read it first.
        for _ in range(200):
            st = simple_rt.rt_http_server_stats(s)
            if st["served"] >= 13:
                break
            time.sleep(0.01)
        assert st["handler_errors"] == 1 and st["served"] >= 13
    finally:
        simple_rt.rt_http_server_stop(s)
        t.join(10)
    assert out == [True]
    simple_rt.rt_http_server_destroy(s)
    raises("Closed", simple_rt.rt_http_server_port, s)


def test_server_pull_mode_and_static(tmp_path):
    (tmp_path / "page.html").write_text("<h1>hi</h1>")
    s = simple_rt.rt_http_server_create(0, host="::1")
    simple_rt.rt_http_server_static(s, "/files", str(tmp_path))
    port = simple_rt.rt_http_server_port(s)
    assert simple_rt.rt_http_server_next(s, timeout_ms=50) is None
    got = []
    c = threading.Thread(target=lambda: got.append(
        simple_rt.rt_http_request("DELETE", "http://[::1]:%d/items/7?force=yes" % port, text=True)))
    c.start()
    req = simple_rt.rt_http_server_next(s, timeout_ms=5000)
    info = simple_rt.rt_http_request_info(req)
    assert (info["method"], info["path"], info["query"]) == ("DELETE", "/items/7", {"force": "yes"})
    assert info["remote"]["host"] == "::1"
    simple_rt.rt_http_request_respond(req, {"status": 200, "json": {"deleted": 7}})
    c.join(10)
    assert json.loads(got[0]["body"]) == {"deleted": 7}
    raises("Closed", simple_rt.rt_http_request_respond, req, "twice")
    # Static files are served by start (routes first, then static prefixes).
    t, out = _serve(s)
    try:
        r = simple_rt.rt_http_get("http://[::1]:%d/files/page.html" % port, text=True)
        assert r["body"] == "<h1>hi</h1>" and r["headers"]["content-type"].startswith("text/html")
    finally:
        simple_rt.rt_http_server_destroy(s)
        t.join(10)
    assert out == [True]


def test_server_bad_input():
    raises("OutOfRange", simple_rt.rt_http_server_create, 70000)
    s = simple_rt.rt_http_server_create(0)
    raises("InvalidArgument", simple_rt.rt_http_server_route, s, "GET", "no-slash", lambda r: "x")
    raises("InvalidArgument", simple_rt.rt_http_server_route, s, "GET", "/", "rt_http_client_create")
    raises("TypeMismatch", simple_rt.rt_http_server_route, s, "GET", "/", 42)
    raises("OutOfRange", simple_rt.rt_http_response_create, 7, "")
    raises("Parse", simple_rt.rt_http_response_json, simple_rt.rt_http_response_create(200, None), "{oops")
    simple_rt.rt_http_server_destroy(s)
    assert simple_rt.rt_http_parse_json('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert simple_rt.rt_http_stringify_json({"a": [1, "x"]}) == '{"a":[1,"x"]}'


# ----------------------------------------------------------------- HTTP client

def test_client_against_python_http_server(pyserver, tmp_path):
    r = simple_rt.rt_http_get(pyserver + "/p", query={"a b": "c&d"}, headers={"X-Test": "yes"}, text=True)
    assert json.loads(r["body"]) == {"path": "/p?a%20b=c%26d", "x": "yes"}
    # rt_http_post's third argument is opts or (as Simple passes it) a content type: positional.
    r = simple_rt.rt_http_post(pyserver + "/j", {"k": [1, True]}, {"text": True})
    j = json.loads(r["body"])
    assert j["type"] == "application/json" and json.loads(j["body"]) == {"k": [1, True]}
    assert simple_rt.rt_http_get(pyserver + "/missing")["status"] == 404
    e = raises("Io", simple_rt.rt_http_get, pyserver + "/missing", {"error_status": True})
    assert e.details["status"] == 404
    raises("InvalidArgument", simple_rt.rt_http_get, "http://", None)
    raises("Unsupported", simple_rt.rt_http_get, "ftp://127.0.0.1/", None)
    dest = tmp_path / "big.bin"
    want = hashlib.sha256(b"x" * (1 << 20)).hexdigest()
    r = simple_rt.rt_http_download(pyserver + "/big", str(dest), sha256=want)
    assert (r["status"], r["bytes"], r["sha256"]) == (200, 1 << 20, want)
    raises("Io", simple_rt.rt_http_download, pyserver + "/big", str(tmp_path / "bad.bin"), {"sha256": "0" * 64})
    assert sorted(os.listdir(tmp_path)) == ["big.bin"]


def test_multipart_upload(pyserver, tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"file body")
    parts = [{"name": "t", "data": "v"}, {"name": "f", "path": str(f), "content_type": "text/plain"}]
    r = simple_rt.rt_http_post(pyserver + "/u", None, {"multipart": parts, "text": True})
    j = json.loads(r["body"])
    assert j["type"].startswith("multipart/form-data; boundary=")
    b = j["body"]
    assert 'name="t"\r\n\r\nv\r\n' in b
    assert 'name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n' in b
    r = simple_rt.rt_http_upload(pyserver + "/u", str(f), "doc", text=True)
    assert 'name="doc"; filename="a.txt"' in json.loads(r["body"])["body"]


# ----------------------------------------------------------------- deadlines

def test_cancel_mid_download_leaves_no_file(pyserver, tmp_path):
    c = simple_rt.Cancel()
    threading.Timer(0.3, c.cancel).start()
    t = time.time()
    with c:
        with pytest.raises(simple_rt.CancelledError):
            simple_rt.rt_http_download(pyserver + "/stall", str(tmp_path / "out"))
    assert time.time() - t < 2.0
    assert os.listdir(tmp_path) == []
    t = time.time()
    with simple_rt.deadline(0.3):
        with pytest.raises(TimeoutError):
            simple_rt.rt_http_get(pyserver + "/stall")
    assert time.time() - t < 2.0


def test_cancel_a_connect_and_a_server_wait():
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    # Accepted by the kernel but never answered: the WebSocket handshake waits.
    with simple_rt.deadline(0.2):
        with pytest.raises(TimeoutError):
            simple_rt.rt_ws_connect("ws://127.0.0.1:%d/" % port)
    held.close()
    s = simple_rt.rt_http_server_create(0)
    c = simple_rt.Cancel()
    threading.Timer(0.2, c.cancel).start()
    with c:
        with pytest.raises(simple_rt.CancelledError):
            simple_rt.rt_http_server_start(s)
    simple_rt.rt_http_server_destroy(s)


# ----------------------------------------------------------------- WebSocket and sockets

def test_websocket_both_ends():
    lst = simple_rt.rt_socket_create("ipv4", "tcp")
    simple_rt.rt_socket_bind(lst, "127.0.0.1", 0)
    simple_rt.rt_socket_listen(lst, 4)
    port = simple_rt.rt_socket_local_addr(lst)["port"]

    def server():
        a = simple_rt.rt_socket_accept(lst, timeout_ms=5000)
        ws = simple_rt.rt_ws_accept(a["socket"], timeout_ms=5000)
        while True:
            m = simple_rt.rt_ws_receive(ws, timeout_ms=5000)
            if m is None:
                break
            simple_rt.rt_ws_send(ws, m.upper() if isinstance(m, str) else m[::-1])
        simple_rt.rt_ws_close(ws)

    t = threading.Thread(target=server)
    t.start()
    ws = simple_rt.rt_ws_connect("ws://127.0.0.1:%d/" % port, timeout_ms=5000)
    simple_rt.rt_ws_send(ws, "hi")
    assert simple_rt.rt_ws_receive(ws, timeout_ms=5000) == "HI"
    simple_rt.rt_ws_send(ws, b"\x01\x02")
    assert simple_rt.rt_ws_receive(ws, timeout_ms=5000) == b"\x02\x01"
    simple_rt.rt_ws_ping(ws, b"p")
    assert simple_rt.rt_ws_receive_message(ws, timeout_ms=5000) == {"kind": "pong", "data": b"p"}
    with pytest.raises(TimeoutError):
        simple_rt.rt_ws_receive(ws, timeout_ms=100)
    assert simple_rt.rt_ws_close(ws) is True
    t.join(10)
    raises("Closed", simple_rt.rt_ws_send, ws, "after close")
    simple_rt.rt_socket_close(lst)


def test_tcp_udp_and_unix_sockets(tmp_path):
    srv = simple_rt.rt_io_tcp_bind("[::1]:0")
    addr = simple_rt.rt_io_tcp_local_addr(srv)
    def echo():
        c = simple_rt.rt_io_tcp_accept_timeout(srv, 5000)
        simple_rt.rt_io_tcp_write_text(c, "echo " + simple_rt.rt_io_tcp_read_line(c) + "\n")
        simple_rt.rt_io_tcp_close(c)
    t = threading.Thread(target=echo)
    t.start()
    c = simple_rt.rt_io_tcp_connect_timeout(addr, 5000)
    simple_rt.rt_io_tcp_write_text(c, "line\n")
    assert simple_rt.rt_io_tcp_read_line(c) == "echo line"
    assert simple_rt.rt_io_tcp_read_line(c) is None
    t.join(10)
    simple_rt.rt_io_tcp_close(srv)
    u1 = simple_rt.rt_socket_create(4, "udp")
    simple_rt.rt_socket_bind(u1, "127.0.0.1", 0)
    p1 = simple_rt.rt_socket_local_addr(u1)["port"]
    u2 = simple_rt.rt_socket_create(4, "udp")
    simple_rt.rt_socket_send_to(u2, b"dgram", "127.0.0.1", p1)
    assert simple_rt.rt_socket_recv_from(u1, 100, timeout_ms=2000)["data"] == b"dgram"
    path = str(tmp_path / "u.sock")
    lst = simple_rt.rt_socket_unix_listen(path)
    # Python's own client reaches our listener; ours reaches it too.
    py = socket.socket(socket.AF_UNIX)
    py.connect(path)
    a = simple_rt.rt_socket_accept(lst, timeout_ms=2000)
    py.sendall(b"from python")
    assert simple_rt.rt_socket_recv(a["socket"], 100, timeout_ms=2000) == b"from python"
    c = simple_rt.rt_unix_socket_connect(path)
    b = simple_rt.rt_socket_accept(lst, timeout_ms=2000)
    simple_rt.rt_socket_send(c, "ours")
    assert simple_rt.rt_socket_recv(b["socket"], 100, timeout_ms=2000) == b"ours"
    raises("NotFound", simple_rt.rt_unix_socket_connect, str(tmp_path / "none.sock"))
    raises("AlreadyExists", simple_rt.rt_socket_unix_listen, path)
    a2, b2 = simple_rt.rt_socket_pair_create()
    simple_rt.rt_socket_send(a2, b"pair")
    assert simple_rt.rt_socket_recv(b2, 10) == b"pair"
    raises("OutOfRange", simple_rt.rt_io_tcp_connect_timeout, "127.0.0.1:1", -1)
    raises("InvalidArgument", simple_rt.rt_io_tcp_connect, "no-port")
    py.close()


def test_capability_scopes_in_a_child():
    out = run_child("""
        import simple_rt
        simple_rt.restrict("net.listen=127.0.0.1:*;net.http=[::1]:*;net.connect=[::1]:*")
        s = simple_rt.rt_http_server_create(0)
        try:
            simple_rt.rt_http_server_create(0, host="::1")
        except PermissionError as e:
            print("listen", e.name)
        port = simple_rt.rt_http_server_port(s)
        try:
            simple_rt.rt_ws_connect("ws://127.0.0.1:%d/" % port)
        except PermissionError as e:
            print("ws", e.name)
        try:
            simple_rt.rt_http_get("http://127.0.0.1:%d/" % port, timeout_ms=3000)
        except PermissionError as e:
            print("http", e.name)
        try:
            simple_rt.rt_unix_socket_connect("/tmp/none.sock")
        except PermissionError as e:
            print("unix", e.name)
    """.replace("net.connect=[::1]:*", "net.connect=[::1]:*;fs.write=false"))
    assert out.split() == ["listen", "CapabilityDenied", "ws", "CapabilityDenied", "http", "CapabilityDenied",
                           "unix", "CapabilityDenied"]


# ----------------------------------------------------------------- CLI without a terminal

@requires("cli")
def test_readline_and_password_from_a_pipe():
    code = """
import simple_rt
print(repr(simple_rt.rt_readline("> ")))
print(repr(simple_rt.rt_readline("> ")))
try:
    simple_rt.rt_password_read("pw: ")
except simple_rt.RtError as e:
    print(e.name)
print(repr(simple_rt.rt_password_read("pw: ", stdin=True)))
print(repr(simple_rt.rt_readline("> ")))
print(simple_rt.rt_readline_history())
"""
    env = dict(os.environ, PYTHONPATH=PKG_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code], input="first line\nsecond\nsecret\n", env=env,
                       capture_output=True, text=True, timeout=60, stdin=None)
    assert p.returncode == 0, p.stderr
    lines = [l.split("> ")[-1] for l in p.stdout.splitlines()]
    assert lines[0] == "'first line'" and lines[1] == "'second'"
    assert lines[2] == "Unsupported"
    assert lines[3] == "'secret'"
    assert lines[4] == "None"
    assert "first line" in lines[5] and "second" in lines[5]


@requires("cli")
def test_signals_recorded_and_polled():
    out = run_child("""
        import os, signal, simple_rt
        simple_rt.rt_signal_handler(["SIGUSR1", "term"])
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        print(simple_rt.rt_signal_poll(timeout_ms=2000))
        print(simple_rt.rt_signal_poll())
        for bad in ["SIGPWR", "SIGXCPU", "SIGNOPE", 9]:
            try:
                simple_rt.rt_signal_handler(bad)
            except simple_rt.RtError as e:
                print(e.name)
    """)
    lines = out.splitlines()
    assert lines[0] == "['SIGUSR1', 'SIGTERM']"
    assert lines[1] == "[]"
    assert lines[2:] == ["InvalidArgument"] * 4


@requires("cli")
def test_watch_events(tmp_path):
    w = simple_rt.rt_watch_path(str(tmp_path), debounce_ms=50)
    try:
        (tmp_path / "f.txt").write_text("a")
        kinds = set()
        deadline = time.time() + 10
        while "create" not in kinds and time.time() < deadline:
            for ev in simple_rt.rt_watch_poll(w, timeout_ms=500):
                kinds.add(ev["kind"])
                assert all(p.startswith(str(tmp_path)) for p in ev["paths"])
        assert "create" in kinds
        os.remove(tmp_path / "f.txt")
        while "remove" not in kinds and time.time() < deadline:
            for ev in simple_rt.rt_watch_poll(w, timeout_ms=500):
                kinds.add(ev["kind"])
        assert "remove" in kinds
    finally:
        simple_rt.rt_watch_close(w)
    raises("Closed", simple_rt.rt_watch_poll, w)
