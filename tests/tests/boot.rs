//! Boot tier: boot the real guest kernel and initramfs under p2pvm (on
//! hardware KVM, or inside the KVM host box) and check what Linux reports.

mod common;

use common::{guest, p2pvm, section};

#[test]
fn lspci_shows_the_topology_host_bridge_and_our_cmdline() {
    let r = guest(
        &["--cpus", "1"],
        "lspci -nn; echo '=== cmdline ==='; cat /proc/cmdline; echo '=== nproc ==='; nproc",
    );
    assert_eq!(r.code, 0);
    // The default topology's root complex is 8086:2020 at 00:00.0.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("00:00.0 Host bridge [0600]") && l.contains("[8086:2020]")),
        "{}",
        r.stdout
    );
    assert!(section(&r.stdout, "cmdline").contains("console=ttyS0"));
    assert_eq!(section(&r.stdout, "nproc").trim(), "1");
}

#[test]
fn two_vcpus_memory_ecam_and_extended_config_space() {
    let script = "echo '=== nproc ==='; nproc; \
                  echo '=== meminfo ==='; grep MemTotal /proc/meminfo; \
                  echo '=== dmesg ==='; dmesg | grep -iE 'mmconfig|ecam|_OSC'; \
                  echo '=== iomem ==='; cat /proc/iomem; \
                  echo '=== xxxx ==='; lspci -s 00:00.0 -xxxx";
    let r = guest(&["--cpus", "2", "--memory", "768M"], script);
    assert_eq!(r.code, 0);
    assert_eq!(section(&r.stdout, "nproc").trim(), "2");

    let kib: u64 = section(&r.stdout, "meminfo")
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("MemTotal in kB");
    // MemTotal is RAM minus what the kernel reserves for itself.
    assert!(
        (600 * 1024..=768 * 1024).contains(&kib),
        "MemTotal {kib} kB"
    );

    // Linux found ECAM through MCFG and trusts it.
    let dmesg = section(&r.stdout, "dmesg");
    assert!(
        dmesg
            .lines()
            .any(|l| l.contains("PCI: ECAM [mem 0xe0000000-0xefffffff]")
                && l.contains("for domain 0000 [bus 00-ff]")),
        "{dmesg}"
    );
    assert!(
        dmesg.contains("PCI: ECAM [mem 0xe0000000-0xefffffff] reserved as E820 entry"),
        "{dmesg}"
    );
    // Our _OSC hands the OS native control of the PCIe services.
    assert!(
        dmesg
            .lines()
            .any(|l| l.contains("PNP0A08:00: _OSC: OS now controls [")
                && l.contains("AER")
                && l.contains("PCIeCapability")),
        "{dmesg}"
    );
    let iomem = section(&r.stdout, "iomem");
    assert!(
        iomem.lines().any(
            |l| l.trim_start().starts_with("e0000000-efffffff : PCI ECAM")
                || l.trim_start()
                    .starts_with("e0000000-efffffff : PCI MMCONFIG")
        ),
        "{iomem}"
    );

    // 4 KiB of config space: lspci dumps 256 rows of 16 bytes, the last at ff0.
    let dump = section(&r.stdout, "xxxx");
    let rows = dump
        .lines()
        .filter(|l| {
            l.split_once(':').is_some_and(|(off, rest)| {
                (2..=3).contains(&off.len())
                    && off.chars().all(|c| c.is_ascii_hexdigit())
                    && rest.starts_with(' ')
            })
        })
        .count();
    assert_eq!(rows, 256, "{dump}");
    assert!(dump.lines().any(|l| l.starts_with("ff0:")));
    // Vendor and device IDs at offset 0, little endian.
    assert!(
        dump.lines().any(|l| l.starts_with("00: 86 80 20 20")),
        "{dump}"
    );
}

#[test]
fn exit_status_passes_through() {
    let r = guest(&[], "echo out; echo err >&2; exit 7");
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "out\n");
    assert!(r.stderr.contains("err\n"), "{}", r.stderr);
}

