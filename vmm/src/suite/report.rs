//! The suite's reports: a matrix for people, JUnit XML and TAP for CI.

use std::fmt::Write as _;

use super::exec::{Outcome, ScenarioRun};
use super::scenario::{FabricExpect, KernelExpect};

/// The expected kernel column in a few words.
pub fn kernel_want(k: KernelExpect) -> &'static str {
    match k {
        KernelExpect::Allows { redirect: false } => "allowed P2P",
        KernelExpect::Allows { redirect: true } => {
            "allowed P2P through the host bridge (ACS redirect)"
        }
        KernelExpect::Refuses => "refused P2P",
        KernelExpect::FailsWithDataTransferError => "failed the I/O (Data Transfer Error)",
        KernelExpect::CorruptsSilently => {
            "allowed P2P through the host bridge (ACS redirect), no error"
        }
    }
}

/// The expected fabric column in a few words.
pub fn fabric_want(f: FabricExpect) -> &'static str {
    match f {
        FabricExpect::BelowSwitch => "below the switch",
        FabricExpect::ThroughRootComplex => "through the root complex",
        FabricExpect::UpToRootComplexAndBack => "up to the root complex and back",
        FabricExpect::NoPayload => "nowhere",
        FabricExpect::RefusedAtRootComplex => "refused at the root complex",
        FabricExpect::Faulted {
            counter: "poisoned",
        } => "poisoned on the way",
        FabricExpect::Faulted {
            counter: "iommu_fault",
        } => "IOMMU faults at the root complex",
        FabricExpect::Faulted { .. } => "aborted on the way",
    }
}

/// PASS, FAIL, ERROR or SKIP.
pub fn status(r: &ScenarioRun) -> &'static str {
    match &r.outcome {
        Outcome::Judged(j) if j.passed() => "PASS",
        Outcome::Judged(_) => "FAIL",
        Outcome::Error(_) => "ERROR",
        Outcome::Skipped(_) => "SKIP",
    }
}

/// Why a run did not pass, with its evidence; empty when it passed.
pub fn explain(r: &ScenarioRun) -> String {
    let mut s = String::new();
    match &r.outcome {
        Outcome::Judged(j) if j.passed() => return s,
        Outcome::Judged(j) => {
            for c in j.checks.iter().filter(|c| !c.ok) {
                let _ = writeln!(s, "  [{}] {}", c.column, c.text);
            }
        }
        Outcome::Error(e) => {
            let _ = writeln!(s, "  {e}");
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(s, "  {why}");
            return s;
        }
    }
    for l in r.evidence.lines() {
        let _ = writeln!(s, "  {l}");
    }
    let _ = writeln!(s, "  files: {}", r.dir.display());
    s
}

/// The matrix: per scenario, what each column wanted and saw.
pub fn matrix(runs: &[ScenarioRun]) -> String {
    let mut s = String::new();
    let w = runs
        .iter()
        .map(|r| r.scenario.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "{:<w$}  {:<6} {:>6}  kernel (want / saw)  |  fabric (want / saw)",
        "scenario", "result", "time"
    );
    for r in runs {
        let (ks, fs) = match &r.outcome {
            Outcome::Judged(j) => (j.kernel_saw.as_str(), j.fabric_saw.as_str()),
            _ => ("-", "-"),
        };
        let _ = writeln!(
            s,
            "{:<w$}  {:<6} {:>5.1}s  {} / {}  |  {} / {}",
            r.scenario.name,
            status(r),
            r.secs,
            kernel_want(r.scenario.kernel),
            ks,
            fabric_want(r.scenario.fabric),
            fs,
        );
        if let Outcome::Judged(j) = &r.outcome {
            if let Some(n) = &j.note {
                let _ = writeln!(s, "{:<w$}  note: {n}", "");
            }
        }
    }
    let count = |st: &str| runs.iter().filter(|r| status(r) == st).count();
    let _ = writeln!(
        s,
        "{} scenarios: {} passed, {} failed, {} errors, {} skipped",
        runs.len(),
        count("PASS"),
        count("FAIL"),
        count("ERROR"),
        count("SKIP")
    );
    s
}

/// XML text escaping (also drops characters XML 1.0 does not allow).
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 => {}
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML (the Ant/Jenkins schema): one `testsuite` named
/// `p2pvm.SUITE`, one `testcase` per scenario.
pub fn junit(suite: &str, runs: &[ScenarioRun], timestamp: &str, hostname: &str) -> String {
    let count = |st: &str| runs.iter().filter(|r| status(r) == st).count();
    let total: f64 = runs.iter().map(|r| r.secs).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"p2pvm test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{total:.3}\">",
        runs.len(),
        count("FAIL"),
        count("ERROR"),
        count("SKIP")
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"p2pvm.{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{total:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        xml(suite),
        runs.len(),
        count("FAIL"),
        count("ERROR"),
        count("SKIP"),
        xml(timestamp),
        xml(hostname)
    );
    for r in runs {
        let _ = write!(
            s,
            "    <testcase classname=\"p2pvm.{}\" name=\"{}\" time=\"{:.3}\"",
            xml(suite),
            xml(r.scenario.name),
            r.secs
        );
        let why = explain(r);
        match &r.outcome {
            Outcome::Judged(j) if j.passed() => {
                s.push_str(">\n");
                let mut out = format!(
                    "{}\nkernel: {}\nfabric: {}\n",
                    r.scenario.title, j.kernel_saw, j.fabric_saw
                );
                if let Some(n) = &j.note {
                    let _ = writeln!(out, "note: {n}");
                }
                let _ = writeln!(s, "      <system-out>{}</system-out>", xml(&out));
            }
            Outcome::Judged(j) => {
                s.push_str(">\n");
                let first = j.checks.iter().find(|c| !c.ok).map(|c| c.text.as_str());
                let _ = writeln!(
                    s,
                    "      <failure message=\"{}\" type=\"p2pvm.expectation\">{}</failure>",
                    xml(first.unwrap_or("failed")),
                    xml(&why)
                );
            }
            Outcome::Error(e) => {
                s.push_str(">\n");
                let _ = writeln!(
                    s,
                    "      <error message=\"{}\" type=\"p2pvm.run\">{}</error>",
                    xml(e),
                    xml(&why)
                );
            }
            Outcome::Skipped(why) => {
                s.push_str(">\n");
                let _ = writeln!(s, "      <skipped message=\"{}\"/>", xml(why));
            }
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// TAP version 13, with a YAML diagnostic block for each failure.
pub fn tap(runs: &[ScenarioRun]) -> String {
    let mut s = String::from("TAP version 13\n");
    let _ = writeln!(s, "1..{}", runs.len());
    for (i, r) in runs.iter().enumerate() {
        let n = i + 1;
        let name = r.scenario.name;
        match &r.outcome {
            Outcome::Judged(j) if j.passed() => {
                let _ = writeln!(s, "ok {n} - {name}");
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(s, "ok {n} - {name} # SKIP {why}");
            }
            _ => {
                let _ = writeln!(s, "not ok {n} - {name}");
                s.push_str("  ---\n  message: |\n");
                for l in explain(r).lines() {
                    let _ = writeln!(s, "    {}", l.trim_start());
                }
                let _ = writeln!(s, "  duration_ms: {:.0}", r.secs * 1000.0);
                s.push_str("  ...\n");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests;
