#!/usr/bin/env bash
# Build the "KVM host box": a Debian 6.12 kernel plus a tiny initramfs that
# loads kvm-amd and the 9p modules, so that p2pvm can run on a real /dev/kvm
# inside qemu-system-x86_64 (TCG, -cpu max, which emulates AMD SVM + NPT).
#
#   guest-images/build-box.sh [--out DIR]
#
# The kernel comes from the newest linux-image-6.12.*-amd64-unsigned package,
# fetched with `apt-get download` (never installed). The result is cached under
# ${P2PVM_CACHE:-~/.cache/p2pvm}/box/<key>, where <key> hashes the package
# version, this script and box-init; ${P2PVM_CACHE}/box/current points at the
# newest build (older ones are removed). Prints the directory holding vmlinux
# (PVH, booted by p2pvm), vmlinuz, initrd.gz and copies of the inputs on its
# last line; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${P2PVM_CACHE:-$HOME/.cache/p2pvm}
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "[host-box] unknown option '$1'" >&2; exit 2 ;;
  esac
done

say() { echo "[host-box] $*" >&2; }
need() { command -v "$1" >/dev/null || { say "missing '$1' (apt-get install $2)"; exit 1; }; }
need apt-get apt
need dpkg-deb dpkg
need modinfo kmod
need xz xz-utils
need cpio cpio
need gzip gzip
need od coreutils
need flock util-linux
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { say "missing busybox (apt-get install busybox-static)"; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  say "$busybox is dynamically linked; apt-get install busybox-static"
  exit 1
fi

# The modules the box needs, in the order box-init loads them (each one's
# dependencies from modinfo are put in front of it).
wanted="irqbypass kvm ccp kvm-amd netfs 9pnet 9pnet_virtio 9p"

pkg=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' 2>/dev/null |
  awk '{print $1}' | sort -V | tail -n 1)
if [ -z "$pkg" ]; then
  say "no linux-image-6.12.*-amd64-unsigned package in apt; run 'apt-get update'"
  exit 1
fi
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
ident="debian:$pkg:$ver"
key=$( { echo "$ident"; cat "$0" "$here/box-init"; } | sha256sum | cut -c1-16)
[ -n "$out" ] || out="$cache/box/$key"

cached() {
  [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ] && [ -f "$out/ident" ] || return 1
  say "cached: $out ($ident)"
  [ "$out" != "$cache/box/$key" ] || ln -sfn "$key" "$cache/box/current"
  echo "$out"
}
cached && exit 0
# One build at a time; another p2pvm may have finished it while we waited.
mkdir -p "$(dirname "$out")"
exec 9>"$(dirname "$out")/.build-box.lock"
flock 9
cached && exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/p2pvm-build-box.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "fetching $pkg $ver with apt-get download"
(cd "$work" && apt-get download -qq "$pkg=$ver" 2>&1 |
  grep -v '^W: Download is performed unsandboxed' | sed 's/^/[host-box] apt: /' >&2) || true
deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { say "apt-get download of $pkg=$ver failed"; exit 1; }
say "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/x"
kver=${pkg#linux-image-}
kver=${kver%-unsigned}
mods="$work/x/lib/modules/$kver"
[ -f "$work/x/boot/vmlinuz-$kver" ] && [ -d "$mods/kernel" ] ||
  { say "unexpected package layout: no boot/vmlinuz-$kver or lib/modules/$kver"; exit 1; }

# The package ships no modules.dep (depmod runs at install time), so resolve
# dependencies from each module's own "depends" field, as depmod would.
declare -A path_of=()
while IFS= read -r f; do
  n=$(basename "$f"); n=${n%%.ko*}; path_of[${n//-/_}]=$f
done < <(find "$mods/kernel" -name '*.ko*')
order=()
declare -A seen=()
add() {
  local n=${1//-/_} dep deps
  [ -n "${seen[$n]:-}" ] && return 0
  seen[$n]=1
  [ -n "${path_of[$n]:-}" ] || { say "module $n not found in $pkg"; exit 1; }
  deps=$(modinfo -F depends "${path_of[$n]}")
  for dep in ${deps//,/ }; do add "$dep"; done
  order+=("$n")
}
for m in $wanted; do add "$m"; done

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,host,modules}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
for n in "${order[@]}"; do
  case "${path_of[$n]}" in
    *.ko.xz) xz -dc "${path_of[$n]}" > "$root/modules/$n.ko" ;;
    *.ko.zst) zstd -qdc "${path_of[$n]}" > "$root/modules/$n.ko" ;;
    *.ko) cp "${path_of[$n]}" "$root/modules/$n.ko" ;;
    *) say "cannot unpack ${path_of[$n]}"; exit 1 ;;
  esac
  echo "$n" >> "$root/modules/order"
