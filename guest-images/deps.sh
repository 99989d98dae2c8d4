#!/usr/bin/env bash
# Installs the Debian packages p2pvm needs on the host: the kernel build
# tools, QEMU for the KVM host box, and the guest tools that go into the
# initramfs. Safe to run again: it only installs what is missing.
set -euo pipefail
pkgs=(
  # guest kernel build
  build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils zstd kmod rsync
  # KVM host box
  qemu-system-x86 busybox-static
  # guest tools for the initramfs
  pciutils nvme-cli fio ibverbs-utils ibverbs-providers perftest rdmacm-utils
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#pkgs[@]} packages present" >&2
  exit 0
fi
echo "[deps] installing: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "[deps] not root: run 'sudo apt-get install ${missing[*]}'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
