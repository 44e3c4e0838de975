"""The Python package against the real libraries: values, errors, registry,
pins, handles, ffi_system, threads under forced collections, capabilities.

Tests that narrow the (process-wide) policy or that could hang the process
run in a child interpreter with a timeout.
"""

import ctypes
import functools
import gc
import math
import os
import struct
import subprocess
import threading

import pytest

import helpers
import simple_rt
from helpers import PKG_DIR
from simple_rt import RtError, _nrt as _runtime  # the K_* kind numbers

RT = simple_rt.runtime()

# Children here get 180 s (some churn the collector from several threads).
run_child = functools.partial(helpers.run_child, timeout=180)


def names():
    return {e["name"] for e in simple_rt.registry()}


def word_of(x):
    """Builds the value for `x` and returns (word, rt_kind) (the word is not kept alive after)."""
    return RT.with_value(x, lambda w: (w, RT.kind(w)))


def pinned(x):
    """Builds `x` and pins it; the caller unpins."""
    def pin(w):
        RT.pin(w)
        return w
    return RT.with_value(x, pin)


def fbits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# ---------------------------------------------------------------- loading

def test_loaded_and_abi():
    assert "core" in simple_rt.loaded_libraries()
    assert "system" in simple_rt.loaded_libraries()
    assert RT.abi_version >> 16 == 1
    assert os.path.isfile(os.path.join(simple_rt.lib_dir(), "libffi_core.so"))


def test_lib_dir_env_is_honoured_and_bad_dir_refused():
    out = run_child("""
        import os, sys
        sys.path.remove(os.getcwd()) if os.getcwd() in sys.path else None
        os.environ["SIMPLE_RT_LIB_DIR"] = "/nonexistent-simple-rt"
        sys.path.insert(0, %r)
        try:
            import simple_rt
        except ImportError as e:
            print("refused:", e)
    """ % PKG_DIR)
    assert "refused:" in out and "/nonexistent-simple-rt/libffi_core.so not found" in out


def test_never_loads_macros_library():
    maps = open("/proc/self/maps").read()
    assert "libffi_core.so" in maps
    assert "libffi_macros" not in maps


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("x", [
    0, 1, -1, 42, (1 << 60) - 1, -(1 << 60), 1 << 60, -(1 << 60) - 1,
    (1 << 63) - 1, -(1 << 63), 123456789012345678,
])
def test_ints_round_trip(x):
    assert RT.roundtrip(x) == x
    assert type(RT.roundtrip(x)) is int


def test_big_ints_are_boxed_small_inline():
    w, k = word_of(5)
    assert w == 5 << 3 and k == _runtime.K_INT
    w, k = word_of((1 << 60) - 1)
    assert w & 7 == 0
    for big in (1 << 60, -(1 << 60) - 1, (1 << 63) - 1, -(1 << 63)):
        w, k = word_of(big)
        assert w & 7 == 1, "int %d must be boxed" % big
        assert k == _runtime.K_INT


def test_int_out_of_range_raises_overflow():
    for x in (1 << 63, -(1 << 63) - 1, 1 << 100):
        with pytest.raises(OverflowError):
            RT.roundtrip(x)
        with pytest.raises(OverflowError):
            simple_rt.rt_value_hash(x)


@pytest.mark.parametrize("x", [
    0.0, 1.5, -2.25, 1e308, -1e-308, 5e-324, 2.2250738585072009e-308, math.pi,
    float("inf"), float("-inf"), 1.0 / 3.0, 0.1,
])
def test_floats_round_trip_bitwise(x):
    y = RT.roundtrip(x)
    assert type(y) is float
    assert fbits(y) == fbits(x)


def test_float_specials():
    nz = RT.roundtrip(-0.0)
    assert nz == 0.0 and math.copysign(1.0, nz) == -1.0
    nan = RT.roundtrip(float("nan"))
    assert math.isnan(nan)
    # A NaN with payload bits in the low 3 bits is boxed and kept exactly.
    odd_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000005))[0]
    assert fbits(RT.roundtrip(odd_nan)) == 0x7FF8000000000005
    # Subnormals with low bits set are boxed; lossless either way.
    w, k = word_of(5e-324)
    assert w & 7 == 1 and k == _runtime.K_FLOAT
    w, k = word_of(1.5)
    assert w & 7 == 2 and k == _runtime.K_FLOAT


