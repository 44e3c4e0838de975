#!/usr/bin/env bash
# The project's one entry point (README): `./x.sh demo` runs the main job,
# `./x.sh test` passes the tests. Installs what a fresh machine lacks first.
set -euo pipefail
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
    ensure_py_test_deps
    build
    # Generated bindings must match the registry (one source of truth).
    target/debug/rt gen --check
    # Every process the tests start inherits this mark; none may outlive the run.
    export RT_TEST_MARK="x.sh-test-$$"
    cargo test --no-fail-fast -- --test-threads=2
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
    ;;
wheel)
    # A wheel of the Python package carrying the release libraries (maturin,
    # through bindings/python/build_backend): bindings/python/dist/.
    ensure_deps
    python3 -m pip install --quiet "maturin>=1.16,<2"
    (cd bindings/python && python3 -m pip wheel --no-deps --no-build-isolation -w dist .)
    ls -l bindings/python/dist/*.whl
    ;;
gen)
    ensure_deps
    build
    target/debug/rt gen
    ;;
bench)
    ensure_deps
    ensure_py_test_deps
    shift
    cargo bench "$@"
    ;;
*)
    echo "usage: ./x.sh demo | test | wheel | gen | bench [-p crate]" >&2
    exit 64
    ;;
esac
