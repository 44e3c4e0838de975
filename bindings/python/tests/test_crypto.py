"""ffi_crypto from Python: digests against hashlib, xxHash against the `xxhash`
package, Argon2 against `argon2-cffi` (both installed with pip if missing;
a test skips with the reason only when the install fails), streaming hashers
as handles, bad input.
"""

import hashlib
import importlib
import os
import subprocess
import sys

import pytest

import simple_rt
from helpers import child, raises, requires

MASK = (1 << 64) - 1

pytestmark = requires("crypto")


def need(module, package):
    """Imports `module`, pip-installing `package` first if needed; skips if that fails."""
    try:
        return importlib.import_module(module)
    except ImportError:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], capture_output=True, text=True)
        try:
            importlib.invalidate_caches()
            return importlib.import_module(module)
        except ImportError:
            pytest.skip("cannot import %s; pip install %s failed: %s" % (module, package, r.stderr.strip()[-300:]))


def inputs():
    rnd = __import__("random").Random(1234)
    lens = list(range(0, 300)) + [511, 512, 513, 1023, 1024, 1025, 4095, 4096, 65536, 1_000_003]
    return [rnd.randbytes(n) for n in lens]


def test_sha_matches_hashlib():
    for m in inputs():
        assert simple_rt.rt_sha256_hash(m) == hashlib.sha256(m).hexdigest()
        assert simple_rt.rt_sha1_hash(m) == hashlib.sha1(m).hexdigest()
        assert simple_rt.rt_sha256_bytes(m) == hashlib.sha256(m).digest()
        assert simple_rt.rt_sha1_bytes(m) == hashlib.sha1(m).digest()
    # str is hashed as UTF-8.
    assert simple_rt.rt_sha256_hash("héllo\0") == hashlib.sha256("héllo\0".encode()).hexdigest()
    assert simple_rt.rt_sha256_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_xxhash_matches_python_xxhash():
    xxhash = need("xxhash", "xxhash")
    rnd = __import__("random").Random(9)
    for m in inputs():
        seed = rnd.getrandbits(64)
        signed_seed = seed - (1 << 64) if seed >= 1 << 63 else seed
        assert simple_rt.rt_xxhash64(m) & MASK == xxhash.xxh64_intdigest(m)
        assert simple_rt.rt_xxhash64(m, signed_seed) & MASK == xxhash.xxh64_intdigest(m, seed)
        assert simple_rt.rt_xxhash3(m) & MASK == xxhash.xxh3_64_intdigest(m)
        assert simple_rt.rt_xxhash3(m, signed_seed) & MASK == xxhash.xxh3_64_intdigest(m, seed)


def test_ahash_stable_in_process():
    a = simple_rt.rt_ahash(b"key")
    assert a == simple_rt.rt_ahash("key") == simple_rt.rt_ahash(b"key")
    assert len({simple_rt.rt_ahash(str(i)) for i in range(5000)}) == 5000


def test_streaming_hashers():
    xxhash = need("xxhash", "xxhash")
    data = os.urandom(300_000)
    for alg, want in [("sha256", hashlib.sha256(data).hexdigest()), ("sha1", hashlib.sha1(data).hexdigest()),
                      ("xxh64", xxhash.xxh64_intdigest(data)), ("xxh3", xxhash.xxh3_64_intdigest(data))]:
        h = simple_rt.rt_hasher_new(alg)
        assert isinstance(h, simple_rt.Handle)
        for i in range(0, len(data), 7777):
            assert simple_rt.rt_hasher_update(h, data[i:i + 7777]) is None
        got = simple_rt.rt_hasher_finish(h)
        got = got if isinstance(got, str) else got & MASK
        assert got == want, alg
        # finish again: same; update after finish: Closed.
        again = simple_rt.rt_hasher_finish(h)
        assert (again if isinstance(again, str) else again & MASK) == want
        raises("Closed", simple_rt.rt_hasher_update, h, b"x")
        h.close()
        raises("Closed", simple_rt.rt_hasher_finish, h)
    h = simple_rt.rt_hasher_new("xxh3", {"seed": 5})
    simple_rt.rt_hasher_update(h, b"abc")
    assert simple_rt.rt_hasher_finish(h) & MASK == xxhash.xxh3_64_intdigest(b"abc", 5)
    raises("InvalidArgument", simple_rt.rt_hasher_new, "md5")
    raises("InvalidArgument", simple_rt.rt_hasher_new, "sha256", {"seed": 1})


