#!/usr/bin/env bash
# Installs built simple-rt libraries into PREFIX, as a C user links them:
#
#   PREFIX/lib/libffi_<d>.so.<ABI major>   the library, DT_SONAME = its file name
#   PREFIX/lib/libffi_<d>.so               -> libffi_<d>.so.<ABI major> (the link -lffi_<d> finds)
#   PREFIX/lib/pkgconfig/simple-rt.pc      core + every installed domain
#   PREFIX/include/simple_rt.h             the generated header
#   PREFIX/bin/rt                          the host tool (finds ../lib by itself)
#
# usage: install/install.sh --from DIR PREFIX      (DIR: a build, e.g. target/release)
#
# `./x.sh install [--debug] [PREFIX]` builds, then runs this; the tests run it
# on the debug build (tests/tests/install.rs). It needs patchelf and readelf
# (x.sh's ensure_deps installs them) and nothing else; it never builds. With
# DESTDIR set, files go under $DESTDIR$PREFIX while the .pc names PREFIX.
#
# Why patchelf here and not `-Wl,-soname` at link time: a SONAME given to the
# linker is what every library linked against it records as DT_NEEDED, so
# libffi_io.so in target/ would need libffi_core.so.1, a file neither
# target/<profile>/ nor the Python package (which copies or links the
# libffi_*.so files) has. The build stays unversioned, as the tests, `rt`,
# dev.sh and the wheel load it; only the installed copies get their SONAME
# and the versioned DT_NEEDED on core, and are checked with readelf before
# they are moved into place.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
usage() { echo "usage: install/install.sh --from DIR PREFIX" >&2; exit 64; }

from=""
prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
    --from) [ $# -ge 2 ] || usage; from=$2; shift 2 ;;
    --from=*) from=${1#--from=}; shift ;;
    -*) usage ;;
    *) [ -z "$prefix" ] || usage; prefix=$1; shift ;;
    esac
done
[ -n "$from" ] && [ -n "$prefix" ] || usage
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
from=$(cd "$from" && pwd)
dest="${DESTDIR:-}$prefix"

die() { echo "install.sh: $*" >&2; exit 1; }
for tool in patchelf readelf; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install $([ $tool = readelf ] && echo binutils || echo $tool); ./x.sh install installs it)"
done
[ -x "$from/rt" ] || die "$from/rt is missing: build first (cargo build [--release])"
[ -f "$from/libffi_core.so" ] || die "$from/libffi_core.so is missing: build first (cargo build [--release])"
header="$root/include/simple_rt.h"
[ -f "$header" ] || die "$header is missing (./x.sh gen)"

# The one domain list (rt/src/domains.rs) and the ABI major the built core
# reports (rt_abi_version, through `rt abi`), which the header must agree with.
mapfile -t libs < <("$from/rt" domains)
[ "${libs[0]:-}" = core ] || die "\`$from/rt domains\` did not list core first"
major=$("$from/rt" --lib-dir "$from" abi | sed -n 's/^ *"abi_major": *\([0-9][0-9]*\).*/\1/p')
[ -n "$major" ] || die "\`$from/rt abi\` gave no abi_major (do the libraries in $from load?)"
hmajor=$(sed -n 's/^#define RT_ABI_MAJOR \([0-9][0-9]*\)u$/\1/p' "$header")
[ "$major" = "$hmajor" ] || die "the libraries speak ABI major $major, include/simple_rt.h says ${hmajor:-nothing}: regenerate it (./x.sh gen)"
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
[ -n "$version" ] || die "no [workspace.package] version in Cargo.toml"
for l in "${libs[@]}"; do
    [ -f "$from/libffi_$l.so" ] || die "$from/libffi_$l.so is missing: build the whole workspace (cargo build [--release])"
done

install -d "$dest/lib/pkgconfig" "$dest/include" "$dest/bin"

# readelf -d's value for a tag ("Library soname: [x]" -> x), one a line.
dyn() { readelf -d "$1" | sed -n "s/.*($2) *[^[]*\[\(.*\)\]\$/\1/p"; }

for l in "${libs[@]}"; do
    so="libffi_$l.so.$major"
    tmp="$dest/lib/.$so.tmp$$"
    install -m 0755 "$from/libffi_$l.so" "$tmp"
    # One change per patchelf call: patchelf 0.14 (Debian 12) mixes up
    # --set-soname and --replace-needed given together.
    patchelf --set-soname "$so" "$tmp"
    if [ "$l" != core ]; then
        dyn "$tmp" NEEDED | grep -qx libffi_core.so || { rm -f "$tmp"; die "$from/libffi_$l.so does not need libffi_core.so"; }
        patchelf --replace-needed libffi_core.so "libffi_core.so.$major" "$tmp"
    fi
    got=$(dyn "$tmp" SONAME)
    [ "$got" = "$so" ] || { rm -f "$tmp"; die "$so: SONAME is '$got' after patchelf"; }
    if [ "$l" != core ]; then
        dyn "$tmp" NEEDED | grep -qx "libffi_core.so.$major" || { rm -f "$tmp"; die "$so: DT_NEEDED libffi_core.so.$major missing after patchelf"; }
        dyn "$tmp" RPATH | grep -q '\$ORIGIN' || dyn "$tmp" RUNPATH | grep -q '\$ORIGIN' \
            || { rm -f "$tmp"; die "$so: no \$ORIGIN rpath (it would not find libffi_core.so.$major beside it)"; }
    fi
    mv -f "$tmp" "$dest/lib/$so"
    ln -sfn "$so" "$dest/lib/libffi_$l.so"
done

install -m 0644 "$header" "$dest/include/simple_rt.h"
install -m 0755 "$from/rt" "$dest/bin/rt"

# One simple-rt.pc: the libraries are one runtime (one heap, one registry),
# so `pkg-config --libs simple-rt` links core and every installed domain.
# The run-time search path is in Libs (no LD_LIBRARY_PATH, no ldconfig
# needed) except for /usr, which the loader searches anyway.
rpath=' -Wl,-rpath,${libdir}'
[ "$prefix" = /usr ] && rpath=""
lflags='-L${libdir}'"$rpath"
for l in "${libs[@]}"; do lflags="$lflags -lffi_$l"; done
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@ABI_MAJOR@|$major|g" \
    -e "s|@DOMAINS@|${libs[*]:1}|g" -e "s|@LIBS@|$lflags|g" \
    "$here/simple-rt.pc.in" > "$dest/lib/pkgconfig/simple-rt.pc"
chmod 0644 "$dest/lib/pkgconfig/simple-rt.pc"

# Hosts that link with plain -lffi_core (no pkg-config) find the libraries
# in a system prefix once the loader's cache knows them.
if [ -z "${DESTDIR:-}" ] && [ "$(id -u)" = 0 ] && { [ "$prefix" = /usr ] || [ "$prefix" = /usr/local ]; }; then
    ldconfig 2>/dev/null || true
fi

echo "install.sh: simple-rt $version (ABI $major): ${#libs[@]} libraries, header, simple-rt.pc and rt in $dest" >&2
