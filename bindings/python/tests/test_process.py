"""ffi_process from Python: real programs, with subprocess as the oracle.

Every test ends with a check that nothing was left behind: no child of this
interpreter (running or zombie) and no process anywhere carrying this run's
RT_TEST_MARK environment variable (inherited by every descendant). Tests
that narrow the process-wide policy or sandbox run in a child interpreter.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import simple_rt
from helpers import child, raises, requires, run_child

pytestmark = requires("process")

os.environ.setdefault("RT_TEST_MARK", "py-process-%d" % os.getpid())
MARK = ("RT_TEST_MARK=" + os.environ["RT_TEST_MARK"]).encode()

# A child ignoring SIGTERM that starts a grandchild ignoring it too and prints the grandchild's pid.
STUBBORN = "trap '' TERM; (trap '' TERM; exec sleep 60) & echo $!; exec sleep 60"


def own_children():
    out = []
    for t in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % t) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def alive(pid):
    return state(pid) not in (None, "Z", "X")


def wait_dead(pid, limit=5.0):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return False


def ancestors():
    out, pid = [os.getpid()], os.getpid()
    while pid > 1:
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        out.append(pid)
    return out


def marked():
    skip = set(ancestors())
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in skip:
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if MARK in env and alive(int(d)):
            out.append(int(d))
    return out


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    t = time.monotonic()
    while own_children() or marked():
        if time.monotonic() - t > 3:
            pytest.fail("processes left behind: children %s, marked %s" % (own_children(), marked()))
        time.sleep(0.02)


# ---------------------------------------------------------------- run

def test_run_matches_subprocess(tmp_path):
    script = "echo out; echo err >&2; printf 'é'; exit 3"
    r = simple_rt.rt_process_run("sh", ["-c", script], None)
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert r == {"stdout": p.stdout, "stderr": p.stderr, "code": 3, "signal": None, "timed_out": False}
    r = simple_rt.rt_process_run("sh", ["-c", "kill -KILL $$"], None)
    assert (r["code"], r["signal"]) == (None, 9)
    r = simple_rt.rt_process_run("cat", [], {"stdin": b"\x00\xffbin", "text": False})
    assert r["stdout"] == b"\x00\xffbin"
    e = raises("Parse", simple_rt.rt_process_run, "cat", [], {"stdin": b"ok\xff"})
    assert e.details["position"] == 2 and e.details["stream"] == "stdout"
    r = simple_rt.rt_process_run("pwd", [], {"cwd": str(tmp_path)})
    assert r["stdout"].strip() == os.path.realpath(str(tmp_path))
    r = simple_rt.rt_process_run("sh", ["-c", "echo ${A}-${HOME-none}"], {"env": {"A": "1", "HOME": None}})
    assert r["stdout"] == "1-none\n"
    r = simple_rt.rt_process_run("/usr/bin/env", [], {"env": {"ONLY": "x", "RT_TEST_MARK": os.environ["RT_TEST_MARK"]},
                                                      "clear_env": True})
    assert sorted(r["stdout"].split()) == sorted(["ONLY=x", MARK.decode()])


def test_big_output_on_both_streams():
    n = 20 * 1024 * 1024
    script = "head -c %d /dev/zero | tr '\\0' a & head -c %d /dev/zero | tr '\\0' b >&2; wait" % (n, n)
    r = simple_rt.rt_process_run("sh", ["-c", script], None)
    assert r["code"] == 0
    assert r["stdout"] == "a" * n and r["stderr"] == "b" * n
    data = os.urandom(n)
    assert simple_rt.rt_process_run("cat", [], {"stdin": data, "text": False})["stdout"] == data


def test_timeout_kills_the_group():
    t = time.monotonic()
    r = simple_rt.rt_process_run_timeout("sh", ["-c", STUBBORN], 400, {"grace_ms": 200})
    assert time.monotonic() - t < 20
    assert r["timed_out"] is True and r["signal"] == 9 and r["code"] is None
    gpid = int(r["stdout"].strip())
    assert wait_dead(gpid)
    r = simple_rt.rt_process_run("sleep", ["60"], {"timeout_ms": 100, "grace_ms": 3000})
    assert (r["timed_out"], r["signal"]) == (True, signal.SIGTERM)
    raises("InvalidArgument", simple_rt.rt_process_run_timeout, "true", [], -1, None)


def test_limits_bite_even_from_python(tmp_path):
    # CPython ignores SIGXFSZ; the library restores the default in the child.
    assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN
    f = str(tmp_path / "big")
    r = simple_rt.rt_process_run_with_limits("dd", ["if=/dev/zero", "of=" + f, "bs=65536", "count=64"],
                                             {"file_size_bytes": 1 << 20}, None)
    assert r["signal"] == signal.SIGXFSZ
    assert os.path.getsize(f) == 1 << 20
    r = simple_rt.rt_process_run_with_limits("sh", ["-c", "while :; do :; done"], {"cpu_seconds": 1}, {"timeout_ms": 60000})
    assert r["signal"] == signal.SIGXCPU
    r = simple_rt.rt_process_run_with_limits(sys.executable, ["-c", "bytearray(1 << 30)"], {"address_space_bytes": 256 << 20}, None)
    assert r["code"] == 1 and "MemoryError" in r["stderr"]
    r = simple_rt.rt_process_run_with_limits("sh", ["-c", "ulimit -n; ulimit -t"], {"open_files": 40, "cpu_seconds": 9}, None)
    assert r["stdout"] == "40\n9\n"
    raises("InvalidArgument", simple_rt.rt_process_run_with_limits, "true", [], {"cpu": 1}, None)
    raises("TypeMismatch", simple_rt.rt_process_run_with_limits, "true", [], [1], None)


# ---------------------------------------------------------------- spawn

def test_spawn_wait_kill_read():
    h = simple_rt.rt_process_spawn("sh", ["-c", "echo ready; exec sleep 60"], None)
    assert isinstance(h, simple_rt.Handle) and h.type == "Child"
    pid = simple_rt.rt_process_pid(h)
    got, t = "", time.monotonic()
    while "ready" not in got and time.monotonic() - t < 10:
        got += simple_rt.rt_process_read_stdout(h)
        time.sleep(0.01)
    assert got == "ready\n"
    raises("Timeout", simple_rt.rt_process_wait, h, 20)
    assert simple_rt.rt_process_kill(h, signal.SIGINT) is True
    w = simple_rt.rt_process_wait(h, None)
    assert w == {"code": None, "signal": signal.SIGINT, "stdout": "", "stderr": ""}
    assert not alive(pid)
    assert simple_rt.rt_process_kill(h, 9) is False
    assert simple_rt.rt_process_wait(h, 0)["signal"] == signal.SIGINT
    assert h.close() is True and h.close() is False
    raises("Closed", simple_rt.rt_process_wait, h, None)
    raises("Closed", simple_rt.rt_process_kill, h, 9)
    for bad in (0, -1, 10_000):
        with simple_rt.rt_process_spawn("true", [], None) as h2:
            raises("InvalidArgument", simple_rt.rt_process_kill, h2, bad)
    raises("TypeMismatch", simple_rt.rt_process_wait, 5, None)


def test_closing_kills_the_group():
    h = simple_rt.rt_process_spawn("sh", ["-c", STUBBORN], None)
    got, t = "", time.monotonic()
    while "\n" not in got and time.monotonic() - t < 10:
        got += simple_rt.rt_process_read_stdout(h)
        time.sleep(0.01)
    gpid, pid = int(got), simple_rt.rt_process_pid(h)
    h.close()
    assert not alive(pid)
    assert wait_dead(gpid)


def test_many_spawns_no_zombies():
    for i in range(300):
        h = simple_rt.rt_process_spawn("true", [], None)
        if i % 2:
            assert simple_rt.rt_process_wait(h, None)["code"] == 0
        h.close()
    assert own_children() == []


# ---------------------------------------------------------------- shell, pid

def test_shell_and_getpid():
    assert simple_rt.rt_shell("echo $((6*7))", None)["stdout"] == "42\n"
    assert simple_rt.rt_shell_exec("exit 9", {"stdout": "null"}) == 9
    assert simple_rt.rt_shell_exec("kill -TERM $$", None) == 128 + 15
    raises("Timeout", simple_rt.rt_shell_exec, "sleep 60", {"timeout_ms": 100})
    assert simple_rt.rt_getpid() == os.getpid()
    # The shell's parent is the call's supervisor (a child subreaper), whose parent is us.
    assert simple_rt.rt_shell("awk '{print $4}' /proc/$PPID/stat", None)["stdout"].strip() == str(os.getpid())


def test_bad_input(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    plain.chmod(0o644)
    e = raises("NotFound", simple_rt.rt_process_run, "no-such-program-rt", [], None)
    assert "no-such-program-rt" in e.message
    raises("PermissionDenied", simple_rt.rt_process_run, str(plain), [], None)
    raises("PermissionDenied", simple_rt.rt_process_run, str(tmp_path), [], None)
    raises("TypeMismatch", simple_rt.rt_process_run, "echo", "a b", None)
    raises("TypeMismatch", simple_rt.rt_process_run, "echo", [1, 2], None)
    raises("TypeMismatch", simple_rt.rt_process_run, 7, [], None)
    raises("InvalidArgument", simple_rt.rt_process_run, "echo", ["a\0b"], None)
    raises("InvalidArgument", simple_rt.rt_process_run, "echo", [], {"timeout_ms": -5})
    raises("InvalidArgument", simple_rt.rt_process_run, "echo", [], {"bogus": 1})
    raises("InvalidArgument", simple_rt.rt_shell, "echo \0", None)


# ---------------------------------------------------------------- policy (child interpreters)

def test_capability_scoped_by_program():
    out = run_child("""
        import os, simple_rt
        from simple_rt import RtError
        true = os.path.realpath("/bin/true")
        simple_rt.restrict("process.spawn=" + true)
        assert simple_rt.rt_process_run("true", [], None)["code"] == 0
        def denied(f, *a):
            try:
                f(*a)
            except RtError as e:
                assert e.name == "CapabilityDenied", e
                return e.message
            raise AssertionError("allowed: %r" % (a,))
        m = denied(simple_rt.rt_process_run, "sh", ["-c", "true"], None)
        assert m == "rt_process_run needs process.spawn for " + os.path.realpath("/bin/sh"), m
        denied(simple_rt.rt_process_spawn, "sh", [], None)
        assert denied(simple_rt.rt_shell, "true", None) == "rt_shell needs process.spawn"
        denied(simple_rt.rt_shell_exec, "true", None)
        assert "LD_PRELOAD" in denied(simple_rt.rt_process_run, "true", [], {"env": {"LD_PRELOAD": "/x.so"}})
        print("ok")
    """)
    assert out.strip() == "ok"


def test_sandbox_limits_in_a_child():
    out = run_child("""
        import simple_rt
        from simple_rt import RtError
        simple_rt.rt_sandbox_set_limits({"open_files": 33})
        assert simple_rt.rt_sandbox_limits() == {"open_files": 33}
        assert simple_rt.rt_shell("ulimit -n", None)["stdout"] == "33\\n"
        try:
            simple_rt.rt_sandbox_set_limits({"open_files": 34})
            raise AssertionError("raised a sandbox limit")
        except RtError as e:
            assert e.name == "PermissionDenied", e
        import resource
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] != 33
        print("ok")
    """)
    assert out.strip() == "ok"


def test_children_are_held_to_the_fs_scopes(tmp_path):
    # The host may read and write only `scope`; a program it starts, and that
    # program's children, may not read, list or write `outside` either (Landlock).
    scope, outside = tmp_path / "scope", tmp_path / "outside"
    scope.mkdir()
    outside.mkdir()
    (scope / "mine.txt").write_text("mine\n")
    (outside / "secret.txt").write_text("OUTSIDE\n")
    code = """
        import simple_rt, sys
        scope, outside = sys.argv[1], sys.argv[2]
        simple_rt.restrict("fs.read=%s;fs.write=%s" % (scope, scope))
        run = simple_rt.rt_process_run
        assert run("cat", [scope + "/mine.txt"])["stdout"] == "mine\\n"
        r = run("cat", [outside + "/secret.txt"])
        assert r["code"] != 0 and "OUTSIDE" not in r["stdout"], r
        r = run("sh", ["-c", "sh -c 'cat %s/secret.txt; ls %s; echo x > %s/new' 2>&1" % (outside, outside, outside)])
        assert "OUTSIDE" not in r["stdout"] and r["stdout"].count("Permission denied") == 3, r
        r = run("ls", [outside])
        assert r["code"] != 0 and "secret" not in r["stdout"], r
        r = run("sh", ["-c", "echo made > %s/new && cat %s/new" % (scope, scope)])
        assert r["stdout"] == "made\\n", r
        print("ok")
    """
    out = child(code, str(os.path.realpath(scope)), str(os.path.realpath(outside)), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert not (outside / "new").exists()
    assert (outside / "secret.txt").read_text() == "OUTSIDE\n"
