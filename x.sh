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
    cargo test --no-fail-fast -- --test-threads=2
    (cd bindings/python && SIMPLE_RT_LIB_DIR="$PWD/../../target/debug" python3 -m pytest -q tests)
    # No test may leave a process behind (children are re-parented to us or to init).
    leftover=$(pgrep -f 'rt-test-sleeper' || true)
    if [ -n "$leftover" ]; then echo "x.sh: tests left processes behind: $leftover" >&2; exit 1; fi
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
    echo "usage: ./x.sh demo | test | gen | bench [-p crate]" >&2
    exit 64
    ;;
esac
