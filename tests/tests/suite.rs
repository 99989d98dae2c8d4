//! `p2pvm test` tier: each scenario of the P2PDMA suite, run through the
//! real command, with both columns checked here again from the files it
//! leaves (the guest's output and dmesg, the fabric counters, the
//! backing file), against expectations written in this file.

mod common;

use common::{link_bytes, p2pvm, section};

const MIB: u64 = 1 << 20;
/// What the suite copies (4 MiB), at 16 MiB on the client's namespace.
const PAYLOAD: u64 = 4 * MIB;

/// What one scenario must show.
struct Want<'a> {
    /// The copy through p2pmem succeeds.
    copy_ok: bool,
    /// ... but what lands is wrong: a misdirected page's bytes (each wrong
    /// 4 KiB block is the source's block beside it).
    wrong_data: bool,
    /// dmesg lines that must be there.
    dmesg: &'a [&'a str],
    /// dmesg lines that must not.
    not_dmesg: &'static [&'static str],
    /// Links that carry the payload both ways (>= 4 MiB).
    carry: &'static [&'static str],
    /// Links that carry none of it (< 1 MiB each way).
    quiet: &'static [&'static str],
    /// Requests refused at the root complex.
    refused_at_rc: bool,
    /// The picture shows refused traffic (red).
    red: bool,
    /// The client was pulled and put back between two copies: the second
    /// copy (to 32 MiB) must land too, and sw1-dp1's link went down once.
    replug: bool,
    /// With VT-d: whether the IOMMU translated the payload into nvme0's
    /// CMB (>= 4 MiB) or none of it.
    iommu: Option<bool>,
}

const REFUSAL: &str = "do not share an upstream bridge or whitelisted host bridge";
const REDIRECT: &str = "ACS redirect is set between the client and provider";

