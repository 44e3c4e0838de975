"""JSON straight between text and Python objects (bindings/python/src/json.rs):
the same reader and writer as rt_json_parse / rt_json_stringify in the
library, so results, options and errors must be those of the runtime path
(reached here by passing `simple_rt.Value`s, which go through the library's
own functions)."""

import collections
import enum
import gc
import json
import math
import random
import sys
import threading
import tracemalloc

import pytest

import simple_rt
from simple_rt import RtError, Value
from helpers import raises, requires
from test_serde import document

pytestmark = requires("serde")

STRINGS = ["", "a", "é", "aé", "ÿ", "Ā", "日本語", "a😀b", "😀", "\u0080", "\u07ff", "\u0800", "\uffff",
           "\U00010000", "\U0010ffff", "x" * 100 + "é", "é" * 40, "tab\there", "q\"uote", "back\\slash",
           "\x00\x1f", "/"]


def runtime_parse(text, opts=None):
    """rt_json_parse in the library (the text passed as a runtime value)."""
    return simple_rt.rt_json_parse.value(Value(text), opts)


def error_of(f, *args):
    with pytest.raises(RtError) as e:
        f(*args)
    return type(e.value), e.value.code, e.value.message, e.value.details


def test_parse_matches_the_runtime_and_python():
    for seed in range(40):
        doc = document(seed)
        for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=3)):
            want = json.loads(text)
            assert simple_rt.rt_json_parse(text) == want
            assert simple_rt.rt_json_parse(text.encode()) == want
            v = runtime_parse(text)
            assert (v.to_py() if isinstance(v, Value) else v) == want


def test_strings_of_every_kind():
    rnd = random.Random(5)
    cases = list(STRINGS)
    for _ in range(2000):
        cases.append("".join(chr(rnd.choice([rnd.randint(32, 126), rnd.randint(128, 255), rnd.randint(256, 0xD7FF),
                                             rnd.randint(0xE000, 0xFFFF), rnd.randint(0x10000, 0x10FFFF)]))
                             for _ in range(rnd.randint(0, 24))))
    for s in cases:
        for text in (json.dumps({s: [s, s]}), json.dumps({s: [s, s]}, ensure_ascii=False)):
            got = simple_rt.rt_json_parse(text)
            (k, v), = got.items()
            # Equal, and the same str (length, kind, hash) as Python makes.
            assert k == s and v[0] == s and len(v[1]) == len(s) and hash(v[1]) == hash(s)
            assert max(v[0], default="") == max(s, default="")


def fresh(s):
    """A new str object with the text of `s` (no UTF-8 form cached in it)."""
    return (s + " ")[:-1]


def test_str_arguments_are_left_as_they_were():
    """A non-ASCII str is transcoded to UTF-8 by the extension: no UTF-8 copy
    is cached in it (sys.getsizeof counts one), whatever its kind."""
    for s in ("é" * 100, "日本" * 100, "😀" * 100, "x" * 1000 + "é", "é" + "x" * 1000):
        text = fresh(json.dumps({"k": [s, s]}, ensure_ascii=False))
        size = sys.getsizeof(text)
        assert simple_rt.rt_json_parse(text) == {"k": [s, s]}
        assert simple_rt.rt_json_parse(text) == {"k": [s, s]}  # the remembered UTF-8
        assert simple_rt.rt_json_parse.value(text).to_py() == {"k": [s, s]}
        assert sys.getsizeof(text) == size


def test_transcoding_room_for_three_byte_characters():
    """2-byte-kind strs whose characters take 3 UTF-8 bytes each (U+0800 up):
    the transcoding buffer must hold 3 bytes a character (it once held 2,
    and large ones overran it)."""
    for ch in ("中", "\u0800", "\uffff", "a中", "中😀"):
        s = ch * 50000
        for _ in range(3):
            text = fresh(json.dumps([s], ensure_ascii=False))
            assert simple_rt.rt_json_parse(text) == [s]


