#!/usr/bin/env bash
# Build the p2pvm guest kernel (vmlinux + bzImage) from a kernel tree.
#
#   guest-images/build-kernel.sh [--kernel-src DIR] [--out DIR]
#
# Default source: Debian's linux-source-6.12, fetched with `apt-get download`.
# The result is cached under ${P2PVM_CACHE:-~/.cache/p2pvm}/kernel/<key>, where
# <key> hashes the source version and the config fragment.
# Prints the directory holding vmlinux, bzImage and .config on its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${P2PVM_CACHE:-$HOME/.cache/p2pvm}
src=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel-src) src=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-kernel: unknown option '$1'" >&2; exit 2 ;;
  esac
done

say() { echo "[guest-kernel] $*" >&2; }
jobs=$(nproc)

if [ -z "$src" ]; then
  pkg=linux-source-6.12
  ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
    say "cannot find $pkg in apt; run 'apt-get update' or pass --kernel-src DIR"
    exit 1
  fi
  ident="debian:$pkg:$ver"
else
  src=$(cd "$src" && pwd) || { say "no such kernel tree: $src"; exit 1; }
  [ -f "$src/Makefile" ] || { say "$src is not a kernel tree (no Makefile)"; exit 1; }
  # A developer's tree is built incrementally in its own output dir; kbuild
  # notices source changes itself.
  ident="tree:$src"
fi

# Bump when the way the kernel is built changes (not for cosmetic edits).
recipe=1
key=$( { echo "$ident recipe=$recipe"; cat "$here/kernel.fragment"; } | sha256sum | cut -c1-16)
[ -n "$out" ] || out="$cache/kernel/$key"

if [ -z "$src" ] && [ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ]; then
  say "cached: $out ($ident)"
  echo "$out"
  exit 0
fi

mkdir -p "$out"
# One build at a time per output directory (tests may ask in parallel).
exec 9>"$out/.lock"
flock 9
if [ -z "$src" ] && [ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ]; then
  say "cached: $out ($ident, built while we waited)"
  echo "$out"
  exit 0
fi
if [ -z "$src" ]; then
  srcroot="$cache/src/$pkg-$ver"
  if [ ! -f "$srcroot/Makefile" ]; then
    say "fetching $pkg $ver with apt-get download"
    dl=$(mktemp -d)
    (cd "$dl" && apt-get download -q "$pkg=$ver" >&2)
    dpkg-deb -x "$dl"/*.deb "$dl/x"
    say "unpacking source"
    mkdir -p "$srcroot.tmp"
    tar -xf "$dl"/x/usr/src/linux-source-6.12.tar.xz -C "$srcroot.tmp" --strip-components=1
    rm -rf "$srcroot" && mv "$srcroot.tmp" "$srcroot" && rm -rf "$dl"
  fi
  src=$srcroot
fi

build="$out/build"
mkdir -p "$build"
say "configuring $ident (allnoconfig + kernel.fragment)"
make -s -C "$src" O="$build" ARCH=x86_64 allnoconfig >/dev/null
# Dependent symbols can need a second pass before they stick.
for pass in 1 2; do
  "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$here/kernel.fragment" >/dev/null
  make -s -C "$src" O="$build" ARCH=x86_64 olddefconfig >/dev/null
done
missing=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=y)
    grep -qx "$line" "$build/.config" || { say "warning: $line did not stick"; missing=1; } ;;
  esac
done < "$here/kernel.fragment"

say "building vmlinux + bzImage with -j$jobs (about 6 minutes cold on 2 cores)"
start=$(date +%s)
make -C "$src" O="$build" ARCH=x86_64 -j"$jobs" vmlinux bzImage 2>&1 |
  awk -v t0="$start" '
    / CC | LD | AR | AS / { n++; if (n % 250 == 0) { printf "[guest-kernel] %d objects, %ds\n", n, systime() - t0 > "/dev/stderr"; fflush("/dev/stderr") } }
    /error:|\*\*\*|Error [0-9]/ { print > "/dev/stderr" }
  '
[ "${PIPESTATUS[0]}" -eq 0 ] || { say "kernel build failed"; exit 1; }
cp "$build/vmlinux" "$build/arch/x86/boot/bzImage" "$out/"
cp "$build/.config" "$out/config"
echo "$ident" > "$out/source"
say "built in $(( $(date +%s) - start ))s: $out"
[ $missing -eq 0 ] || say "some fragment options did not stick; see warnings above"
echo "$out"
