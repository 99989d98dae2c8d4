//! The judge, fed hand-written guest output, counters and backing files.

use super::*;
use crate::suite::scenario::{all, CHUNK};

fn scenario(name: &str) -> Scenario {
    all().into_iter().find(|s| s.name == name).unwrap()
}

const MIB: u64 = 1 << 20;

/// A counters document: `(name, up, down)` per link, and refusals at the RC.
fn counters(links: &[(&str, u64, u64)], at_rc: u64) -> Value {
    let links: Vec<Value> = links
        .iter()
        .map(|(n, u, d)| serde_json::json!({"name": n, "up_bytes": u, "down_bytes": d}))
        .collect();
    serde_json::json!({"links": links, "refused": {"at_root_complex": at_rc}})
}

fn out(cpu: &str, rc: i32, copied: bool, dmesg: &str) -> String {
    format!(
        "=== cpu ===\n{cpu}\n=== copy ===\nprovider=0000:03:00.0 client=/dev/nvme1 published=1\n{}rc={rc}\n=== dmesg ===\n[    0.1] Linux version 6.12\n{dmesg}\n",
        if copied {
            format!("copied={PAYLOAD} secs=0.1 mb_per_s=40.0\n")
        } else {
            "p2pvm-p2pmem: read into p2pmem at 0x0: Remote I/O error (os error 121)\n".into()
        }
    )
}

fn image(pattern: &[u8], dst: Option<&[u8]>) -> Vec<u8> {
    let mut img = vec![0u8; (DST_OFFSET + PAYLOAD) as usize];
    img[..pattern.len()].copy_from_slice(pattern);
    if let Some(d) = dst {
        img[DST_OFFSET as usize..DST_OFFSET as usize + d.len()].copy_from_slice(d);
    }
    img
}

fn bdf(name: &str) -> String {
    match name {
        "sw1-dp1" => "0000:02:01.0".into(),
        _ => "0000:ff:00.0".into(),
    }
}

fn judge_with(s: &Scenario, out: &str, c: &Value, img: &[u8], pattern: &[u8]) -> Judgement {
    judge(
        s,
        &Observed {
            out,
            counters: Some(c),
            image: Some(img),
            pattern,
            bdf: &bdf,
        },
    )
}

fn failing(j: &Judgement) -> Vec<String> {
    j.checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.clone())
        .collect()
}

fn below_switch() -> Value {
    counters(
        &[
            ("rp1", 40 << 10, 2 << 10),
            ("sw1", 40 << 10, 2 << 10),
            ("nvme0", 4 * MIB + 9000, 4 * MIB),
            ("nvme1", 4 * MIB + 30000, 4 * MIB + 1000),
        ],
        0,
    )
}

#[test]
fn a_switch_local_copy_that_stayed_below_the_switch_passes() {
    let s = scenario("switch-local");
    let pat = vec![0x5a; PAYLOAD as usize];
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 0, true, ""),
        &below_switch(),
        &image(&pat, Some(&pat)),
        &pat,
    );
    assert!(j.passed(), "{:?}", failing(&j));
    assert_eq!(j.kernel_saw, "allowed P2P");
    assert_eq!(j.fabric_saw, "below the switch");
}

#[test]
fn payload_at_the_switch_upstream_link_fails_and_names_the_link() {
    let s = scenario("switch-local");
    let pat = vec![0x5a; PAYLOAD as usize];
    let c = counters(
        &[
            ("rp1", 4 * MIB, 4 * MIB),
            ("sw1", 4 * MIB, 4 * MIB),
            ("nvme0", 4 * MIB, 4 * MIB),
            ("nvme1", 4 * MIB, 4 * MIB),
        ],
        0,
    );
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 0, true, ""),
        &c,
        &image(&pat, Some(&pat)),
        &pat,
    );
    let bad = failing(&j);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].starts_with("sw1 (the switch's upstream link): up 4.0 MiB"),
        "{bad:?}"
    );
    assert!(bad[1].starts_with("rp1 (the root port)"), "{bad:?}");
    assert_eq!(j.fabric_saw, "up to the root complex and back");
}

