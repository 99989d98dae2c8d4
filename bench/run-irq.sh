#!/usr/bin/env bash
# Interrupt-latency benchmark: p2pvm's test endpoint (MSI-X through the
# fabric, doorbell on an ioeventfd) against QEMU's edu device (MSI), same
# kernel build, initramfs and KVM (inside the KVM host box on machines
# without VT-x/AMD-V), images staged in the box's tmpfs. Writes
# bench/results/irq-<date>.json and prints it.
#   bench/run-irq.sh [COUNT] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
runs=${2:-3}
cargo build --release -p p2pvm >&2
kdir=$(bash guest-images/build-kernel.sh)
initrd=$(bash guest-images/build-initramfs.sh)
mkdir -p bench/results
out="bench/results/irq-$(date -u +%Y%m%d-%H%M%S).json"
./target/release/p2pvm host-run --cpus 1 --memory 2G -- /usr/bin/python3 bench/irq_bench.py \
  --p2pvm "$PWD/target/release/p2pvm" --vmlinux "$kdir/vmlinux" --bzimage "$kdir/bzImage" \
  --initrd "$initrd" --topology "$PWD/bench/irq.toml" --count "$count" --runs "$runs" \
  --json "$out"
echo "results: $out" >&2
