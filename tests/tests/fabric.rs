//! Fabric tier: boot Linux on fabrics with root ports, switches and ACS,
//! and check what Linux reports against the topology file and the
//! counters p2pvm keeps for every link.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{guest, link_bytes, p2pvm, section};
use p2pvm::topology::{AcsBit, Topology};

fn topo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(name)
}

/// `(bdf, "vvvv:dddd")` of every function `p2pvm topology` prints.
fn host_view(file: &Path) -> Vec<(String, String, String)> {
    let r = p2pvm(&["topology", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let bdf = w.next().unwrap().trim_start_matches("0000:").to_string();
            let ids = w.next().unwrap().trim_matches(['[', ']']).to_string();
            let name = w.next().unwrap().to_string();
            (bdf, ids, name)
        })
        .collect()
}

/// lspci's rendering of ACS bits: `SrcValid+ TransBlk- …`.
fn acs_flags(bits: u16) -> String {
    let names = [
        "SrcValid",
        "TransBlk",
        "ReqRedir",
        "CmpltRedir",
        "UpstreamFwd",
        "EgressCtrl",
        "DirectTrans",
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n}{}", if bits & (1 << i) != 0 { '+' } else { '-' }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expected (ACSCap, ACSCtl) per port name, from the topology file.
fn expected_acs(t: &Topology) -> Vec<(String, u16, u16)> {
    let mut v = Vec::new();
    for rp in &t.root_port {
        if let Some(a) = &rp.acs {
            v.push((
                rp.name.get_ref().clone(),
                AcsBit::bits(&a.capability).bits(),
                AcsBit::bits(&a.control).bits(),
            ));
        }
    }
    for sw in &t.switch {
        for dp in &sw.downstream {
            if let Some(a) = &dp.acs {
                v.push((
                    dp.name.get_ref().clone(),
                    AcsBit::bits(&a.capability).bits(),
                    AcsBit::bits(&a.control).bits(),
                ));
            }
        }
    }
    v
}

fn check_fabric(file: &str) {
    let path = topo(file);
    let host = host_view(&path);
    let t = Topology::load(Some(&path)).unwrap();
    let mut script = String::from("echo '=== lspci ==='; lspci -n; echo '=== pcieport ==='; ls /sys/bus/pci/drivers/pcieport; echo '=== dmesg ==='; dmesg;");
    for (bdf, _, name) in &host {
        script += &format!(" echo '=== {name} ==='; lspci -vvv -s {bdf};");
    }
    let r = guest(
        &["--topology", path.to_str().unwrap(), "--memory", "768M"],
        &script,
    );
    assert_eq!(r.code, 0);

    // Same functions at the same addresses with the same IDs.
    let guest_view: BTreeSet<(String, String)> = section(&r.stdout, "lspci")
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_string(), w[2].to_string())
        })
        .collect();
    let host_set: BTreeSet<(String, String)> = host
        .iter()
        .map(|(b, i, _)| (b.clone(), i.clone()))
        .collect();
    assert_eq!(guest_view, host_set, "lspci -n differs from p2pvm topology");

    // ACS capability and control on every root and downstream port, as set.
    for (name, cap, ctl) in expected_acs(&t) {
        let dump = section(&r.stdout, &name);
        assert!(
            dump.contains("Access Control Services"),
            "{name}: no ACS in\n{dump}"
        );
        let want_cap = format!("ACSCap:\t{}", acs_flags(cap));
        let want_ctl = format!("ACSCtl:\t{}", acs_flags(ctl));
        assert!(
            dump.contains(&want_cap),
            "{name}: want {want_cap} in\n{dump}"
        );
        assert!(
            dump.contains(&want_ctl),
            "{name}: want {want_ctl} in\n{dump}"
        );
    }

    // pcieport binds every port; AER comes up on the root ports.
    let bound = section(&r.stdout, "pcieport");
    let dmesg = section(&r.stdout, "dmesg");
    for (bdf, _, name) in &host {
        let port = name.starts_with("rp") || name.contains("-dp") || name.starts_with("sw");
        if port {
            assert!(
                bound.contains(&format!("0000:{bdf}")),
                "{name} ({bdf}) not bound to pcieport:\n{bound}"
            );
        }
        if name.starts_with("rp") {
            assert!(
                dmesg.contains(&format!("pcieport 0000:{bdf}: AER: enabled with IRQ")),
                "{name}: AER not enabled:\n{dmesg}"
            );
        }
    }

    // No PCI warnings or errors.
    let bad: Vec<&str> = dmesg
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("pci") || l.contains("acpi"))
                && [
                    "warn",
                    "error",
                    "fail",
                    "no space",
                    "can't",
                    "firmware bug",
                    "bug:",
                ]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "PCI complaints in dmesg:\n{}",
        bad.join("\n")
    );
}

