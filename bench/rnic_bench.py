#!/usr/bin/env python3
"""RNIC benchmark, in one run of the KVM host box with the same kernel,
initramfs and topology (tests/topologies/rnic.toml: rnic0 below the NVMe
switch, rnic1 behind rp2, 1 GiB RAM namespaces):

- ib_write_bw, 64 KiB messages, rnic0 -> rnic1 (rnic1's netdev in its own
  network namespace), as a fraction of host memcpy bandwidth of 64 KiB
  blocks measured in the box in the same run (target: >= 30 %);
- ib_write_lat, 8-byte messages, in microseconds;
- fio 4k random read QD32 on nvme1's namespace over nvme-rdma (nvmet-rdma
  on rnic0 with nvme0's CMB as p2pmem, nvme-rdma through rnic1) as a
  ratio to the same namespace over nvme-pci in the same guest (target:
  >= 50 %).

Soft-RoCE is not measured: the guest kernel has no rdma_rxe.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_bench import report, stage, vm_args  # noqa: E402

RUNTIME = 10
GUEST_MEM = "2G"

SCRIPT = r"""ifname() { for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$1" ] && echo ${n##*/}; done; }
dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/} && return; done; echo none; }
a=$(ifname 00:50:56:50:32:00); b=$(ifname 00:50:56:50:32:01)
ip link set $a up; ip addr add 10.9.0.1/24 dev $a
unshare -n sleep 3600 & ns=$!
sleep 0.5
ip link set $b netns $ns
nsenter -t $ns -n ip link set lo up; nsenter -t $ns -n ip link set $b up
nsenter -t $ns -n ip addr add 10.9.0.2/24 dev $b
sleep 1
nsenter -t $ns -n timeout 120 ib_write_bw -d vmw_pvrdma1 -x 1 -s 65536 -n 2000 >/dev/null 2>&1 & sleep 1
echo "BENCH write_bw $(timeout 120 ib_write_bw -d vmw_pvrdma0 -x 1 -s 65536 -n 2000 10.9.0.2 | awk '$1 == 65536 {print $4}')"
sleep 1
nsenter -t $ns -n timeout 120 ib_write_lat -d vmw_pvrdma1 -x 1 -s 8 -n 1000 >/dev/null 2>&1 & sleep 1
echo "BENCH write_lat $(timeout 120 ib_write_lat -d vmw_pvrdma0 -x 1 -s 8 -n 1000 10.9.0.2 | awk '$1 == 8 {print $5, $6}')"
sleep 1
# Back in one namespace for the kernel's NVMe-oF (it uses the initial one).
kill $ns; sleep 1
b=$(ifname 00:50:56:50:32:01)
ip link set $b up; ip addr add 10.9.0.2/24 dev $b
for d in all $a $b; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done
n1=$(dev P2PVM-NVME1)
b0=$(basename $(readlink -f /sys/class/nvme/$(basename $(dev P2PVM-NVME0))/device))
mount -t configfs none /sys/kernel/config; cd /sys/kernel/config/nvmet
mkdir subsystems/p2p subsystems/p2p/namespaces/1 ports/1
echo 1 > subsystems/p2p/attr_allow_any_host
echo ${n1}n1 > subsystems/p2p/namespaces/1/device_path
echo $b0 > subsystems/p2p/namespaces/1/p2pmem
echo 1 > subsystems/p2p/namespaces/1/enable
echo rdma > ports/1/addr_trtype; echo ipv4 > ports/1/addr_adrfam
echo 10.9.0.1 > ports/1/addr_traddr; echo 4420 > ports/1/addr_trsvcid
echo 0 > ports/1/param_inline_data_size
ln -s $PWD/subsystems/p2p ports/1/subsystems/p2p; cd /
timeout 60 nvme connect -t rdma -a 10.9.0.1 -s 4420 -n p2p -w 10.9.0.2 --hostnqn=nqn.2026-12.io.p2pvm:host --hostid=5032d5e2-9a7b-4b6e-8f00-000000000001 >/dev/null
sleep 1
f=/dev/$(for c in /sys/class/nvme/nvme*; do [ "$(cat $c/transport)" = rdma ] && echo ${c##*/}; done)n1
fio1() { timeout 200 fio --name=b --filename=$1 --direct=1 --ioengine=libaio --numjobs=1 --size=512M \
  --runtime=RUNTIME --time_based --minimal --rw=randread --bs=4k --iodepth=32; }
echo "BENCH pci $(fio1 ${n1}n1)"
echo "BENCH rdma $(fio1 $f)"
echo "BENCH pci2 $(fio1 ${n1}n1)"
echo "BENCH p2pmem $(dmesg | grep -c 'using p2pmem')"
timeout 60 nvme disconnect -n p2p >/dev/null
echo "BENCH end"
""".replace("RUNTIME", str(RUNTIME))


def memcpy_mb_per_s(block=64 << 10, total=512 << 20):
    """Host memcpy of 64 KiB blocks between two 64 MiB buffers."""
    size = 64 << 20
    src = bytearray(os.urandom(size))
    dst = bytearray(size)
    s, d = memoryview(src), memoryview(dst)
    n = total // block
    t = time.monotonic()
    for i in range(n):
        o = (i * block) % size
        d[o:o + block] = s[o:o + block]
    return total / (time.monotonic() - t) / 1e6


def iops(text, key):
    m = re.search(rf"BENCH {key} (\S+)", text)
    f = m.group(1).split(";") if m else []
    if len(f) < 8 or f[4] != "0":
        raise SystemExit(f"[bench] fio {key} failed:\n{text[-3000:]}")
    return float(f[7])


def main():
    ap = vm_args()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--stage", default="/dev/shm")
    ap.add_argument("--topology", required=True)
    ap.add_argument("--cpus", default="1", help="guest vCPUs")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp, staged = stage(a, "p2pvm-rnic-")
    res = {k: [] for k in ("memcpy", "bw", "lat_typ", "lat_avg", "pci", "rdma", "p2pmem")}
    for r in range(a.runs):
        res["memcpy"].append(memcpy_mb_per_s())
        sys.stderr.write(f"[bench] run {r + 1}: memcpy {res['memcpy'][-1]:.0f} MB/s, booting\n")
        argv = [a.p2pvm, "run", "--host", "kvm", "--topology", a.topology, "--memory", GUEST_MEM,
                "--cpus", a.cpus, "--kernel", staged["vmlinux"], "--initrd", staged["initrd"],
                "--timeout", "400", "--exec", SCRIPT]
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        text = out.stdout.decode(errors="replace")
        bw = re.search(r"BENCH write_bw (\S+)", text)
        lat = re.search(r"BENCH write_lat (\S+) (\S+)", text)
        if not bw or not lat or "BENCH end" not in text:
            raise SystemExit(f"[bench] run failed:\n{text[-3000:]}{out.stderr.decode(errors='replace')[-3000:]}")
        res["bw"].append(float(bw.group(1)))
        res["lat_typ"].append(float(lat.group(1)))
        res["lat_avg"].append(float(lat.group(2)))
        res["pci"].append(statistics.mean([iops(text, "pci"), iops(text, "pci2")]))
        res["rdma"].append(iops(text, "rdma"))
        res["p2pmem"].append(int(re.search(r"BENCH p2pmem (\d+)", text).group(1)))
        sys.stderr.write(f"[bench] run {r + 1}: memcpy {res['memcpy'][-1]:.0f} MB/s, write_bw "
                         f"{res['bw'][-1]:.1f} MB/s, write_lat {res['lat_typ'][-1]} us, fio pci "
                         f"{res['pci'][-1]:.0f} rdma {res['rdma'][-1]:.0f} IOPS\n")
    med = {k: statistics.median(v) for k, v in res.items()}
    doc = {
        "workloads": {
            "write_bw": "ib_write_bw -s 65536 -n 2000, rnic0 -> rnic1 (BW average, MB/s)",
            "write_lat": "ib_write_lat -s 8 -n 1000 (t_typical and t_avg, usec)",
            "fio": f"fio randread 4k QD32 libaio direct, 1 job, {RUNTIME} s, nvme1's 1 GiB RAM "
                   "namespace over nvme-pci (before and after, averaged) and over nvme-rdma "
                   "(nvmet-rdma on rnic0 with nvme0's CMB as p2pmem, host on rnic1)",
            "memcpy": "python memoryview copies of 64 KiB blocks in the box, 512 MiB",
        },
        "runs": a.runs,
        "guest_cpus": a.cpus,
        "raw": res,
        "memcpy_mb_s": med["memcpy"],
        "write_bw_mb_s": med["bw"],
        "write_bw_over_memcpy": round(med["bw"] / med["memcpy"], 4),
        "write_bw_target": 0.3,
        "write_lat_typical_us": med["lat_typ"],
        "write_lat_avg_us": med["lat_avg"],
        "fio_pci_iops": med["pci"],
        "fio_rdma_iops": med["rdma"],
        "rdma_over_pci": round(med["rdma"] / med["pci"], 3),
        "rdma_over_pci_target": 0.5,
        "soft_roce": "not measured: the guest kernel has no CONFIG_RDMA_RXE",
    }
    report(doc, a.json)


if __name__ == "__main__":
    main()
