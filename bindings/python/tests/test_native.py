"""The native extension's Python surface: exception classes, keyword
options, the GIL released during blocking calls, the host submodule, the
type stubs (mypy), and a fresh-venv install with no environment variable."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import simple_rt
from simple_rt import RtError

from helpers import PKG_DIR, requires

ROOT = os.path.dirname(os.path.dirname(PKG_DIR))


# ---------------------------------------------------------------- exceptions

@pytest.mark.parametrize("name,builtin", [
    ("InvalidArgument", ValueError), ("TypeMismatch", TypeError), ("NotFound", FileNotFoundError),
    ("AlreadyExists", FileExistsError), ("PermissionDenied", PermissionError),
    ("CapabilityDenied", PermissionError), ("Timeout", TimeoutError), ("Io", OSError),
    ("Parse", ValueError), ("Unsupported", NotImplementedError), ("Closed", ValueError),
    ("Panic", RuntimeError), ("Internal", RuntimeError), ("OutOfRange", ValueError),
    ("Busy", BlockingIOError), ("Interrupted", InterruptedError),
])
def test_error_subclass_per_code_inherits_builtin(name, builtin):
    code = simple_rt.CODES[name]
    e = RtError(code, name, "m", {"k": 1})
    assert isinstance(e, RtError) and isinstance(e, builtin)
    assert type(e) is simple_rt.BY_CODE[code] and type(e) is simple_rt.BY_NAME[name]
    assert (e.code, e.name, e.message, e.details) == (code, name, "m", {"k": 1})
    assert str(e) == "%s: m" % name


def test_every_code_has_a_class():
    assert sorted(simple_rt.BY_CODE) == sorted(simple_rt.CODES.values()) == list(range(1, 19))
    assert not issubclass(simple_rt.BY_NAME["LimitExceeded"], (ValueError, OSError))
    assert not issubclass(simple_rt.BY_NAME["Interrupted"], KeyboardInterrupt)


@requires("io")
def test_not_found_is_caught_as_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as ei:
        simple_rt.rt_file_read_text(str(tmp_path / "missing"))
    e = ei.value
    assert isinstance(e, simple_rt.NotFoundError) and e.code == 3 and e.name == "NotFound"
    assert "rt_file_read_text" in e.message and e.details["path"].endswith("missing")


def test_type_mismatch_is_a_type_error():
    with pytest.raises(TypeError):
        simple_rt.rt_handle_close(42)


@requires("system")
def test_capability_denied_is_a_permission_error():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import simple_rt
        simple_rt.restrict("sys.info=false")
        try:
            simple_rt.rt_hostname()
        except PermissionError as e:
            print("denied", type(e).__name__, e.code)
    """)], cwd=PKG_DIR, capture_output=True, text=True, timeout=60)
    assert "denied CapabilityDeniedError 6" in out.stdout, out.stderr


# ---------------------------------------------------------------- options

@requires("process")
def test_options_as_keywords():
    r = simple_rt.rt_process_run("echo", ["hi"], timeout_ms=5000)
    assert r["stdout"] == "hi\n" and r["code"] == 0
    # Keywords update the dict given positionally.
    r = simple_rt.rt_process_run("cat", [], {"stdin": "from dict"}, timeout_ms=5000)
    assert r["stdout"] == "from dict"
    r = simple_rt.rt_process_run("cat", [], {"stdin": "a"}, stdin="b")
    assert r["stdout"] == "b"
    with pytest.raises(RtError):
        simple_rt.rt_process_run("true", [], no_such_option=1)


def test_generated_functions_have_docs_and_signatures():
    import inspect
    f = simple_rt.rt_process_run
    assert "Runs a program" in f.__doc__
    params = inspect.signature(f).parameters
    assert list(params)[:3] == ["program", "args", "opts"]
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD


# ---------------------------------------------------------------- GIL

@requires("process")
def test_gil_released_during_blocking_call():
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.05)
        before = len(ticks)
        t0 = time.monotonic()
        r = simple_rt.rt_process_run("sleep", ["0.5"])
        elapsed = time.monotonic() - t0
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    assert r["code"] == 0 and elapsed >= 0.45
    assert during >= 20, "the other thread made %d ticks during a 0.5 s call" % during


