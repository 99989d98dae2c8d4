#!/usr/bin/env bash
# Installs the Debian packages p2pvm needs on the host: the kernel build
# tools, QEMU for the KVM host box, and the guest tools that go into the
# initramfs. Safe to run again: it only installs what is missing, and it
# fetches the package lists first when apt has none (a bare machine).
#
#   guest-images/deps.sh
#
# As root it installs, with apt's progress on stderr. As another user, when
# something is missing, it prints one line on stdout saying exactly what to
# run, and exits 1. Nothing else goes to stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkgs=(
  # guest kernel build
  build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils zstd kmod rsync
  # KVM host box
  qemu-system-x86 busybox-static
  # guest tools for the initramfs
  pciutils nvme-cli fio ibverbs-utils ibverbs-providers perftest rdmacm-utils
  # the tests: SVG to PNG (p2pvm topology --svg), the JUnit schema check
  librsvg2-bin libxml2-utils
)
# scan: sets missing (packages not installed) and lists (1 when apt has its
# package lists; the guest kernel's source and the box's kernel are fetched
# with `apt-get download`, which needs them).
scan() {
  local installed p
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
  missing=()
  for p in "${pkgs[@]}"; do
    grep -qx "$p installed" <<<"$installed" || missing+=("$p")
  done
  lists=0
  if compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then lists=1; fi
}
scan
if [ ${#missing[@]} -eq 0 ] && [ $lists -eq 1 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  what="apt's package lists;"
  [ ${#missing[@]} -eq 0 ] || what="these Debian packages: ${missing[*]};"
  echo "p2pvm needs $what run 'sudo bash $here/deps.sh' once, then try again"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# One apt at a time (tests may ask in parallel); re-check once we hold it.
exec 9>/var/lib/apt/.p2pvm-deps.lock
flock 9
scan
if [ ${#missing[@]} -eq 0 ] && [ $lists -eq 1 ]; then
  exit 0
fi
echo "[deps] updating apt's package lists" >&2
apt-get update -q >&2
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing ${#missing[@]} packages: ${missing[*]}" >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
echo "[deps] host packages ready" >&2