def test_bool_none():
    assert RT.roundtrip(True) is True
    assert RT.roundtrip(False) is False
    assert RT.roundtrip(None) is None
    assert word_of(None)[0] == 0x03 and word_of(True)[0] == 0x0B and word_of(False)[0] == 0x13


@pytest.mark.parametrize("s", [
    "", "a", "hello world", "a\x00b\x00", "\x00", "héllo wörld", "日本語テキスト", "emoji \U0001F600 \U0010FFFF",
    "x" * 100000,
])
def test_text_round_trip(s):
    y = RT.roundtrip(s)
    assert type(y) is str and y == s
    w, k = word_of(s)
    assert k == _runtime.K_STRING


def test_text_surrogates_rejected_by_python_encoding():
    with pytest.raises(UnicodeEncodeError):
        RT.roundtrip("\ud800")


def test_bytes_round_trip():
    allb = bytes(range(256))
    for b in (b"", b"\x00", allb, allb * 100, b"\xff\xfe"):
        assert RT.roundtrip(b) == b and type(RT.roundtrip(b)) is bytes
    assert RT.roundtrip(bytearray(b"ab\x00c")) == b"ab\x00c"
    assert RT.roundtrip(memoryview(b"xyz")[1:]) == b"yz"
    assert word_of(b"abc")[1] == _runtime.K_BYTES


def test_nested_arrays_and_dicts_keep_order():
    d = {}
    for k in ["zeta", "alpha", "mid", "beta", "0", "~"]:
        d[k] = k.upper()
    big = {("k%03d" % (999 - i)): i for i in range(200)}  # past the indexed threshold
    x = [1, [2, [3, [4, []]]], {"b": [True, None], "a": {"c": b"\x00"}}, d, big, (7, 8), -0.5]
    y = RT.roundtrip(x)
    assert y == [1, [2, [3, [4, []]]], {"b": [True, None], "a": {"c": b"\x00"}}, d, big, [7, 8], -0.5]
    assert list(y[3]) == list(d)
    assert list(y[4]) == list(big)
    assert list(y[2]) == ["b", "a"]


def test_dict_non_text_keys():
    x = {1: "one", 2.5: "f", True: "t", None: "n", b"k": "bytes", (1 << 62): "big"}
    assert RT.roundtrip(x) == x


def test_unsupported_types_raise_typeerror():
    for bad in (object(), {1, 2}, 1j, [object()], {"k": object()}):
        with pytest.raises(TypeError):
            RT.roundtrip(bad)
    with pytest.raises(TypeError):
        RT.roundtrip({(1, 2): 3})


def test_values_through_a_domain_call():
    """rt_value_equal / rt_value_hash take values built by the package."""
    assert simple_rt.rt_value_equal("a\x00é", "a\x00é") is True
    assert simple_rt.rt_value_equal("a\x00é", "a\x00e") is False
    assert simple_rt.rt_value_equal(1 << 62, 1 << 62) is True  # boxed: by value
    assert simple_rt.rt_value_equal(b"x", "x") is False
    assert simple_rt.rt_value_equal(2.5, 2.5) is True
    assert simple_rt.rt_value_hash("same") == simple_rt.rt_value_hash("same")
    assert simple_rt.rt_value_hash(-(1 << 63)) == simple_rt.rt_value_hash(-(1 << 63))
    # Arrays compare by identity: two separately built arrays differ.
    assert simple_rt.rt_value_equal([1], [1]) is False


def test_missing_trailing_args_are_nil_and_extra_args_refused():
    # rt_value_equal(a, b) with one argument: b = nil.
    assert simple_rt.call("rt_value_equal", None) is True
    assert simple_rt.call("rt_value_equal", 1) is False
    assert simple_rt.call("rt_gc_stats")["heap_size"] > 0
    with pytest.raises(TypeError):
        simple_rt.call("rt_value_equal", 1, 2, 3)


