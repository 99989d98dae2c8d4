//! The one check every guest run's kernel log goes through.
//!
//! A kernel that printed a WARNING, an Oops, a BUG, a call trace, a
//! "Firmware Bug" or a user-space segfault did not boot cleanly on p2pvm's
//! platform, whatever the test itself checked. The KVM tests and
//! `p2pvm test` run every guest's `dmesg` through [`problems`].

/// The markers that make a kernel log fail, as Linux prints them.
pub const MARKERS: &[&str] = &[
    "WARNING:",
    "Call Trace",
    "BUG:",
    "Oops",
    "Firmware Bug",
    "segfault",
];

/// The lines of `log` that carry one of [`MARKERS`], in order.
pub fn problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| MARKERS.iter().any(|m| l.contains(m)))
        .collect()
}

/// `Ok` for a clean log; otherwise a report naming every offending line.
pub fn check(log: &str) -> Result<(), String> {
    let bad = problems(log);
    if bad.is_empty() {
        return Ok(());
    }
    let mut report = format!("the guest kernel log has {} problem line(s):\n", bad.len());
    for l in bad {
        report.push_str("  ");
        report.push_str(l);
        report.push('\n');
    }
    Err(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_boot_log_passes() {
        let log = "[    0.000000] Linux version 6.12.57-p2pvm\n\
                   [    0.120000] pci 0000:00:00.0: [8086:2020] type 00 class 0x060000\n\
                   [    0.300000] Run /init as init process\n";
        assert_eq!(problems(log), Vec::<&str>::new());
        assert!(check(log).is_ok());
    }

    #[test]
    fn each_marker_fails_and_is_named() {
        let lines = [
            "[    0.01] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:605 fpu__init_system_xstate+0x1/0x2",
            "[    0.02] Call Trace:",
            "[    0.03] BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "[    0.04] Oops: 0002 [#1] SMP",
            "[    0.05] [Firmware Bug]: TSC_DEADLINE disabled due to Errata",
            "[    0.06] fio[77]: segfault at 0 ip 0 sp 0 error 4",
        ];
        for l in lines {
            let log = format!("[    0.00] fine\n{l}\n[    0.07] fine too\n");
            assert_eq!(problems(&log), vec![l]);
            let report = check(&log).unwrap_err();
            assert!(report.contains(l), "{report}");
        }
        let all = lines.join("\n");
        assert_eq!(problems(&all).len(), lines.len());
    }
}
