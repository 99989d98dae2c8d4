#!/usr/bin/env python3
"""MSI/MSI-X delivery latency, p2pvm against QEMU, in one run.

The guest tool `p2pvm-testdev irq-latency` asks a device for an interrupt
and times it until the guest process wakes on the vector's eventfd
(vfio-pci, no-IOMMU mode), many times:

  p2pvm      the test endpoint on a root port (bench/irq.toml): doorbell
             (ioeventfd) -> device thread -> MSI-X write through the fabric
             -> irqfd
  qemu_q35   QEMU's edu device (-device edu): raise register (MMIO exit in
             QEMU's vCPU thread) -> MSI

Same kernel build (vmlinux for p2pvm, its bzImage for QEMU), the same
initramfs and command line, one vCPU, images staged in tmpfs. Run it
where /dev/kvm is real KVM (bench/run-irq.sh does, in the KVM host box).
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_bench import report, stage, vm_args, with_command  # noqa: E402  (shared helpers)

CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet vfio.enable_unsafe_noiommu_mode=1"
LINE = re.compile(rb"irq_latency_us device=(\S+) n=(\d+) median=([\d.]+) p99=([\d.]+) min=([\d.]+)")


def result(argv):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    m = LINE.search(p.stdout + p.stderr)
    if not m:
        sys.stderr.write((p.stdout + p.stderr)[-3000:].decode(errors="replace"))
        raise SystemExit(f"{argv[0]}: no result")
    return {"device": m.group(1).decode(), "n": int(m.group(2)),
            "median_us": float(m.group(3)), "p99_us": float(m.group(4)),
            "min_us": float(m.group(5))}


def main():
    ap = vm_args()
    ap.add_argument("--topology", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stage", default="/dev/shm")
    ap.add_argument("--json")
    a = ap.parse_args()

    tmp, staged = stage(a, "p2pvm-irq-")
    tool = f"p2pvm-testdev irq-latency {{}} {a.count}"
    # QEMU: the command writes its result to the console (QEMU's stdout).
    combined = with_command(tmp, staged["initrd"], tool.format("00:05.0") + " >/dev/ttyS0")
    p2pvm = [a.p2pvm, "run", "--host", "kvm", "--topology", a.topology,
             "--kernel", staged["vmlinux"], "--initrd", staged["initrd"],
             "--cmdline", "vfio.enable_unsafe_noiommu_mode=1",
             "--exec", tool.format("01:00.0")]
    qemu = ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-m", "512M",
            "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", staged["bzimage"], "-initrd", combined, "-append", CMDLINE,
            "-serial", "stdio", "-serial", "null", "-device", "edu,addr=0x5"]
    res = {"p2pvm": [], "qemu_q35": []}
    for _ in range(a.runs):
        res["p2pvm"].append(result(p2pvm))
        res["qemu_q35"].append(result(qemu))
    best = {k: min(r["median_us"] for r in v) for k, v in res.items()}
    summary = {"count": a.count, "runs": a.runs,
               "p2pvm_median_us": best["p2pvm"], "qemu_median_us": best["qemu_q35"],
               "qemu_over_p2pvm": best["qemu_q35"] / best["p2pvm"], "results": res}
    report(summary, a.json)


if __name__ == "__main__":
    main()
