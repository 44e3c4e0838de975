#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and driver: builds ffi_cuda with the `cuda`
# feature and runs its tests with RT_REQUIRE_GPU=1 (a missing device fails
# instead of skipping): vector add from PTX vs the CPU, 1 GiB memcpy round
# trips, events timing a kernel, out-of-bounds copies rejected, wrong kernel
# arguments rejected, and h2d/d2h bandwidth next to cudarc called directly.
# Then the torch tests on "cuda" (tests/torch/run.sh gpu). One command, a
# few minutes (the first run downloads the pinned PyTorch): `tests/gpu/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
export RT_REQUIRE_GPU=1
cargo build --release -p ffi_cuda --features cuda
cargo test --release -p ffi_cuda --features cuda --test gpu -- --test-threads=1 --nocapture 2>&1 | tee "${OUT:-/tmp}/gpu-tests.log"
grep BANDWIDTH "${OUT:-/tmp}/gpu-tests.log" || true
# The torch half (ffi_torch on "cuda", and a 4096^2 matmul benchmark printed as BENCH).
tests/torch/run.sh gpu 2>&1 | tee "${OUT:-/tmp}/torch-gpu-tests.log"