def test_unknown_function():
    with pytest.raises(AttributeError):
        simple_rt.call("rt_no_such_function")
    with pytest.raises(AttributeError):
        simple_rt.rt_no_such_function_either
    with pytest.raises(AttributeError):
        simple_rt.not_an_rt_name


def test_host_surface_from_registry_types():
    kind = simple_rt.host("rt_kind")
    assert kind(5 << 3) == _runtime.K_INT
    assert kind(0x03) == _runtime.K_NIL
    name = simple_rt.host("rt_error_name")
    assert name(6) == b"CapabilityDenied"
    assert name(9999) == b"Unknown"
    with pytest.raises(TypeError):
        simple_rt.call("rt_kind", 1)
    assert simple_rt.host.rt_abi_version() >> 16 == 1


# ---------------------------------------------------------------- errors

def test_error_type_mismatch():
    with pytest.raises(RtError) as ei:
        simple_rt.rt_handle_close(42)
    e = ei.value
    assert e.code == 2 and e.name == "TypeMismatch"
    assert e.message == "rt_handle_close: argument 1 (handle) must be handle, got int 42"
    assert e.details == {"argument": 1}
    assert str(e) == "TypeMismatch: " + e.message


def test_error_invalid_argument_and_details():
    with pytest.raises(RtError) as ei:
        simple_rt.rt_gc_enable()
    assert ei.value.code == 1 and ei.value.name == "InvalidArgument"
    assert ei.value.message.startswith("rt_gc_enable: collections are not disabled")
    with pytest.raises(RtError) as ei:
        simple_rt.rt_cap_parse("fs.read")
    e = ei.value
    assert (e.code, e.name) == (9, "Parse")
    assert e.message == 'rt_cap_parse: rule 1 has no \'=\' ("fs.read")'
    assert e.details == {"rule": 1}
    with pytest.raises(RtError) as ei:
        simple_rt.rt_cap_check("no.such.cap", None)
    assert ei.value.name == "InvalidArgument" and "unknown capability" in ei.value.message


def test_error_values_nested_in_results_are_objects_not_raised():
    e = RtError(1, "InvalidArgument", "m", None)
    assert isinstance(e, Exception) and e.code == 1
    assert repr(e).startswith("RtError(1, 'InvalidArgument'")


def test_error_names_match_codes():
    name = simple_rt.host("rt_error_name")
    for n, c in simple_rt.CODES.items():
        assert name(c).decode() == n


# ---------------------------------------------------------------- registry

def test_registry_entries():
    reg = simple_rt.registry()
    by = {e["name"]: e for e in reg}
    assert len(by) == len(reg), "duplicate names in the registry"
    required = {"name", "domain", "doc", "params", "returns", "arity", "capability", "scoped",
                "blocking", "tier", "host", "signature"}
    for e in reg:
        assert required <= set(e), e["name"]
        assert e["arity"] == len(e["params"]) <= 8, e["name"]
        assert e["name"].startswith("rt_") and e["doc"], e["name"]
        if e["host"]:
            assert "c_returns" in e and all("ctype" in p for p in e["params"]), e["name"]
    h = by["rt_hostname"]
    assert h["domain"] == "system" and h["capability"] == "sys.info" and h["arity"] == 0
    assert by["rt_string_new"]["host"] and by["rt_string_new"]["c_returns"] == "RtValue"
    assert by["rt_gc_collect"]["blocking"] is True
    assert simple_rt.rt_registry_duplicates() == []
    for n in ("rt_cpu_count", "rt_memory_total", "rt_os_name", "rt_arch_name", "rt_cpu_physical_count",
              "rt_memory_available", "rt_cap_restrict", "rt_cap_current", "rt_cap_check"):
        assert n in by


def test_registry_lookup_arity_matches_json():
    for e in simple_rt.registry():
        if e["host"]:
            continue
        addr, arity, cif, cfunc = RT.lookup(e["name"])
        assert arity == e["arity"], e["name"]


def test_dynamic_attribute_has_doc():
    f = simple_rt.rt_cpu_count
    assert callable(f)
    assert "rt_cpu_count" in (f.__doc__ or "") or f.__name__ == "rt_cpu_count"
    assert "rt_hostname" in dir(simple_rt)


