"""ffi_serde from Python: json / tomllib / PyYAML as oracles, errors, limits, threads."""

import json
import math
import random
import threading
import tomllib

import pytest

import simple_rt
from helpers import raises, requires

pytestmark = requires("serde")


def document(seed, depth=0, floats=(0.1, -2.5e-9, 1e300, 3.0)):
    rnd = random.Random(seed)

    def value(d):
        k = rnd.randrange(8 if d < 4 else 5)
        if k == 0:
            return None
        if k == 1:
            return rnd.random() < 0.5
        if k == 2:
            return rnd.randint(-(2**63), 2**63 - 1)
        if k == 3:
            return rnd.choice([*floats, rnd.random()])
        if k == 4:
            return rnd.choice(["", "é😀", "a\nb\t\"q\"", "true", "1", "~", "x" * 50])
        if k == 5:
            return [value(d + 1) for _ in range(rnd.randrange(5))]
        return {f"k{i}-{rnd.randrange(99)}": value(d + 1) for i in range(rnd.randrange(5))}

    return {"root": [value(depth) for _ in range(20)]}


def test_json_matches_python():
    for seed in range(30):
        doc = document(seed)
        text = json.dumps(doc, ensure_ascii=False)
        assert simple_rt.rt_json_parse(text, None) == json.loads(text)
        out = simple_rt.rt_json_stringify(doc, {"sort_keys": True})
        assert json.loads(out) == doc
        assert list(json.loads(out)) == sorted(doc)
        # Byte-identical to Python where the float spelling agrees (no exponents).
        plain = document(seed, floats=(0.1, 3.0, 0.25))
        out = simple_rt.rt_json_stringify(plain, {"sort_keys": True})
        assert out == json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        pretty = simple_rt.rt_json_stringify(plain, {"pretty": True})
        assert pretty == json.dumps(plain, indent=2, ensure_ascii=False)


def test_json_errors():
    e = raises("Parse", simple_rt.rt_json_parse, '{"a": 1,\n "b": }', None)
    assert e.details["line"] == 2 and e.details["column"] == 7
    raises("LimitExceeded", simple_rt.rt_json_parse, "[" * 100_000, None)
    e = raises("Unsupported", simple_rt.rt_json_stringify, {"a": [0, 1, 2, {"b": math.nan}]}, None)
    assert e.details["path"] == "$.a[3].b"
    raises("Unsupported", simple_rt.rt_json_stringify, [b"bytes"], None)
    raises("OutOfRange", simple_rt.rt_json_parse, "[18446744073709551616]", {"bigint": "error"})
    assert simple_rt.rt_json_parse("[18446744073709551616]", {"bigint": "text"}) == ["18446744073709551616"]
    raises("TypeMismatch", simple_rt.rt_json_parse, 5, None)
    raises("InvalidArgument", simple_rt.rt_json_stringify, 1, {"indent": 4})


def test_toml_matches_tomllib():
    src = 'title = "x"\n[owner]\nname = "Tom"\ndob = 1979-05-27T07:32:00-08:00\n[[p]]\nn = 1\n[[p]]\nn = 2.5\n'
    got = simple_rt.rt_toml_parse(src)
    want = tomllib.loads(src)
    want["owner"]["dob"] = want["owner"]["dob"].isoformat()
    assert got == want
    out = simple_rt.rt_toml_stringify(got, {"datetimes": True})
    assert tomllib.loads(out)["owner"]["dob"].isoformat() == "1979-05-27T07:32:00-08:00"
    e = raises("Parse", simple_rt.rt_toml_parse, "a = 1\nb = \n")
    assert e.details["line"] == 2
    raises("Unsupported", simple_rt.rt_toml_stringify, {"a": None}, None)
    raises("TypeMismatch", simple_rt.rt_toml_stringify, [1], None)


def test_yaml():
    yaml = pytest.importorskip("yaml")
    src = "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nlist: [a, 'b', 3.5]\n"
    got = simple_rt.rt_yaml_parse(src, None)
    assert got == yaml.safe_load(src)
    assert simple_rt.rt_yaml_parse_all("--- 1\n--- [2]\n", None) == [1, [2]]
    for seed in range(10):
        doc = document(seed, floats=(0.1, -2.5e-9, 3.0))  # PyYAML (YAML 1.1) reads 1e300 as text
        assert yaml.safe_load(simple_rt.rt_yaml_stringify(doc, None)) == doc
    raises("Parse", simple_rt.rt_yaml_parse, "a: [1, 2\n", None)
    raises("Parse", simple_rt.rt_yaml_parse, "--- 1\n--- 2\n", None)


def test_bincode_round_trip():
    for seed in range(20):
        doc = document(seed)
        doc["bytes"] = bytes(range(256))
        doc["nan"] = math.nan
        data = simple_rt.rt_bincode_encode(doc)
        back = simple_rt.rt_bincode_decode(data)
        assert math.isnan(back.pop("nan"))
        doc.pop("nan")
        assert back == doc
    raises("Parse", simple_rt.rt_bincode_decode, data[:-1])
    raises("Parse", simple_rt.rt_bincode_decode, data + b"\0")


def test_parse_from_threads_with_collections():
    text = json.dumps(document(7))
    want = json.loads(text)
    errors = []

    def worker():
        try:
            for _ in range(30):
                assert simple_rt.rt_json_parse(text, None) == want
                simple_rt.rt_gc_collect()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