#[test]
fn extra_initrd_files_appear_in_the_guest() {
    let dir = std::env::temp_dir().join(format!("p2pvm-extra-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = p2pvm::initrd::Cpio::new();
    c.dir("extra");
    c.file("extra/hello.txt", 0o644, b"hello from the host\n");
    c.file(
        "extra/hello.sh",
        0o755,
        b"#!/bin/sh\necho \"script ran with $1\"\n",
    );
    let archive = dir.join("extra.cpio");
    std::fs::write(&archive, c.finish()).unwrap();
    let r = guest(
        &["--extra-initrd", archive.to_str().unwrap()],
        "cat /extra/hello.txt; /extra/hello.sh 42; ls /sbin/p2pvm-agent",
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.code, 0);
    // The default initramfs is still there, and ours came after it.
    assert_eq!(
        r.stdout,
        "hello from the host\nscript ran with 42\n/sbin/p2pvm-agent\n"
    );
}

#[test]
fn guest_reboot_before_the_command_finishes_is_an_error() {
    // The guest resets (i8042, reboot=k) before the agent reports a status:
    // p2pvm must say so and fail, not hang or claim success.
    let r = guest(&[], "echo rebooting; reboot -f");
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("rebooting"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the guest ended (Reboot) before the command reported its status"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_guest_that_never_finishes_fails_at_its_timeout_with_its_console() {
    // `--timeout` is what keeps a CI job from stalling on a hung kernel:
    // the VM is stopped, the error says why and shows the console.
    let r = p2pvm(&[
        "run",
        "--timeout",
        "25",
        "--exec",
        "echo started; sleep 1000",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("started"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the guest did not end within --timeout 25s"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--- last console lines ---"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_guest_tools_do_real_work() {
    // Every tool the guest's banner names, doing what a user would do with
    // it. The default topology's RNIC is rdma-core's one device; perftest
    // asked for another fails the way it does without one (tests/rnic.rs
    // runs the RDMA tools for real).
    let script = r#"
echo '=== fio ==='
cd /tmp && fio --name=v --filename=f --size=16m --rw=randwrite --bs=4k --verify=crc32c --do_verify=1
echo "fio exit $?"
echo '=== nvme ==='
nvme version; echo "nvme exit $?"
echo '=== lspci ==='
lspci -vvv -s 00:01.0; echo "lspci exit $?"
echo '=== ibv_devices ==='
ibv_devices; echo "ibv_devices exit $?"
echo '=== ib_write_bw ==='
ib_write_bw --help >/tmp/help; echo "help exit $?"; grep -c -- '--ib-dev=' /tmp/help
ib_write_bw -d nosuchdev 2>&1; echo "ib_write_bw exit $?"
echo '=== ext2 ==='
dd if=/dev/urandom of=/tmp/payload bs=64k count=16 2>/dev/null
mke2fs /dev/ram0 && mkdir -p /mnt/r && mount -t ext2 /dev/ram0 /mnt/r &&
  cp /tmp/payload /mnt/r/p && umount /mnt/r && echo 3 > /proc/sys/vm/drop_caches &&
  mount -t ext2 /dev/ram0 /mnt/r && cmp /tmp/payload /mnt/r/p && echo "ram0 same bytes"
umount /mnt/r
dd if=/dev/zero of=/tmp/img bs=1M count=8 2>/dev/null
losetup /dev/loop0 /tmp/img && mke2fs /dev/loop0 && mount -t ext2 /dev/loop0 /mnt/r &&
  cp /tmp/payload /mnt/r/p && umount /mnt/r && echo 3 > /proc/sys/vm/drop_caches &&
  mount -t ext2 /dev/loop0 /mnt/r && cmp /tmp/payload /mnt/r/p && echo "loop same bytes"
umount /mnt/r && losetup -d /dev/loop0
"#;
    let r = guest(&[], script);
    assert_eq!(r.code, 0);
    assert!(
        !r.stderr.contains("libkmod"),
        "lspci warned about modules: {}",
        r.stderr
    );

    // fio wrote 16 MiB, read it all back and verified every crc32c.
    let fio = section(&r.stdout, "fio");
    assert!(fio.contains("v: (groupid=0, jobs=1): err= 0"), "{fio}");
    assert!(
        fio.contains("WRITE: bw=") && fio.contains("io=16.0MiB"),
        "{fio}"
    );
    assert!(
        fio.contains("READ: bw="),
        "the verify pass did not run: {fio}"
    );
    assert!(fio.contains("fio exit 0"), "{fio}");

    let nvme = section(&r.stdout, "nvme");
    assert!(
        nvme.lines().any(|l| l.starts_with("nvme version 2.")),
        "{nvme}"
    );
    assert!(nvme.contains("libnvme version"), "{nvme}");
    assert!(nvme.contains("nvme exit 0"), "{nvme}");

    // The default topology's first root port, fully decoded.
    let lspci = section(&r.stdout, "lspci");
    for want in [
        "Express (v2) Root Port",
        "Access Control Services",
        "Kernel driver in use: pcieport",
        "lspci exit 0",
    ] {
        assert!(lspci.contains(want), "no {want:?} in {lspci}");
    }

    // rdma-core lists the RNIC's PVRDMA function, its node GUID the
    // EUI-64 of rnic0's MAC; perftest asked for a device that is not
    // there says so and exits 1.
    let ibv = section(&r.stdout, "ibv_devices");
    let lines: Vec<&str> = ibv.lines().collect();
    assert_eq!(lines.len(), 4, "{ibv}");
    assert!(
        lines[0].contains("device") && lines[0].contains("node GUID"),
        "{ibv}"
    );
    assert!(
        lines[2].contains("vmw_pvrdma0") && lines[2].contains("025056fffe503200"),
        "{ibv}"
    );
    assert_eq!(lines[3], "ibv_devices exit 0");
    let bw = section(&r.stdout, "ib_write_bw");
    // perftest's usage text names the device option, and exits 1.
    assert!(bw.starts_with("help exit 1\n1\n"), "{bw}");
    assert!(
        bw.contains("Unable to find the Infiniband/RoCE device"),
        "{bw}"
    );
    assert!(bw.contains("ib_write_bw exit 1"), "{bw}");

    // busybox mke2fs + mount, on a RAM disk and on a loop device: the bytes
    // survive an unmount, a cache drop and a remount.
    let ext2 = section(&r.stdout, "ext2");
    assert!(ext2.contains("ram0 same bytes"), "{ext2}");
    assert!(ext2.contains("loop same bytes"), "{ext2}");
}

#[test]
fn the_default_boot_is_clean_and_the_cpu_is_p2pvms() {
    // guest() fails the test on any WARNING, call trace, BUG or Firmware
    // Bug; here the CPU model and topology p2pvm chose are checked too.
    let r = guest(
        &["--cpus", "2"],
        "grep -m1 'model name' /proc/cpuinfo; grep -c ^processor /proc/cpuinfo; \
         grep -m1 'siblings' /proc/cpuinfo; grep -m1 'cpu cores' /proc/cpuinfo; \
         grep -m1 -o ' hypervisor' /proc/cpuinfo",
    );
    assert_eq!(r.code, 0);
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("model name\t: p2pvm virtual CPU"));
    assert_eq!(lines.next(), Some("2"));
    assert_eq!(lines.next(), Some("siblings\t: 2"));
    assert_eq!(lines.next(), Some("cpu cores\t: 2"));
    assert_eq!(lines.next(), Some(" hypervisor"));
    let dmesg = r.dmesg.as_deref().unwrap_or_default();
    assert!(
        dmesg.contains("x86/fpu: Enabled xstate features"),
        "{dmesg}"
    );
}