# ---------------------------------------------------------------- pins

def test_pin_counts():
    count = simple_rt.host("rt_value_pin_count")
    with RT.attached():
        w = pinned(["a", "b"])
        assert count(w) == 1
        RT.pin(w)
        assert count(w) == 2
        RT.unpin(w)
        RT.unpin(w)
        assert count(w) == 0
        RT.unpin(w)  # extra unpin: stays 0
        assert count(w) == 0
        assert count(5 << 3) == 0
        RT.pin(5 << 3)  # no-op on immediates
        assert count(5 << 3) == 0


def test_arguments_are_not_left_pinned():
    """The binding roots arguments in a frame, not with pins: after a call
    nothing it built stays pinned (a handle argument keeps only its own pin)."""
    count = simple_rt.host("rt_value_pin_count")
    seen = []
    RT.with_value("x" * 40, lambda w: seen.append((w, count(w))))
    assert seen[0][1] == 0
    assert simple_rt.rt_value_equal(["x"], ["x"]) is False


def test_pinned_value_survives_collections():
    count = simple_rt.host("rt_value_pin_count")
    payload = ["survivor-%d" % i for i in range(100)]
    w = pinned(payload)
    w_s = pinned("lonely string \x00 é")
    # Nothing but the pins references them now; churn the heap.
    for _ in range(5):
        RT.roundtrip([("garbage %d" % i) * 10 for i in range(2000)])
        simple_rt.rt_gc_collect()
    with RT.attached():
        assert RT.from_value(w) == payload
        assert RT.from_value(w_s) == "lonely string \x00 é"
        assert count(w) == 1
        RT.unpin(w)
        RT.unpin(w_s)


def test_binding_is_the_native_extension():
    """One binding: the PyO3 extension; conversion happens in native code
    while the thread is attached, words live in its frames (not pinned)."""
    assert RT.mode == "native" and simple_rt.BACKEND == "native"
    x = [1, 1 << 62, 2.5, 5e-324, "t\x00é", b"\x00", {"k": [None, True]}]
    assert RT.roundtrip(x) == x


def test_gc_stats_and_collect():
    s0 = simple_rt.rt_gc_stats()
    for k in ("heap_size", "free_bytes", "collections", "finalized", "total_allocated"):
        assert isinstance(s0[k], int) and s0[k] >= 0
    simple_rt.rt_gc_collect()
    simple_rt.rt_gc_collect()
    s1 = simple_rt.rt_gc_stats()
    assert s1["collections"] >= s0["collections"] + 2


def test_gc_disable_enable_nest():
    simple_rt.rt_gc_disable()
    simple_rt.rt_gc_disable()
    assert simple_rt.rt_gc_stats()["disabled"] == 2
    simple_rt.rt_gc_enable()
    simple_rt.rt_gc_enable()
    assert simple_rt.rt_gc_stats()["disabled"] == 0
    with pytest.raises(RtError):
        simple_rt.rt_gc_enable()


# ---------------------------------------------------------------- handles

needs_regex = pytest.mark.skipif("rt_regex_new" not in names(),
                                 reason="no handle type built yet (ffi_data's rt_regex_new)")


@needs_regex
def test_handle_lifecycle():
    h = simple_rt.call("rt_regex_new", "a+b")
    assert isinstance(h, simple_rt.Handle)
    assert h.type == "Regex" and h.is_open
    count = simple_rt.host("rt_value_pin_count")
    assert count(h.word) == 1
    assert simple_rt.call("rt_regex_is_match", h, "xaab") is True
    assert h.close() is True
    assert h.close() is False
    assert not h.is_open
    with pytest.raises(RtError) as ei:
        simple_rt.call("rt_regex_is_match", h, "aab")
    assert ei.value.name == "Closed"
    assert "closed Regex handle" in ei.value.message
    del ei  # its traceback holds the call's frame, which holds h
    w = h.word
    del h
    gc.collect()
    assert count(w) == 0


