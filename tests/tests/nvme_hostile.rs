//! NVMe hostile-host tier: `p2pvm-nvme-raw` takes each controller of the
//! default topology from Linux's `nvme` driver, drives it register by
//! register the way no driver should (doorbells of queues that do not
//! exist or beyond a queue's size, PRPs into nothing or with bad offsets,
//! queues of size 0 or above CAP.MQES, a completion queue too small for
//! what is submitted) and checks every answer against NVMe Base 1.4. Then
//! it resets the controller and gives it back to the driver, and Linux's
//! I/O on it must work as before: a hostile guest breaks neither the
//! controller nor the VMM.

mod common;

use common::{guest, section};

/// Shell: `dev SERIAL` prints `/dev/nvmeN` of the controller with that
/// serial, `bdf SERIAL` its PCI address (as in `nvme.rs`); `ns SERIAL`
/// waits up to 30 s for its namespace's block device (the driver scans
/// namespaces after it binds) and prints it.
const DEV: &str = r#"dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/} && return; done; echo none; }
bdf() { c=$(dev "$1"); basename "$(readlink -f /sys/class/nvme/${c##*/}/device)"; }
ns() { i=0; while [ $i -lt 300 ]; do n=$(dev "$1")n1; [ -b "$n" ] && echo $n && return; sleep 0.1; i=$((i+1)); done; echo none; }
"#;

/// The scenarios run on nvme1 (no CMB), in this order; nvme0 (CMB) runs
/// `bad-prp`.
const SCENARIOS: [&str; 4] = ["bad-doorbell", "bad-prp", "zero-queue", "cq-overrun"];

/// The checks each scenario must print as `ok NAME:` (all of its checks
/// print; these are the ones the scenario exists for).
fn must_pass(scenario: &str) -> &'static [&'static str] {
    match scenario {
        "bad-doorbell" => &[
            "aer-held",
            "invalid-doorbell-register",
            "next-command-works",
            "error-log-read",
            "invalid-doorbell-value",
            "bogus-tail-ignored",
            "masked-until-log-read",
            "still-masked-after-rae",
            "unmasked-by-log-read",
            "no-reset-needed",
            "cq-doorbell-no-queue",
        ],
        "bad-prp" => &[
            "unmapped-prp1",
            "prp1-not-dword-aligned",
            "prp2-offset",
            "prp-list-entry-offset",
            "error-log-names-it",
            "good-identify",
            "identify-vid",
            "identify-ssvid",
        ],
        "zero-queue" => &[
            "cq-qsize-0",
            "cq-qsize-above-mqes",
            "sq-on-missing-cq",
            "cq-qsize-mqes",
            "sq-qsize-0",
            "sq-qsize-above-mqes",
            "cq-valid",
            "sq-valid",
            "cq-qid-in-use",
            "sq-qid-beyond-granted",
            "flush-on-new-queue",
            "delete-cq-in-use",
        ],
        "cq-overrun" => &[
            "one-entry-visible",
            "one-at-a-time-0",
            "one-at-a-time-1",
            "one-at-a-time-2",
            "one-at-a-time-3",
            "each-cid-once",
            "cq-head-beyond-size",
            "flush-after-bad-head",
            "flush-after-head-past-tail",
        ],
        _ => unreachable!("{scenario}"),
    }
}

/// Checks that fail today because of controller bugs, with what is wrong:
/// their `FAIL` lines are printed and tolerated (the tool then exits 1).
/// A check listed here that passes fails the test: delete its entry.
const KNOWN_BUGS: &[(&str, &str)] = &[];

/// The check a `FAIL NAME: ...` or `ok NAME: ...` line is about.
fn check_name(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("FAIL ")
        .or_else(|| line.strip_prefix("ok "))?;
    rest.split(':').next()
}

/// Checks one run of the tool: no FAIL line but known bugs', every check
/// in `must_pass` and the rebind reported ok, and its exit status.
fn check_run(out: &str, name: &str, scenario: &str) {
    let text = section(out, name);
    let known = |l: &str| check_name(l).is_some_and(|c| KNOWN_BUGS.iter().any(|(k, _)| *k == c));
    let (known_fails, fails): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .partition(|l| known(l));
    assert!(fails.is_empty(), "{name}: {fails:#?}\n{text}");
    for l in &known_fails {
        let why = KNOWN_BUGS.iter().find(|(k, _)| Some(*k) == check_name(l));
        eprintln!("{name}: known controller bug: {l}\n  ({})", why.unwrap().1);
    }
    let fixed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ok ") && known(l))
        .collect();
    assert!(
        fixed.is_empty(),
        "{name}: fixed, delete from KNOWN_BUGS: {fixed:#?}"
    );
    for check in must_pass(scenario).iter().chain(&["enabled", "rebound"]) {
        let ok = format!("ok {check}:");
        assert!(
            text.lines().any(|l| l.starts_with(&ok)),
            "{name}: no `{ok}` in\n{text}"
        );
    }
    let exit = if known_fails.is_empty() {
        "exit 0"
    } else {
        "exit 1"
    };
    assert!(
        text.trim_end().ends_with(exit),
        "{name}: want {exit}:\n{text}"
    );
}

/// Shell: Linux's own I/O on controller `serial` after the tool gave it
/// back: 16 direct 4 KiB reads, then 64 KiB of random data written at
/// 1 MiB and read back equal.
fn io_check(serial: &str) -> String {
    format!(
        "n=$(ns {serial}); echo \"{serial} $n $(cat /sys/class/nvme/$(basename $(dev {serial}))/state)\"
dd if=$n of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null && echo '{serial} read ok'
dd if=/dev/urandom of=/tmp/pat bs=4k count=16 2>/dev/null
dd if=/tmp/pat of=$n bs=4k seek=256 oflag=direct 2>/dev/null && \
dd if=$n bs=4k skip=256 count=16 iflag=direct 2>/dev/null | cmp - /tmp/pat && echo '{serial} same'
"
    )
}

#[test]
fn a_hostile_host_gets_spec_answers_and_the_driver_takes_the_controllers_back() {
    let mut script = format!(
        "{DEV}b0=$(bdf P2PVM-NVME0); b1=$(bdf P2PVM-NVME1)\necho '=== bdfs ==='; echo \"$b0 $b1\"\n"
    );
    for s in SCENARIOS {
        script += &format!("echo '=== nvme1 {s} ==='; p2pvm-nvme-raw {s} $b1; echo \"exit $?\"\n");
    }
    script += "echo '=== nvme0 bad-prp ==='; p2pvm-nvme-raw bad-prp $b0; echo \"exit $?\"\n";
    script += "echo '=== io ==='\n";
    script += &io_check("P2PVM-NVME1");
    script += &io_check("P2PVM-NVME0");
    let r = guest(&[], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // nvme1 is the controller without a CMB, nvme0 the one with it.
    let bdfs = section(&r.stdout, "bdfs");
    assert_eq!(bdfs.trim(), "0000:03:00.0 0000:04:00.0", "{bdfs}");
    for s in SCENARIOS {
        check_run(&r.stdout, &format!("nvme1 {s}"), s);
    }
    check_run(&r.stdout, "nvme0 bad-prp", "bad-prp");
    // The driver has both back, live, and Linux's I/O works on them.
    let io = section(&r.stdout, "io");
    for serial in ["P2PVM-NVME1", "P2PVM-NVME0"] {
        assert!(
            io.lines()
                .any(|l| l.starts_with(serial) && l.ends_with(" live")),
            "{io}"
        );
        for want in ["read ok", "same"] {
            assert!(io.contains(&format!("{serial} {want}")), "{want}: {io}");
        }
    }
}
