#!/usr/bin/env python3
"""NVMe benchmark: p2pvm's controllers against QEMU's `-device nvme`, in one
run, same box, same kernel build, same initramfs, same backing files.

Both VMMs get the same fabric: a root port, a switch with two downstream
ports, nvme0 (64 MiB CMB) and nvme1 (no CMB) below it, each with one
namespace on a raw file in the box's tmpfs (--stage). QEMU: q35,
pcie-root-port + x3130-upstream + xio3130-downstream, `nvme,ioeventfd=on`.
The guest (1 vCPU, 1 GiB) runs the same script on both:

  randread4k   fio 4k random read, QD32, 1 job, libaio, direct, on nvme0
  seqread128k  fio 128k sequential read, QD8, on nvme0
  p2p_copy     p2pvm-p2pmem copy: 16 x 128 KiB O_DIRECT read from nvme1
               into nvme0's p2pmem and write back to nvme1, data checked
  memcpy       p2pvm-p2pmem memcpy: guest CPU copies into a p2pmem mapping
               and into RAM, after a warm-up round (QEMU traps each access
               to its CMB, so it gets 4 KiB once, p2pvm 4 MiB four times)

Also recorded: host memcpy bandwidth in the box (the p2p copy is given as
a fraction of it) and p2pvm's resident memory beyond guest RAM and BAR
backing (mappings of 64 MiB or more), sampled during its run.
"""
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_bench import report, stage, vm_args, vmm_rss_beyond_ram, with_command  # noqa: E402

CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"
NS_SIZE = 256 << 20
GUEST_MEM = "1G"
RUNTIME = 15

DEV = r"""dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/}n1 && return; done; echo none; }
bdf() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && basename "$(readlink -f $c/device)" && return; done; }
"""


def script(memcpy_len, memcpy_rounds):
    fio = (f"timeout {RUNTIME * 4} fio --name=b --filename=$n0 --direct=1 --ioengine=libaio "
           f"--numjobs=1 --size=200M --runtime={RUNTIME} --time_based --minimal")
    return DEV + f"""n0=$(dev P2PVM-NVME0); n1=$(dev P2PVM-NVME1); b0=$(bdf P2PVM-NVME0)
echo "BENCH devices $n0 $n1 $b0 $(cat /sys/bus/pci/devices/$b0/p2pmem/published)"
echo "BENCH randread4k $({fio} --rw=randread --bs=4k --iodepth=32)"
echo "BENCH seqread128k $({fio} --rw=read --bs=128k --iodepth=8)"
echo "BENCH p2p_copy $(timeout 300 p2pvm-p2pmem copy $b0 $n1 0 $n1 0x4000000 131072 16 2>&1)"
echo "BENCH memcpy $(timeout 300 p2pvm-p2pmem memcpy $b0 {memcpy_len} {memcpy_rounds} 2>&1)"
echo "BENCH end"
"""


def fill(path, size):
    """A raw file of `size` bytes of non-zero, non-repeating-per-MiB data."""
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for i in range(size >> 20):
            block[0:8] = i.to_bytes(8, "little")
            f.write(block)


def host_memcpy_mb_per_s(size=64 << 20, rounds=8):
    src = bytearray(os.urandom(size))
    dst = bytearray(size)
    view = memoryview(dst)
    t = time.monotonic()
    for _ in range(rounds):
        view[:] = src
    return size * rounds / (time.monotonic() - t) / 1e6


def topology(path, f0, f1):
    port_acs = 'acs = { capability = ["SV", "RR", "CR", "UF", "EC", "DT"], control = [] }'
    with open(path, "w") as t:
        t.write(f"""[root_complex]
vendor_id = 0x8086
device_id = 0x2020
[[root_port]]
name = "rp1"
[[switch]]
name = "sw1"
parent = "rp1"
[[switch.downstream]]
name = "sw1-dp0"
{port_acs}
[[switch.downstream]]
name = "sw1-dp1"
{port_acs}
[[endpoint]]
name = "nvme0"
parent = "sw1-dp0"
kind = "nvme"
serial = "P2PVM-NVME0"
cmb = {{ size = "64M" }}
[[endpoint.namespace]]
size = "{NS_SIZE >> 20}M"
file = "{f0}"
[[endpoint]]
name = "nvme1"
parent = "sw1-dp1"
kind = "nvme"
serial = "P2PVM-NVME1"
[[endpoint.namespace]]
size = "{NS_SIZE >> 20}M"
file = "{f1}"
""")


def parse(who, out):
    """The BENCH lines of a run, by name; a workload that failed or did not
    finish is None (and its output is shown)."""
    res = {}
    for line in out.decode(errors="replace").splitlines():
        m = re.search(r"BENCH (\S+) ?(.*)", line)
        if m:
            res[m.group(1)] = m.group(2).strip()
    if "end" not in res:
        sys.stderr.write(out[-3000:].decode(errors="replace"))
        sys.stderr.write(f"\n[bench] {who}: the guest script did not finish\n")
    got = {"devices": res.get("devices")}
    for k in ("randread4k", "seqread128k"):
        f = res.get(k, "").split(";")
        ok = len(f) >= 8 and f[4] == "0"
        if not ok:
            sys.stderr.write(f"[bench] {who}: fio {k} failed: {res.get(k, '(missing)')[:300]}\n")
        got[k] = {"iops": float(f[7]), "mib_per_s": float(f[6]) / 1024} if ok else None
    copy = re.search(r"copied=(\d+) secs=([\d.]+) mb_per_s=([\d.]+)", res.get("p2p_copy", ""))
    mem = re.search(r"p2pmem_mb_per_s=([\d.]+) ram_mb_per_s=([\d.]+)", res.get("memcpy", ""))
    for name, m in (("p2p_copy", copy), ("memcpy", mem)):
        if not m:
            sys.stderr.write(f"[bench] {who}: {name} failed: {res.get(name, '(missing)')[:300]}\n")
    r = {
        "devices": got["devices"],
        "randread4k_iops": got["randread4k"] and got["randread4k"]["iops"],
        "seqread128k_mib_per_s": got["seqread128k"] and got["seqread128k"]["mib_per_s"],
        "p2p_copy_mb_per_s": copy and float(copy.group(3)),
        "p2p_copy_bytes": copy and int(copy.group(1)),
        "memcpy_p2pmem_mb_per_s": mem and float(mem.group(1)),
        "memcpy_ram_mb_per_s": mem and float(mem.group(2)),
    }
    sys.stderr.write(f"[bench] {who}: {r}\n")
    return r


