#!/usr/bin/env bash
# Device-platform benchmark: config-space reads (sysfs config, which Linux
# turns into ECAM accesses) and BAR 0 MMIO reads (a mapped resource0) per
# second, with 1 vCPU and one reader, and with 2 vCPUs and one reader
# pinned to each (each on its own test endpoint). Every read is a VM exit
# dispatched by p2pvm with no lock but the endpoint's own.
#   bench/run-platform.sh [SECONDS]
# Writes bench/results/platform-<date>.txt with the commands that made it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -p p2pvm >&2
p2pvm=./target/release/p2pvm
out="bench/results/platform-$(date -u +%Y%m%d-%H%M%S).txt"
mkdir -p bench/results
{
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) bench/run-platform.sh $secs"
  for kind in cfg mmio; do
    for cpus in 1 2; do
      script="for i in \$(seq 0 $((cpus - 1))); do taskset -c \$i p2pvm-testdev bench-$kind 0\$((3 + i)):00.0 $secs & done; wait"
      cmd=("$p2pvm" run --cpus "$cpus" --topology tests/topologies/p2p.toml --exec "$script")
      echo "## $kind, $cpus vCPU(s): ${cmd[*]}"
      "${cmd[@]}" 2>/dev/null | tee /dev/stderr | awk -v k="$kind" -v c="$cpus" \
        '{ for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) { sub("rate=", "", $i); s += $i } }
         END { printf "total %s reads/s with %d vCPU(s): %d\n", k, c, s }'
    done
  done
} | tee "$out"
echo "results: $out" >&2