def test_argon2_against_argon2_cffi():
    argon2 = need("argon2", "argon2-cffi")
    ph = argon2.PasswordHasher(time_cost=1, memory_cost=256, parallelism=2)
    for pw in ["", "hunter2", "pässwörd", "x" * 200]:
        theirs = ph.hash(pw)
        assert simple_rt.rt_argon2_verify(pw, theirs) is True
        assert simple_rt.rt_argon2_verify(pw + "!", theirs) is False
        ours = simple_rt.rt_argon2_hash(pw, {"m_cost": 256, "t_cost": 1, "p_cost": 2})
        assert ours.startswith("$argon2id$v=19$m=256,t=1,p=2$")
        assert ph.verify(ours, pw)
        with pytest.raises(argon2.exceptions.VerifyMismatchError):
            ph.verify(ours, pw + "!")
    # Same salt and parameters: identical to argon2-cffi's low-level hash.
    salt = b"0123456789abcdef"
    want = argon2.low_level.hash_secret(b"pw", salt, 2, 512, 1, 32, argon2.low_level.Type.ID).decode()
    assert simple_rt.rt_argon2_hash(b"pw", {"m_cost": 512, "t_cost": 2, "salt": salt}) == want


def test_argon2_defaults_and_errors():
    h = simple_rt.rt_argon2_hash("secret")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert h != simple_rt.rt_argon2_hash("secret")
    assert simple_rt.rt_argon2_verify("secret", h) is True
    raises("Parse", simple_rt.rt_argon2_verify, "x", "$argon2id$garbage")
    raises("Parse", simple_rt.rt_argon2_verify, "x", "")
    raises("LimitExceeded", simple_rt.rt_argon2_hash, "x", {"m_cost": 8 * 1024 * 1024})
    raises("LimitExceeded", simple_rt.rt_argon2_verify, "x", h.replace("m=19456", "m=99999999"))
    raises("InvalidArgument", simple_rt.rt_argon2_hash, "x", {"salt": b"short"})
    raises("InvalidArgument", simple_rt.rt_argon2_hash, "x", {"unknown": 1})


def test_bad_kinds():
    for f in [simple_rt.rt_sha256_hash, simple_rt.rt_sha1_hash, simple_rt.rt_sha256_bytes, simple_rt.rt_xxhash3,
              simple_rt.rt_xxhash64, simple_rt.rt_ahash]:
        raises("TypeMismatch", f, None)
        raises("TypeMismatch", f, 12)
        raises("TypeMismatch", f, [b"a"])
    raises("TypeMismatch", simple_rt.rt_xxhash3, b"a", "seed")
    raises("TypeMismatch", simple_rt.rt_hasher_update, "not a handle", b"x")
    raises("TypeMismatch", simple_rt.rt_argon2_verify, "pw", b"$argon2id$")


def test_pure_functions_under_a_closed_policy():
    p = child("""
        import simple_rt, hashlib
        simple_rt.restrict("*=false")
        assert simple_rt.rt_sha256_hash(b"x") == hashlib.sha256(b"x").hexdigest()
        assert isinstance(simple_rt.rt_xxhash3(b"x"), int)
        h = simple_rt.rt_argon2_hash("pw", {"m_cost": 64, "t_cost": 1})
        assert simple_rt.rt_argon2_verify("pw", h)
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
