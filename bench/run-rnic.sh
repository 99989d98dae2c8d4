#!/usr/bin/env bash
# RNIC benchmark (bench/rnic_bench.py): ib_write_bw against host memcpy,
# ib_write_lat, and fio over nvme-rdma against nvme-pci, in one KVM host
# box run (one box CPU). Writes bench/results/rnic-<date>.json and prints it.
#   bench/run-rnic.sh [RUNS]   (BOX_CPUS=N and GUEST_CPUS=N to change the 1 and 1)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
cargo build --release -p p2pvm >&2
kdir=$(bash guest-images/build-kernel.sh)
initrd=$(bash guest-images/build-initramfs.sh)
mkdir -p bench/results
out="bench/results/rnic-$(date -u +%Y%m%d-%H%M%S).json"
./target/release/p2pvm host-run --cpus "${BOX_CPUS:-1}" --memory 4G -- /usr/bin/python3 bench/rnic_bench.py \
  --p2pvm "$PWD/target/release/p2pvm" --vmlinux "$kdir/vmlinux" --bzimage "$kdir/bzImage" \
  --initrd "$initrd" --topology "$PWD/tests/topologies/rnic.toml" --runs "$runs" --cpus "${GUEST_CPUS:-1}" --json "$out"
echo "results: $out" >&2
