"""PEP 517 backend of the simple-rt Python package: maturin, after staging
the runtime's libraries into the package.

`pip install ./bindings/python` (or `./x.sh wheel`) builds the workspace's
domain libraries (`cargo build --release`, shared target dir), copies
target/<profile>/libffi_*.so into simple_rt/ beside the extension (they find
each other through their rpath $ORIGIN), then lets maturin build the
extension and the wheel. `SIMPLE_RT_PROFILE=debug` stages the debug
libraries and builds the extension unoptimised (tests; fast when the debug
build is warm). libgc (the Boehm collector) is the one system dependency.
"""

import glob
import os
import shutil
import subprocess

import maturin
from maturin import (  # noqa: F401  (the rest of the PEP 517 interface)
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
ROOT = os.path.dirname(os.path.dirname(PKG))
#: The domain crates a wheel carries (the workspace's default build; GPU crates need features).
CRATES = [
    "ffi_core", "ffi_io", "ffi_process", "ffi_time", "ffi_crypto", "ffi_archive", "ffi_codegen",
    "ffi_net", "ffi_concurrent", "ffi_data", "ffi_system", "ffi_cli", "ffi_serde",
]


def _profile():
    return os.environ.get("SIMPLE_RT_PROFILE", "release")


def _stage():
    """Copies the libraries into simple_rt/; returns the links dev.sh had
    made there (name -> target), restored by `_unstage` after the build."""
    profile = _profile()
    cmd = ["cargo", "build", "--lib"] + [a for c in CRATES for a in ("-p", c)]
    if profile == "release":
        cmd.append("--release")
    subprocess.run(cmd, cwd=ROOT, check=True)
    pkg = os.path.join(PKG, "simple_rt")
    links = {}
    for f in glob.glob(os.path.join(pkg, "*.so")):
        if os.path.islink(f):
            links[os.path.basename(f)] = os.readlink(f)
        os.remove(f)  # dev.sh's links, an older staging, an in-place extension
    names = ["lib%s.so" % c for c in CRATES]
    libs = [os.path.join(ROOT, "target", profile, n) for n in names]
    libs = [f for f in libs if os.path.isfile(f)]
    if not any(os.path.basename(f) == "libffi_core.so" for f in libs):
        raise RuntimeError("simple_rt build: libffi_core.so was not built in target/%s" % profile)
    for f in libs:
        shutil.copy2(f, os.path.join(pkg, os.path.basename(f)))
    return links


def _unstage(links):
    """Puts back dev.sh's links (the in-place package keeps working)."""
    if not links:
        return
    pkg = os.path.join(PKG, "simple_rt")
    for f in glob.glob(os.path.join(pkg, "*.so")):
        os.remove(f)
    for name, target in links.items():
        os.symlink(target, os.path.join(pkg, name))


def _args(config_settings):
    if _profile() != "release" and not os.environ.get("MATURIN_PEP517_ARGS"):
        os.environ["MATURIN_PEP517_ARGS"] = "--profile dev"
    return config_settings


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    links = _stage()
    try:
        return maturin.build_wheel(wheel_directory, _args(config_settings), metadata_directory)
    finally:
        _unstage(links)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _stage()
    return maturin.build_editable(wheel_directory, _args(config_settings), metadata_directory)


def get_requires_for_build_editable(config_settings=None):
    return get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)