@needs_regex
def test_handle_context_manager_and_finalizer():
    with simple_rt.call("rt_regex_new", "x") as h:
        assert h.is_open
    assert not h.is_open
    before = simple_rt.rt_gc_stats()["finalized"]
    for i in range(200):
        simple_rt.call("rt_regex_new", "y%d" % i)  # dropped at once: unpinned
    gc.collect()
    for _ in range(5):
        RT.roundtrip(["churn"] * 1000)
        simple_rt.rt_gc_collect()
    assert simple_rt.rt_gc_stats()["finalized"] > before


# ---------------------------------------------------------------- ffi_system

def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def test_system_hostname_matches_command():
    want = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert simple_rt.rt_hostname() == want


def test_system_cpu_and_memory_match_proc():
    assert simple_rt.rt_cpu_count() == len(os.sched_getaffinity(0))
    phys = simple_rt.rt_cpu_physical_count()
    assert 1 <= phys <= simple_rt.rt_cpu_count() or phys <= os.cpu_count()
    assert simple_rt.rt_memory_total() == meminfo("MemTotal:")
    avail = simple_rt.rt_memory_available()
    want = meminfo("MemAvailable:")
    assert abs(avail - want) < want / 20
    assert simple_rt.rt_os_name() == "linux"
    assert simple_rt.rt_arch_name() == os.uname().machine


def test_system_functions_reject_extra_args():
    with pytest.raises(TypeError):
        simple_rt.rt_hostname(1)


# ---------------------------------------------------------------- threads

THREADS_CHILD = r"""
import subprocess, threading, sys, time
import simple_rt
RT = simple_rt.runtime()
stop = threading.Event()
errors = []
collections = [0]

def collector():
    while not stop.is_set():
        simple_rt.rt_gc_collect()
        collections[0] += 1

def worker(k):
    try:
        for i in range(ROUNDS):
            x = [("t%d-%d-%d" % (k, i, j)) * 3 for j in range(30)]
            d = {"k%d" % j: [j, "v%d-%d" % (i, j), {"n": j * 1.5}] for j in range(20)}
            y = RT.roundtrip([x, d, 1 << 62, b"\x00" * 50])
            if y != [x, d, 1 << 62, b"\x00" * 50]:
                errors.append("round trip %d/%d" % (k, i))
            pol = simple_rt.rt_cap_parse("fs.read=/a%d,/b%d,/c;sys.info=false;*=true" % (i, k))
            if pol != {"fs.read": ["/a%d" % i, "/b%d" % k, "/c"], "sys.info": False, "*": True}:
                errors.append("cap_parse %d/%d: %r" % (k, i, pol))
            if not simple_rt.rt_value_equal("s" * 100 + str(i), "s" * 100 + str(i)):
                errors.append("equal %d/%d" % (k, i))
            if simple_rt.rt_hostname() != HOST:
                errors.append("hostname %d/%d" % (k, i))
            if i % SPAWN_EVERY == 0:
                p = subprocess.run(["echo", "w%d" % k], capture_output=True, text=True)
                if p.stdout != "w%d\n" % k:
                    errors.append("subprocess %d/%d" % (k, i))
                time.sleep(0.001)
    except Exception as e:
        errors.append("%d: %r" % (k, e))

HOST = simple_rt.rt_hostname()
c = threading.Thread(target=collector)
c.start()
ws = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in ws: t.start()
# the main thread spawns too while collections run
for i in range(20):
    subprocess.run(["true"], check=True)
for t in ws: t.join()
stop.set(); c.join()
print("collections", collections[0])
print("errors", len(errors), errors[:5])
assert not errors
assert collections[0] > 10
"""


def test_threads_with_forced_collections_and_subprocess():
    out = run_child("ROUNDS = 300\nSPAWN_EVERY = 10\n" + THREADS_CHILD, timeout=600)
    assert "errors 0" in out


def test_threads_are_not_left_registered():
    """After calls from a thread, that thread is no longer registered: a
    thread that calls in and then spawns processes while another thread
    collects must not make the collector abort (see DEPENDENCIES.md)."""
    out = run_child("""
        import subprocess, threading, time
        import simple_rt
        stop = threading.Event()
        def collector():
            while not stop.is_set():
                simple_rt.rt_gc_collect()
        def worker():
            for i in range(60):
                simple_rt.rt_cap_parse("fs.read=/x")
                subprocess.run(["true"], check=True)
                time.sleep(0.002)
        c = threading.Thread(target=collector); c.start()
        ws = [threading.Thread(target=worker) for _ in range(4)]
        for t in ws: t.start()
        for t in ws: t.join()
        stop.set(); c.join()
        print("done")
    """, timeout=300)
    assert "done" in out


