#!/usr/bin/env bash
# VT-d benchmark (bench/iommu_bench.py): fio 4k random read QD32 with the
# IOMMU off and on, alternating, in one KVM host box run (one box CPU:
# with two, the box kernel overflowed its stack in an interrupt once, and a
# guest reset once; see CHANGELOG Known problems). Writes
# bench/results/iommu-<date>.json and prints it.
#   bench/run-iommu.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release -p p2pvm >&2
kdir=$(bash guest-images/build-kernel.sh)
initrd=$(bash guest-images/build-initramfs.sh)
mkdir -p bench/results
out="bench/results/iommu-$(date -u +%Y%m%d-%H%M%S).json"
./target/release/p2pvm host-run --cpus 1 --memory 4G -- /usr/bin/python3 bench/iommu_bench.py \
  --p2pvm "$PWD/target/release/p2pvm" --vmlinux "$kdir/vmlinux" --bzimage "$kdir/bzImage" \
  --initrd "$initrd" --runs "$runs" --json "$out"
echo "results: $out" >&2
