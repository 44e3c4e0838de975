"""ffi_concurrent from Python: Python callables run by library threads
(parallel map, threads), the GIL released meanwhile, callbacks that call
back into simple_rt, exceptions mapped to Errors, locks and channels."""

import threading
import time

import pytest

import simple_rt
from simple_rt import RtError

from helpers import live_callbacks, raises, requires, run_child

pytestmark = requires("concurrent")


def test_parallel_map_python_function_keeps_order():
    out = simple_rt.rt_parallel_map(lambda x: x * 2, list(range(1000)))
    assert out == [2 * i for i in range(1000)]
    assert simple_rt.rt_parallel_map(lambda x: {"v": [x, str(x), b"b"]}, [1, 2]) == [
        {"v": [1, "1", b"b"]}, {"v": [2, "2", b"b"]}]
    assert simple_rt.rt_parallel_map(lambda x: x, []) == []
    assert simple_rt.rt_parallel_map(len, ["a", "bb"], {"threads": 1}) == [1, 2]


def test_exceptions_become_errors_with_the_index():
    def f(x):
        if x == 5:
            raise ValueError("five")
        return x
    e = raises("Panic", simple_rt.rt_parallel_map, f, list(range(10)))
    assert "element 5 failed: python callback raised ValueError: five" in e.message
    assert e.details["index"] == 5
    # An RtError raised inside keeps its code.
    def g(x):
        raise RtError(simple_rt.CODES["NotFound"], "NotFound", "no such thing")
    e = raises("NotFound", simple_rt.rt_parallel_for_each, g, [1])
    assert "no such thing" in e.message
    # Unconvertible results are Errors too, not crashes.
    e = raises("Panic", simple_rt.rt_parallel_map, lambda x: object(), [1])
    assert "TypeError" in e.message


def test_callback_calls_back_into_simple_rt_without_deadlock():
    def inner(x):
        m = simple_rt.rt_mutex_new(x)
        v = simple_rt.rt_mutex_lock(m)
        simple_rt.rt_mutex_unlock(m, v + 1)
        return simple_rt.rt_parallel_map(lambda y: y + x, [1, 2])
    assert simple_rt.rt_parallel_map(inner, [10, 20, 30]) == [[11, 12], [21, 22], [31, 32]]


def test_gil_is_released_while_library_threads_run():
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)
    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.01)
        n0 = len(ticks)
        simple_rt.rt_parallel_for_each("rt_thread_sleep_ms", [200, 200], {"threads": 2})
        n1 = len(ticks)
    finally:
        stop.set()
        t.join()
    assert n1 - n0 > 20, "the Python thread should run while the map waits (%d ticks)" % (n1 - n0)


def test_threads_with_python_callables():
    h = simple_rt.rt_thread_spawn(lambda x: [x, x], "arg", {"name": "py-worker"})
    assert simple_rt.rt_thread_name(h) == "py-worker"
    assert simple_rt.rt_thread_join(h) == ["arg", "arg"]
    raises("InvalidArgument", simple_rt.rt_thread_join, h)
    h = simple_rt.rt_thread_spawn(lambda: "no argument", None)
    assert simple_rt.rt_thread_join(h) == "no argument"
    h = simple_rt.rt_thread_spawn_isolated2(lambda a, b: a + b, 40, 2)
    assert simple_rt.rt_thread_join(h) == 42
    h = simple_rt.rt_thread_spawn(lambda x: time.sleep(0.3), None)
    raises("Timeout", simple_rt.rt_thread_join, h, {"timeout_ms": 10})
    assert simple_rt.rt_thread_join(h) is None
    def boom(x):
        raise KeyError("k")
    e = raises("Panic", simple_rt.rt_thread_join, simple_rt.rt_thread_spawn(boom, 1))
    assert "KeyError" in e.message


