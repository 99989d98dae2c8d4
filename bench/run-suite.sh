#!/usr/bin/env bash
# `p2pvm test` wall time: the whole default suite with --jobs 1 and
# --jobs 2 (each scenario boots its own VM, inside the KVM host box on a
# PVM machine), and every scenario's own time from the JUnit report.
# Writes bench/results/suite-<date>.json and prints it.
#   bench/run-suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p p2pvm >&2
bin=./target/release/p2pvm
"$bin" images >/dev/null
mkdir -p bench/results
out="bench/results/suite-$(date -u +%Y%m%d-%H%M%S).json"
tmp=$(mktemp -d)
for jobs in 1 2; do
  start=$(date +%s.%N)
  "$bin" test --jobs "$jobs" --keep-going --junit "$tmp/j$jobs.xml" >"$tmp/out$jobs.txt" 2>&1 || {
    echo "the suite failed with --jobs $jobs:" >&2; tail -20 "$tmp/out$jobs.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$start $end" >"$tmp/t$jobs"
done
python3 - "$tmp" "$out" <<'PY'
import json, sys, os, platform, xml.etree.ElementTree as ET
tmp, out = sys.argv[1], sys.argv[2]
res = {"command": "bench/run-suite.sh", "host": platform.node(), "runs": {}}
for jobs in (1, 2):
    start, end = map(float, open(os.path.join(tmp, f"t{jobs}")).read().split())
    root = ET.parse(os.path.join(tmp, f"j{jobs}.xml")).getroot()
    cases = {c.get("name"): float(c.get("time")) for c in root.iter("testcase")}
    res["runs"][f"jobs{jobs}"] = {
        "command": f"p2pvm test --jobs {jobs} --keep-going",
        "wall_s": round(end - start, 1),
        "scenarios": len(cases),
        "per_scenario_s": cases,
    }
res["target_wall_s"] = 120
res["meets_target"] = min(r["wall_s"] for r in res["runs"].values()) < 120
json.dump(res, open(out, "w"), indent=2)
print(json.dumps(res, indent=2))
PY
rm -rf "$tmp"
echo "results: $out" >&2
