#!/usr/bin/env bash
# The project's one entry point (README): `./x.sh demo` runs the main job,
# `./x.sh test` passes the tests. Installs what a fresh machine lacks first.
set -euo pipefail
caller_pwd=$PWD
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    as_root apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
        as_root apt-get update >/dev/null 2>&1
        as_root apt-get install -y --no-install-recommends "$@" >/dev/null
    }
}

ensure_deps() {
    local missing=()
    pkg-config --exists bdw-gc 2>/dev/null || missing+=(libgc-dev)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v xxhsum >/dev/null || missing+=(xxhash)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v flock >/dev/null || missing+=(util-linux)
    command -v zip >/dev/null || missing+=(zip)
    command -v unzip >/dev/null || missing+=(unzip)
    command -v openssl >/dev/null || missing+=(openssl)
    # ./x.sh install (and its test): SONAMEs on the installed copies, checked with readelf.
    command -v patchelf >/dev/null || missing+=(patchelf)
    command -v readelf >/dev/null || missing+=(binutils)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "x.sh: installing ${missing[*]}" >&2
        apt_install "${missing[@]}"
    fi
}

ensure_py_test_deps() {
    python3 - <<'PY' 2>/dev/null || { echo "x.sh: installing Python test deps" >&2; python3 -m pip install --quiet -r bindings/python/requirements-test.txt; }
import importlib, sys
for line in open("bindings/python/requirements-test.txt"):
    name = line.split("#")[0].strip().split("=")[0].split(">")[0].split("<")[0]
    if name:
        importlib.import_module({"argon2-cffi": "argon2", "cryptography-vectors": "cryptography_vectors", "pyyaml": "yaml"}.get(name, name.replace("-", "_")))
PY
}

# The GPU libraries (ffi_cuda with cudarc, ffi_vulkan with ash) build without
# a GPU; `./x.sh test` and `./x.sh gen` build and test them with the default
# members in one cargo selection (one feature resolution, one target dir).
GPU_SEL=(--workspace --exclude simple_rt_py --features cuda,vulkan)

# lavapipe (Mesa's Vulkan CPU device), the loader, vulkaninfo and glslang, so
# the Vulkan tests run for real on machines without a GPU (docs/GPU.md).
ensure_gpu_deps() {
    local missing=()
    ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || missing+=(libvulkan1)
    command -v vulkaninfo >/dev/null || missing+=(vulkan-tools)
    command -v glslangValidator >/dev/null || missing+=(glslang-tools)
    # The Vulkan tests turn the validation layer on where it is installed and
    # present frames to a window under an Xvfb they start themselves.
    ls /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json >/dev/null 2>&1 || missing+=(vulkan-validationlayers)
    command -v Xvfb >/dev/null || missing+=(xvfb)
    # What winit's X11 backend dlopens (x11-dl, xkbcommon-dl) when a window opens.
    local lib pkg
    for lib in libX11.so.6:libx11-6 libXcursor.so.1:libxcursor1 libXrandr.so.2:libxrandr2 libXi.so.6:libxi6 \
        libX11-xcb.so.1:libx11-xcb1 libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
        pkg=${lib#*:}
        ldconfig -p 2>/dev/null | grep -q "${lib%%:*} " || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "x.sh: installing ${missing[*]}" >&2
        apt_install "${missing[@]}" || echo "x.sh: could not install ${missing[*]}: the Vulkan tests will say they are skipped" >&2
    fi
}

# ffi_torch with `pytorch` (libtorch 2.13.0 from the pinned PyPI wheel, cached
# outside the repository by tests/torch/setup.sh) is built by tests/torch/run.sh
# in its own target dir, target/torch: the main selection above stays
# libtorch-free and is not rebuilt. torch_libs links that library beside the
# main build's in target/torch/libs (one libffi_core, found through $ORIGIN)
# for `rt gen --all` and the torch error trace check.
torch_libs() {
    local d=target/torch/libs f
    mkdir -p "$d"
    for f in target/debug/libffi_*.so; do ln -sfn "$PWD/$f" "$d/"; done
    ln -sfn "$PWD/target/torch/debug/libffi_torch.so" "$d/libffi_torch.so"
    echo "$d"
}

# Build the default members once; fail on any compiler warning.
build() {
    local log
    log=$(mktemp)
    cargo build "$@" 2>&1 | tee "$log" >&2
    if grep -qE '^warning' "$log"; then
        echo "x.sh: the build has warnings (the workspace must build warning-free)" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

case "${1:-}" in
demo)
    ensure_deps
    build --release
    target/release/rt demo
    ;;
test)
    ensure_deps
    ensure_gpu_deps
    ensure_py_test_deps
    build "${GPU_SEL[@]}"
    # Generated bindings must match the registry (one source of truth),
    # the feature domains (cuda, vulkan, torch) included.
    tests/torch/run.sh build
    target/debug/rt --lib-dir "$(torch_libs)" gen --all --check
    # Every process the tests start inherits this mark; none may outlive the run.
    export RT_TEST_MARK="x.sh-test-$$"
    # Vulkan tests run on lavapipe; they fail instead of skipping when
    # vulkaninfo finds a device. CUDA tests without a driver check the
    # no-driver answers (tests/gpu/run.sh runs the GPU ones).
    if vulkaninfo --summary >/dev/null 2>&1; then
        export RT_REQUIRE_VULKAN=1
    else
        echo "x.sh: vulkaninfo finds no Vulkan device: the Vulkan compute tests will be skipped" >&2
    fi
    # Every Error the tests make is traced (code, function) and checked against
    # the functions' documented `# Errors` below (docs/CONTRACT.md, "Error codes
    # per function").
    err_trace=$(mktemp -t rt-errors.XXXXXX)
    export RT_ERROR_TRACE=$err_trace
    cargo test "${GPU_SEL[@]}" --no-fail-fast -- --test-threads=2
    # The torch tests (against PyTorch from Python; time and disk printed), their
    # Errors checked against the torch docs with the pytorch build loaded.
    torch_trace=$(mktemp -t rt-torch-errors.XXXXXX)
    RT_ERROR_TRACE=$torch_trace tests/torch/run.sh test
    target/debug/rt --lib-dir "$(torch_libs)" errors-check --no-static "$torch_trace"
    rm -f "$torch_trace"
    # The Python package's native extension (PyO3, abi3) against the debug
    # libraries, linked into the package in place (bindings/python/dev.sh).
    bindings/python/dev.sh debug
    (cd bindings/python && python3 -m pytest -q tests)
    python3 - <<'PY'