#[test]
fn default_topology_with_test_endpoints_matches_linux() {
    check_fabric("p2p.toml");
}

#[test]
fn two_switch_levels_match_linux() {
    check_fabric("deep.toml");
}

/// Guest script: ep0 (03:00.0) copies 64 KiB from ep1's BAR2 (04:00.0) to
/// ep2's BAR2 (05:00.0) with its config-space DMA engine, after `acs`
/// (setpci commands) ran. See [`dma_script_at`].
fn dma_script(acs: &str) -> String {
    dma_script_at(acs, ["03:00.0", "04:00.0", "05:00.0"])
}

/// Guest script: endpoint `ep[0]` copies 64 KiB from `ep[1]`'s BAR2 to
/// `ep[2]`'s. The source is filled with a pattern through the guest's own
/// mapping of its `resource2` (the KVM slot), the destination checked byte
/// for byte through its own (`bytes=ok`, or the first difference); the
/// destination is overwritten first, so a copy that moved nothing fails.
/// Prints the engine's status once it is no longer busy (0xfe).
fn dma_script_at(acs: &str, ep: [&str; 3]) -> String {
    let [e0, e1, e2] = ep;
    format!(
        "set -e; {acs}
         seed=$(( $(cat /proc/uptime | tr -d . | cut -d' ' -f1) % 250 + 1 ))
         p2pvm-testdev fill {e1} 2 0 0x10000 $seed
         p2pvm-testdev fill {e2} 2 0 0x10000 0
         bar2() {{ lspci -s $1 -vv 2>/dev/null | sed -n 's/.*Region 2: Memory at \\([0-9a-f]*\\).*/\\1/p'; }}
         src=$(bar2 {e1}); dst=$(bar2 {e2})
         lo() {{ printf %08x $(( 0x$1 & 0xffffffff )); }}
         hi() {{ printf %08x $(( 0x$1 >> 32 )); }}
         setpci -s {e0} CAP_VNDR+8.L=$(lo $src) CAP_VNDR+c.L=$(hi $src) \
             CAP_VNDR+10.L=$(lo $dst) CAP_VNDR+14.L=$(hi $dst) CAP_VNDR+18.L=10000
         setpci -s {e0} CAP_VNDR+4.L=1
         while [ $(setpci -s {e0} CAP_VNDR+1c.L) = 000000fe ]; do :; done
         echo status=$(setpci -s {e0} CAP_VNDR+1c.L) done=$(setpci -s {e0} CAP_VNDR+20.L)
         p2pvm-testdev check {e2} 2 0 0x10000 $seed && echo bytes=ok"
    )
}

fn run_dma(acs: &str) -> (common::Run, String) {
    let counters = std::env::temp_dir().join(format!(
        "p2pvm-counters-{}-{}.json",
        std::process::id(),
        acs.len()
    ));
    let r = guest(
        &[
            "--topology",
            topo("p2p.toml").to_str().unwrap(),
            "--counters",
            counters.to_str().unwrap(),
        ],
        &dma_script(acs),
    );
    let json = std::fs::read_to_string(&counters).expect("counters file");
    let _ = std::fs::remove_file(&counters);
    (r, json)
}