fn scenario(name: &str, client: &str, want: Want<'_>) {
    let dir = std::env::temp_dir().join(format!("p2pvm-suite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let junit = dir.with_extension("xml");
    let tap = dir.with_extension("tap");
    let r = p2pvm(&[
        "test",
        "--filter",
        name,
        "--workdir",
        dir.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        &format!("--tap={}", tap.display()),
    ]);
    eprintln!("--- stdout ---\n{}\n--- stderr ---\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "p2pvm test --filter {name} failed");
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(name))
        .expect("a matrix row");
    assert!(row.contains(" PASS "), "{row}");
    assert!(
        r.stdout.contains("1 scenarios: 1 passed, 0 failed"),
        "{}",
        r.stdout
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\""),
        "{x}"
    );
    common::valid_junit(&junit);
    common::prove(&tap, true);

    // The kernel's column, from the guest's own output.
    let out = std::fs::read_to_string(dir.join(name).join("output.txt")).unwrap();
    let dmesg = section(&out, "dmesg");
    if let Err(report) = p2pvm::dmesg::check(dmesg) {
        panic!("{report}");
    }
    let copy = section(&out, "copy");
    assert_eq!(
        copy.contains(&format!("copied={PAYLOAD} ")) && copy.contains("rc=0"),
        want.copy_ok,
        "{copy}"
    );
    for l in want.dmesg {
        assert!(dmesg.contains(l), "{l} not in\n{dmesg}");
    }
    for l in want.not_dmesg {
        assert!(!dmesg.contains(l), "{l} in\n{dmesg}");
    }
    // The bytes, in the backing file.
    let img = std::fs::read(dir.join(name).join(format!("{client}.img"))).unwrap();
    let (src, dst) = (
        &img[..PAYLOAD as usize],
        &img[16 << 20..(16 << 20) + PAYLOAD as usize],
    );
    assert!(src.iter().any(|&b| b != 0), "the host's payload is there");
    if want.wrong_data {
        let blocks = |b: &[u8]| b.chunks(4096).map(<[u8]>::to_vec).collect::<Vec<_>>();
        let (s, d) = (blocks(src), blocks(dst));
        let wrong: Vec<usize> = (0..d.len()).filter(|&i| d[i] != s[i]).collect();
        assert!(!wrong.is_empty(), "the copy should be wrong");
        for &i in &wrong {
            let beside = [i.wrapping_sub(1), i + 1]
                .iter()
                .any(|&k| s.get(k) == Some(&d[i]));
            assert!(beside, "block {i} is not its neighbour's bytes");
        }
        eprintln!("{} of {} blocks wrong", wrong.len(), d.len());
    } else if want.copy_ok {
        assert!(src == dst, "the copy has the source's bytes");
    } else {
        assert!(dst.iter().all(|&b| b == 0), "nothing landed");
    }
    if want.replug {
        let h = section(&out, "hotplug");
        for l in [
            "gone=yes",
            "back=yes",
            "rc2=0",
            &format!("copied={PAYLOAD} "),
        ] {
            assert!(h.contains(l), "{l} not in\n{h}");
        }
        let again = &img[32 << 20..(32 << 20) + PAYLOAD as usize];
        assert!(
            src == again,
            "the copy after the reinsertion has the source's bytes"
        );
    }
    // The fabric's column, from the counters.
    let json = std::fs::read_to_string(dir.join(name).join("counters.json")).unwrap();
    for n in want.carry {
        let (up, down) = link_bytes(&json, n);
        assert!(up >= PAYLOAD && down >= PAYLOAD, "{n} {up}/{down}\n{json}");
    }
    for n in want.quiet {
        let (up, down) = link_bytes(&json, n);
        assert!(up < MIB && down < MIB, "{n} {up}/{down}\n{json}");
    }
    let dp1 = json
        .lines()
        .find(|l| l.contains("\"name\": \"sw1-dp1\""))
        .unwrap();
    let downs = if want.replug { 1 } else { 0 };
    assert!(
        dp1.contains(&format!("\"link\": \"up\", \"link_downs\": {downs}")),
        "{dp1}"
    );
    if let Some(through) = want.iommu {
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let p2p = doc["iommu"]["p2p_bytes"].as_u64().unwrap();
        assert_eq!(p2p >= PAYLOAD, through, "translated into the CMB: {p2p}");
        assert_eq!(p2p == 0, !through, "translated into the CMB: {p2p}");
        assert!(doc["iommu"]["lookups"].as_u64().unwrap() > 0);
    }
    let refused = json.contains("\"at_root_complex\": 0,");
    assert_eq!(!refused, want.refused_at_rc, "{json}");
    // The picture: red where requests were refused, nowhere else.
    let red = common::red_pixels(&dir.join(name).join("fabric.svg"));
    assert_eq!(red > 0, want.red, "{red} red pixels");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&junit);
    let _ = std::fs::remove_file(&tap);
}

