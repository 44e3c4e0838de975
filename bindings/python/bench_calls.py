"""Per-call cost of the Python binding (microseconds per call, best of 7).

    python3 bindings/python/bench_calls.py            # libraries from lib_dir()
    SIMPLE_RT_LIB_DIR=target/release python3 bindings/python/bench_calls.py

Compares with a bare ctypes call of the same function (no frame, no attach
bracket: the floor, and unsafe for heap results) and with the attach bracket
alone.
"""

import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simple_rt  # noqa: E402

N = int(os.environ.get("BENCH_N", "100000"))


def per_call(stmt, n=N, **names):
    g = {"simple_rt": simple_rt}
    g.update(names)
    return min(timeit.repeat(stmt, number=n, repeat=7, globals=g)) / n * 1e6


def main():
    rt = simple_rt.runtime()
    print("simple_rt %s mode, libraries in %s" % (rt.mode, rt.dir))
    rows = [
        ("rt_value_equal(1, 2)", "simple_rt.rt_value_equal(1, 2)", N),
        ("rt_value_equal(1.5, None)", "simple_rt.rt_value_equal(1.5, None)", N),
        ("rt_value_equal('abc', 'abc')", "simple_rt.rt_value_equal('abc', 'abc')", N // 4),
        ("rt_sha256_hash(b'abc')", "simple_rt.rt_sha256_hash(b'abc')", N // 4),
        ("call('rt_value_equal', 1, 2)", "simple_rt.call('rt_value_equal', 1, 2)", N),
    ]
    print("%-32s %12s %12s" % ("call", "us/call", "attached()"))
    for label, stmt, n in rows:
        out = per_call(stmt, n)
        with simple_rt.attached():
            inside = per_call(stmt, n)
        print("%-32s %12.2f %12.2f" % (label, out, inside))
    _addr, _n, _cif, cfunc = rt.lookup("rt_value_equal")
    print("%-32s %12.2f" % ("bare ctypes rt_value_equal", per_call("f(8, 16)", f=cfunc)))
    print("%-32s %12.2f" % ("rt_thread_attach+detach", per_call("a(); d()", a=rt.attach, d=rt.detach)))


if __name__ == "__main__":
    main()
