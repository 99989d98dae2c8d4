#!/usr/bin/env python3
"""VT-d benchmark: fio 4k random read, QD32, with the IOMMU off and on, in
one run of the KVM host box: same kernel, initramfs, fabric and raw
backing file in the box's tmpfs. The fabric is nvme_bench.py's (a switch
with nvme0 and nvme1); "on" adds `[iommu] kind = "vt-d"`, so Linux
translates every DMA (default domain type Translated, lazy IOTLB flush).
Runs alternate off/on so that drift in the box hits both alike; the
result is the median of each and their ratio (target: on >= 80 % of off).
Also recorded: the IOMMU's counters of the last "on" run.
"""
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_bench import report, stage, vm_args  # noqa: E402
from nvme_bench import DEV, NS_SIZE, GUEST_MEM, RUNTIME, fill, topology  # noqa: E402

SCRIPT = DEV + f"""n0=$(dev P2PVM-NVME0)
echo "BENCH randread4k $(timeout {RUNTIME * 4} fio --name=b --filename=$n0 --direct=1 \
--ioengine=libaio --numjobs=1 --size=200M --runtime={RUNTIME} --time_based --minimal \
--rw=randread --bs=4k --iodepth=32)"
echo "BENCH domain $(dmesg | grep -o 'Default domain type: [A-Za-z]*')"
echo "BENCH end"
"""


def run(argv, counters):
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=1200)
    text = out.stdout.decode(errors="replace")
    m = re.search(r"BENCH randread4k (\S+)", text)
    f = m.group(1).split(";") if m else []
    if len(f) < 8 or f[4] != "0":
        sys.stderr.write(text[-2000:] + out.stderr.decode(errors="replace")[-2000:])
        raise SystemExit("[bench] fio failed")
    dom = re.search(r"BENCH domain (.*)", text)
    doc = json.load(open(counters))
    return float(f[7]), (dom.group(1).strip() if dom else ""), doc.get("iommu")


def main():
    ap = vm_args()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stage", default="/dev/shm")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp, staged = stage(a, "p2pvm-iommu-")
    f0, f1 = os.path.join(tmp, "ns0.raw"), os.path.join(tmp, "ns1.raw")
    fill(f0, NS_SIZE)
    fill(f1, NS_SIZE)
    off = os.path.join(tmp, "off.toml")
    topology(off, f0, f1)
    on = os.path.join(tmp, "on.toml")
    with open(on, "w") as t:
        t.write(open(off).read() + '\n[iommu]\nkind = "vt-d"\n')
    counters = os.path.join(tmp, "counters.json")
    res = {"off": [], "on": [], "domains": set(), "iommu": None}
    for _ in range(a.runs):
        for name, topo in (("off", off), ("on", on)):
            argv = [a.p2pvm, "run", "--host", "kvm", "--topology", topo, "--memory", GUEST_MEM,
                    "--kernel", staged["vmlinux"], "--initrd", staged["initrd"],
                    "--counters", counters, "--timeout", "600", "--exec", SCRIPT]
            iops, dom, iommu = run(argv, counters)
            res[name].append(iops)
            if name == "on":
                res["domains"].add(dom)
                res["iommu"] = iommu
            sys.stderr.write(f"[bench] {name}: {iops:.0f} IOPS {dom}\n")
    for f in (f0, f1):
        os.remove(f)
    off_m, on_m = statistics.median(res["off"]), statistics.median(res["on"])
    doc = {
        "workload": "fio randread 4k QD32 libaio direct, 1 job, 15 s, nvme0 (raw file in tmpfs)",
        "runs": a.runs,
        "off_iops": res["off"],
        "on_iops": res["on"],
        "off_median": off_m,
        "on_median": on_m,
        "on_over_off": round(on_m / off_m, 3),
        "target": 0.8,
        "guest_domain": sorted(res["domains"]),
        "iommu_counters_last_on_run": res["iommu"],
    }
    report(doc, a.json)


if __name__ == "__main__":
    main()