def run(who, argv, sample_rss=False):
    """Runs a VMM; returns (parsed results, max RSS KiB beyond RAM/BARs)."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    rss = [0]
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            kib = vmm_rss_beyond_ram(p.pid, 64 << 20)
            if kib:
                rss[0] = max(rss[0], kib)

    t = threading.Thread(target=sample)
    if sample_rss:
        t.start()
    try:
        out, _ = p.communicate(timeout=1200)
    finally:
        done.set()
        if sample_rss:
            t.join()
    if p.returncode != 0:
        sys.stderr.write(f"[bench] {who} exited {p.returncode}\n")
    return parse(who, out), rss[0]


def main():
    ap = vm_args()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--stage", default="/dev/shm")
    ap.add_argument("--json")
    a = ap.parse_args()

    tmp, staged = stage(a, "p2pvm-nvme-")
    f0, f1 = os.path.join(tmp, "ns0.raw"), os.path.join(tmp, "ns1.raw")
    fill(f0, NS_SIZE)
    fill(f1, NS_SIZE)
    topo = os.path.join(tmp, "bench.toml")
    topology(topo, f0, f1)

    p2pvm = [a.p2pvm, "run", "--host", "kvm", "--topology", topo, "--memory", GUEST_MEM,
             "--kernel", staged["vmlinux"], "--initrd", staged["initrd"],
             "--timeout", "900", "--exec", script(4 << 20, 4)]
    combined = with_command(tmp, staged["initrd"], f"({script(4 << 10, 1)}) >/dev/ttyS0 2>&1")
    qemu = ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-m", GUEST_MEM,
            "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", staged["bzimage"], "-initrd", combined, "-append", CMDLINE,
            "-serial", "stdio", "-serial", "null",
            "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
            "-device", "x3130-upstream,id=up1,bus=rp1",
            "-device", "xio3130-downstream,id=dp0,bus=up1,chassis=2,slot=0",
            "-device", "xio3130-downstream,id=dp1,bus=up1,chassis=3,slot=1",
            "-drive", f"file={f0},if=none,id=d0,format=raw",
            "-drive", f"file={f1},if=none,id=d1,format=raw",
            "-device", "nvme,bus=dp0,serial=P2PVM-NVME0,drive=d0,cmb_size_mb=64,ioeventfd=on",
            "-device", "nvme,bus=dp1,serial=P2PVM-NVME1,drive=d1,ioeventfd=on"]
    qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    res = {"p2pvm": [], "qemu": [], "p2pvm_rss_kib": [], "host_memcpy_mb_per_s": []}
    for _ in range(a.runs):
        r, rss = run("p2pvm", p2pvm, sample_rss=True)
        res["p2pvm"].append(r)
        res["p2pvm_rss_kib"].append(rss)
        res["qemu"].append(run("qemu", qemu)[0])
        res["host_memcpy_mb_per_s"].append(host_memcpy_mb_per_s())
    for f in (f0, f1):
        os.remove(f)

    def best(who, key):
        v = [r[key] for r in res[who] if r[key] is not None]
        return max(v) if v else None

    def ratio(a, b):
        return a / b if a is not None and b else None

    host = max(res["host_memcpy_mb_per_s"])
    summary = {
        "qemu_version": qv.stdout.splitlines()[0] if qv.stdout else "?",
        "runs": a.runs,
        "randread4k_iops": {"p2pvm": best("p2pvm", "randread4k_iops"),
                            "qemu": best("qemu", "randread4k_iops")},
        "seqread128k_mib_per_s": {"p2pvm": best("p2pvm", "seqread128k_mib_per_s"),
                                  "qemu": best("qemu", "seqread128k_mib_per_s")},
        "p2p_copy_mb_per_s": {"p2pvm": best("p2pvm", "p2p_copy_mb_per_s"),
                              "qemu": best("qemu", "p2p_copy_mb_per_s")},
        "memcpy_p2pmem_over_ram": {
            who: ratio(best(who, "memcpy_p2pmem_mb_per_s"), best(who, "memcpy_ram_mb_per_s"))
            for who in ("p2pvm", "qemu")},
        "host_memcpy_mb_per_s": host,
        "p2pvm_p2p_copy_over_host_memcpy": ratio(best("p2pvm", "p2p_copy_mb_per_s"), host),
        "p2pvm_rss_beyond_ram_kib": max(res["p2pvm_rss_kib"]),
        "results": res,
    }
    for k in ("randread4k_iops", "seqread128k_mib_per_s", "p2p_copy_mb_per_s"):
        summary[k]["p2pvm_over_qemu"] = ratio(summary[k]["p2pvm"], summary[k]["qemu"])
    report(summary, a.json)


if __name__ == "__main__":
    main()
