#!/usr/bin/env bash
# Build the p2pvm guest initramfs: an uncompressed newc cpio archive with busybox,
# pciutils, nvme-cli, fio, rdma-core (verbs utilities and providers), perftest,
# rdmacm-utils, the static guest agent (/sbin/p2pvm-agent) and /init.
#
#   guest-images/build-initramfs.sh [--out FILE] [--full]
#
#   --out FILE  also copy the archive to FILE (and print FILE)
#   --full      ship fio's real librbd, librados, libgfapi and libnbd with their
#               whole closure (ceph, glusterfs, gnutls, ICU: about +27 MB
#               compressed) instead of small stubs that abort when called
#
# Tools come from the host's Debian packages with their shared-library closure
# (ldd), keeping the host's paths. The archive is cached as
# ${P2PVM_CACHE:-~/.cache/p2pvm}/initramfs/<key>/initramfs.cpio, where <key>
# hashes this script, init, the agent's sources and the package versions.
# Progress goes to stderr; the last (only) line on stdout is the archive path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
workspace=$(cd "$here/.." && pwd)
agent_dir="$here/agent"
cache=${P2PVM_CACHE:-$HOME/.cache/p2pvm}
out=""
full=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "build-initramfs: --out needs a FILE" >&2; exit 2; }
      out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --full) full=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"; exit 0 ;;
    *) echo "build-initramfs: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# Only the archive path goes to the real stdout (fd 3); everything else,
# including what the tools print, goes to stderr.
exec 3>&1 1>&2
say() { echo "[initramfs] $*" >&2; }
die() { say "error: $*"; exit 1; }
t0=$(date +%s)

# --- host requirements ------------------------------------------------------

# Debian packages whose binaries go into the image.
tool_pkgs=(pciutils nvme-cli fio ibverbs-utils perftest rdmacm-utils iproute2)
# All packages whose versions key the cache (tools, data, main libraries).
key_pkgs=(busybox-static "${tool_pkgs[@]}" ibverbs-providers pci.ids
          libibverbs1 librdmacm1 libnvme1 libpci3 libc6 libgcc-s1)
# Libraries fio links for storage engines a p2pvm guest has no use for (Ceph
# RBD/RADOS, GlusterFS, NBD). Unless --full, they become stubs: their closure
# is 60 MiB of the 95 MiB image.
stub_libs=(librbd.so.1 librados.so.2 libgfapi.so.0 libnbd.so.0)

pci_ids=""
for f in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids /usr/share/pci.ids; do
  [ -f "$f" ] && { pci_ids=$f; break; }
done
providers_dir=/usr/lib/x86_64-linux-gnu/libibverbs

missing=()
want() { case " ${missing[*]-} " in *" $1 "*) ;; *) missing+=("$1") ;; esac; }
need() { # need FILE PACKAGE: PACKAGE must be installed and provide FILE
  if [ ! -e "$1" ] || ! dpkg-query -W -f='${db:Status-Status}' "$2" 2>/dev/null | grep -qx installed; then
    want "$2"
  fi
}
need /bin/busybox busybox-static
need /usr/bin/lspci pciutils
need /usr/bin/setpci pciutils
need "${pci_ids:-/usr/share/misc/pci.ids}" pci.ids
need /usr/sbin/nvme nvme-cli
need /usr/bin/fio fio
need /usr/bin/ibv_devices ibverbs-utils
need "$providers_dir/libvmw_pvrdma-rdmav34.so" ibverbs-providers
need /usr/bin/ib_write_bw perftest
need /usr/bin/rping rdmacm-utils
need /bin/ip iproute2
command -v cpio >/dev/null || want cpio
command -v depmod >/dev/null || want kmod
if [ $full -eq 0 ]; then
  command -v gcc >/dev/null || want gcc
  { command -v objdump && command -v nm; } >/dev/null || want binutils
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "error: missing host tools; run: apt-get install ${missing[*]}"
  exit 1
fi

# --- cache ------------------------------------------------------------------

key=$(
  {
    echo "p2pvm-initramfs full=$full"
    for f in "$self" "$here/init" "$agent_dir/Cargo.toml" \
             $(find "$agent_dir/src" -type f | LC_ALL=C sort); do
      echo "== ${f#"$here"/}"
      cat "$f"
    done
    dpkg-query -W "${key_pkgs[@]}" 2>/dev/null || true
  } | sha256sum | cut -c1-16
)
cdir="$cache/initramfs/$key"
archive="$cdir/initramfs.cpio"

