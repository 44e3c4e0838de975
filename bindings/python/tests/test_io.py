"""ffi_io from Python: files, directories, environment, paths, glob, locks,
mmap, against the real file system with Python's own os/glob/hashlib/fcntl
as oracles. Capability tests narrow the process policy, so they run in a
child interpreter.
"""

import glob as pyglob
import hashlib
import os
import stat
import subprocess
import sys

import simple_rt
from helpers import raises, requires, run_child

pytestmark = requires("io")


# ---------------------------------------------------------------- files

def test_text_and_bytes_round_trip(tmp_path):
    f = str(tmp_path / "t.txt")
    assert simple_rt.rt_file_write_text(f, "héllo\n\0🦀") is None
    assert simple_rt.rt_file_read_text(f) == "héllo\n\0🦀"
    assert open(f, "rb").read() == "héllo\n\0🦀".encode()
    data = bytes(range(256)) * 300
    simple_rt.rt_file_write_bytes(f, data)
    assert simple_rt.rt_file_read_bytes(f) == data
    e = raises("Parse", simple_rt.rt_file_read_text, f)
    assert "rt_file_read_bytes" in e.message and e.message.startswith("rt_file_read_text")
    simple_rt.rt_file_append_text(f, "tail")
    assert simple_rt.rt_file_read_bytes(f) == data + b"tail"
    assert simple_rt.rt_file_exists(f) is True
    assert simple_rt.rt_file_exists(str(tmp_path)) is False
    assert simple_rt.rt_file_size(f) == len(data) + 4
    assert simple_rt.rt_file_modified_time(f) // 1_000_000 == int(os.stat(f).st_mtime)


def test_hash_matches_hashlib(tmp_path):
    f = tmp_path / "h"
    data = os.urandom(1_000_003)
    f.write_bytes(data)
    assert simple_rt.rt_file_hash_sha256(str(f)) == hashlib.sha256(data).hexdigest()