#[test]
fn switch_local_p2p_stays_below_the_switch() {
    let (r, json) = run_dma("");
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.trim(), "status=00000000 done=00010000\nbytes=ok");
    // Nothing crossed the switch's upstream link or the root port.
    assert_eq!(link_bytes(&json, "sw1"), (0, 0), "{json}");
    assert_eq!(link_bytes(&json, "rp1"), (0, 0), "{json}");
    // Read completions came up from ep1 and down to ep0; the writes went down to ep2.
    assert_eq!(link_bytes(&json, "ep1"), (65536, 0), "{json}");
    assert_eq!(link_bytes(&json, "ep0"), (65536, 65536), "{json}");
    assert_eq!(link_bytes(&json, "ep2"), (0, 65536), "{json}");
}

#[test]
fn acs_redirect_set_with_setpci_sends_p2p_through_the_root_complex() {
    // What Linux's pci_std_enable_acs would set: SV, RR, CR, UF (0x1d),
    // on the requester's downstream port and on the root port above it.
    let (r, json) =
        run_dma("setpci -s 02:00.0 ECAP_ACS+6.w=001d; setpci -s 00:01.0 ECAP_ACS+6.w=001d;");
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.trim(), "status=00000000 done=00010000\nbytes=ok");
    // The read's completions and the writes both went up to the root
    // complex and back down: 128 KiB each way over the switch's link.
    assert_eq!(link_bytes(&json, "sw1"), (131072, 131072), "{json}");
    assert_eq!(link_bytes(&json, "ep2"), (0, 65536), "{json}");
}

#[test]
fn dma_survives_linux_renumbering_and_a_secondary_bus_reset() {
    // Linux renumbers the buses and reallocates resources itself, then
    // resets ep0 through its port's Secondary Bus Reset (sysfs "reset",
    // method "bus") and restores its config space; the copy is programmed
    // and run again afterwards.
    let copy = dma_script("").replace("set -e;", "");
    let script = format!(
        "set -e; cat /sys/bus/pci/devices/0000:03:00.0/reset_method; {copy}; \
         echo 1 > /sys/bus/pci/devices/0000:03:00.0/reset; {copy}"
    );
    let r = guest(
        &[
            "--topology",
            topo("p2p.toml").to_str().unwrap(),
            "--cmdline",
            "pci=realloc,assign-busses",
        ],
        &script,
    );
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "bus",
            "status=00000000 done=00010000",
            "bytes=ok",
            "status=00000000 done=00010000",
            "bytes=ok"
        ],
        "{}",
        r.stdout
    );
}

#[test]
fn crossed_copies_from_two_processes_complete_by_interrupt_with_their_bytes() {
    // Two guest processes on two vCPUs drive ep0 and ep1 through vfio-pci
    // (no-IOMMU), 100 copies each, at the same time and into each other's
    // BAR 2: each round fills the source through the guest's mapping,
    // rings the doorbell (an ioeventfd), waits for the MSI-X vector on its
    // eventfd and checks every byte of the destination. The two meet
    // before the first copy and after the last (opening and closing a
    // vfio-pci device resets it).
    let counters = std::env::temp_dir().join(format!("p2pvm-irq-{}.json", std::process::id()));
    let script = "set -e; export P2PVM_TESTDEV_SYNC=/tmp/sync:2
        p2pvm-testdev copy 03:00.0 04:00.0 0 04:00.0 0x80000 0x10000 100 >/tmp/a & a=$!
        p2pvm-testdev copy 04:00.0 03:00.0 0 03:00.0 0x80000 0x10000 100 >/tmp/b & b=$!
        wait $a; wait $b; cat /tmp/a /tmp/b";
    let r = guest(
        &[
            "--cpus",
            "2",
            "--topology",
            topo("p2p.toml").to_str().unwrap(),
            "--counters",
            counters.to_str().unwrap(),
        ],
        script,
    );
    let json = std::fs::read_to_string(&counters).expect("counters file");
    let _ = std::fs::remove_file(&counters);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = "copies=100 irqs=100 proc_interrupts=100";
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), [line, line]);
    // The payload stayed below the switch; only the 200 interrupt
    // messages (4 bytes each) went up to the root complex.
    assert_eq!(link_bytes(&json, "sw1"), (800, 0), "{json}");
    assert_eq!(link_bytes(&json, "rp1"), (800, 0), "{json}");
    // Each endpoint read 100 x 64 KiB from its peer and wrote as much
    // into it, served the peer's reads and took its writes, and sent 100
    // messages.
    let moved = 2 * 100 * 0x10000;
    assert_eq!(link_bytes(&json, "ep0"), (moved + 400, moved), "{json}");
    assert_eq!(link_bytes(&json, "ep1"), (moved + 400, moved), "{json}");
}