def test_no_thread_stays_registered_after_calls():
    gc_lib = ctypes.CDLL("libgc.so.1")  # the collector libffi_core.so uses
    registered = gc_lib.GC_thread_is_registered
    simple_rt.rt_gc_stats()
    RT.roundtrip(["x", {"y": [1, 2]}])
    assert registered() == 0, "the main thread is left registered with the collector"
    seen = []

    def worker():
        simple_rt.rt_value_equal("a", "a")
        seen.append(registered())
        with RT.attached():
            seen.append(registered())
        seen.append(registered())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [0, 1, 0], seen


MAIN_SPAWN = r"""
import ctypes, os, subprocess, sys, threading
DIRECT = DIRECT_FLAG
if DIRECT:
    V = ctypes.c_uint64
    core = ctypes.CDLL(os.path.join(LIB_DIR, "libffi_core.so"), mode=os.RTLD_NOW)  # on the main thread
    core.rt_gc_collect.restype = V
    core.rt_string_new.restype = V
    core.rt_string_new.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    def churn_once(collect):
        core.rt_thread_attach()
        for _ in range(200):
            core.rt_string_new(b"x" * 64, 64)
        if collect:
            core.rt_gc_collect()
        core.rt_thread_detach()
else:
    import simple_rt
    rt = simple_rt.runtime()
    def churn_once(collect):
        rt.roundtrip(["x" * 64] * 200)
        if collect:
            simple_rt.rt_gc_collect()
stop = threading.Event()
def churn(collect):
    while not stop.is_set():
        churn_once(collect)
ts = [threading.Thread(target=churn, args=(k == 0,)) for k in range(4)]
for t in ts: t.start()
for i in range(600):
    subprocess.run(["true"], check=True)
stop.set()
for t in ts: t.join()
print("spawned ok")
"""


def test_main_thread_spawns_while_others_collect():
    """The package loads libffi_core.so from a short-lived thread, so the
    main thread is not left registered with the collector."""
    out = run_child(MAIN_SPAWN.replace("DIRECT_FLAG", "False").replace("LIB_DIR", repr(simple_rt.lib_dir())),
                    timeout=300)
    assert "spawned ok" in out


def test_ffi_core_loading_thread_not_left_registered():
    """Load libffi_core.so with ctypes on the main thread (as any host would),
    let 4 threads allocate and collect, spawn from main: the loading thread
    must not stay registered with the collector (it used to abort)."""
    out = run_child(MAIN_SPAWN.replace("DIRECT_FLAG", "True").replace("LIB_DIR", repr(simple_rt.lib_dir())),
                    timeout=300)
    assert "spawned ok" in out


# ---------------------------------------------------------------- capabilities (child processes)

def test_capability_denial_message():
    out = run_child("""
        import simple_rt
        assert simple_rt.rt_hostname()
        simple_rt.restrict("sys.info=false")
        for f in ("rt_hostname", "rt_cpu_count", "rt_memory_total", "rt_os_name"):
            try:
                getattr(simple_rt, f)()
                raise SystemExit(f + " was allowed")
            except simple_rt.RtError as e:
                assert e.code == 6 and e.name == "CapabilityDenied", e
                assert e.message == f + " needs sys.info", e.message
                assert e.details["capability"] == "sys.info", e.details
                assert str(e) == "CapabilityDenied: " + f + " needs sys.info"
        print("denied ok")
    """)
    assert "denied ok" in out


