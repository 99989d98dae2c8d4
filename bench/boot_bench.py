#!/usr/bin/env python3
"""Boot benchmark: p2pvm vs QEMU q35 (SeaBIOS), same kernel build, same
initramfs, same command line, same KVM, run alternately, median of N runs.
QEMU -M microvm (qboot, -kernel) is a second, informational anchor.

All images are copied to one tmpfs first (--stage, /dev/shm in the box), so
neither VMM pays the box's 9p file system. Columns:
  p2pvm         the ELF vmlinux, loaded straight into place (p2pvm's default)
  p2pvm_bzimage the bzImage of the same build (decompresses itself)
  qemu_q35      the bzImage (QEMU's -kernel takes a bzImage)
  qemu_microvm  the bzImage (qboot)

Measured per run (wall clock, from process start):
  init  - the guest's /init reached userspace: the agent's banner
          "p2pvm-agent: running command" appears on the console;
  exit  - the VMM process exited after the guest ran `true` and powered off.
For p2pvm it also records the VMM's resident memory beyond guest RAM
(sum of Rss over /proc/PID/smaps minus the guest RAM mappings), sampled
while the guest runs.

Run it where /dev/kvm is real KVM (on PVM machines: inside the KVM host box,
see bench/run.sh).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MARKER = b"p2pvm-agent: running command"
# p2pvm's own default command line (vmm/src/run.rs), given to QEMU too.
CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=lastbus=0 quiet"


def exec_archive(tmp, command):
    """A newc archive holding /p2pvm/exec, made with the cpio tool."""
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "p2pvm"), exist_ok=True)
    with open(os.path.join(root, "p2pvm", "exec"), "w") as f:
        f.write(command)
    out = os.path.join(tmp, "exec.cpio")
    subprocess.run(
        f"cd {root} && printf 'p2pvm\\np2pvm/exec\\n' | cpio -o -H newc --quiet > {out}",
        shell=True, check=True)
    return out


def stage(a, prefix):
    """Copies a.vmlinux, a.bzimage and a.initrd to a new directory in
    a.stage (tmpfs); returns it and the staged paths by name."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=a.stage)
    staged = {}
    for name in ("vmlinux", "bzimage", "initrd"):
        dst = os.path.join(tmp, name)
        with open(getattr(a, name), "rb") as src, open(dst, "wb") as out:
            out.write(src.read())
        staged[name] = dst
    return tmp, staged


def with_command(tmp, initrd, command):
    """The initramfs followed by a /p2pvm/exec archive holding `command`
    (each part on a 4-byte boundary), for VMMs that take one -initrd."""
    exec_cpio = exec_archive(tmp, command)
    combined = os.path.join(tmp, "combined.cpio")
    with open(combined, "wb") as out:
        for part in (initrd, exec_cpio):
            data = open(part, "rb").read()
            out.write(data)
            out.write(b"\0" * (-len(data) % 4))
    return combined


def vm_args():
    """The options every VMM benchmark takes: p2pvm and one kernel build's
    vmlinux, bzImage and initramfs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--p2pvm", required=True)
    ap.add_argument("--vmlinux", required=True, help="the build's ELF vmlinux")
    ap.add_argument("--bzimage", required=True, help="the same build's bzImage")
    ap.add_argument("--initrd", required=True)
    return ap


def report(summary, path):
    """Prints `summary` as JSON and writes it to `path` too, if given."""
    text = json.dumps(summary, indent=2)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def vmm_rss_beyond_ram(pid, ram_bytes):
    """KiB resident in the VMM process, not counting guest RAM mappings."""
    total = 0
    size = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "Size:":
                    size = int(parts[1]) * 1024
                elif parts and parts[0] == "Rss:" and size is not None:
                    if size < min(ram_bytes, 64 << 20):
                        total += int(parts[1])
    except OSError:
        return None
    return total


def timed_run(argv, console_stream, ram_bytes=None):
    """Runs argv; returns (t_init, t_exit, rss_kib) in seconds/KiB."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t_init = [None]
    rss = [None]
    stream = p.stdout if console_stream == "stdout" else p.stderr
    other = p.stderr if console_stream == "stdout" else p.stdout

    def drain_other():
        other.read()

    def watch():
        buf = b""
        while True:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                return
            buf = (buf + chunk)[-4096:]
            if t_init[0] is None and MARKER in buf:
                t_init[0] = time.monotonic() - t0
                if ram_bytes:
                    rss[0] = vmm_rss_beyond_ram(p.pid, ram_bytes)

    threads = [threading.Thread(target=watch), threading.Thread(target=drain_other)]
    for t in threads:
        t.start()
    code = p.wait()
    t_exit = time.monotonic() - t0
    for t in threads:
        t.join()
    if code != 0:
        raise SystemExit(f"{argv[0]} exited {code}")
    if t_init[0] is None:
        raise SystemExit(f"{argv[0]}: never saw the /init marker")
    return t_init[0], t_exit, rss[0]


