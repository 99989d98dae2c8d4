#!/usr/bin/env bash
# Router-cost benchmark (see README.md beside this script): builds and runs
# `cargo bench -p pcie-core --bench router`, prints its table and writes its
# JSON to bench/results/router-<UTC date and time>.json. Extra arguments go
# to cargo. Honours CARGO_TARGET_DIR and the bench's P2PVM_BENCH_* knobs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mkdir -p bench/results
out="$root/bench/results/router-$(date -u +%Y-%m-%dT%H%M%SZ).json"

rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- devices/pcie-core/src 2>/dev/null; then
    rev="$rev+dirty"
fi

# Build first, so that the load figures below are not the compiler's.
cargo bench -p pcie-core --bench router --no-run "$@"

echo "nproc:  $(nproc)"
echo "uptime: $(uptime)"
echo "rev:    $rev"
echo "run:    P2PVM_BENCH_OUT=$out cargo bench -p pcie-core --bench router $*"
P2PVM_BENCH_OUT="$out" P2PVM_BENCH_REV="$rev" \
    cargo bench -p pcie-core --bench router "$@"
echo "uptime: $(uptime)"
