"""ffi_data from Python: regex against `re`, interning, arenas, maps of values from threads."""

import re
import threading

import pytest

import simple_rt
from helpers import raises, requires

pytestmark = requires("data")


TEXT = "mail alice@example.org, bob.smith@mail.co.uk; prices 3.50 and 12 — Zürich 2024-05-01 " * 50


def test_regex_against_re():
    pat = r"[\w.]+@[\w.]+|\d+(?:\.\d+)?"
    r = simple_rt.rt_regex_new(pat, None)
    assert simple_rt.rt_regex_find_all(r, TEXT, None) == re.findall(pat, TEXT)
    assert simple_rt.rt_regex_is_match(r, TEXT) is True
    m = simple_rt.rt_regex_find(r, TEXT)
    pm = re.search(pat, TEXT)
    assert m["text"] == pm.group(0)
    assert m["char_start"] == pm.start() and m["char_end"] == pm.end()  # Python indexes by code point
    assert m["start"] == len(TEXT[: pm.start()].encode())
    sp = re.compile(r"\s+")
    assert simple_rt.rt_regex_split(simple_rt.rt_regex_new(r"\s+", None), TEXT, {"limit": 4}) == sp.split(TEXT, maxsplit=3)
    d = simple_rt.rt_regex_new(r"(\d{4})-(\d{2})-(?P<day>\d{2})", None)
    assert simple_rt.rt_regex_replace(d, TEXT, "$3/$2/$1", None) == re.sub(r"(\d{4})-(\d{2})-(\d{2})", r"\3/\2/\1", TEXT)
    caps = simple_rt.rt_regex_captures(d, "on 2024-05-01")
    assert caps == {0: "2024-05-01", 1: "2024", 2: "05", 3: "01", "day": "01"}
    assert simple_rt.rt_regex_captures(d, "no date") is None
    assert simple_rt.rt_regex_new("ABC", {"case_insensitive": True}) is not None


def test_regex_errors():
    e = raises("Parse", simple_rt.rt_regex_new, "a(b", None)
    assert e.details["position"] == 1 and e.details["line"] == 1
    raises("LimitExceeded", simple_rt.rt_regex_new, r"\w{1000}", {"size_limit": 1000})
    raises("InvalidArgument", simple_rt.rt_regex_new, "a", {"nope": 1})
    raises("TypeMismatch", simple_rt.rt_regex_new, 5, None)
    r = simple_rt.rt_regex_new("a", None)
    raises("TypeMismatch", simple_rt.rt_regex_find, r, b"\xff")
    r.close()
    raises("Closed", simple_rt.rt_regex_is_match, r, "a")


def test_interning():
    a = simple_rt.rt_intern_string("py-symbol")
    assert a == simple_rt.rt_intern_string("py-symbol")
    assert simple_rt.rt_intern_resolve(a) == "py-symbol"
    assert simple_rt.rt_intern_string("py-other") != a
    raises("NotFound", simple_rt.rt_intern_resolve, 1 << 40)
    raises("TypeMismatch", simple_rt.rt_intern_string, None)


def test_arena():
    ar = simple_rt.rt_arena_new({"limit": 1 << 20})
    i = simple_rt.rt_arena_alloc(ar, 64)
    assert simple_rt.rt_arena_read(ar, i, 0, 8) == b"\0" * 8
    simple_rt.rt_arena_write(ar, i, 60, b"tail")
    assert simple_rt.rt_arena_read(ar, i, 56, 8) == b"\0\0\0\0tail"
    assert simple_rt.rt_arena_size(ar, i) == 64
    assert simple_rt.rt_arena_ptr(ar, i) % 16 == 0
    assert simple_rt.rt_arena_stats(ar)["buffers"] == 1
    raises("OutOfRange", simple_rt.rt_arena_write, ar, i, 62, b"tail")
    raises("LimitExceeded", simple_rt.rt_arena_alloc, ar, 2 << 20)
    ar.close()
    raises("Closed", simple_rt.rt_arena_alloc, ar, 1)


@pytest.mark.parametrize("kind", ["map", "omap"])
def test_maps_from_threads(kind):
    f = {n: getattr(simple_rt, f"rt_{kind}_{n}") for n in ["new", "set", "get", "has", "remove", "len", "keys", "to_dict", "clear"]}
    m = f["new"]()
    errors = []

    def worker(t):
        try:
            for i in range(1500):
                k = t * 10_000 + i
                f["set"](m, k, [f"value-{k}", {"n": k}])
                if i % 50 == 0:
                    simple_rt.rt_gc_collect()
                got = f["get"](m, t * 10_000 + i // 2)
                assert got[0] == f"value-{t * 10_000 + i // 2}", got
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    simple_rt.rt_gc_collect()
    assert f["len"](m) == 6000
    d = f["to_dict"](m)
    assert all(v == [f"value-{k}", {"n": k}] for k, v in d.items())
    assert f["remove"](m, 0) == ["value-0", {"n": 0}]
    assert f["has"](m, 0) is False
    assert f["set"](m, "k", None) is None and f["has"](m, "k") is True
    raises("TypeMismatch", f["set"], m, 1.5, 1)
    f["clear"](m)
    assert f["len"](m) == 0 and f["keys"](m) == []
    m.close()
    raises("Closed", f["len"], m)


def test_ordered_map_order():
    m = simple_rt.rt_omap_new()
    for k in ["z", "a", "m"]:
        simple_rt.rt_omap_set(m, k, k * 2)
    simple_rt.rt_omap_remove(m, "a")
    assert simple_rt.rt_omap_keys(m) == ["z", "m"]
    assert simple_rt.rt_omap_at(m, 1) == ["m", "mm"]
    raises("OutOfRange", simple_rt.rt_omap_at, m, 2)
