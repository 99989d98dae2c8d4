//! VT-d tier: the guest boots with `[iommu] kind = "vt-d"` and Linux's
//! own intel-iommu driver finds the DMAR table, enables queued
//! invalidation and translation, groups devices the way ACS says, turns
//! ACS on at every port, and NVMe I/O with a data check passes in both
//! default domain types.

mod common;

use std::path::{Path, PathBuf};

use common::{guest, section};

fn topo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/iommu.toml")
}

const SCRIPT: &str = r#"dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/} && return; done; echo none; }
echo '=== caps ==='
cat /sys/class/iommu/dmar0/intel-iommu/cap /sys/class/iommu/dmar0/intel-iommu/ecap
echo '=== groups ==='
for g in /sys/kernel/iommu_groups/*; do echo "$(ls $g/devices | tr '\n' ' ')"; done
echo '=== acs ==='
lspci -vvv 2>/dev/null | grep -E '^[0-9a-f]|ACSCtl'
echo '=== fio ==='
n1=$(dev P2PVM-NVME1)
fio --name=v --filename=${n1}n1 --size=16m --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --output-format=terse >/dev/null
echo "fio exit $?"
"#;

fn boot(topology: &Path, cmdline: &str, counters: &Path) -> (String, String) {
    let r = guest(
        &[
            "--topology",
            topology.to_str().unwrap(),
            "--cmdline",
            cmdline,
            "--counters",
            counters.to_str().unwrap(),
        ],
        SCRIPT,
    );
    assert_eq!(r.code, 0, "the guest failed");
    (r.stdout, r.dmesg.unwrap_or_default())
}

fn check_translated_boot(cmdline: &str, domain: &str) {
    let counters = std::env::temp_dir().join(format!(
        "p2pvm-iommu-{}-{}.json",
        std::process::id(),
        domain
    ));
    let (out, dmesg) = boot(&topo(), cmdline, &counters);
    for l in [
        "DMAR: Host address width 48",
        "DMAR: DRHD base: 0x000000fed90000 flags: 0x1",
        "DMAR: dmar0: Using Queued invalidation",
        "0000:03:00.0: Adding to iommu group",
        "0000:04:00.0: Adding to iommu group",
        "DMAR: Intel(R) Virtualization Technology for Directed I/O",
        &format!("iommu: Default domain type: {domain}"),
    ] {
        assert!(dmesg.contains(l), "{l} not in\n{dmesg}");
    }
    // sysfs shows the model's registers.
    let caps: Vec<&str> = section(&out, "caps").lines().collect();
    assert_eq!(
        caps,
        [
            format!("{:x}", vtd::regs::cap_value()),
            format!("{:x}", vtd::regs::ecap_value())
        ]
    );
    // Behind ports with SV/RR/CR/UF every endpoint has a group of its own.
    let groups = section(&out, "groups");
    for ep in ["0000:03:00.0", "0000:04:00.0"] {
        assert!(
            groups.lines().any(|g| g.trim() == ep),
            "{ep} alone in\n{groups}"
        );
    }
    // Linux turned ACS on at every root and downstream port itself (the
    // topology's ACS Control is all clear).
    let acs = section(&out, "acs");
    let lines: Vec<&str> = acs.lines().collect();
    let mut ports = 0;
    for w in lines.windows(2) {
        if w[1].contains("ACSCtl") {
            ports += 1;
            assert!(
                w[1].contains("SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+"),
                "{}: {}",
                w[0],
                w[1]
            );
        }
    }
    assert_eq!(ports, 5, "rp1, rp2, sw1-dp0..2\n{acs}");
    assert!(section(&out, "fio").contains("fio exit 0"), "{out}");
    // The unit translated that I/O (or passed it through).
    let json = std::fs::read_to_string(&counters).unwrap();
    let _ = std::fs::remove_file(&counters);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lookups = doc["iommu"]["lookups"].as_u64().unwrap();
    assert!(lookups > 4096, "16 MiB of 4 KiB I/O both ways: {lookups}");
    assert_eq!(doc["iommu"]["faults"], 0);
}

#[test]
fn linux_enables_vtd_and_nvme_io_verifies_through_translated_domains() {
    check_translated_boot("iommu.passthrough=0", "Translated");
}

#[test]
fn linux_enables_vtd_and_nvme_io_verifies_through_pass_through_domains() {
    check_translated_boot("iommu.passthrough=1", "Passthrough");
}

#[test]
fn ports_without_acs_share_a_group_with_their_endpoints() {
    // The same fabric with no ACS capability on sw1's downstream ports.
    let text = std::fs::read_to_string(topo()).unwrap();
    let mut out = String::new();
    let mut in_dp = false;
    for l in text.lines() {
        if l.starts_with("[[") {
            in_dp = l == "[[switch.downstream]]";
        }
        if !(in_dp && l.starts_with("acs =")) {
            out += l;
            out += "\n";
        }
    }
    let path = std::env::temp_dir().join(format!("p2pvm-noacs-{}.toml", std::process::id()));
    std::fs::write(&path, out).unwrap();
    let counters = path.with_extension("json");
    let (out, _) = boot(&path, "", &counters);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&counters);
    // Linux (pci_device_group) stops at the first port up the path with
    // SV/RR/CR/UF; below sw1 none has them, and the switch's upstream port
    // counts as isolated, so each endpoint shares its group with its
    // downstream port.
    let groups = section(&out, "groups");
    for g in ["0000:02:00.0 0000:03:00.0", "0000:02:01.0 0000:04:00.0"] {
        assert!(
            groups.lines().any(|l| l.trim() == g),
            "{g} is one group:\n{groups}"
        );
    }
    assert!(section(&out, "fio").contains("fio exit 0"), "{out}");
}
