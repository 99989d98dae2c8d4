//! The reports, from hand-made runs.

use std::path::PathBuf;

use super::*;
use crate::suite::check::{Check, Judgement};
use crate::suite::scenario::all;

fn run(name: &str, outcome: Outcome) -> ScenarioRun {
    ScenarioRun {
        scenario: all().into_iter().find(|s| s.name == name).unwrap(),
        outcome,
        secs: 12.5,
        evidence: "fabric counters:\n  sw1 4.0 MiB up <&> \u{1}".into(),
        dir: PathBuf::from("/tmp/x"),
    }
}

fn judged(ok: bool) -> Outcome {
    Outcome::Judged(Judgement {
        checks: vec![Check {
            column: "fabric",
            text: "sw1 (the switch's upstream link): up 4.0 MiB, down 4.0 MiB (want < 1.0 MiB each way)".into(),
            ok,
        }],
        kernel_saw: "allowed P2P".into(),
        fabric_saw: "below the switch".into(),
        note: None,
    })
}

fn runs() -> Vec<ScenarioRun> {
    vec![
        run("switch-local", judged(true)),
        run("rc-whitelisted", judged(false)),
        run(
            "rc-zen",
            Outcome::Error("p2pvm run exited Some(1): timeout".into()),
        ),
        run("acs-redirect", Outcome::Skipped("not run".into())),
    ]
}

#[test]
fn tap_numbers_every_scenario_and_explains_failures() {
    let t = tap(&runs());
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "TAP version 13");
    assert_eq!(lines[1], "1..4");
    assert_eq!(lines[2], "ok 1 - switch-local");
    assert_eq!(lines[3], "not ok 2 - rc-whitelisted");
    assert_eq!(lines[4], "  ---");
    assert!(
        t.contains("    [fabric] sw1 (the switch's upstream link)"),
        "{t}"
    );
    assert!(t.contains("not ok 3 - rc-zen\n"), "{t}");
    assert!(t.contains("ok 4 - acs-redirect # SKIP not run\n"), "{t}");
    // Every YAML block is closed.
    assert_eq!(t.matches("  ---\n").count(), t.matches("  ...\n").count());
}

#[test]
fn junit_counts_and_escapes() {
    let x = junit("default", &runs(), "2026-12-03T12:00:00", "box");
    assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(
        x.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"50.000\""),
        "{x}"
    );
    assert!(
        x.contains("<testcase classname=\"p2pvm.default\" name=\"switch-local\" time=\"12.500\">")
    );
    assert!(
        x.contains("<failure message=\"sw1 (the switch&apos;s upstream link)"),
        "{x}"
    );
    assert!(
        x.contains("<error message=\"p2pvm run exited Some(1): timeout\""),
        "{x}"
    );
    assert!(x.contains("<skipped message=\"not run\"/>"), "{x}");
    // Markup in the evidence is escaped; control characters are dropped.
    assert!(x.contains("&lt;&amp;&gt;"), "{x}");
    assert!(!x.contains('\u{1}'));
    assert_eq!(
        x.matches("<testcase ").count(),
        x.matches("</testcase>").count()
    );
}

#[test]
fn the_matrix_has_one_row_per_scenario_and_a_total() {
    let m = matrix(&runs());
    let rows: Vec<&str> = m.lines().collect();
    assert!(rows[0].starts_with("scenario"));
    assert!(
        rows[1].starts_with("switch-local") && rows[1].contains(" PASS "),
        "{m}"
    );
    assert!(rows[2].contains(" FAIL "), "{m}");
    assert!(rows[3].contains(" ERROR "), "{m}");
    assert!(rows[4].contains(" SKIP "), "{m}");
    assert_eq!(
        rows[5],
        "4 scenarios: 1 passed, 1 failed, 1 errors, 1 skipped"
    );
}