def test_the_remembered_str_is_let_go():
    text = fresh(json.dumps(["日本" * 50], ensure_ascii=False))
    base = sys.getrefcount(text)
    simple_rt.rt_json_parse(text)
    assert sys.getrefcount(text) == base + 1  # remembered with its UTF-8
    other = fresh(json.dumps(["é" * 50], ensure_ascii=False))
    simple_rt.rt_json_parse(other)
    assert sys.getrefcount(text) == base  # replaced by the next one
    base = sys.getrefcount(other)
    gc.collect()
    assert sys.getrefcount(other) == base  # still held by this frame: kept
    del other
    gc.collect()  # nothing else holds it: let go (no way to observe but no leak below)
    s = fresh(json.dumps(["ü" * 10], ensure_ascii=False))
    simple_rt.rt_json_parse(s)
    assert simple_rt.rt_json_parse(s) == ["ü" * 10]


def test_keys_are_interned_and_shared():
    a = simple_rt.rt_json_parse('[{"key_one": 1, "key_two": 2}, {"key_one": 3}]')
    b = simple_rt.rt_json_parse('{"key_one": 5}')
    k1 = list(a[0])[0]
    assert k1 is sys.intern("key_one") and list(a[1])[0] is k1 and list(b)[0] is k1


def test_numbers_and_options():
    text = '[0, -0, 1, -1, 9223372036854775807, -9223372036854775808, 1.5, -2.5e-9, 1e400, 256, -5, 3.0]'
    got = simple_rt.rt_json_parse(text)
    assert got == [0, 0, 1, -1, 2**63 - 1, -2**63, 1.5, -2.5e-9, math.inf, 256, -5, 3.0]
    assert [type(x) for x in got] == [int] * 6 + [float] * 3 + [int, int, float]
    big = '[123456789012345678901234567890, -99999999999999999999]'
    for opt in (None, "float", "text"):
        opts = None if opt is None else {"bigint": opt}
        assert simple_rt.rt_json_parse(big, opts) == runtime_parse(big, opts).to_py()
    assert simple_rt.rt_json_parse(big, bigint="text") == ["123456789012345678901234567890", "-99999999999999999999"]
    assert error_of(simple_rt.rt_json_parse, big, {"bigint": "error"}) == error_of(runtime_parse, big, {"bigint": "error"})
    # Options the fast path does not take are the runtime's to refuse.
    for opts in ({"bigint": "bogus"}, {"nope": 1}, {"bigint": 5}):
        assert error_of(simple_rt.rt_json_parse, "[1]", opts) == error_of(runtime_parse, "[1]", opts)


BAD = ['', ' ', '[1,', '[1,]', '{"a" 1}', '{"a":1,}', '{1:2}', '[1 2]', 'tru', 'nul', '[01]', '[-]', '[1.]', '[1e]',
       '"\\x"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"abc', '"a\nb"', '[1] x', '{"a":[}', '\ufeff[]',
       '[' * 200, '{"a":' * 200, '"\\u12"', '{"a":1}}', '[true false]']


def test_errors_match_the_runtime():
    for text in BAD:
        fast = error_of(simple_rt.rt_json_parse, text)
        assert fast == error_of(runtime_parse, text), text
        assert fast == error_of(simple_rt.rt_json_parse, text.encode()), text
    e = raises("Parse", simple_rt.rt_json_parse, '{"a": 1,\n "b": }')
    assert isinstance(e, ValueError) and e.details == {"line": 2, "column": 7, "position": 15}
    raises("LimitExceeded", simple_rt.rt_json_parse, "[" * 100_000)
    # Invalid UTF-8 in bytes.
    assert error_of(simple_rt.rt_json_parse, b'["\xff"]') == error_of(runtime_parse, b'["\xff"]')
    # A str that is not valid Unicode goes the ordinary way (and fails as before).
    with pytest.raises(UnicodeEncodeError):
        simple_rt.rt_json_parse('["\ud800"]')
    # Duplicate keys: the last value, in the first key's place.
    assert list(simple_rt.rt_json_parse('{"a":1,"b":2,"a":3}').items()) == [("a", 3), ("b", 2)]


