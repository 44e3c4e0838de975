"""ffi_archive from Python: gzip/xz against Python's gzip/lzma, tar against
tarfile (both ways), safe extraction of hostile archives built with tarfile,
limits, corrupt input, and capabilities (in a child interpreter).
"""

import gzip
import io
import lzma
import os
import tarfile

import pytest

import simple_rt
from helpers import child, raises, requires

pytestmark = requires("archive")


DATA = b"".join(b"line %d of some text that repeats a bit\n" % i for i in range(20000)) + os.urandom(5000)


def test_gzip_both_ways():
    z = simple_rt.rt_gzip_compress(DATA, {"level": 9})
    assert gzip.decompress(z) == DATA
    assert simple_rt.rt_gzip_decompress(gzip.compress(DATA, 1)) == DATA
    # multi-member
    assert simple_rt.rt_gzip_decompress(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"
    for bad in [b"", b"junk", z[:-3], z + b"trailing"]:
        raises("Parse", simple_rt.rt_gzip_decompress, bad)
    raises("LimitExceeded", simple_rt.rt_gzip_decompress, gzip.compress(b"\0" * 10_000_000), {"max_output": 1000})
    raises("InvalidArgument", simple_rt.rt_gzip_compress, DATA, {"level": 11})
    raises("TypeMismatch", simple_rt.rt_gzip_compress, None)


def test_xz_both_ways_every_check():
    for check in ["crc64", "crc32", "sha256", "none"]:
        x = simple_rt.rt_xz_compress(DATA, {"check": check, "preset": 1})
        assert lzma.decompress(x) == DATA
    for chk in [lzma.CHECK_NONE, lzma.CHECK_CRC32, lzma.CHECK_CRC64, lzma.CHECK_SHA256]:
        assert simple_rt.rt_xz_decompress(lzma.compress(DATA, check=chk)) == DATA
    assert simple_rt.rt_xz_decompress(lzma.compress(b"a") + lzma.compress(b"b")) == b"ab"
    x = lzma.compress(DATA)
    for bad in [b"", b"junk", x[:-5], x + b"garbage!"]:
        raises("Parse", simple_rt.rt_xz_decompress, bad)
    raises("LimitExceeded", simple_rt.rt_xz_decompress, lzma.compress(b"\0" * 10_000_000), {"max_output": 1000})


def test_file_variants(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(DATA)
    r = simple_rt.rt_gzip_compress_file(str(src), str(tmp_path / "s.gz"))
    assert r["read"] == len(DATA)
    assert gzip.decompress((tmp_path / "s.gz").read_bytes()) == DATA
    simple_rt.rt_gzip_decompress_file(str(tmp_path / "s.gz"), str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == DATA
    simple_rt.rt_xz_compress_file(str(src), str(tmp_path / "s.xz"), {"preset": 2})
    assert lzma.decompress((tmp_path / "s.xz").read_bytes()) == DATA
    simple_rt.rt_xz_decompress_file(str(tmp_path / "s.xz"), str(tmp_path / "back2"))
    assert (tmp_path / "back2").read_bytes() == DATA
    raises("NotFound", simple_rt.rt_gzip_compress_file, str(tmp_path / "missing"), str(tmp_path / "o"))


def make_tree(root):
    os.makedirs(os.path.join(root, "sub", "deep"))
    with open(os.path.join(root, "a.txt"), "wb") as f:
        f.write(b"alpha\n")
    with open(os.path.join(root, "sub", "b.bin"), "wb") as f:
        f.write(DATA)
    with open(os.path.join(root, "sub", "deep", "x" * 120), "wb") as f:
        f.write(b"long name\n")
    os.symlink("a.txt", os.path.join(root, "link"))
    os.chmod(os.path.join(root, "a.txt"), 0o640)


def tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", open(p, "rb").read(), os.stat(p).st_mode & 0o777)
    return out


@pytest.mark.parametrize("ext", ["tar", "tar.gz", "tar.xz"])
def test_tar_both_ways_with_tarfile(tmp_path, ext):
    src = str(tmp_path / "src")
    make_tree(src)
    ours = str(tmp_path / ("ours." + ext))
    r = simple_rt.rt_tar_create(ours, src, {"deterministic": True})
    assert r["entries"] == len(tree(src))
    with tarfile.open(ours) as t:
        t.extractall(str(tmp_path / "py"))
        names = t.getnames()
    assert names == sorted(names)
    assert tree(str(tmp_path / "py")) == tree(src)
    listing = simple_rt.rt_tar_list(ours)
    assert [e["name"].rstrip("/") for e in listing] == names
    by = {e["name"].rstrip("/"): e for e in listing}
    assert by["link"]["type"] == "symlink" and by["link"]["link"] == "a.txt"
    assert by["a.txt"]["mode"] == 0o640 and by["a.txt"]["mtime"] == 0
    assert by["sub/b.bin"]["size"] == len(DATA)
    # tarfile -> ours, in every tarfile format.
    for fmt in [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]:
        theirs = str(tmp_path / ("theirs%d.%s" % (fmt, ext)))
        mode = {"tar": "w", "tar.gz": "w:gz", "tar.xz": "w:xz"}[ext]
        with tarfile.open(theirs, mode, format=fmt) as t:
            for n in sorted(os.listdir(src)):
                t.add(os.path.join(src, n), arcname=n)
        out = str(tmp_path / ("x%d" % fmt))
        assert simple_rt.rt_tar_extract(theirs, out)["entries"] == len(tree(src))
        assert tree(out) == tree(src)


def hostile(path, members):
    with tarfile.open(path, "w") as t:
        for kind, name, arg in members:
            ti = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                ti.size = len(arg)
                data = io.BytesIO(arg)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti, data)


@pytest.mark.parametrize("members,code,entry", [
    ([("file", "/abs-victim", b"x")], "InvalidArgument", "abs-victim"),
    ([("file", "../up-victim", b"x")], "InvalidArgument", "up-victim"),
    ([("sym", "esc", "../.."), ("file", "esc/victim", b"x")], "InvalidArgument", "esc"),
    ([("sym", "esc", "/tmp"), ("file", "esc/victim", b"x")], "InvalidArgument", "esc"),
    ([("hard", "h", "/etc/passwd")], "InvalidArgument", "h"),
    ([("hard", "h", "../outside.txt")], "InvalidArgument", "h"),
    ([("fifo", "p", None)], "Unsupported", "p"),
])
def test_hostile_archives_are_refused(tmp_path, members, code, entry):
    ar = str(tmp_path / "evil.tar")
    hostile(ar, members)
    (tmp_path / "outside.txt").write_bytes(b"keep")
    before = sorted(os.listdir(tmp_path))
    target = tmp_path / "target"
    e = raises(code, simple_rt.rt_tar_extract, ar, str(target))
    assert entry in e.message and e.message.startswith("rt_tar_extract:")
    assert sorted(os.listdir(tmp_path)) == sorted(set(before) | {"target"})
    assert (tmp_path / "outside.txt").read_bytes() == b"keep"
    assert not os.path.exists("/abs-victim") and not os.path.exists("/tmp/victim")


def test_bombs_and_corrupt(tmp_path):
    ar = str(tmp_path / "bomb.tar.gz")
    with tarfile.open(ar, "w:gz") as t:
        for i in range(5):
            ti = tarfile.TarInfo("z%d" % i)
            ti.size = 2_000_000
            t.addfile(ti, io.BytesIO(b"\0" * ti.size))
    e = raises("LimitExceeded", simple_rt.rt_tar_extract, ar, str(tmp_path / "t"), {"max_size": 5_000_000})
    assert "z2" in e.message
    raises("LimitExceeded", simple_rt.rt_tar_extract, ar, str(tmp_path / "t2"), {"max_entries": 3})
    raw = open(ar, "rb").read()
    open(ar, "wb").write(raw[: len(raw) // 2])
    raises("Parse", simple_rt.rt_tar_list, ar)
    raises("Parse", simple_rt.rt_tar_extract, ar, str(tmp_path / "t3"))
    raises("TypeMismatch", simple_rt.rt_tar_list, None)
    raises("NotFound", simple_rt.rt_tar_list, str(tmp_path / "missing.tar"))


def test_capabilities_in_child(tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    ok_dir = tmp_path / "ok"
    ok_dir.mkdir()
    code = """
        import simple_rt, sys
        src, ok, root = sys.argv[1], sys.argv[2], sys.argv[3]
        simple_rt.restrict("fs.read=%s,%s;fs.write=%s" % (src, ok, ok))
        simple_rt.rt_tar_create(ok + "/a.tar.gz", src)
        assert simple_rt.rt_tar_extract(ok + "/a.tar.gz", ok + "/x")["entries"] > 3
        for f, args in [(simple_rt.rt_tar_create, (root + "/no.tar", src)),
                        (simple_rt.rt_tar_extract, (ok + "/a.tar.gz", root + "/no")),
                        (simple_rt.rt_gzip_compress_file, (src + "/a.txt", root + "/no.gz")),
                        (simple_rt.rt_tar_list, (root + "/other.tar",))]:
            try:
                f(*args)
                raise SystemExit("not denied: %r" % (args,))
            except simple_rt.RtError as e:
                assert e.name == "CapabilityDenied", e
        assert simple_rt.rt_gzip_decompress(simple_rt.rt_gzip_compress(b"x")) == b"x"
        print("ok")
    """
    p = child(code, os.path.realpath(src), os.path.realpath(ok_dir), os.path.realpath(tmp_path))
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr
    assert not os.path.exists(tmp_path / "no.tar") and not os.path.exists(tmp_path / "no")
