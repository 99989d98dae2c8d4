//! Boot tier: boot the real guest kernel and initramfs under p2pvm (on
//! hardware KVM, or inside the KVM host box) and check what Linux reports.

mod common;

use common::{guest, section};

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