# ---------------------------------------------------------------- host surface

def test_host_surface_only_in_host_module():
    with pytest.raises(AttributeError) as ei:
        simple_rt.rt_int_new  # noqa: B018
    assert "simple_rt.host" in str(ei.value)
    assert "rt_int_new" not in dir(simple_rt) or not callable(getattr(simple_rt, "rt_int_new", None))
    from simple_rt import host
    assert host.rt_error_name(3) == b"NotFound"
    assert host("rt_kind")(5 << 3) == 3


# ---------------------------------------------------------------- values

def test_native_values_round_trip():
    rt = simple_rt.runtime()
    x = {"a": [1, -2, 1 << 62, -(1 << 63), 2.5, float("inf"), None, True, False],
         "s": "é\x00日本", "b": b"\x00\xff", "nested": [[[{"k": []}]]], "": {}}
    assert rt.roundtrip(x) == x
    assert rt.roundtrip((1, "t")) == [1, "t"]
    with pytest.raises(OverflowError):
        rt.roundtrip(1 << 64)


def test_handles_are_pinned_while_alive():
    count = simple_rt.host("rt_value_pin_count")
    h = simple_rt.rt_regex_new("a+")
    assert isinstance(h, simple_rt.Handle) and count(h.word) == 1
    w = h.word
    del h
    import gc
    gc.collect()
    assert count(w) == 0


# ---------------------------------------------------------------- stubs

SAMPLE_OK = """
import simple_rt
from simple_rt import Handle, RtError

r: dict = simple_rt.rt_process_run("echo", ["hi"], timeout_ms=500)
n: int = simple_rt.rt_cpu_count()
h: Handle = simple_rt.rt_regex_new("a+")
ok: bool = simple_rt.rt_regex_is_match(h, "aa")
data = simple_rt.rt_sha256_hash(b"x")
try:
    simple_rt.rt_file_read_text("/nonexistent")
except FileNotFoundError:
    pass
except RtError as e:
    print(e.code, e.message)
"""

SAMPLE_BAD = """
import simple_rt
n: str = simple_rt.rt_cpu_count()
simple_rt.rt_regex_is_match("not a handle", 5)
"""


def _mypy(tmp_path, code):
    pytest.importorskip("mypy")
    f = tmp_path / "sample.py"
    f.write_text(code)
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "c"),
                           "--python-version", "3.11", str(f)],
                          cwd=PKG_DIR, capture_output=True, text=True, timeout=300)


def test_stubs_type_check_with_mypy(tmp_path):
    if not hasattr(simple_rt, "rt_sha256_hash"):
        pytest.skip("libffi_crypto.so not built")
    p = _mypy(tmp_path, SAMPLE_OK)
    assert p.returncode == 0, p.stdout + p.stderr
    p = _mypy(tmp_path, SAMPLE_BAD)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "incompatible type" in p.stdout.lower() or "incompatible types" in p.stdout.lower(), p.stdout


# ---------------------------------------------------------------- install

@pytest.mark.slow
def test_fresh_venv_install_imports_without_env(tmp_path):
    """`pip install ./bindings/python` into a fresh venv, then `import
    simple_rt` from elsewhere with no SIMPLE_RT_* variable. (The build uses
    the debug libraries, SIMPLE_RT_PROFILE=debug, to stay fast in CI; the
    import does not.)"""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLE_RT_") and k != "PYTHONPATH"}
    subprocess.run([py, "-m", "pip", "install", "--quiet", "maturin>=1.16,<2"], check=True, env=env, timeout=300)
    benv = dict(env, SIMPLE_RT_PROFILE="debug")
    p = subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-build-isolation", PKG_DIR],
                       env=benv, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    p = subprocess.run([py, "-c", textwrap.dedent("""
        import os, simple_rt
        assert not any(k.startswith("SIMPLE_RT_") for k in os.environ)
        assert "site-packages" in simple_rt.__file__, simple_rt.__file__
        assert simple_rt.rt_json_parse('[1, {"a": null}]') == [1, {"a": None}]
        print("imported", sorted(simple_rt.loaded_libraries()))
    """)], env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "imported" in p.stdout, p.stdout + p.stderr
    assert "'core'" in p.stdout and "'serde'" in p.stdout