def test_copy_delete_atomic_write(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    simple_rt.rt_file_write_bytes(a, b"abc" * 1000)
    os.chmod(a, 0o640)
    assert simple_rt.rt_file_copy(a, b) == 3000
    assert open(b, "rb").read() == b"abc" * 1000
    raises("InvalidArgument", simple_rt.rt_file_copy, a, a)
    simple_rt.rt_file_atomic_write(a, b"new")
    assert open(a, "rb").read() == b"new"
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o640
    assert not [n for n in os.listdir(tmp_path) if ".rt-atomic." in n]
    simple_rt.rt_file_delete(b)
    assert not os.path.exists(b)
    raises("NotFound", simple_rt.rt_file_delete, b)


def test_file_bad_input(tmp_path):
    missing = str(tmp_path / "missing")
    raises("NotFound", simple_rt.rt_file_read_text, missing)
    raises("NotFound", simple_rt.rt_file_write_text, str(tmp_path / "no" / "x"), "x")
    raises("InvalidArgument", simple_rt.rt_file_read_bytes, str(tmp_path))
    raises("InvalidArgument", simple_rt.rt_file_read_text, "")
    raises("InvalidArgument", simple_rt.rt_file_read_text, "a\0b")
    raises("InvalidArgument", simple_rt.rt_file_write_text, str(tmp_path / ("n" * 300)), "x")
    raises("TypeMismatch", simple_rt.rt_file_read_text, 42)
    raises("TypeMismatch", simple_rt.rt_file_read_text, None)
    raises("TypeMismatch", simple_rt.rt_file_write_text, str(tmp_path / "x"), b"bytes")
    raises("NotFound", simple_rt.rt_file_write_text, "/proc/rt_io_py", "x")
    raises("Io", simple_rt.rt_file_write_bytes, "/dev/full", b"x" * 8192)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- directories, walk, glob

def make_tree(root):
    for d in ["a/b/c", "a/empty"]:
        os.makedirs(os.path.join(root, d))
    for f in ["a/x.txt", "a/y.rs", "a/b/z.txt", "a/b/c/w.txt", "a/B.txt"]:
        with open(os.path.join(root, f), "w") as h:
            h.write(f)


def test_dirs_and_walk(tmp_path):
    root = str(tmp_path)
    simple_rt.rt_dir_create(os.path.join(root, "one"))
    simple_rt.rt_dir_create_all(os.path.join(root, "one/two/three"))
    raises("AlreadyExists", simple_rt.rt_dir_create, os.path.join(root, "one"))
    raises("Io", simple_rt.rt_dir_remove, os.path.join(root, "one"))
    simple_rt.rt_dir_remove_all(os.path.join(root, "one"))
    assert not os.path.exists(os.path.join(root, "one"))
    make_tree(root)
    a = os.path.join(root, "a")
    assert simple_rt.rt_dir_list(a) == sorted(os.listdir(a))
    want = []
    for dirpath, dirnames, filenames in os.walk(a):
        for n in dirnames + filenames:
            want.append(os.path.join(dirpath, n))
    got = simple_rt.rt_dir_walk(a, None)
    assert sorted(got) == sorted(want)
    assert got == sorted(want, key=lambda p: p.split("/")), "depth first, names sorted"
    files = simple_rt.rt_dir_walk(a, {"files_only": True, "max_depth": 1})
    assert files == [os.path.join(a, n) for n in ["B.txt", "x.txt", "y.rs"]]
    raises("InvalidArgument", simple_rt.rt_dir_walk, a, {"bogus": 1})
    raises("InvalidArgument", simple_rt.rt_dir_list, os.path.join(a, "x.txt"))
    raises("NotFound", simple_rt.rt_dir_walk, os.path.join(root, "nope"), None)


def test_glob_matches_python(tmp_path):
    make_tree(str(tmp_path))
    for pat in ["a/*.txt", "a/**/*.txt", "a/?.rs", "a/[xy]*"]:
        full = os.path.join(str(tmp_path), pat)
        assert sorted(simple_rt.rt_glob(full, None)) == sorted(pyglob.glob(full, recursive=True)), pat
    e = raises("Parse", simple_rt.rt_glob, "a/***", None)
    assert "position 4" in e.message


# ---------------------------------------------------------------- locks and mmap

def flock_n(path, shared=False):
    return subprocess.run(["flock", "-s" if shared else "-x", "-n", path, "true"]).returncode == 0


def test_lock_excludes_other_process(tmp_path):
    f = str(tmp_path / "lock")
    h = simple_rt.rt_file_lock(f, None)
    assert isinstance(h, simple_rt.Handle)
    assert not flock_n(f)
    raises("Busy", simple_rt.rt_file_try_lock, f, None)
    simple_rt.rt_file_unlock(h)
    assert flock_n(f)
    raises("Closed", simple_rt.rt_file_unlock, h)
    with simple_rt.rt_file_try_lock(f, {"shared": True}) as s:
        assert flock_n(f, shared=True)
        assert not flock_n(f)
    assert flock_n(f)
    # Held by a Python child with fcntl.flock: Busy, then Timeout.
    child = subprocess.Popen([sys.executable, "-c",
                              "import fcntl,sys; f=open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", f],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    raises("Busy", simple_rt.rt_file_try_lock, f, {"shared": True})
    raises("Timeout", simple_rt.rt_file_lock, f, {"timeout_ms": 100})
    child.stdin.close()
    child.wait()
    simple_rt.rt_file_try_lock(f, None).close()


def test_mmap(tmp_path):
    f = tmp_path / "m"
    data = os.urandom(100_000)
    f.write_bytes(data)
    assert simple_rt.rt_file_mmap_read(str(f), None) == data
    assert simple_rt.rt_file_mmap_read(str(f), {"offset": 10, "length": 20}) == data[10:30]
    h = simple_rt.rt_file_mmap_read(str(f), {"handle": True})
    assert simple_rt.rt_file_mmap_len(h) == 100_000
    assert simple_rt.rt_file_mmap_slice(h, 99_990, 10) == data[99_990:]
    raises("OutOfRange", simple_rt.rt_file_mmap_slice, h, 99_990, 11)
    h.close()
    raises("Closed", simple_rt.rt_file_mmap_len, h)
    raises("OutOfRange", simple_rt.rt_file_mmap_read, str(f), {"offset": 100_001})


# ---------------------------------------------------------------- environment and paths

def test_env():
    assert simple_rt.rt_env_cwd() == os.getcwd()
    assert simple_rt.rt_env_home() == os.environ["HOME"]
    name = "RT_IO_PY_TEST"
    assert simple_rt.rt_env_get(name) is None
    simple_rt.rt_env_set(name, "")
    assert simple_rt.rt_env_get(name) == ""
    simple_rt.rt_env_set(name, "v=1")
    assert simple_rt.rt_env_get(name) == "v=1"
    # The C environment changed (Python's os.environ is a snapshot, so ask a child).
    assert subprocess.run(["sh", "-c", "printf %s \"$RT_IO_PY_TEST\""], capture_output=True, text=True).stdout == "v=1"
    simple_rt.rt_env_unset(name)
    assert simple_rt.rt_env_get(name) is None
    for bad in ["", "A=B", "A\0B"]:
        raises("InvalidArgument", simple_rt.rt_env_get, bad)
    raises("InvalidArgument", simple_rt.rt_env_set, "X", "a\0b")
    raises("TypeMismatch", simple_rt.rt_env_get, 1)


def test_paths():
    for p in ["/usr/lib/x.so", "rel/dir/file.tar.gz", "file", "/a"]:
        assert simple_rt.rt_path_basename(p) == os.path.basename(p)
        assert simple_rt.rt_path_dirname(p) == os.path.dirname(p)
    assert simple_rt.rt_path_basename("/") is None
    assert simple_rt.rt_path_join("a", "b/c") == os.path.join("a", "b/c")
    assert simple_rt.rt_path_join("a", "/abs") == "/abs"
    assert simple_rt.rt_path_extension("x/y.tar.gz") == "gz"
    assert simple_rt.rt_path_extension("x/.bashrc") is None
    assert simple_rt.rt_path_stem("x/y.tar.gz") == "y.tar"
    for p in ["/usr/./lib/../bin/", "a/b/../../..", "../x/./y"]:
        assert simple_rt.rt_path_normalize(p) == os.path.normpath(p)
    assert simple_rt.rt_path_absolute("x") == os.path.join(os.getcwd(), "x")
    assert simple_rt.rt_path_exists("/") is True
    assert simple_rt.rt_path_exists("/nonexistent/x") is False
    raises("InvalidArgument", simple_rt.rt_path_basename, "")
    raises("TypeMismatch", simple_rt.rt_path_join, "a", None)


# ---------------------------------------------------------------- capabilities (child interpreter)

def test_capabilities_in_child(tmp_path):
    root = os.path.realpath(str(tmp_path))
    out = run_child("""
        import os, simple_rt
        from simple_rt import RtError
        root = %r
        allowed = os.path.join(root, "allowed")
        os.makedirs(os.path.join(allowed, "sub"))
        os.makedirs(os.path.join(root, "outside"))
        open(os.path.join(root, "secret"), "w").write("secret")
        open(os.path.join(root, "outside", "f"), "w").write("o")
        open(os.path.join(allowed, "sub", "f"), "w").write("in")
        os.symlink(os.path.join(root, "secret"), os.path.join(allowed, "link"))
        os.symlink(os.path.join(root, "outside"), os.path.join(allowed, "ldir"))
        simple_rt.restrict("fs.read=%%s;fs.write=%%s;env.read=RT_OK_*" %% (allowed, allowed))

        def denied(f, *args):
            try:
                f(*args)
            except RtError as e:
                assert e.name == "CapabilityDenied", e
                return e.message
            raise AssertionError("not denied: %%s%%r" %% (f.__name__, args))

        m = denied(simple_rt.rt_file_read_text, allowed + "/../secret")
        assert m == "rt_file_read_text needs fs.read for " + root + "/secret", m
        denied(simple_rt.rt_file_read_text, root + "/secret")
        denied(simple_rt.rt_file_read_bytes, allowed + "/link")
        denied(simple_rt.rt_file_write_text, allowed + "/ldir/f", "x")
        denied(simple_rt.rt_file_copy, allowed + "/sub/f", allowed + "/ldir/g")
        denied(simple_rt.rt_dir_walk, root, None)
        denied(simple_rt.rt_glob, root + "/*", None)
        denied(simple_rt.rt_env_get, "PATH")
        assert simple_rt.rt_file_read_text(allowed + "/sub/f") == "in"
        simple_rt.rt_file_write_text(allowed + "/new", "n")
        assert simple_rt.rt_glob(allowed + "/*", None) == [allowed + "/new", allowed + "/sub"]
        assert simple_rt.rt_dir_walk(allowed, {"follow_links": True}) == [allowed + "/new", allowed + "/sub", allowed + "/sub/f"]
        assert simple_rt.rt_env_get("RT_OK_NOPE") is None
        assert open(os.path.join(root, "outside", "f")).read() == "o"
        print("ok")
    """ % root)
    assert out.strip() == "ok"