#[test]
fn switch_local_p2p_stays_below_the_switch() {
    scenario(
        "switch-local",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &["added peer-to-peer DMA memory"],
            not_dmesg: &[REFUSAL, REDIRECT],
            carry: &["nvme1", "sw1-dp1", "sw1-dp0", "nvme0"],
            quiet: &["sw1", "rp1", "rp2"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn whitelisted_host_bridge_p2p_goes_through_the_root_complex() {
    scenario(
        "rc-whitelisted",
        "nvme2",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[],
            not_dmesg: &[REFUSAL, REDIRECT],
            carry: &["nvme2", "rp2", "rp1", "sw1", "nvme0"],
            quiet: &["nvme1"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn an_unlisted_host_bridge_without_zen_is_refused_by_linux() {
    scenario(
        "rc-not-whitelisted",
        "nvme2",
        Want {
            copy_ok: false,
            wrong_data: false,
            dmesg: &["nvme 0000:06:00.0: cannot be used for peer-to-peer DMA as the client and provider (0000:03:00.0) do not share an upstream bridge or whitelisted host bridge"],
            not_dmesg: &[],
            carry: &[],
            quiet: &["rp2", "rp1", "nvme0"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn a_zen_cpu_lets_linux_use_any_host_bridge() {
    scenario(
        "rc-zen",
        "nvme2",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[],
            not_dmesg: &[REFUSAL],
            carry: &["rp2", "rp1", "nvme0"],
            quiet: &["nvme1"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn acs_redirect_sends_p2p_up_to_the_root_complex() {
    scenario(
        "acs-redirect",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[
                "nvme 0000:04:00.0: ACS redirect is set between the client and provider (0000:03:00.0)",
                "pci=disable_acs_redir=0000:02:01.0",
            ],
            not_dmesg: &[REFUSAL],
            carry: &["sw1", "rp1", "nvme0", "nvme1"],
            quiet: &["rp2"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn disable_acs_redir_brings_p2p_back_below_the_switch() {
    scenario(
        "acs-redirect-disabled",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &["pci 0000:02:01.0: Configured ACS to 0x0000"],
            not_dmesg: &[REDIRECT],
            carry: &["nvme1", "nvme0"],
            quiet: &["sw1", "rp1"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

/// The kernel sees no redirect on the path, the port redirects anyway.
fn redirect_the_kernel_cannot_see(name: &str) {
    scenario(
        name,
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[],
            not_dmesg: &[REDIRECT, REFUSAL],
            carry: &["sw1", "rp1", "nvme0"],
            quiet: &["rp2"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn rr_stuck_on_redirects_behind_the_kernels_back() {
    redirect_the_kernel_cannot_see("acs-stuck-redirect");
}

#[test]
fn a_hidden_acs_capability_redirects_behind_the_kernels_back() {
    redirect_the_kernel_cannot_see("acs-hidden-redirect");
}

#[test]
fn an_rc_that_refuses_p2p_fails_the_io_with_a_data_transfer_error() {
    scenario(
        "rc-lies-whitelisted",
        "nvme2",
        Want {
            copy_ok: false,
            wrong_data: false,
            dmesg: &["(sct 0x0 / sc 0x4)"],
            not_dmesg: &[REFUSAL],
            carry: &[],
            quiet: &["nvme0", "rp1"],
            refused_at_rc: true,
            red: true,
            replug: false,
            iommu: None,
        },
    );
}

/// A TLP fault on the provider's port: Linux's AER driver hears of it
/// (`aer_line` is how it names the error) and the I/O fails.
fn aer_scenario(name: &str, aer_line: &str) {
    let dmesg = [
        "pcieport 0000:00:01.0: AER: Uncorrectable (Non-Fatal) error message received from 0000:02:00.0",
        aer_line,
        "(sct 0x0 / sc 0x4)",
    ];
    scenario(
        name,
        "nvme1",
        Want {
            copy_ok: false,
            wrong_data: false,
            dmesg: &dmesg,
            not_dmesg: &[REFUSAL],
            carry: &[],
            quiet: &["nvme0", "sw1", "rp1"],
            refused_at_rc: false,
            red: true,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn a_completer_abort_on_the_providers_port_reaches_aer_and_fails_the_io() {
    aer_scenario("aer-completer-abort", "[15] CmpltAbrt");
}

#[test]
fn poisoned_p2p_data_reaches_aer_and_fails_the_io() {
    aer_scenario("aer-poisoned", "[12] TLP");
}

#[test]
fn a_surprise_link_down_takes_the_client_away_and_back_without_losing_a_write() {
    scenario(
        "surprise-link-down",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[
                "pcieport 0000:02:01.0: pciehp: Slot #4 AttnBtn- PwrCtrl- MRL- AttnInd- PwrInd- HotPlug+ Surprise+",
                "pcieport 0000:02:01.0: pciehp: Slot(4): Link Down",
                "pcieport 0000:02:01.0: pciehp: Slot(4): Card not present",
                "pcieport 0000:02:01.0: pciehp: Slot(4): Card present",
                "pcieport 0000:02:01.0: pciehp: Slot(4): Link Up",
            ],
            not_dmesg: &[REFUSAL, REDIRECT],
            carry: &["nvme1", "sw1-dp1", "sw1-dp0", "nvme0"],
            quiet: &["sw1", "rp1"],
            refused_at_rc: false,
            red: false,
            replug: true,
            iommu: None,
        },
    );
}

#[test]
fn with_vtd_linux_redirects_p2p_and_the_iommu_translates_it_into_the_cmb() {
    scenario(
        "iommu-p2p",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[REDIRECT, "DMAR: dmar0: Using Queued invalidation"],
            not_dmesg: &[REFUSAL],
            carry: &["nvme1", "sw1-dp1", "sw1", "rp1", "sw1-dp0", "nvme0"],
            quiet: &[],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: Some(true),
        },
    );
}

#[test]
fn with_vtd_and_disable_acs_redir_p2p_stays_below_the_switch_untranslated() {
    scenario(
        "iommu-p2p-disable-acs-redir",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &[
                "0000:02:01.0: Configured ACS to",
                "DMAR: dmar0: Using Queued invalidation",
            ],
            not_dmesg: &[REFUSAL, REDIRECT],
            carry: &["nvme1", "sw1-dp1", "sw1-dp0", "nvme0"],
            quiet: &["sw1", "rp1"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: Some(false),
        },
    );
}

/// A VT-d fault scenario: the copy fails with a Data Transfer Error,
/// nothing reaches nvme0 or lands, the faults are refused at the root
/// complex, nothing was translated into the CMB; dmesg has `dmesg` and
/// lacks `not_dmesg` (and never Linux's P2P refusal).
fn iommu_fault_scenario(name: &str, dmesg: &[&str], not_dmesg: &'static [&'static str]) {
    let mut all = vec!["(sct 0x0 / sc 0x4)"];
    all.extend_from_slice(dmesg);
    scenario(
        name,
        "nvme1",
        Want {
            copy_ok: false,
            wrong_data: false,
            dmesg: &all,
            not_dmesg,
            carry: &[],
            quiet: &["nvme0"],
            refused_at_rc: true,
            red: true,
            replug: false,
            iommu: Some(false),
        },
    );
}

#[test]
fn vtd_dropping_the_clients_mappings_into_the_cmb_faults_and_fails_the_io() {
    iommu_fault_scenario(
        "iommu-drop-p2p",
        &[
            "DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr",
            "[fault reason 0x05] PTE Write access is not set",
        ],
        &[REFUSAL],
    );
}

#[test]
fn a_masked_vtd_fault_event_fails_the_io_without_a_dmar_line() {
    iommu_fault_scenario(
        "iommu-masked-fault",
        &[],
        &[REFUSAL, "DMAR: [DMA", "DMAR: DRHD: handling fault"],
    );
}

#[test]
fn overflowing_vtd_fault_records_show_as_an_overflow_without_records() {
    iommu_fault_scenario(
        "iommu-overflowed-faults",
        &["DMAR: DRHD: handling fault status reg 1"],
        &[REFUSAL, "DMAR: [DMA"],
    );
}

#[test]
fn vtd_poisoning_the_clients_cmb_mappings_corrupts_the_copy_without_linux_noticing() {
    scenario(
        "iommu-poison-p2p",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: true,
            dmesg: &[REDIRECT],
            not_dmesg: &[REFUSAL, "DMAR: [DMA", "(sct 0x0 / sc 0x4)"],
            carry: &["nvme1", "sw1-dp1", "sw1", "rp1", "sw1-dp0", "nvme0"],
            quiet: &[],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: Some(true),
        },
    );
}

#[test]
fn nvmeof_with_the_target_rnic_below_the_switch_keeps_the_payload_there() {
    scenario(
        "nvmeof-switch-local",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &["nvmet: using p2pmem on 0000:03:00.0 for nsid 1"],
            not_dmesg: &[REFUSAL, REDIRECT],
            // rnic0 (sw1-dp2) and nvme1 both reach the CMB below the
            // switch; the host's RNIC (rnic1, rp2) reads and writes RAM.
            carry: &["nvme1", "sw1-dp1", "sw1-dp0", "nvme0", "sw1-dp2", "rp2"],
            quiet: &["sw1", "rp1"],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}

#[test]
fn nvmeof_with_the_target_rnic_behind_the_other_root_port_goes_through_the_rc() {
    scenario(
        "nvmeof-rc",
        "nvme1",
        Want {
            copy_ok: true,
            wrong_data: false,
            dmesg: &["nvmet: using p2pmem on 0000:03:00.0 for nsid 1"],
            not_dmesg: &[REFUSAL, REDIRECT],
            carry: &["nvme1", "nvme0", "rp2", "rp1", "sw1"],
            quiet: &[],
            refused_at_rc: false,
            red: false,
            replug: false,
            iommu: None,
        },
    );
}