def test_reusable_callback_handle_and_release():
    cb = simple_rt.callback(lambda x: x + 1)
    assert cb.type == "Callback"
    assert simple_rt.rt_parallel_map(cb, [1, 2]) == [2, 3]
    assert simple_rt.rt_parallel_map(cb, [5]) == [6]
    before = live_callbacks()
    cb.close()
    assert live_callbacks() == before - 1, "the release function dropped the token"
    raises("Closed", simple_rt.rt_parallel_map, cb, [1])


def test_bad_input():
    raises("TypeMismatch", simple_rt.rt_parallel_map, None, [1])
    raises("NotFound", simple_rt.rt_parallel_map, "rt_no_such_function", [1])
    raises("InvalidArgument", simple_rt.rt_parallel_map, "rt_mutex_unlock", [1])
    raises("InvalidArgument", simple_rt.rt_parallel_map, lambda a, b: a, [1])
    raises("TypeMismatch", simple_rt.rt_parallel_map, lambda x: x, 5)
    raises("InvalidArgument", simple_rt.rt_parallel_map, lambda x: x, [1], {"threads": 0})


def test_locks_channels_atomics():
    m = simple_rt.rt_mutex_new({"n": 1})
    assert simple_rt.rt_mutex_lock(m) == {"n": 1}
    out = []
    t = threading.Thread(target=lambda: out.append(
        pytest.raises(RtError, simple_rt.rt_mutex_unlock, m).value.name))
    t.start()
    t.join()
    assert out == ["InvalidArgument"]
    simple_rt.rt_mutex_unlock(m, {"n": 2})
    assert simple_rt.rt_mutex_lock(m, {"timeout_ms": 0}) == {"n": 2}
    simple_rt.rt_mutex_unlock(m)

    ch = simple_rt.rt_channel_create(4)
    prod = simple_rt.rt_thread_spawn(lambda c: [simple_rt.rt_channel_send(c, {"i": i}) for i in range(50)] and
                                     simple_rt.rt_channel_close(c), ch)
    got = []
    while True:
        try:
            got.append(simple_rt.rt_channel_recv(ch)["i"])
        except RtError as e:
            assert e.name == "Closed"
            break
    assert got == list(range(50))
    assert simple_rt.rt_thread_join(prod) is True
    raises("Closed", simple_rt.rt_channel_send, ch, 1)
    raises("Timeout", simple_rt.rt_channel_try_recv, simple_rt.rt_channel_create(None))

    a = simple_rt.rt_atomic_int_new(0)
    simple_rt.rt_parallel_for_each(lambda x: simple_rt.rt_atomic_int_fetch_add(a, x), list(range(101)))
    assert simple_rt.rt_atomic_int_load(a) == 5050


def test_forced_collections_during_python_callbacks():
    """Results made by Python callbacks survive collections forced meanwhile."""
    run_child("""
        import threading, simple_rt
        stop = threading.Event()
        def collect():
            while not stop.is_set():
                simple_rt.rt_gc_collect()
        t = threading.Thread(target=collect); t.start()
        try:
            for r in range(5):
                out = simple_rt.rt_parallel_map(lambda x: {"x": [x, "s%d" % x, b"b" * (x % 7)]}, list(range(2000)))
                assert out == [{"x": [x, "s%d" % x, b"b" * (x % 7)]} for x in range(2000)], r
        finally:
            stop.set(); t.join()
        print("ok")
    """)


def test_process_exits_while_library_threads_run():
    out = run_child("""
        import simple_rt
        simple_rt.rt_thread_spawn("rt_thread_sleep_ms", 60000)
        simple_rt.rt_parallel_map(lambda x: x, [1, 2, 3])
        print("exiting")
    """, timeout=30)
    assert "exiting" in out


def test_capability_denied_before_anything_starts():
    run_child("""
        import simple_rt
        simple_rt.restrict("thread=false")
        for f, args in ((simple_rt.rt_parallel_map, (lambda x: x, [1])),
                        (simple_rt.rt_thread_spawn, (lambda x: x, 1))):
            try:
                f(*args)
            except simple_rt.RtError as e:
                assert e.name == "CapabilityDenied" and "needs thread" in e.message, e
            else:
                raise SystemExit("not denied")
        print("ok")
    """)
