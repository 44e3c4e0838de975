"""simple_rt.Value: results kept native (`f.value(...)`, `Value(obj)`), lazy
access, pinning, use as arguments without conversion, collector safety."""

import gc
import json
import threading

import pytest

import simple_rt
from simple_rt import Value
from helpers import raises, requires

pytestmark = requires("serde")

DOC = {
    "name": "root",
    "items": [1, -2, 2.5, None, True, "é😀", {"deep": [[1, 2], {"x": "y"}]}],
    "empty": {},
    "list": [],
    "nested": {"a": {"b": {"c": [10, 20, 30]}}},
}
TEXT = json.dumps(DOC, ensure_ascii=False)


def pin_count(v):
    return simple_rt.host("rt_value_pin_count")(v.word)


def test_value_form_keeps_the_result_native():
    v = simple_rt.rt_json_parse.value(TEXT)
    assert isinstance(v, Value) and v.kind == "dict"
    assert v.to_py() == DOC
    assert v == DOC and v == simple_rt.rt_json_parse.value(TEXT)
    # Strings and bytes results stay native too; scalars are Python objects.
    s = simple_rt.rt_json_stringify.value(DOC)
    assert isinstance(s, Value) and s.kind == "string" and s.to_py() == simple_rt.rt_json_stringify(DOC)
    assert simple_rt.rt_json_parse.value("5") == 5 and type(simple_rt.rt_json_parse.value("5")) is int
    assert simple_rt.rt_json_parse.value("null") is None
    # Keyword options work in the .value form.
    big = simple_rt.rt_json_parse.value('{"n": 123456789012345678901234567890}', bigint="text")
    assert big["n"] == "123456789012345678901234567890"
    # Errors raise as usual.
    raises("Parse", simple_rt.rt_json_parse.value, "[1,")
    # Functions resolved by name have the form too.
    assert simple_rt.runtime().fn("rt_json_parse").value("[1]")[0] == 1


def test_lazy_access():
    v = simple_rt.rt_json_parse.value(TEXT)
    assert len(v) == 5 and bool(v)
    assert list(v) == list(DOC) == list(v.keys())
    items = v["items"]
    assert isinstance(items, Value) and items.kind == "array" and len(items) == 7
    assert items[0] == 1 and items[-1]["deep"][1]["x"] == "y"
    assert items[2] == 2.5 and items[3] is None and items[4] is True and items[5] == "é😀"
    assert items[1:3] == [-2, 2.5] and items[::-3][1:] == [None, 1] and items[::-3][0]["deep"][0] == [1, 2]
    assert [x for x in v["nested"]["a"]["b"]["c"]] == [10, 20, 30]
    assert "name" in v and "nope" not in v and 2.5 in items and 99 not in items
    assert v.get("name") == "root" and v.get("nope") is None and v.get("nope", 7) == 7
    assert [k for k, _ in v.items()] == list(DOC)
    assert [x.to_py() if isinstance(x, Value) else x for x in v.values()] == list(DOC.values())
    assert not v["empty"] and not v["list"] and len(v["empty"]) == 0
    with pytest.raises(KeyError):
        v["nope"]
    with pytest.raises(IndexError):
        items[7]
    with pytest.raises(IndexError):
        items[-8]
    with pytest.raises(TypeError):
        items["x"]
    with pytest.raises(TypeError):
        len(Value(5))
    with pytest.raises(TypeError):
        iter(Value("text"))
    assert len(Value("é😀")) == 2 and len(Value(b"\x00\x01")) == 2
    assert "dict len=5" in repr(v)


def test_value_from_python_objects_and_as_argument():
    v = Value(DOC)
    assert v.kind == "dict" and v.to_py() == DOC
    assert Value(v).word == v.word  # a Value is taken as it is
    # Passed without conversion: parse -> Value -> stringify.
    p = simple_rt.rt_json_parse.value(TEXT)
    assert simple_rt.rt_json_stringify(p) == simple_rt.rt_json_stringify(DOC)
    assert simple_rt.rt_json_stringify(p, pretty=True, sort_keys=True) == \
        simple_rt.rt_json_stringify(DOC, {"pretty": True, "sort_keys": True})
    # The same runtime dict reaches the function (its equality is identity for containers).
    assert simple_rt.rt_value_equal(p, p) is True and simple_rt.rt_value_equal(p, v) is False and p == v
    assert simple_rt.rt_yaml_parse(simple_rt.rt_yaml_stringify(p)) == DOC
    # Inside Python containers too.
    assert simple_rt.rt_json_parse(simple_rt.rt_json_stringify([p, 1])) == [DOC, 1]
    # A native string argument (no copy back and forth).
    t = Value(TEXT)
    assert simple_rt.rt_json_parse(t) == DOC
    if hasattr(simple_rt, "rt_sha256_hash"):
        import hashlib
        assert simple_rt.rt_sha256_hash(t) == hashlib.sha256(TEXT.encode()).hexdigest()
    # Errors keep their codes.
    e = raises("Unsupported", simple_rt.rt_json_stringify, Value({"a": [float("nan")]}))
    assert e.details["path"] == "$.a[0]"


def test_pinned_while_alive_and_unpinned_after():
    v = simple_rt.rt_json_parse.value(TEXT)
    assert pin_count(v) == 1
    child = v["nested"]
    assert pin_count(child) == 1
    w = child.word
    del child
    gc.collect()
    assert simple_rt.host("rt_value_pin_count")(w) == 0
    word = v.word
    del v
    gc.collect()
    assert simple_rt.host("rt_value_pin_count")(word) == 0


def churn():
    """Garbage for the collector, then forced collections."""
    for _ in range(3):
        simple_rt.runtime().roundtrip([("garbage %d" % i) * 20 for i in range(3000)])
        simple_rt.rt_json_parse.value(json.dumps([{"k%d" % i: [i] * 5} for i in range(500)]))
        simple_rt.rt_gc_collect()


def test_values_survive_forced_collections():
    v = simple_rt.rt_json_parse.value(TEXT)
    deep = v["items"][-1]["deep"]
    strings = simple_rt.rt_json_stringify.value(DOC)
    it = iter(simple_rt.rt_json_parse.value(json.dumps(list(range(100)))))
    first = next(it)
    del v  # the child keeps its own pin; the parent may go
    gc.collect()
    churn()
    assert deep.to_py() == [[1, 2], {"x": "y"}]
    assert deep[1]["x"] == "y"
    assert strings.to_py() == simple_rt.rt_json_stringify(DOC)
    assert [first, *it] == list(range(100))  # the iterator keeps its value alive
    stats = simple_rt.rt_gc_stats()
    assert stats["collections"] > 0


def test_values_from_threads_with_collections():
    errors = []

    def worker(seed):
        try:
            doc = {"seed": seed, "rows": [{"i": i, "s": "x%d" % i} for i in range(200)]}
            for _ in range(20):
                v = simple_rt.rt_json_parse.value(json.dumps(doc))
                simple_rt.rt_gc_collect()
                rows = v["rows"]
                assert rows[199]["s"] == "x199" and v == doc
                assert json.loads(simple_rt.rt_json_stringify(rows)) == doc["rows"]
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_value_access_leaves_no_thread_registered():
    """Accesses attach the thread for their duration only (as calls do)."""
    v = simple_rt.rt_json_parse.value(TEXT)
    _ = [v["items"][i] for i in range(7)], list(v), v.to_py(), len(v), "name" in v
    attach, detach = simple_rt.host("rt_thread_attach"), simple_rt.host("rt_thread_detach")
    assert attach() == 1  # the depth was 0: nothing left attached
    assert detach() == 0
