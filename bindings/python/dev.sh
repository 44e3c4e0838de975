#!/usr/bin/env bash
# Builds the native extension against the workspace's libraries and links
# them into simple_rt/ (the layout of an installed wheel), for tests and
# development in place: `bindings/python/dev.sh [debug|release]`.
# (`pip install ./bindings/python` builds a wheel with copies instead.)
set -euo pipefail
cd "$(dirname "$0")"
profile=${1:-debug}
root=$(cd ../.. && pwd)
flag=()
[ "$profile" = release ] && flag=(--release)
# abi3 extension module: no libpython link, no Python needed to build it.
PYO3_BUILD_EXTENSION_MODULE=1 cargo build -p simple_rt_py "${flag[@]}" >&2
dir="$root/target/$profile"
rm -f simple_rt/*.so
for f in "$dir"/libffi_*.so; do
    case "$f" in *libffi_macros.so) continue ;; esac
    ln -s "$f" "simple_rt/$(basename "$f")"
done
ln -s "$dir/lib_native.so" simple_rt/_native.abi3.so
echo "dev.sh: simple_rt/ links the $profile libraries and extension" >&2
