//! `p2pvm test`: boot a kernel on a set of fabrics, run P2PDMA scenarios
//! in the guest, and judge each by what the kernel decided and what the
//! fabric did ([`scenario`], [`check`]). Prints progress and a matrix,
//! writes JUnit and TAP, exits non-zero on any failure.
//!
//! Each scenario is one `p2pvm run` of this binary (which goes into the
//! KVM host box by itself where there is no hardware KVM), so `--jobs N`
//! boots N of them side by side.

pub mod check;
pub mod exec;
pub mod report;
pub mod scenario;

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cli::TestArgs;
use crate::error::{Error, Result};
use crate::hostbox::{self, HostKind};
use crate::images;
use exec::{Outcome, Plan, ScenarioRun};
use scenario::Scenario;

/// The guest's deadline in each scenario.
const GUEST_TIMEOUT: Duration = Duration::from_secs(150);

/// The scenarios `--suite` and `--filter` select, in order.
pub fn select(suite: &str, filter: Option<&str>) -> Result<Vec<Scenario>> {
    let Some((_, _, names)) = scenario::SUITES.iter().find(|(n, _, _)| *n == suite) else {
        let known: Vec<&str> = scenario::SUITES.iter().map(|(n, _, _)| *n).collect();
        return Err(Error::Usage(format!(
            "no suite '{suite}' (there are: {})",
            known.join(", ")
        )));
    };
    let picked: Vec<Scenario> = scenario::all()
        .into_iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .filter(|s| filter.is_none_or(|f| scenario::matches(f, s.name)))
        .collect();
    if picked.is_empty() {
        return Err(Error::Usage(format!(
            "--filter '{}' matches no scenario of suite '{suite}' (see 'p2pvm test --list')",
            filter.unwrap_or_default()
        )));
    }
    Ok(picked)
}

/// `[cpu]` for "not Zen" on this host: none unless VMs would run on an
/// AMD Zen (family 0x17 or later) CPU here, which then reports K10.
fn not_zen(kind: HostKind) -> Option<String> {
    if kind == HostKind::Box {
        // The box's CPU is QEMU TCG's AMD family 0xF.
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let v = std::arch::x86_64::__cpuid(0);
        let sig = std::arch::x86_64::__cpuid(1).eax;
        let amd = (v.ebx, v.edx, v.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
        let (family, _, _) = crate::cpuid::decode_signature(sig);
        if amd && family >= 0x17 {
            return Some("family = 0x10\nmodel = 0x02".into());
        }
    }
    None
}

/// Runs `p2pvm test`; returns the exit status.
pub fn run(args: TestArgs) -> Result<i32> {
    if args.list {
        for (name, what, list) in scenario::SUITES {
            println!(
                "suite {name}: {what}{}",
                if list.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", list.join(", "))
                }
            );
        }
        for s in scenario::all() {
            println!(
                "  {:<22} {}\n  {:<22}   kernel: {}; fabric: {}",
                s.name,
                s.title,
                "",
                report::kernel_want(s.kernel),
                report::fabric_want(s.fabric)
            );
        }
        return Ok(0);
    }
    let scenarios = select(&args.suite, args.filter.as_deref())?;
    if args.jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    if let Some(k) = &args.kernel {
        crate::boot::kernel_format(k)?;
    }
    if let Some(src) = &args.kernel_src {
        images::check_tree(src)?;
    }
    let (kind, reason) = hostbox::detect(crate::run::host_choice(args.host))?;
    images::host_packages()?;
    log::info!("{reason}");
    let kernel = match (&args.kernel, &args.kernel_src) {
        (Some(k), _) => k.clone(),
        (None, Some(src)) => images::kernel_from_tree(src)?,
        (None, None) => images::default_kernel()?,
    };
    let initrd = images::default_initrd()?;
    if kind == HostKind::Box {
        hostbox::prepare()?;
    }
    let (dir, keep) = match &args.workdir {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!("p2pvm-test-{}", std::process::id())),
            false,
        ),
    };
    let plan = Plan {
        exe: std::env::current_exe().map_err(|e| Error::io("locating p2pvm", e))?,
        kernel,
        initrd,
        host: if kind == HostKind::Box { "box" } else { "kvm" },
        not_zen: not_zen(kind),
        dir: dir.clone(),
        timeout: GUEST_TIMEOUT,
    };
    log::info!(
        "p2pvm test: suite {} ({} scenarios, {} at a time), kernel {}",
        args.suite,
        scenarios.len(),
        args.jobs,
        plan.kernel.display()
    );
    let start = Instant::now();
    let runs = run_all(&plan, &scenarios, usize::from(args.jobs), args.keep_going);
    let total = start.elapsed().as_secs_f64();

    // A skipped scenario did not pass either.
    let failed = runs.iter().any(|r| !r.passed());
    let tap_to_stdout = args.tap.as_deref() == Some(std::path::Path::new("-"));
    let mut human = String::new();
    for r in runs.iter().filter(|r| !r.passed()) {
        let why = report::explain(r);
        if !why.is_empty() && !matches!(r.outcome, Outcome::Skipped(_)) {
            human += &format!("--- {} ({}) ---\n{why}", r.scenario.name, r.scenario.title);
        }
    }
    human += &report::matrix(&runs);
    human += &format!("suite {} took {total:.1}s\n", args.suite);
    if tap_to_stdout {
        eprint!("{human}");
        print!("{}", report::tap(&runs));
    } else {
        print!("{human}");
    }
    if let Some(p) = args.tap.as_ref().filter(|_| !tap_to_stdout) {
        write_file(p, &report::tap(&runs))?;
    }
    if let Some(p) = &args.junit {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string();
        write_file(p, &report::junit(&args.suite, &runs, &timestamp(), &host))?;
    }
    if !failed && !keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("p2pvm test: scenario files are in {}", dir.display());
    }
    Ok(if failed { 1 } else { 0 })
}