import os, sys
mark = ("RT_TEST_MARK=" + os.environ["RT_TEST_MARK"]).encode()
me, left = os.getpid(), []
ancestors, pid = set(), me
while pid > 1:
    ancestors.add(pid)
    try:
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        break
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) not in ancestors:
        try:
            if mark in open(f"/proc/{p}/environ", "rb").read().split(b"\0"):
                left.append(p)
        except OSError:
            pass
if left:
    sys.exit(f"x.sh: tests left processes behind: {left}")
PY
    unset RT_ERROR_TRACE
    target/debug/rt errors-check "$err_trace"
    rm -f "$err_trace"
    # Every unsafe block states why it is sound (docs/CONTRACT.md; each crate also
    # denies the lint itself). Check mode only: no second code generation.
    cargo clippy "${GPU_SEL[@]}" --all-targets --no-deps -- -A clippy::all -D clippy::undocumented_unsafe_blocks
    ;;
wheel)
    # A wheel of the Python package carrying the release libraries (maturin,
    # through bindings/python/build_backend): bindings/python/dist/.
    ensure_deps
    python3 -m pip install --quiet "maturin>=1.16,<2"
    (cd bindings/python && python3 -m pip wheel --no-deps --no-build-isolation -w dist .)
    ls -l bindings/python/dist/*.whl
    ;;
install)
    # ./x.sh install [--debug] [PREFIX]: the release build (--debug: the debug
    # build, no second compile when it is warm) into PREFIX (default /usr/local):
    # lib/libffi_<domain>.so.<ABI major> + dev links, lib/pkgconfig/simple-rt.pc,
    # include/simple_rt.h, bin/rt (install/install.sh; DESTDIR honoured).
    shift
    profile=release
    prefix=/usr/local
    for a in "$@"; do
        case "$a" in
        --debug) profile=debug ;;
        --release) profile=release ;;
        -*) echo "usage: ./x.sh install [--debug] [PREFIX]" >&2; exit 64 ;;
        /*) prefix=$a ;;
        *) prefix="$caller_pwd/$a" ;;
        esac
    done
    ensure_deps
    if [ "$profile" = release ]; then build --release; else build; fi
    # Write as root only when PREFIX (or its nearest existing parent) is not writable.
    probe="${DESTDIR:-}$prefix"
    while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
    if [ -w "$probe" ]; then
        install/install.sh --from "target/$profile" "$prefix"
    else
        as_root env DESTDIR="${DESTDIR:-}" install/install.sh --from "target/$profile" "$prefix"
    fi
    ;;
gen)
    ensure_deps
    build "${GPU_SEL[@]}"
    tests/torch/run.sh build
    target/debug/rt --lib-dir "$(torch_libs)" gen --all
    ;;
bench)
    ensure_deps
    ensure_py_test_deps
    shift
    cargo bench "$@"
    ;;
*)
    echo "usage: ./x.sh demo | test | install [--debug] [PREFIX] | wheel | gen | bench [-p crate]" >&2
    exit 64
    ;;
esac