#[test]
fn wrong_bytes_a_warning_or_a_missing_log_fail() {
    let s = scenario("switch-local");
    let pat: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let mut copy = pat.clone();
    copy[CHUNK as usize + 7] ^= 1;
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 0, true, ""),
        &below_switch(),
        &image(&pat, Some(&copy)),
        &pat,
    );
    assert_eq!(
        failing(&j),
        ["the copy differs from the source at byte 0x20007"]
    );
    let j = judge_with(
        &s,
        &out(
            "AuthenticAMD 15",
            0,
            true,
            "[    1.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2",
        ),
        &below_switch(),
        &image(&pat, Some(&pat)),
        &pat,
    );
    assert!(
        failing(&j)[0].contains("WARNING: CPU: 0"),
        "{:?}",
        failing(&j)
    );
    let j = judge_with(
        &s,
        "=== cpu ===\nAuthenticAMD 15\n",
        &below_switch(),
        &image(&pat, None),
        &pat,
    );
    assert_eq!(
        failing(&j),
        ["the guest script did not get to the end (no copy or dmesg section)"]
    );
}

#[test]
fn a_refusal_needs_the_kernel_line_a_failed_copy_and_no_traffic() {
    let s = scenario("rc-not-whitelisted");
    let pat = vec![7u8; PAYLOAD as usize];
    let refusal = format!("[    2.1] nvme 0000:06:00.0: cannot be used for peer-to-peer DMA as the client and provider (0000:03:00.0) {REFUSAL}");
    let quiet = counters(
        &[("rp2", 30 << 10, 1 << 10), ("nvme0", 30 << 10, 1 << 10)],
        0,
    );
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 2, false, &refusal),
        &quiet,
        &image(&pat, None),
        &pat,
    );
    assert!(j.passed(), "{:?}", failing(&j));
    assert_eq!(j.kernel_saw, "refused P2P");
    // Without the line, or with the copy succeeding, it fails.
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 2, false, ""),
        &quiet,
        &image(&pat, None),
        &pat,
    );
    assert_eq!(failing(&j).len(), 1, "{:?}", failing(&j));
    // A Zen guest is not what this scenario is about.
    let j = judge_with(
        &s,
        &out("AuthenticAMD 23", 2, false, &refusal),
        &quiet,
        &image(&pat, None),
        &pat,
    );
    assert!(
        failing(&j)[0].contains("is Zen (want not Zen)"),
        "{:?}",
        failing(&j)
    );
}

#[test]
fn a_failed_io_may_leave_untouched_blocks_but_never_wrong_ones() {
    let s = scenario("rc-lies-whitelisted");
    let pat = vec![9u8; PAYLOAD as usize];
    let dte = format!(
        "[    2.1] nvme2n1: Read(0x2) @ LBA 0, 256 blocks, I/O Error {DATA_TRANSFER_ERROR} DNR"
    );
    let c = counters(&[("nvme0", 20 << 10, 1 << 10)], 6);
    let mut half = vec![0u8; PAYLOAD as usize];
    half[..8192].copy_from_slice(&pat[..8192]);
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 2, false, &dte),
        &c,
        &image(&pat, Some(&half)),
        &pat,
    );
    assert!(j.passed(), "{:?}", failing(&j));
    half[8192] = 1;
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 2, false, &dte),
        &c,
        &image(&pat, Some(&half)),
        &pat,
    );
    assert_eq!(failing(&j), ["block 2 of the destination holds wrong data"]);
    // Nothing refused at the root complex: the fabric column fails.
    let c = counters(&[("nvme0", 20 << 10, 1 << 10)], 0);
    let j = judge_with(
        &s,
        &out("AuthenticAMD 15", 2, false, &dte),
        &c,
        &image(&pat, None),
        &pat,
    );
    assert_eq!(
        failing(&j),
        ["requests refused at the root complex: 0 (want > 0)"]
    );
}

#[test]
fn bdf_placeholders_resolve() {
    assert_eq!(
        resolve("pci=disable_acs_redir={bdf:sw1-dp1} x {bdf:q}", &bdf),
        "pci=disable_acs_redir=0000:02:01.0 x 0000:ff:00.0"
    );
    assert_eq!(resolve("no placeholder", &bdf), "no placeholder");
    // An unterminated placeholder is left as written.
    assert_eq!(resolve("a {bdf:open", &bdf), "a {bdf:open");
}