def test_python_gc_state_is_restored():
    assert gc.isenabled()
    simple_rt.rt_json_parse('[[1], [2]]')
    assert gc.isenabled()
    with pytest.raises(RtError):
        simple_rt.rt_json_parse('[[1], [2')
    assert gc.isenabled()
    gc.disable()
    try:
        simple_rt.rt_json_parse('[[1], [2]]')
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_no_leaks():
    text = json.dumps(document(3), ensure_ascii=False)
    bad = [text[: i] for i in range(0, len(text), max(1, len(text) // 60))]
    obj = json.loads(text)

    def work():
        for _ in range(20):
            simple_rt.rt_json_parse(text)
            simple_rt.rt_json_stringify(obj)
            simple_rt.rt_json_stringify(obj, pretty=True, sort_keys=True)
            for b in bad:
                try:
                    simple_rt.rt_json_parse(b)
                except RtError:
                    pass

    work()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200_000, grown
    n = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(1000):
        simple_rt.rt_json_parse("[null, true, null]")
    assert abs(sys.getrefcount(None) - n[0]) < 50 and abs(sys.getrefcount(True) - n[1]) < 50


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


def runtime_stringify(obj, opts=None):
    return simple_rt.rt_json_stringify(Value(obj), opts)


def test_stringify_matches_the_runtime():
    for seed in range(40):
        doc = document(seed)
        for opts in (None, {"pretty": True}, {"sort_keys": True}, {"pretty": True, "sort_keys": False}):
            out = simple_rt.rt_json_stringify(doc, opts)
            assert out == runtime_stringify(doc, opts)
            assert json.loads(out) == doc
    odd = {
        1: "int key", 2.5: "float key", True: "bool key", None: "none key", "s": (1, 2, [3]),
        "od": collections.OrderedDict([("z", 1), ("a", 2)]), "enum": Color.RED, "sub": MyStr("x"),
        "strings": STRINGS, "big": 2**63 - 1, "neg": -2**63, "floats": [0.1, -0.0, 1e300, 5e-324, 1.0],
    }
    for opts in (None, {"sort_keys": True}, {"pretty": True}):
        assert simple_rt.rt_json_stringify(odd, opts) == runtime_stringify(odd, opts)


def test_stringify_errors_match_the_runtime():
    cases = [{"a": [0, {"b": math.nan}]}, [math.inf], {"k": b"bytes"}, {"k": [1, {2: [3, -math.inf]}]},
             {(1, 2): 3}, [[[[]]]] * 3 + [{"x": float("nan")}]]
    for obj in cases:
        try:
            want = error_of(runtime_stringify, obj)
        except TypeError as e:  # not even convertible: the same TypeError from both
            with pytest.raises(TypeError) as f:
                simple_rt.rt_json_stringify(obj)
            assert str(f.value) == str(e)
            continue
        assert error_of(simple_rt.rt_json_stringify, obj) == want, obj
    e = raises("Unsupported", simple_rt.rt_json_stringify, {"a": [0, 1, 2, {"b": math.nan}]})
    assert e.details["path"] == "$.a[3].b"
    with pytest.raises(OverflowError):
        simple_rt.rt_json_stringify([2**64])
    with pytest.raises(TypeError):
        simple_rt.rt_json_stringify({"a": {1, 2}})
    with pytest.raises(UnicodeEncodeError):
        simple_rt.rt_json_stringify(["\ud800"])
    cyc = []
    cyc.append(cyc)
    with pytest.raises((RtError, ValueError)):
        simple_rt.rt_json_stringify(cyc)
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(RtError):
        simple_rt.rt_json_stringify(deep)


def test_parse_and_stringify_from_threads():
    text = json.dumps(document(11), ensure_ascii=False)
    want = json.loads(text)
    errors = []

    def worker():
        try:
            for _ in range(50):
                assert simple_rt.rt_json_parse(text) == want
                assert json.loads(simple_rt.rt_json_stringify(want)) == want
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_large_arguments_release_the_gil():
    """A call on a large text or bytes argument lets other threads run (as
    hashlib does), although the function does not block."""
    if not hasattr(simple_rt, "rt_sha256_bytes"):
        pytest.skip("libffi_crypto.so not built")
    data = bytes(range(256)) * (64 << 10)  # 16 MiB
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        during = []
        for _ in range(3):
            c0 = count[0]
            simple_rt.rt_sha256_bytes(data)
            during.append(count[0] - c0)
    finally:
        stop.set()
        t.join()
    assert max(during) > 100, during