def test_capability_narrowing_only():
    out = run_child("""
        import simple_rt
        simple_rt.restrict({"sys.info": False, "fs.read": ["/tmp"]})
        simple_rt.restrict({"sys.info": True, "fs.read": ["/"]})   # cannot widen
        simple_rt.restrict("*=true")
        cur = simple_rt.current_policy()
        assert cur["sys.info"] is False, cur
        assert cur["fs.read"] == ["/tmp"] or cur["fs.read"] == [__import__("os").path.realpath("/tmp")], cur
        try:
            simple_rt.rt_hostname(); raise SystemExit("widened")
        except simple_rt.RtError as e:
            assert e.name == "CapabilityDenied"
        assert simple_rt.rt_cap_check("fs.read", "/tmp/x") is True
        assert simple_rt.rt_cap_check("fs.read", "/etc/passwd") is False
        # narrowing further works
        simple_rt.restrict({"fs.read": ["/tmp/sub"]})
        assert simple_rt.rt_cap_check("fs.read", "/tmp/x") is False
        assert simple_rt.rt_cap_check("fs.read", "/tmp/sub/x") is True
        print("narrow ok")
    """)
    assert "narrow ok" in out


def test_capability_current_form():
    out = run_child("""
        import simple_rt
        cur = simple_rt.current_policy()
        caps = ["fs.read", "fs.write", "fs.hardlink", "env.read", "env.write", "process.spawn", "net.connect",
                "net.listen", "net.http", "sys.info", "tty", "signal", "codegen.jit", "gpu", "thread"]
        assert list(cur) == caps, list(cur)
        assert all(v is True for v in cur.values())
        simple_rt.restrict({"env.read": ["HOME", "LC_*"], "net.connect": ["example.com:443"], "gpu": False,
                            "*": True})
        cur = simple_rt.current_policy()
        assert cur["env.read"] == ["HOME", "LC_*"], cur
        assert cur["net.connect"] == ["example.com:443"], cur
        assert cur["gpu"] is False and cur["tty"] is True
        # the current form is a valid policy: restricting with it changes nothing
        simple_rt.restrict(cur)
        assert simple_rt.current_policy() == cur
        assert simple_rt.rt_cap_check("env.read", "LC_ALL") is True
        assert simple_rt.rt_cap_check("env.read", "PATH") is False
        assert simple_rt.rt_cap_check("net.connect", "EXAMPLE.com:443") is True
        assert simple_rt.rt_cap_check("net.connect", "example.com:80") is False
        simple_rt.restrict("*=false")
        cur = simple_rt.current_policy()
        assert all(v is False for v in cur.values()), cur
        print("form ok")
    """)
    assert "form ok" in out


def test_capability_deny_beats_allow():
    out = run_child("""
        import os, tempfile, simple_rt
        d = os.path.realpath(tempfile.mkdtemp())
        os.makedirs(d + "/secret")
        simple_rt.restrict({"fs.read": [d, "!" + d + "/secret"]})
        assert simple_rt.rt_cap_check("fs.read", d + "/a.txt") is True
        assert simple_rt.rt_cap_check("fs.read", d + "/secret") is False
        assert simple_rt.rt_cap_check("fs.read", d + "/secret/k") is False
        assert simple_rt.rt_cap_check("fs.read", d + "/secretive") is True   # component-wise
        # a later allow of the denied subtree does not re-grant it
        simple_rt.restrict({"fs.read": [d + "/secret"]})
        assert simple_rt.rt_cap_check("fs.read", d + "/secret/k") is False
        print("deny ok")
    """)
    assert "deny ok" in out


def test_capability_path_scope_symlink_escape():
    out = run_child("""
        import os, tempfile, simple_rt
        base = os.path.realpath(tempfile.mkdtemp())
        allowed = base + "/allowed"
        os.makedirs(allowed + "/real")
        open(base + "/outside.txt", "w").write("x")
        os.symlink("/etc", allowed + "/etc_link")
        os.symlink(base + "/outside.txt", allowed + "/file_link")
        os.symlink(base + "/nowhere", allowed + "/dangling")
        os.symlink(allowed + "/real", base + "/in_link")   # outside name, inside target
        simple_rt.restrict({"fs.read": [allowed]})
        chk = lambda p: simple_rt.rt_cap_check("fs.read", p)
        assert chk(allowed + "/real/f") is True
        assert chk(allowed + "/not_yet/deeper") is True         # nonexistent paths resolve too
        assert chk(allowed + "/etc_link/passwd") is False        # symlink escape
        assert chk(allowed + "/file_link") is False
        assert chk(allowed + "/dangling") is False               # dangling link points outside
        assert chk(allowed + "/real/../../outside.txt") is False # .. escape
        assert chk(allowed + "/etc_link/../allowed/real") is False  # .. applies after resolution: /allowed
        assert chk(base + "/in_link/f") is True                  # canonical path is inside
        assert chk(allowed + "x") is False                        # prefix is component-wise
        os.chdir(allowed)
        assert chk("real/f") is True                              # relative to the cwd
        try:
            chk("bad\\0path"); raise SystemExit("NUL accepted")
        except simple_rt.RtError as e:
            assert e.name == "InvalidArgument", e
        print("scope ok")
    """)
    assert "scope ok" in out