#[test]
fn a_surprise_removal_passes_only_when_the_client_left_came_back_and_kept_every_byte() {
    let s = scenario("surprise-link-down");
    let pattern: Vec<u8> = (0..PAYLOAD).map(|i| (i * 7 % 253) as u8).collect();
    let pciehp = "[    3.2] pcieport 0000:02:01.0: pciehp: Slot(4): Link Down\n\
                  [    3.2] pcieport 0000:02:01.0: pciehp: Slot(4): Card not present\n\
                  [    3.7] pcieport 0000:02:01.0: pciehp: Slot(4): Card present\n\
                  [    3.7] pcieport 0000:02:01.0: pciehp: Slot(4): Link Up";
    let hotplug = |gone: &str, back: &str, rc2: i32| {
        format!(
            "=== hotplug ===\nP2PVM-CTL link-down port=sw1-dp1\n{gone}\nP2PVM-CTL link-up port=sw1-dp1\n{back}\ncopied={PAYLOAD} secs=0.1 mb_per_s=40.0\nrc2={rc2}\n"
        )
    };
    let with = |h: &str| {
        out("GenuineIntel 6", 0, true, pciehp)
            .replace("=== dmesg ===", &format!("{h}=== dmesg ==="))
    };
    let mut img = image(&pattern, Some(&pattern));
    img.resize((DST2_OFFSET + PAYLOAD) as usize, 0);
    let mut img2 = img.clone();
    img2[DST2_OFFSET as usize..].copy_from_slice(&pattern);
    let mut c = below_switch();
    let link = |c: &mut Value, state: &str, downs: u64| {
        let links = c["links"].as_array_mut().unwrap();
        links.retain(|l| l["name"] != "sw1-dp1");
        links.push(serde_json::json!({"name": "sw1-dp1", "up_bytes": 0, "down_bytes": 0, "link": state, "link_downs": downs}));
    };
    link(&mut c, "up", 1);
    let good = with(&hotplug(
        "gone=yes: 0000:04:00.0 removed after 5 polls",
        "back=yes: /dev/nvme1 at 0000:04:00.0",
        0,
    ));
    let j = judge_with(&s, &good, &c, &img2, &pattern);
    assert!(j.passed(), "{:?}", failing(&j));

    // The second copy's bytes are missing: data fails.
    let j = judge_with(&s, &good, &c, &img, &pattern);
    assert_eq!(
        failing(&j),
        ["the second copy differs from the source at byte 0x1"]
    );
    // The controller never went away, or never came back.
    let stuck = with(&hotplug(
        "gone=no: 0000:04:00.0 is still there",
        "back=yes: /dev/nvme1 at 0000:04:00.0",
        0,
    ));
    let j = judge_with(&s, &stuck, &c, &img2, &pattern);
    assert!(
        failing(&j)[0].starts_with("Linux removes the client"),
        "{:?}",
        failing(&j)
    );
    let lost = with(&hotplug(
        "gone=yes: 0000:04:00.0 removed after 5 polls",
        "back=no",
        1,
    ));
    assert_eq!(
        failing(&judge_with(&s, &lost, &c, &img2, &pattern)).len(),
        2
    );
    // pciehp never said so.
    let quiet = good.replace("Link Down", "Link Dawn");
    assert_eq!(
        failing(&judge_with(&s, &quiet, &c, &img2, &pattern)).len(),
        1
    );
    // The link is still down, or never went down.
    for (state, downs) in [("down", 1), ("up", 0)] {
        let mut c2 = c.clone();
        link(&mut c2, state, downs);
        let f = failing(&judge_with(&s, &good, &c2, &img2, &pattern));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("the link below sw1-dp1"), "{f:?}");
    }
    // No hotplug section at all.
    let none = out("GenuineIntel 6", 0, true, pciehp);
    assert!(failing(&judge_with(&s, &none, &c, &img2, &pattern))
        .contains(&"no hotplug section in the guest's output".to_string()));
}