done
install -m 0755 "$here/box-init" "$root/init"
echo "$ident" > "$root/ident"

say "modules: ${order[*]}"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -6 > "$out.tmp/initrd.gz")
cp "$work/x/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
# Under TCG, decompressing the kernel costs seconds on every boot, so keep the
# bzImage payload unpacked too: an ELF vmlinux with a PVH entry point, which
# QEMU boots directly (p2pvm prefers it and falls back to vmlinuz).
if grep -qx 'CONFIG_PVH=y' "$work/x/boot/config-$kver"; then
  bz="$work/x/boot/vmlinuz-$kver"
  setup_sects=$(od -An -tu1 -j 497 -N 1 "$bz" | tr -d ' ')
  [ "$setup_sects" != 0 ] || setup_sects=4
  read -r poff plen < <(od -An -tu4 -j 584 -N 8 "$bz")
  start=$(( (setup_sects + 1) * 512 + poff ))
  case $(od -An -tx1 -j "$start" -N 4 "$bz" | tr -d ' ') in
    28b52ffd) unpack="zstd -qdc" ;;
    fd377a58) unpack="xz -dc" ;;
    1f8b*) unpack="gzip -dc" ;;
    *) unpack="" ;;
  esac
  # The payload ends with its unpacked size (u32, little endian).
  size=$(od -An -tu4 -j "$((start + plen - 4))" -N 4 "$bz" | tr -d ' ')
  if [ -n "$unpack" ] && command -v "${unpack%% *}" >/dev/null; then
    dd if="$bz" iflag=skip_bytes,count_bytes skip="$start" count="$((plen - 4))" status=none |
      $unpack > "$out.tmp/vmlinux" 2>/dev/null || true
  fi
  if [ -s "$out.tmp/vmlinux" ] && [ "$(stat -c %s "$out.tmp/vmlinux")" = "$size" ] &&
     [ "$(od -An -tx1 -N 4 "$out.tmp/vmlinux" | tr -d ' ')" = 7f454c46 ]; then
    say "unpacked the PVH vmlinux ($(du -m "$out.tmp/vmlinux" | cut -f1) MiB)"
  else
    rm -f "$out.tmp/vmlinux"
    say "could not unpack vmlinux from the bzImage (zstd missing?); booting vmlinuz (slower)"
  fi
fi
cp "$work/x/boot/config-$kver" "$out.tmp/config"
# Copies of the inputs, so that p2pvm can tell a stale cache without apt.
cp "$0" "$out.tmp/build-box.sh"
cp "$here/box-init" "$out.tmp/box-init"
echo "$ident" > "$out.tmp/ident"
rm -rf "$out" && mv "$out.tmp" "$out"
if [ "$out" = "$cache/box/$key" ]; then
  ln -sfn "$key" "$cache/box/current"
  # Builds from older versions of this script, box-init or the package
  # (not the last hour's: a p2pvm may just be starting one).
  find "$cache/box" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mmin +60 -exec rm -rf {} +
fi
say "built $out ($ident, initrd $(du -k "$out/initrd.gz" | cut -f1) KiB)"
echo "$out"
