#!/usr/bin/env bash
# Boot benchmark: p2pvm vs QEMU q35 + SeaBIOS (and QEMU microvm as a second
# anchor) on the same kernel build, initramfs, command line and KVM (inside
# the KVM host box on machines without VT-x/AMD-V), with every image staged
# in the box's tmpfs. Writes bench/results/boot-<date>.json and prints a summary.
#   bench/run-boot.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release -p p2pvm >&2
kdir=$(bash guest-images/build-kernel.sh)
initrd=$(bash guest-images/build-initramfs.sh)
mkdir -p bench/results
out="bench/results/boot-$(date -u +%Y%m%d-%H%M%S).json"
# Debian's own python3: the box runs host binaries, and shims are slow there.
# One box vCPU: the guests have one, and a multi-vCPU TCG box can trip over
# its own kernel text patching (an int3 oops seen once in a long-lived box).
./target/release/p2pvm host-run --cpus 1 --memory 2G -- /usr/bin/python3 bench/boot_bench.py \
  --p2pvm "$PWD/target/release/p2pvm" --vmlinux "$kdir/vmlinux" --bzimage "$kdir/bzImage" \
  --initrd "$initrd" \
  --topology "$PWD/bench/minimal.toml" --runs "$runs" --json "$out"
echo "results: $out" >&2