fn write_file(p: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(p, text).map_err(|e| Error::io(format!("writing {}", p.display()), e))
}

/// Now as `YYYY-MM-DDTHH:MM:SS` (UTC), for JUnit.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Runs `scenarios` on `jobs` threads, with progress on stderr. Without
/// `keep_going` the first failure stops what has not started.
fn run_all(plan: &Plan, scenarios: &[Scenario], jobs: usize, keep_going: bool) -> Vec<ScenarioRun> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..scenarios.len()).collect());
    let results: Mutex<Vec<Option<ScenarioRun>>> = Mutex::new(vec![None; scenarios.len()]);
    let running: Mutex<Vec<(usize, Instant)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let tty = std::io::stderr().is_terminal();
    let n = scenarios.len();
    std::thread::scope(|scope| {
        let (running, done) = (&running, &done);
        // Progress: which scenarios run, and for how long.
        scope.spawn(move || {
            let mut tick = 0u64;
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(500));
                tick += 1;
                let now: Vec<String> = running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|(i, t)| {
                        format!("{} {:.0}s", scenarios[*i].name, t.elapsed().as_secs_f64())
                    })
                    .collect();
                if now.is_empty() {
                    continue;
                }
                if tty {
                    eprint!("\r\x1b[Krunning: {}", now.join(", "));
                    let _ = std::io::stderr().flush();
                } else if tick.is_multiple_of(30) {
                    eprintln!("running: {}", now.join(", "));
                }
            }
            if tty {
                eprint!("\r\x1b[K");
            }
        });
        let workers: Vec<_> = (0..jobs.min(n))
            .map(|_| {
                scope.spawn(|| loop {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Some(i) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
                    else {
                        return;
                    };
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, Instant::now()));
                    let r = exec::run(plan, &scenarios[i]);
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retain(|(k, _)| *k != i);
                    let status = report::status(&r);
                    let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                    let finished = res.iter().filter(|x| x.is_some()).count() + 1;
                    if tty {
                        eprint!("\r\x1b[K");
                    }
                    eprintln!(
                        "[{finished}/{n}] {status} {} ({:.1}s)",
                        r.scenario.name, r.secs
                    );
                    if !r.passed() && !keep_going {
                        stop.store(true, Ordering::Release);
                    }
                    res[i] = Some(r);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        done.store(true, Ordering::Release);
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(scenarios)
        .map(|(r, s)| {
            r.unwrap_or_else(|| ScenarioRun {
                scenario: s.clone(),
                outcome: Outcome::Skipped(
                    "not run: an earlier scenario failed (use --keep-going to run all)".into(),
                ),
                secs: 0.0,
                evidence: String::new(),
                dir: plan.dir.join(s.name),
            })
        })
        .collect()
}