#[test]
fn an_injected_correctable_error_reaches_linux_aer() {
    // ep0 logs a Receiver Error and sends ERR_COR up through the switch
    // to rp1, whose Root Error Status logs it and whose MSI wakes Linux's
    // AER driver: it reads the source's status and counts it in sysfs.
    let script = "set -e
        setpci -s 03:00.0 CAP_VNDR+4.L=2
        f=/sys/bus/pci/devices/0000:03:00.0/aer_dev_correctable
        for i in $(seq 100); do grep -q 'TOTAL_ERR_COR 1' $f && break; sleep 0.1; done
        grep -E '^(RxErr|TOTAL_ERR_COR) ' $f
        cat /sys/bus/pci/devices/0000:00:01.0/aer_rootport_total_err_cor
        dmesg | grep -o 'AER: Correctable error message received from 0000:03:00.0' | head -1
        setpci -s 03:00.0 ECAP_AER+10.L";
    let r = guest(&["--topology", topo("p2p.toml").to_str().unwrap()], script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            "RxErr 1",
            "TOTAL_ERR_COR 1",
            "1",
            "AER: Correctable error message received from 0000:03:00.0",
            // Linux cleared the status it handled.
            "00000000"
        ],
        "{}",
        r.stdout
    );
}

#[test]
fn dma_follows_bus_numbers_linux_gives_that_differ_from_firmwares() {
    // Linux forgets rp1's hierarchy, rp1 is given buses 0x20-0x2f through
    // configuration mechanism #1 (0xCF8, setpci -H1), and a rescan makes
    // Linux number everything below it again. Config routing, BAR decoding
    // and the copy must follow the new numbers.
    let copy = dma_script_at("", ["22:00.0", "23:00.0", "24:00.0"]).replace("set -e;", "");
    let script = format!(
        "set -e
         echo 1 > /sys/bus/pci/devices/0000:00:01.0/remove
         setpci -H1 -s 00:01.0 SECONDARY_BUS=20 SUBORDINATE_BUS=2f
         echo 1 > /sys/bus/pci/rescan
         lspci -n -d 1b36:0005 | cut -d' ' -f1 | tr '\\n' ' '; echo
         # No driver enabled these ports after the rescan (a driver's
         # pci_set_master would): let them forward the endpoints' requests.
         for p in 21:00.0 21:01.0 21:02.0; do setpci -s $p COMMAND=0004:0004; done
         {copy}"
    );
    let r = guest(&["--topology", topo("p2p.toml").to_str().unwrap()], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            // Firmware had 03:00.0, 04:00.0, 05:00.0 and 06:00.0.
            "06:00.0 22:00.0 23:00.0 24:00.0 ",
            "status=00000000 done=00010000",
            "bytes=ok"
        ],
        "{}",
        r.stdout
    );
}
