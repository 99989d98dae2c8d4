#!/usr/bin/env bash
# NVMe benchmark: p2pvm's NVMe controllers against QEMU's (`-device nvme,
# ioeventfd=on`), same kernel build, initramfs, fabric shape and raw
# backing files in the box's tmpfs, one run of each inside the KVM host
# box (see bench/nvme_bench.py for the workloads). Writes
# bench/results/nvme-<date>.json and prints it.
#   bench/run-nvme.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
cargo build --release -p p2pvm >&2
kdir=$(bash guest-images/build-kernel.sh)
initrd=$(bash guest-images/build-initramfs.sh)
mkdir -p bench/results
out="bench/results/nvme-$(date -u +%Y%m%d-%H%M%S).json"
./target/release/p2pvm host-run --cpus 2 --memory 4G -- /usr/bin/python3 bench/nvme_bench.py \
  --p2pvm "$PWD/target/release/p2pvm" --vmlinux "$kdir/vmlinux" --bzimage "$kdir/bzImage" \
  --initrd "$initrd" --runs "$runs" --json "$out"
echo "results: $out" >&2
