#!/usr/bin/env bash
# The torch tests: installs the pinned PyTorch 2.13.0 (tests/torch/setup.sh
# --oracle, cached outside the repository), builds ffi_torch with `pytorch` in
# its own target dir (target/torch: no other crate is rebuilt with libtorch in
# sight, and the main build never needs it) and runs its tests; prints the time
# taken and the disk used.
#   tests/torch/run.sh build    # set-up and build only (./x.sh test and gen, for rt gen --all)
#   tests/torch/run.sh          # CPU tests (./x.sh test runs this)
#   tests/torch/run.sh gpu      # the same with RT_REQUIRE_GPU=1 (cuda tests must run,
#                               # a 4096^2 matmul benchmark printed as BENCH)
#   tests/torch/run.sh bench    # release benchmarks (BENCHMARKS.md "torch")
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
DIR=$(tests/torch/setup.sh $([ "${1:-test}" = build ] || echo --oracle))
export LIBTORCH=$DIR/torch
export CARGO_TARGET_DIR=${TORCH_TARGET_DIR:-$PWD/target/torch}
build_torch() { # fails on compiler warnings, like x.sh's build
    local log
    log=$(mktemp)
    cargo build -p ffi_torch --features pytorch 2>&1 | tee "$log" >&2
    if grep -qE '^warning' "$log"; then
        echo "tests/torch/run.sh: ffi_torch has warnings" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}
case "${1:-test}" in
build)
    build_torch
    ;;
test | gpu)
    show=()
    if [ "${1:-test}" = gpu ]; then
        export RT_REQUIRE_GPU=1
        show=(--nocapture)
        # libtorch_cuda.so (dlopened for "cuda") needs cuDNN, cuBLAS...: the oracle's copies.
        LD_LIBRARY_PATH=$(find "$DIR-oracle/nvidia" -mindepth 2 -maxdepth 2 -type d -name lib | paste -sd: -)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export LD_LIBRARY_PATH
    fi
    build_torch
    cargo test -p ffi_torch --features pytorch --no-fail-fast -- --test-threads=2 "${show[@]}" 2>&1 | tee "${OUT:-/tmp}/torch-tests.log"
    grep -h "^BENCH" "${OUT:-/tmp}/torch-tests.log" || true
    ;;
bench)
    cargo bench -p ffi_torch --features pytorch --bench torch
    ;;
*)
    echo "usage: tests/torch/run.sh [build|test|gpu|bench]" >&2
    exit 64
    ;;
esac
echo "torch: $(($(date +%s) - start)) s; disk: $(du -sh "$DIR" "$DIR-oracle" "$CARGO_TARGET_DIR" 2>/dev/null | awk '{print $2 " " $1}' | paste -sd, - | sed 's/,/, /g')" >&2
