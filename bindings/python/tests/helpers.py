"""Helpers shared by the test_*.py files (imported as `from helpers import ...`;
conftest.py puts this directory on sys.path)."""

import os
import subprocess
import sys
import textwrap

import pytest

import simple_rt
from simple_rt import RtError

# bindings/python: the directory holding the simple_rt package.
PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def live_callbacks():
    """Python callbacks the library may still call (released ones dropped)."""
    return simple_rt.runtime().live_callbacks()


def requires(domain):
    """Module mark: skip when libffi_<domain>.so is not built (not loaded by the package)."""
    return pytest.mark.skipif(domain not in simple_rt.loaded_libraries(),
                              reason="libffi_%s.so is not built" % domain)


def raises(name, f, *args):
    """Calls f(*args), asserts it raises an RtError named `name`; returns the error."""
    with pytest.raises(RtError) as e:
        f(*args)
    assert e.value.name == name, str(e.value)
    return e.value


def child(code, *args, timeout=120):
    """Runs `code` (dedented) in a fresh interpreter with the package on
    PYTHONPATH and the package directory as cwd; `args` become sys.argv[1:].
    Returns the CompletedProcess (text output); asserts nothing."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_DIR + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, cwd=PKG_DIR,
                          capture_output=True, text=True, timeout=timeout)


def run_child(code, timeout=120):
    """Runs `code` in a fresh interpreter that imports simple_rt; asserts it exits 0; returns stdout."""
    p = child(code, timeout=timeout)
    assert p.returncode == 0, "child failed (rc %d)\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)
    return p.stdout