def main():
    ap = vm_args()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--topology", help="p2pvm topology file")
    ap.add_argument("--memory-mib", type=int, default=512)
    ap.add_argument("--stage", default="/dev/shm", help="tmpfs to copy the images to")
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args()

    tmp, staged = stage(a, "p2pvm-bench-")
    combined = with_command(tmp, staged["initrd"], "true")

    def p2pvm(kernel):
        argv = [a.p2pvm, "run", "--host", "kvm", "--kernel", kernel,
                "--initrd", staged["initrd"], "--memory", f"{a.memory_mib}M",
                "--console", "--exec", "true"]
        if a.topology:
            argv[2:2] = ["--topology", a.topology]
        return argv

    common = ["-accel", "kvm", "-cpu", "host", "-m", f"{a.memory_mib}M", "-smp", "1",
              "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
              "-kernel", staged["bzimage"], "-initrd", combined, "-append", CMDLINE,
              "-serial", "stdio"]
    q35 = ["qemu-system-x86_64", "-M", "q35"] + common + ["-serial", "null"]
    # microvm wires only the first -serial; the agent's COM2 is added by hand.
    microvm = ["qemu-system-x86_64", "-M", "microvm"] + common + [
        "-chardev", "null,id=com2", "-device", "isa-serial,chardev=com2,iobase=0x2f8,irq=3"]

    cols = {
        "p2pvm": lambda: timed_run(p2pvm(staged["vmlinux"]), "stderr", a.memory_mib << 20),
        "p2pvm_bzimage": lambda: timed_run(p2pvm(staged["bzimage"]), "stderr",
                                           a.memory_mib << 20),
        "qemu_q35": lambda: timed_run(q35, "stdout"),
        "qemu_microvm": lambda: timed_run(microvm, "stdout"),
    }
    res = {name: [] for name in cols}
    for i in range(a.runs):
        for name, run in cols.items():
            res[name].append(run())
        print(f"run {i + 1}/{a.runs}: " + " | ".join(
            f"{n} init {res[n][-1][0]:.3f}s" for n in cols), file=sys.stderr, flush=True)

    def med(name, idx):
        vals = [r[idx] for r in res[name] if r[idx] is not None]
        return statistics.median(vals) if vals else None

    summary = {
        "runs": a.runs,
        "memory_mib": a.memory_mib,
        "cmdline": CMDLINE,
        "topology": a.topology,
        "staged_in": a.stage,
    }
    for name in cols:
        summary[f"{name}_init_s"] = med(name, 0)
        summary[f"{name}_exit_s"] = med(name, 1)
    summary["p2pvm_vmm_rss_beyond_ram_kib"] = med("p2pvm", 2)
    summary["init_speedup_vs_q35"] = summary["qemu_q35_init_s"] / summary["p2pvm_init_s"]
    summary["init_speedup_vs_q35_bzimage"] = (
        summary["qemu_q35_init_s"] / summary["p2pvm_bzimage_init_s"])
    summary["init_speedup_vs_microvm"] = (
        summary["qemu_microvm_init_s"] / summary["p2pvm_init_s"])
    summary["raw"] = res
    report(summary, a.json)


if __name__ == "__main__":
    main()