tmp=""
cleanup() {
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  rm -f "$archive.tmp.$$"
  if [ -n "$out" ]; then rm -f "$out.tmp.$$"; fi
}
trap cleanup EXIT

publish() { # copy the cached archive to --out (atomically) and print the path
  local path=$archive
  if [ -n "$out" ]; then
    mkdir -p "$(dirname "$out")"
    cp "$archive" "$out.tmp.$$"
    mv -f "$out.tmp.$$" "$out"
    path=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
  fi
  echo "$path" >&3
}

if [ -f "$archive" ]; then
  say "cached: $archive ($(du -h "$archive" | cut -f1))"
  publish
  exit 0
fi

# --- build ------------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pvm-initramfs.XXXXXX")
root="$tmp/root"
stubs="$tmp/stubs"
mkdir -p "$stubs"

command -v cargo >/dev/null ||
  die "cargo not found: install a Rust toolchain (rustup, or apt-get install cargo)"
say "building agent (static, release)"
target_dir=${CARGO_TARGET_DIR:-$workspace/target}
(
  cd "$workspace"
  CARGO_TARGET_DIR="$target_dir" RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p p2pvm-agent --target x86_64-unknown-linux-gnu
) || die "building p2pvm-agent failed"
agent_bin="$target_dir/x86_64-unknown-linux-gnu/release/p2pvm-agent"
[ -x "$agent_bin" ] || die "cargo did not produce $agent_bin"
if ldd "$agent_bin" 2>&1 | grep -q '=>'; then
  die "$agent_bin is dynamically linked; it must be static"
fi

# Merged /usr, like Debian 12: /bin, /sbin, /lib and /lib64 are symlinks.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/etc
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
for d in proc sys dev tmp run root p2pvm mnt var/tmp; do mkdir -p "$root/$d"; done
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"

# canon PATH: sets $canon_path to PATH with its directory's symlinks resolved
# (the file itself may be a symlink), e.g. /lib/x86_64-linux-gnu/libc.so.6 ->
# /usr/lib/x86_64-linux-gnu/libc.so.6. Directories are cached: forks are slow.
declare -A dir_cache=()
canon() {
  local d=${1%/*}
  [ -n "$d" ] || d=/
  [ -n "${dir_cache[$d]-}" ] || dir_cache[$d]=$(readlink -f "$d")
  canon_path=${dir_cache[$d]%/}/${1##*/}
}

