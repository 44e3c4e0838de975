#!/usr/bin/env bash
# Installs the pinned PyTorch wheel (the libtorch that tch 0.26 needs: exactly
# 2.13.0) into a cache directory outside the repository, keyed by version, and
# prints that directory. Already there (a `.complete` marker): nothing is
# downloaded. Only the package registry is used (pip, exact pins, --no-deps).
#
#   DIR=$(tests/torch/setup.sh)            # libtorch: ~1.2 GB on first use
#   LIBTORCH=$DIR/torch cargo build -p ffi_torch --features pytorch
#   tests/torch/setup.sh --oracle          # also DIR-oracle (~2.8 GB): the CUDA
#                                          # libraries and Python packages that
#                                          # `import torch` needs (test oracle)
#
# The PyPI wheel is a CUDA build. Rust (tch) needs only libtorch_cpu and the
# two small CUDA packages; Python's torch module loads every CUDA library at
# import, hence the separate, optional oracle directory.
# SIMPLE_RT_TORCH_DIR overrides the directory (the oracle is "$DIR-oracle").
set -euo pipefail
TORCH_VERSION=2.13.0
PINS=("torch==$TORCH_VERSION" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85")
# What torch 2.13.0's Requires-Dist resolves to (cuda-toolkit 13.0.3 extras), pinned.
ORACLE_PINS=(
    "nvidia-cublas==13.1.1.3" "nvidia-cuda-nvrtc==13.0.88" "nvidia-cudnn-cu13==9.20.0.48" "nvidia-cufft==12.0.0.61"
    "nvidia-cufile==1.15.1.6" "nvidia-curand==10.4.0.35" "nvidia-cusolver==12.0.4.66" "nvidia-cusparse==12.6.3.3"
    "nvidia-cusparselt-cu13==0.8.1" "nvidia-nccl-cu13==2.29.7" "nvidia-nvjitlink==13.5.37" "nvidia-nvshmem-cu13==3.4.5"
    "nvidia-nvtx==13.0.85" "typing-extensions==4.16.0" "sympy==1.14.0" "mpmath==1.3.0" "filelock==4.3.1"
    "networkx==3.6.1" "jinja2==3.1.6" "MarkupSafe==3.0.4" "fsspec==2026.9.0"
)
DIR=${SIMPLE_RT_TORCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/simple-rt/torch-$TORCH_VERSION}
PY=${PYTHON:-python3}

install_into() { # DIR PINS...
    local dir=$1
    shift
    [ -f "$dir/.complete" ] && return 0
    mkdir -p "$(dirname "$dir")"
    local tmp="$dir.partial.$$" start
    rm -rf "$tmp"
    echo "setup.sh: installing $# pinned packages into $dir (first use)" >&2
    start=$(date +%s)
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp" "$@" >&2
    rm -rf "$dir"
    mv "$tmp" "$dir"
    touch "$dir/.complete"
    echo "setup.sh: done in $(($(date +%s) - start)) s, $(du -sh "$dir" | cut -f1) in $dir" >&2
}

install_into "$DIR" "${PINS[@]}"
[ -f "$DIR/torch/lib/libtorch_cpu.so" ] || { echo "setup.sh: $DIR/torch/lib/libtorch_cpu.so missing" >&2; exit 1; }
if [ "${1:-}" = "--oracle" ]; then
    install_into "$DIR-oracle" "${ORACLE_PINS[@]}"
fi
echo "$DIR"