#[test]
fn a_line_the_kernel_must_not_print_fails_the_kernel_column() {
    let s = scenario("iommu-masked-fault");
    let pattern: Vec<u8> = (0..PAYLOAD).map(|i| (i % 251) as u8 + 1).collect();
    let img = image(&pattern, None);
    let c = serde_json::json!({
        "links": [{"name": "nvme0", "up_bytes": 1000, "down_bytes": 1000}],
        "refused": {"iommu_fault": 6, "at_root_complex": 6},
        "iommu": {"lookups": 500, "p2p_bytes": 0},
    });
    let dte = "[    2.3] nvme1n1: I/O Cmd(0x2) @ LBA 0, 256 blocks, I/O Error (sct 0x0 / sc 0x4)";
    let quiet = out("GenuineIntel 6", 1, false, dte);
    let j = judge_with(&s, &quiet, &c, &img, &pattern);
    assert!(j.passed(), "{:?}", failing(&j));
    let loud = out(
        "GenuineIntel 6",
        1,
        false,
        &format!("{dte}\n[    2.2] DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr 0xfffa0000 [fault reason 0x05] PTE Write access is not set"),
    );
    let f = failing(&judge_with(&s, &loud, &c, &img, &pattern));
    assert_eq!(f, ["dmesg has no \"DMAR: [DMA\" (seen: true)"]);
}

#[test]
fn a_silently_corrupted_copy_passes_only_with_misdirected_source_blocks_and_no_error() {
    let s = scenario("iommu-poison-p2p");
    let pattern = crate::suite::exec::pattern(s.name);
    let c = serde_json::json!({
        "links": [
            {"name": "rp1", "up_bytes": 4 * MIB + 9000, "down_bytes": 4 * MIB + 9000},
            {"name": "sw1", "up_bytes": 4 * MIB + 9000, "down_bytes": 4 * MIB + 9000},
            {"name": "nvme0", "up_bytes": 4 * MIB + 9000, "down_bytes": 4 * MIB},
        ],
        "refused": {"at_root_complex": 0},
        "iommu": {"lookups": 5000, "p2p_bytes": 8 * MIB},
    });
    let redirect = format!("[    2.0] nvme 0000:04:00.0: {REDIRECT}");
    let ok = out("GenuineIntel 6", 0, true, &redirect);
    // What aliasing odd pages onto even ones leaves: each pair of blocks
    // holds the odd one's bytes twice.
    let mut aliased = pattern.clone();
    for pair in aliased.chunks_mut(8192) {
        let (even, odd) = pair.split_at_mut(4096);
        even.copy_from_slice(odd);
    }
    let j = judge_with(&s, &ok, &c, &image(&pattern, Some(&aliased)), &pattern);
    assert!(j.passed(), "{:?}", failing(&j));
    assert!(j.note.is_some(), "the report says the kernel missed it");
    // A correct copy is not what this misconfiguration does.
    let f = failing(&judge_with(
        &s,
        &ok,
        &c,
        &image(&pattern, Some(&pattern)),
        &pattern,
    ));
    assert_eq!(
        f,
        ["the copy is wrong: 0 of 1024 blocks differ from the source"]
    );
    // Bytes from nowhere are not misdirected DMA.
    let mut noise = aliased.clone();
    noise[5 * 4096] ^= 0xff;
    let f = failing(&judge_with(
        &s,
        &ok,
        &c,
        &image(&pattern, Some(&noise)),
        &pattern,
    ));
    assert_eq!(f, ["block 5 holds bytes that are nowhere in the source"]);
    // Linux saw a fault: not silent.
    let loud = out(
        "GenuineIntel 6",
        0,
        true,
        &format!("{redirect}\n[    2.2] DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr 0x0 [fault reason 0x05]"),
    );
    let f = failing(&judge_with(
        &s,
        &loud,
        &c,
        &image(&pattern, Some(&aliased)),
        &pattern,
    ));
    assert_eq!(
        f,
        [
            "no error reaches Linux: no Data Transfer Error (seen: false), no DMAR fault line (seen: true)",
            "dmesg has no \"DMAR: [DMA\" (seen: true)"
        ]
    );
}