def test_capability_bad_policies_change_nothing():
    out = run_child("""
        import simple_rt
        before = simple_rt.current_policy()
        bad = [
            {"no.such": True},
            {"fs.read": ["relative/path"]},
            {"fs.read": [""]},
            {"sys.info": ["/tmp"]},
            {"env.read": ["A=B"]},
            {"net.connect": ["host:99999"]},
            {"net.connect": ["a b"]},
            {"fs.read": [1]},
            {"fs.read": "yes"},
            {"*": ["/tmp"]},
            {1: True},
            {"sys.info": False, "bogus": False},   # the valid part is not applied either
        ]
        for p in bad:
            try:
                simple_rt.restrict(p)
                raise SystemExit("accepted %r" % (p,))
            except simple_rt.RtError as e:
                assert e.name == "InvalidArgument", (p, e)
                assert e.message.startswith("rt_cap_restrict: "), e.message
        try:
            simple_rt.restrict("fs.read")
            raise SystemExit("accepted text without =")
        except simple_rt.RtError as e:
            assert e.name == "Parse", e
        try:
            simple_rt.rt_cap_restrict(None)
            raise SystemExit("accepted nil")
        except simple_rt.RtError as e:
            assert e.name == "TypeMismatch", e
        assert simple_rt.current_policy() == before
        assert simple_rt.rt_hostname()
        print("bad ok")
    """)
    assert "bad ok" in out


def test_restrict_text_form():
    out = run_child("""
        import simple_rt
        simple_rt.restrict("fs.read=/tmp,/usr ; sys.info=false; *=true")
        cur = simple_rt.current_policy()
        assert cur["fs.read"] == ["/tmp", "/usr"], cur
        assert cur["sys.info"] is False and cur["fs.write"] is True
        with_type = None
        try:
            simple_rt.restrict(42)
        except TypeError as e:
            with_type = e
        assert with_type is not None
        print("text ok")
    """)
    assert "text ok" in out


def test_from_value_refuses_words_that_are_no_values():
    # Any int a Python user can pass: a ValueError, never a read at that address.
    # Heap-tagged (low bits 001) addresses outside the collector's heap or inside an
    # object, unused tags (100-111) and an unknown special.
    inside = RT.with_value(["x"], lambda w: w + 8)
    for w in (0x11, 0xDEADBEEF1, 0x7FFF_FFFF_FFF9, (1 << 64) - 7, inside, 0x14, 0x1F, 0x1B):
        with pytest.raises(ValueError, match="not a runtime value"):
            RT.from_value(w)
    # Immediates and a live (pinned) object still convert.
    assert RT.from_value(RT.with_value(7, lambda w: w)) == 7
    w = pinned(["kept"])
    try:
        with RT.attached():
            assert RT.from_value(w) == ["kept"]
    finally:
        RT.unpin(w)


def test_unmatched_thread_detach_is_refused():
    from simple_rt import _native
    with pytest.raises(RuntimeError, match="without a thread_attach"):
        _native.thread_detach()
    # Inside a runtime call (a callback runs in one): refused too, so the call's own
    # attach is not ended under it; the call reports the callback's exception.
    def cb(x):
        _native.thread_detach()
        return x
    with pytest.raises(Exception, match="without a thread_attach"):
        simple_rt.rt_parallel_map(cb, [1, 2, 3])
    # Matched pairs still nest.
    with RT.attached():
        with RT.attached():
            assert RT.roundtrip(["a"]) == ["a"]