# add PATH: put a host file into the image at the same (canonical) path.
# Symlinks are kept as symlinks, and their targets added too. Files are only
# listed here and copied in one go at the end. A stub built in $stubs goes
# where the library it replaces lives on the host.
declare -A added=() stub_dest=()
copy_list=()
stub_list=()
add() {
  local p t
  if [ "${1%/*}" = "$stubs" ]; then
    p=${stub_dest[${1##*/}]}
    [ -n "${added[$p]-}" ] && return 0
    added[$p]=1
    stub_list+=("$1")
    return 0
  fi
  canon "$1"
  p=$canon_path
  [ -n "${added[$p]-}" ] && return 0
  added[$p]=1
  [ -e "$p" ] || [ -L "$p" ] || die "missing host file $1"
  copy_list+=("$p")
  if [ -L "$p" ]; then
    t=$(readlink "$p")
    case "$t" in
      /*) add "$t" ;;
      *) add "${p%/*}/$t" ;;
    esac
  fi
}

is_elf() {
  local magic=""
  LC_ALL=C read -r -n 4 magic <"$1" 2>/dev/null || true
  [ "$magic" = $'\x7fELF' ]
}

# ldd, resolving the stubbed libraries to $stubs (empty with --full).
lddx() { LD_LIBRARY_PATH="$stubs" ldd "$@"; }

# add_libs FILE...: add the shared-library closure (per ldd) of ELF files.
add_libs() {
  local f line lib
  for f in "$@"; do
    is_elf "$f" || continue
    # Static executables: ldd fails with "not a dynamic executable".
    line=$(lddx "$f" 2>&1) || continue
    if grep -q 'not found' <<<"$line"; then
      die "$f needs libraries the host lacks: $(grep 'not found' <<<"$line" | tr -s ' \t' ' ' | tr '\n' ';')"
    fi
    while read -r lib; do
      add "$lib"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$line")
  done
}

# The Debian tools: ELF executables and /bin/sh scripts from each package.
tools=()
skipped=()
for pkg in "${tool_pkgs[@]}"; do
  while read -r f; do
    case "$f" in /bin/*|/sbin/*|/usr/bin/*|/usr/sbin/*) ;; *) continue ;; esac
    { [ -f "$f" ] && [ -x "$f" ]; } || continue
    if is_elf "$f"; then
      tools+=("$f")
    elif head -n1 "$f" | grep -Eq '^#! ?/bin/sh( |$)'; then
      tools+=("$f")
    else
      skipped+=("$(basename "$f")")
    fi
  done < <(dpkg -L "$pkg")
done
[ ${#skipped[@]} -eq 0 ] ||
  say "skipping scripts whose interpreter is not in the image: ${skipped[*]}"
providers=("$providers_dir"/*.so)

# make_stub LIB: build $stubs/LIB defining, with the same symbol versions,
# every function that the tools and providers import from the host's LIB.
# Each stub prints what is missing and aborts.
make_stub() {
  local lib=$1 host c n
  host=$(awk -v l="$lib" '$1 == l && $3 ~ /^\// { print $3; exit }' "$tmp/ldd")
  [ -n "$host" ] || return 0 # nothing links it
  canon "$host"
  stub_dest[$lib]=$canon_path
  nm -D --defined-only "$host" | awk '{ sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/defined"
  awk 'NR == FNR { def[$1] = 1; next } def[$1]' "$tmp/defined" "$tmp/imports" >"$tmp/$lib.syms"
  n=$(wc -l <"$tmp/$lib.syms")
  c="$tmp/$lib.c"
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo 'static void p2pvm_stub(const char *fn) {'
    echo "  fprintf(stderr, \"%s: not available: $lib is a stub in the p2pvm initramfs\""
    echo '          " (build it with build-initramfs.sh --full)\n", fn);'
    echo '  abort();'
    echo '}'
    awk '{ printf "void %s(void) { p2pvm_stub(\"%s\"); }\n", $1, $1 }' "$tmp/$lib.syms"
  } >"$c"
  # Versioned imports need the same version nodes; Base ones need none.
  awk '$2 != "Base" { s[$2] = s[$2] " " $1 ";" }
       END { for (v in s) printf "%s {\n  global:%s\n};\n", v, s[v] }' \
    "$tmp/$lib.syms" >"$tmp/$lib.map"
  local vs=()
  [ -s "$tmp/$lib.map" ] && vs=(-Wl,--version-script="$tmp/$lib.map")
  gcc -shared -fPIC -O2 -o "$stubs/$lib" -Wl,-soname,"$lib" "${vs[@]}" "$c" ||
    die "building the $lib stub failed"
  strip --strip-unneeded "$stubs/$lib" 2>/dev/null || true
  say "stubbed $lib ($n functions) in place of $host"
}
if [ $full -eq 0 ]; then
  # Host ldd of every tool, and "name version" of every function the tools
  # and providers import (version is Base when unversioned).
  for f in "${tools[@]}"; do
    if is_elf "$f"; then ldd "$f" || true; fi
  done >"$tmp/ldd" 2>/dev/null
  for f in "${tools[@]}" "${providers[@]}"; do
    if is_elf "$f"; then objdump -T "$f"; fi
  done 2>/dev/null |
    awk '/\*UND\*/ && / DF / { v = $(NF-1); gsub(/[()]/, "", v); print $NF, v }' |
    sort -u >"$tmp/imports"
  for lib in "${stub_libs[@]}"; do make_stub "$lib"; done
  # Every import must now resolve (fio is linked with BIND_NOW).
  for f in "${tools[@]}"; do
    is_elf "$f" || continue
    if lddx -r "$f" 2>&1 | grep -q 'undefined symbol'; then
      die "$f has unresolved symbols with the stubs: $(lddx -r "$f" 2>&1 | grep 'undefined symbol' | head -3 | tr '\n' ' ')"
    fi
  done
fi

# Busybox, the tools and their libraries.
add /bin/busybox
for f in "${tools[@]}"; do add "$f"; done
add_libs "${tools[@]}"
# rdma-core's verbs providers are dlopen'ed, so ldd cannot see them.
for f in "${providers[@]}" /etc/libibverbs.d/*.driver; do add "$f"; done
add_libs "${providers[@]}"
# glibc dlopens libgcc_s for pthread_exit and pthread_cancel (rping's
# threads end that way); ldd cannot see it either.
add /lib/x86_64-linux-gnu/libgcc_s.so.1
add "$pci_ids"
# The loader, in case nothing above named it the usual way.
add /lib64/ld-linux-x86-64.so.2

# (Not cp --parents: coreutils 9.1 fails with it, and -p, on existing dirs.)
printf '%s\n' "${copy_list[@]#/}" |
  tar -C / --no-recursion -cf - -T - | tar -C "$root" -xpf -
for f in "${stub_list[@]}"; do
  p=${stub_dest[${f##*/}]}
  rm -f "$root$p"
  install -m 0644 "$f" "$root$p"
done

# Busybox applets last, so real tools (lspci...) keep their paths.
while read -r applet; do
  canon "/$applet"
  p=$canon_path
  [ -e "$root$p" ] || [ -L "$root$p" ] || ln -s /bin/busybox "$root$p"
done < <(/bin/busybox --list-full)

# The agent (stripped) and /init.
install -m 0755 "$agent_bin" "$root/usr/sbin/p2pvm-agent"
# The test endpoint's user-space driver (vfio-pci no-IOMMU, sysfs BARs).
install -m 0755 "${agent_bin%/*}/p2pvm-testdev" "$root/usr/bin/p2pvm-testdev"
# Peer-to-peer block I/O through p2pmem (O_DIRECT on a p2pmem mapping).
install -m 0755 "${agent_bin%/*}/p2pvm-p2pmem" "$root/usr/bin/p2pvm-p2pmem"
# A hostile NVMe host (raw registers and queues) for the controller's tests.
install -m 0755 "${agent_bin%/*}/p2pvm-nvme-raw" "$root/usr/bin/p2pvm-nvme-raw"
if command -v strip >/dev/null; then
  strip "$root/usr/sbin/p2pvm-agent" "$root/usr/bin/p2pvm-testdev" "$root/usr/bin/p2pvm-p2pmem" \
    "$root/usr/bin/p2pvm-nvme-raw"
fi
install -m 0755 "$here/init" "$root/init"

# /etc and device nodes.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
printf '127.0.0.1\tlocalhost p2pvm\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
echo p2pvm >"$root/etc/hostname"
cat >"$root/etc/profile" <<'PROFILE'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export PS1='\u@\h:\w\$ '
cd "$HOME" 2>/dev/null
PROFILE
# The kernel's built-in initramfs already has /dev/console; add the nodes when
# we can (root), for anything run before devtmpfs is mounted.
if [ "$(id -u)" -eq 0 ]; then
  mknod -m 600 "$root/dev/console" c 5 1
  mknod -m 666 "$root/dev/null" c 1 3
fi

# An empty module index. The guest kernel has no modules (all is built in),
# but lspci -k asks libkmod for the index and warns without one; init links
# /lib/modules/$(uname -r) to this, whatever kernel boots.
mods="$root/usr/lib/modules/0.0.0-none"
mkdir -p "$mods"
: >"$mods/modules.order"; : >"$mods/modules.builtin"; : >"$mods/modules.builtin.modinfo"
depmod -b "$root" 0.0.0-none || die "depmod of the empty module index failed"

nfiles=$(cd "$root" && find . -mindepth 1 | wc -l)
unpacked=$(du -sm --apparent-size "$root" | cut -f1)
say "collecting $nfiles files (${#tools[@]} tools, ${#providers[@]} verbs providers), ${unpacked} MiB unpacked"

# Uncompressed: gunzip was 1.2 s of a 2.7 s boot to /init in the KVM host
# box, and the kernel unpacks a plain cpio while its drivers probe. It also
# keeps concatenation working: the kernel finds the end of a gzip member or
# of a plain archive, but not of an lz4 (legacy frame) one, so anything
# appended after lz4 (the command, --extra-initrd) would be lost.
say "writing the archive (uncompressed)"
mkdir -p "$cdir"
(
  cd "$root"
  find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc --owner=0:0 --reproducible --quiet
) >"$archive.tmp.$$"
mv -f "$archive.tmp.$$" "$archive"
say "wrote $archive: $(du -h "$archive" | cut -f1) (${unpacked} MiB unpacked) in $(( $(date +%s) - t0 ))s"
publish
