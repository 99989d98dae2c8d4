//! Judging one scenario run: what the kernel decided (the copy's result,
//! its dmesg), what landed (the backing file's bytes) and what the fabric
//! did (the link counters). A scenario passes only when every column
//! agrees with its expectation.

use serde_json::Value;

use super::scenario::{
    Client, FabricExpect, KernelExpect, Scenario, DST2_OFFSET, DST_OFFSET, PAYLOAD, REPLUG_PORT,
};

/// A link "carries the payload" with at least this many bytes each way.
pub const CARRIES: u64 = PAYLOAD;
/// A link carries "none of it" with fewer than this many bytes each way
/// (queue entries, PRP lists, identify data and interrupts stay far below).
pub const QUIET: u64 = PAYLOAD / 4;

/// Linux's refusal (`calc_map_type_and_dist`, drivers/pci/p2pdma.c).
pub const REFUSAL: &str = "do not share an upstream bridge or whitelisted host bridge";
/// Linux's warning when ACS redirect is set on the path.
pub const REDIRECT: &str = "ACS redirect is set between the client and provider";
/// How Linux logs an NVMe Data Transfer Error (`nvme_log_error`).
pub const DATA_TRANSFER_ERROR: &str = "(sct 0x0 / sc 0x4)";

/// One check and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `kernel`, `data`, `fabric` or `guest`.
    pub column: &'static str,
    /// What was checked and what was seen.
    pub text: String,
    /// It held.
    pub ok: bool,
}

/// What a run showed, and the verdict.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// What the kernel did, in a few words.
    pub kernel_saw: String,
    /// Where the payload went, in a few words.
    pub fabric_saw: String,
    /// A note for the report (a misconfiguration the kernel missed).
    pub note: Option<String>,
}

impl Judgement {
    /// Every check held.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn check(&mut self, column: &'static str, ok: bool, text: String) {
        self.checks.push(Check { column, text, ok });
    }
}

/// A link's bytes `(up, down)` in a `--counters` document.
pub fn link(counters: &Value, name: &str) -> Option<(u64, u64)> {
    let l = counters["links"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)?;
    Some((l["up_bytes"].as_u64()?, l["down_bytes"].as_u64()?))
}

/// A field of the `refused` object.
pub fn refused(counters: &Value, field: &str) -> u64 {
    counters["refused"][field].as_u64().unwrap_or(0)
}

/// Bytes as KiB or MiB.
pub fn human(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// The section `=== name ===` of the guest's output.
pub fn section<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("=== {name} ===\n");
    let start = out.find(&marker)? + marker.len();
    let rest = &out[start..];
    let end = rest.find("\n=== ").map(|e| e + 1).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// What the suite collected from one run.
pub struct Observed<'a> {
    /// The guest's stdout (the script's sections).
    pub out: &'a str,
    /// The counters document, if the VM wrote one.
    pub counters: Option<&'a Value>,
    /// The client's backing file after the run.
    pub image: Option<&'a [u8]>,
    /// The payload the host put at offset 0 of it.
    pub pattern: &'a [u8],
    /// `{bdf:NODE}` resolved: NODE's `0000:bb:dd.f`.
    pub bdf: &'a dyn Fn(&str) -> String,
}

/// Replaces every `{bdf:NODE}` in `s`.
pub fn resolve(s: &str, bdf: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("{bdf:") {
        let tail = &rest[at + 5..];
        let Some(end) = tail.find('}') else {
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(&bdf(&tail[..end]));
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Judges a run of `s`.
pub fn judge(s: &Scenario, o: &Observed<'_>) -> Judgement {
    let mut j = Judgement::default();
    let (Some(copy), Some(dmesg)) = (section(o.out, "copy"), section(o.out, "dmesg")) else {
        j.check(
            "guest",
            false,
            "the guest script did not get to the end (no copy or dmesg section)".into(),
        );
        return j;
    };
    if let Err(report) = crate::dmesg::check(dmesg) {
        j.check("guest", false, report.trim_end().to_string());
    }
    cpu(s, o.out, &mut j);
    kernel(s, copy, dmesg, o, &mut j);
    data(s, o, &mut j);
    if s.replug {
        replug_kernel(o.out, &mut j);
        replug_data(o, &mut j);
    }
    match o.counters {
        Some(c) => {
            fabric(s, c, &mut j);
            if s.setup.iommu {
                iommu(s, c, &mut j);
            }
            if s.replug {
                replug_fabric(c, &mut j);
            }
        }
        None => j.check("fabric", false, "no counters file".into()),
    }
    if s.kernel == KernelExpect::CorruptsSilently {
        j.note = Some(format!(
            "the kernel {} and reported success, but the IOMMU misdirected the payload: wrong bytes only the host's check saw",
            j.kernel_saw
        ));
    }
    if s.unseen_by_kernel {
        j.note = Some(format!(
            "the kernel {} but the fabric carried the payload {}: traffic the kernel did not expect",
            j.kernel_saw, j.fabric_saw
        ));
    }
    j
}

fn cpu(s: &Scenario, out: &str, j: &mut Judgement) {
    let line = section(out, "cpu").unwrap_or_default().trim().to_string();
    let mut it = line.split_whitespace();
    let vendor = it.next().unwrap_or_default();
    let family: u32 = it.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    let zen = vendor == "AuthenticAMD" && family >= 0x17;
    let want_zen = s.setup.cpu == super::scenario::CpuChoice::Zen;
    j.check(
        "guest",
        zen == want_zen,
        format!(
            "guest CPU {vendor} family {family:#x}: {} Zen (want {})",
            if zen { "is" } else { "is not" },
            if want_zen { "Zen" } else { "not Zen" }
        ),
    );
}

fn kernel(s: &Scenario, copy: &str, dmesg: &str, o: &Observed<'_>, j: &mut Judgement) {
    let rc = copy
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .and_then(|v| v.trim().parse::<i32>().ok());
    let copied = copy.contains(&format!("copied={PAYLOAD} "));
    let refused = dmesg.contains(REFUSAL);
    let redirect = dmesg.contains(REDIRECT);
    let dte = dmesg.contains(DATA_TRANSFER_ERROR);
    j.kernel_saw = match (rc, refused, redirect, dte) {
        (_, true, _, _) => "refused P2P".into(),
        (Some(0), _, true, _) => "allowed P2P through the host bridge (ACS redirect)".into(),
        (Some(0), _, false, _) => "allowed P2P".into(),
        (_, _, _, true) => "failed the I/O (Data Transfer Error)".into(),
        _ => "failed the copy".into(),
    };
    let first_error = || {
        copy.lines()
            .find(|l| l.contains("p2pvm-p2pmem:"))
            .unwrap_or("no error printed")
            .to_string()
    };
    let allows = match s.kernel {
        KernelExpect::Allows { redirect } => Some(redirect),
        KernelExpect::CorruptsSilently => Some(true),
        _ => None,
    };
    if s.kernel == KernelExpect::CorruptsSilently {
        let dmar = dmesg.contains("DMAR: [DMA");
        j.check(
            "kernel",
            !dte && !dmar,
            format!(
                "no error reaches Linux: no Data Transfer Error (seen: {dte}), no DMAR fault line (seen: {dmar})"
            ),
        );
    }
    match (s.kernel, allows) {
        (_, Some(want)) => {
            j.check(
                "kernel",
                rc == Some(0) && copied,
                format!(
                    "the copy of {} through p2pmem succeeds (rc {rc:?}; {})",
                    human(PAYLOAD),
                    if copied {
                        "all copied".into()
                    } else {
                        first_error()
                    }
                ),
            );
            j.check(
                "kernel",
                !refused,
                format!("no \"{REFUSAL}\" (seen: {refused})"),
            );
            j.check(
                "kernel",
                redirect == want,
                format!(
                    "\"{REDIRECT}\" {} (seen: {redirect})",
                    if want { "is printed" } else { "is not printed" }
                ),
            );
        }
        (KernelExpect::Refuses, _) => {
            j.check(
                "kernel",
                rc.is_some_and(|r| r != 0),
                format!("the copy fails (rc {rc:?}: {})", first_error()),
            );
            j.check(
                "kernel",
                refused,
                format!("dmesg has \"cannot be used for peer-to-peer DMA ... {REFUSAL}\" (seen: {refused})"),
            );
        }
        (_, None) => {
            j.check(
                "kernel",
                rc.is_some_and(|r| r != 0),
                format!(
                    "the copy fails with an error the user sees (rc {rc:?}: {})",
                    first_error()
                ),
            );
            j.check(
                "kernel",
                dte,
                format!("dmesg logs an NVMe Data Transfer Error \"{DATA_TRANSFER_ERROR}\" (seen: {dte})"),
            );
        }
    }
    for want in s.dmesg_has {
        let want = resolve(want, o.bdf);
        let seen = dmesg.contains(&want);
        j.check(
            "kernel",
            seen,
            format!("dmesg has \"{want}\" (seen: {seen})"),
        );
    }
    for never in s.dmesg_lacks {
        let seen = dmesg.contains(never);
        j.check(
            "kernel",
            !seen,
            format!("dmesg has no \"{never}\" (seen: {seen})"),
        );
    }
    let aer = section(o.out, "aer").unwrap_or_default();
    for want in s.aer_has {
        let want = resolve(want, o.bdf);
        // `BDF KIND=N`, where the guest's BDF has its domain.
        let seen = aer.lines().find(|l| l.starts_with(&format!("{want}=")));
        j.check(
            "kernel",
            seen.is_some(),
            format!(
                "Linux's AER counted it: aer_dev_nonfatal has \"{want}\" ({})",
                seen.unwrap_or("not there")
            ),
        );
    }
}

fn data(s: &Scenario, o: &Observed<'_>, j: &mut Judgement) {
    let Some(img) = o.image else {
        j.check(
            "data",
            false,
            "the client's backing file could not be read".into(),
        );
        return;
    };
    let n = o.pattern.len();
    let dst = DST_OFFSET as usize;
    if img.len() < dst + n {
        j.check(
            "data",
            false,
            format!("the backing file is {} bytes", img.len()),
        );
        return;
    }
    j.check(
        "data",
        &img[..n] == o.pattern,
        "the source bytes are unchanged".into(),
    );
    let out = &img[dst..dst + n];
    match s.kernel {
        KernelExpect::Allows { .. } => {
            let bad = first_difference(out, o.pattern);
            j.check(
                "data",
                bad.is_none(),
                match bad {
                    None => format!("the {} copied are the source's bytes", human(PAYLOAD)),
                    Some(at) => format!("the copy differs from the source at byte {at:#x}"),
                },
            );
        }
        KernelExpect::CorruptsSilently => corrupt(out, o.pattern, j),
        _ => {
            // Never silently wrong: each 4 KiB block is untouched (zero)
            // or the source's.
            let wrong = out
                .chunks(4096)
                .zip(o.pattern.chunks(4096))
                .position(|(b, p)| b != p && b.iter().any(|&x| x != 0));
            j.check(
                "data",
                wrong.is_none(),
                match wrong {
                    None => "no wrong data landed (every block untouched or the source's)".into(),
                    Some(k) => format!("block {k} of the destination holds wrong data"),
                },
            );
        }
    }
}

/// Wrong bytes landed, and each wrong 4 KiB block is a block of the
/// source from another place: misdirected DMA, not noise or zeros.
fn corrupt(out: &[u8], pattern: &[u8], j: &mut Judgement) {
    let source: std::collections::HashSet<&[u8]> = pattern.chunks(4096).collect();
    let blocks = out.len().div_ceil(4096);
    let wrong: Vec<(usize, &[u8])> = out
        .chunks(4096)
        .zip(pattern.chunks(4096))
        .enumerate()
        .filter(|(_, (b, p))| b != p)
        .map(|(k, (b, _))| (k, b))
        .collect();
    j.check(
        "data",
        !wrong.is_empty(),
        format!(
            "the copy is wrong: {} of {blocks} blocks differ from the source",
            wrong.len()
        ),
    );
    let foreign = wrong.iter().find(|(_, b)| !source.contains(b));
    j.check(
        "data",
        foreign.is_none(),
        match foreign {
            None => {
                "each wrong block is a source block from another place (misdirected DMA)".into()
            }
            Some((k, _)) => format!("block {k} holds bytes that are nowhere in the source"),
        },
    );
}

/// The surprise removal as the guest saw it: the controller went away,
/// came back, and copied through p2pmem again.
fn replug_kernel(out: &str, j: &mut Judgement) {
    let Some(h) = section(out, "hotplug") else {
        j.check(
            "kernel",
            false,
            "no hotplug section in the guest's output".into(),
        );
        return;
    };
    let line = |key: &str| {
        h.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or("not printed")
            .to_string()
    };
    let (gone, back) = (line("gone="), line("back="));
    j.check(
        "kernel",
        gone.starts_with("gone=yes"),
        format!("Linux removes the client when its link goes down ({gone})"),
    );
    j.check(
        "kernel",
        back.starts_with("back=yes"),
        format!("Linux finds it again when the link comes up ({back})"),
    );
    let rc2 = line("rc2=");
    let copied = h.contains(&format!("copied={PAYLOAD} "));
    j.check(
        "kernel",
        rc2 == "rc2=0" && copied,
        format!(
            "the copy through p2pmem after the reinsertion succeeds ({rc2}; {})",
            if copied {
                "all copied"
            } else {
                "not all copied"
            }
        ),
    );
}

/// The bytes the first copy wrote before the link went down (acknowledged
/// writes) and those of the copy after it came back.
fn replug_data(o: &Observed<'_>, j: &mut Judgement) {
    let n = o.pattern.len();
    let at = DST2_OFFSET as usize;
    let Some(out) = o.image.and_then(|img| img.get(at..at + n)) else {
        j.check("data", false, "the backing file is too short".into());
        return;
    };
    let bad = first_difference(out, o.pattern);
    j.check(
        "data",
        bad.is_none(),
        match bad {
            None => format!(
                "the {} copied after the reinsertion are the source's bytes",
                human(PAYLOAD)
            ),
            Some(at) => format!("the second copy differs from the source at byte {at:#x}"),
        },
    );
}

/// What the IOMMU translated: the payload into nvme0's CMB when the
/// kernel maps P2P through the host bridge, none of it when the path is
/// switch-local (RAM DMA is translated either way).
fn iommu(s: &Scenario, c: &Value, j: &mut Judgement) {
    let field = |k: &str| c["iommu"][k].as_u64();
    let (Some(lookups), Some(p2p)) = (field("lookups"), field("p2p_bytes")) else {
        j.check("fabric", false, "no IOMMU counters".into());
        return;
    };
    j.check(
        "fabric",
        lookups > 0,
        format!("the IOMMU translated the guest's DMA ({lookups} lookups)"),
    );
    if matches!(s.fabric, FabricExpect::Faulted { .. }) {
        // Refused before it was translated into the CMB.
        j.check(
            "fabric",
            p2p == 0,
            format!("nothing translated into a peer's BAR ({})", human(p2p)),
        );
        return;
    }
    let through = matches!(s.fabric, FabricExpect::UpToRootComplexAndBack);
    j.check(
        "fabric",
        if through { p2p >= CARRIES } else { p2p == 0 },
        format!(
            "translated into a peer's BAR: {} (want {})",
            human(p2p),
            if through {
                format!(">= {}", human(CARRIES))
            } else {
                "none".into()
            }
        ),
    );
}

/// The link below the pulled port went down once and is up again.
fn replug_fabric(c: &Value, j: &mut Judgement) {
    let l = c["links"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == REPLUG_PORT));
    let (state, downs) = l.map_or((None, None), |l| {
        (l["link"].as_str(), l["link_downs"].as_u64())
    });
    j.check(
        "fabric",
        state == Some("up") && downs == Some(1),
        format!(
            "the link below {REPLUG_PORT} went down once and is up again (link {}, brought down {} times)",
            state.unwrap_or("?"),
            downs.map_or("?".into(), |d| d.to_string())
        ),
    );
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// A link's verdict line: `want` is "carries" or "quiet".
fn link_check(j: &mut Judgement, c: &Value, name: &str, carries: bool, why: &str) {
    let Some((up, down)) = link(c, name) else {
        j.check("fabric", false, format!("no link {name} in the counters"));
        return;
    };
    let ok = if carries {
        up >= CARRIES && down >= CARRIES
    } else {
        up < QUIET && down < QUIET
    };
    let want = if carries {
        format!(">= {} each way", human(CARRIES))
    } else {
        format!("< {} each way", human(QUIET))
    };
    j.check(
        "fabric",
        ok,
        format!(
            "{name} ({why}): up {}, down {} (want {want})",
            human(up),
            human(down)
        ),
    );
}

fn carries(c: &Value, name: &str) -> bool {
    link(c, name).is_some_and(|(u, d)| u >= CARRIES && d >= CARRIES)
}

fn fabric(s: &Scenario, c: &Value, j: &mut Judgement) {
    let client = s.setup.client.name();
    let at_rc = refused(c, "at_root_complex");
    let (ca, poisoned) = (refused(c, "completer_abort"), refused(c, "poisoned"));
    let iommu_faults = refused(c, "iommu_fault");
    j.fabric_saw = if iommu_faults > 0 {
        format!("IOMMU faults at the root complex ({iommu_faults} requests)")
    } else if ca > 0 {
        format!("aborted on the way ({ca} requests)")
    } else if poisoned > 0 {
        format!("poisoned on the way ({poisoned} requests)")
    } else if at_rc > 0 {
        format!("refused at the root complex ({at_rc} requests)")
    } else if carries(c, "rp1") && carries(c, "rp2") {
        "through the root complex".into()
    } else if carries(c, "rp1") {
        "up to the root complex and back".into()
    } else if carries(c, "sw1") {
        "up the switch and back".into()
    } else if carries(c, "nvme0") {
        "below the switch".into()
    } else {
        "nowhere".into()
    };
    match s.fabric {
        FabricExpect::BelowSwitch => {
            link_check(j, c, client, true, "the client");
            link_check(j, c, "nvme0", true, "the provider");
            link_check(j, c, "sw1", false, "the switch's upstream link");
            link_check(j, c, "rp1", false, "the root port");
        }
        FabricExpect::ThroughRootComplex => {
            link_check(j, c, "rp2", true, "the client's root port");
            link_check(j, c, "rp1", true, "the provider's root port");
            link_check(j, c, "nvme0", true, "the provider");
        }
        FabricExpect::UpToRootComplexAndBack => {
            link_check(j, c, "sw1", true, "the switch's upstream link");
            link_check(j, c, "rp1", true, "the root port");
            link_check(j, c, "nvme0", true, "the provider");
        }
        FabricExpect::NoPayload => {
            link_check(j, c, "nvme0", false, "the provider");
            if s.setup.client == Client::OtherRootPort {
                link_check(j, c, "rp2", false, "the client's root port");
            }
            j.check(
                "fabric",
                at_rc == 0,
                format!("nothing refused at the root complex ({at_rc})"),
            );
        }
        FabricExpect::Faulted { counter } => {
            let n = refused(c, counter);
            j.check(
                "fabric",
                n > 0,
                format!("requests refused as {counter}: {n} (want > 0)"),
            );
            link_check(j, c, "nvme0", false, "the provider");
        }
        FabricExpect::RefusedAtRootComplex => {
            j.check(
                "fabric",
                at_rc > 0,
                format!("requests refused at the root complex: {at_rc} (want > 0)"),
            );
            link_check(j, c, "nvme0", false, "the provider");
        }
    }
}

#[cfg(test)]
mod tests;
