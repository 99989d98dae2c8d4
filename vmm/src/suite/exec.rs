//! Running one scenario: its files, one `p2pvm run` of it, and the
//! judgement.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::check::{self, Judgement, Observed};
use super::scenario::{CpuChoice, Scenario, NAMESPACE_SIZE, PAYLOAD};
use crate::error::{Error, Result};

/// What every scenario run shares.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `p2pvm` binary.
    pub exe: PathBuf,
    /// Guest kernel.
    pub kernel: PathBuf,
    /// Guest initramfs.
    pub initrd: PathBuf,
    /// `--host` for the runs.
    pub host: &'static str,
    /// The `[cpu]` table for "not Zen" (None: the host's is not Zen).
    pub not_zen: Option<String>,
    /// Where each scenario's files go (`<dir>/<name>/`).
    pub dir: PathBuf,
    /// The guest's deadline.
    pub timeout: Duration,
}

/// How a scenario ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It ran; the judgement says whether it passed.
    Judged(Judgement),
    /// It could not be run or the guest did not finish (an error, not a
    /// failed expectation).
    Error(String),
    /// Not run.
    Skipped(String),
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// The scenario.
    pub scenario: Scenario,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time.
    pub secs: f64,
    /// Lines that explain a failure: the guest's P2P-related dmesg lines
    /// and the counters of every link.
    pub evidence: String,
    /// Where its files are.
    pub dir: PathBuf,
}

impl ScenarioRun {
    /// Passed.
    pub fn passed(&self) -> bool {
        matches!(&self.outcome, Outcome::Judged(j) if j.passed())
    }
}

/// The host's payload: deterministic bytes from the scenario's name (an
/// xorshift stream), different for every scenario.
pub fn pattern(name: &str) -> Vec<u8> {
    let mut x: u64 = name.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let mut v = Vec::with_capacity(PAYLOAD as usize);
    while v.len() < PAYLOAD as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn write_image(path: &Path, head: &[u8]) -> Result<()> {
    let f = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    use std::io::Write;
    (&f).write_all(head)
        .and_then(|()| f.set_len(NAMESPACE_SIZE))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Lines of `dmesg` that explain P2P decisions.
fn p2p_lines(dmesg: &str) -> Vec<&str> {
    const KEYS: &[&str] = &[
        "peer-to-peer",
        "p2pmem",
        "ACS",
        "whitelist",
        "sct 0x",
        "target error",
        "nvme",
        "AER",
        "DMAR",
    ];
    dmesg
        .lines()
        .filter(|l| KEYS.iter().any(|k| l.contains(k)))
        .collect()
}

fn evidence(out: &str, counters: Option<&serde_json::Value>, stderr: &str) -> String {
    let mut e = String::new();
    if let Some(d) = check::section(out, "dmesg") {
        let lines = p2p_lines(d);
        e += "guest dmesg (P2P, ACS, NVMe lines):\n";
        for l in lines.iter().rev().take(40).rev() {
            e += &format!("  {l}\n");
        }
    }
    if let Some(c) = check::section(out, "copy") {
        e += "copy:\n";
        for l in c.lines() {
            e += &format!("  {l}\n");
        }
    }
    match counters {
        Some(c) => {
            e += "fabric counters (payload bytes up / down the link above each node):\n";
            for l in c["links"].as_array().into_iter().flatten() {
                e += &format!(
                    "  {:<10} {:>12} up {:>12} down\n",
                    l["name"].as_str().unwrap_or("?"),
                    check::human(l["up_bytes"].as_u64().unwrap_or(0)),
                    check::human(l["down_bytes"].as_u64().unwrap_or(0)),
                );
            }
            e += &format!("  refused: {}\n", c["refused"]);
        }
        None => e += "no fabric counters\n",
    }
    if check::section(out, "dmesg").is_none() {
        e += "p2pvm's stderr (last lines):\n";
        let lines: Vec<&str> = stderr.lines().collect();
        for l in &lines[lines.len().saturating_sub(30)..] {
            e += &format!("  {l}\n");
        }
    }
    e
}

/// Runs `cmd` to its end and returns its exit code, stdout and stderr.
/// Each time the guest prints `P2PVM-CTL <step>` for the next of `steps`
/// (`COMMAND KEY=VALUE...`), the step is sent to the control socket
/// `sock`; the reply (or why there is none) is added to stderr. Lines for
/// any other step are ignored: the guest cannot make the host do what the
/// scenario did not plan.
fn drive(
    mut cmd: Command,
    sock: &Path,
    steps: &[String],
) -> std::io::Result<(Option<i32>, String, String)> {
    use std::io::{BufRead, Read};
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut err_pipe = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let mut stdout = Vec::new();
    let mut replies = String::new();
    let mut next = steps.iter().peekable();
    let mut r = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut line = Vec::new();
    while r.read_until(b'\n', &mut line)? > 0 {
        let text = String::from_utf8_lossy(&line);
        let asked = text.trim().strip_prefix("P2PVM-CTL ").map(str::to_owned);
        stdout.append(&mut line);
        let Some(step) = asked.filter(|a| next.peek().is_some_and(|s| *s == a)) else {
            continue;
        };
        next.next();
        let words: Vec<String> = step.split_whitespace().map(String::from).collect();
        let reply = crate::control::parse_args(&words[1..])
            .and_then(|args| crate::control::request(sock, &words[0], args));
        replies += &match reply {
            Ok(v) => format!("p2pvm test: {step}: {v}\n"),
            Err(e) => format!("p2pvm test: {step}: error: {e}\n"),
        };
    }
    let status = child.wait()?;
    let mut stderr = String::from_utf8_lossy(&errs.join().unwrap_or_default()).into_owned();
    stderr += &replies;
    Ok((
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    ))
}

/// Runs scenario `s` and judges it.
pub fn run(plan: &Plan, s: &Scenario) -> ScenarioRun {
    let start = Instant::now();
    let dir = plan.dir.join(s.name);
    let (outcome, evidence) = match attempt(plan, s, &dir) {
        Ok(x) => x,
        Err(e) => (Outcome::Error(e.to_string()), String::new()),
    };
    ScenarioRun {
        scenario: s.clone(),
        outcome,
        secs: start.elapsed().as_secs_f64(),
        evidence,
        dir,
    }
}

fn attempt(plan: &Plan, s: &Scenario, dir: &Path) -> Result<(Outcome, String)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let pat = pattern(s.name);
    for n in ["nvme1", "nvme2"] {
        write_image(&dir.join(format!("{n}.img")), &pat)?;
    }
    let cpu = match s.setup.cpu {
        CpuChoice::Zen => {
            Some("vendor = \"AuthenticAMD\"\nfamily = 0x17\nmodel = 0x31".to_string())
        }
        CpuChoice::NotZen => plan.not_zen.clone(),
    };
    let topo_text = s.topology(dir, cpu.as_deref());
    let topo_path = dir.join("topology.toml");
    std::fs::write(&topo_path, &topo_text)
        .map_err(|e| Error::io(format!("writing {}", topo_path.display()), e))?;
    // BDFs as firmware enumeration assigns them (Linux keeps them).
    let topo = crate::topology::Topology::parse(&topo_text, &topo_path.display().to_string())?;
    let built = crate::run::dry_build(&topo, 512 << 20)?;
    let bdf = |name: &str| {
        built
            .nodes
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, id)| built.fabric.bdf(*id))
            .map(|b| format!("0000:{b}"))
            .unwrap_or_else(|| format!("<no node {name}>"))
    };
    let counters = dir.join("counters.json");
    let _ = std::fs::remove_file(&counters);
    let mut cmd = Command::new(&plan.exe);
    cmd.arg("run")
        .args(["--host", plan.host])
        .arg("--kernel")
        .arg(&plan.kernel)
        .arg("--initrd")
        .arg(&plan.initrd)
        .arg("--topology")
        .arg(&topo_path)
        .arg("--counters")
        .arg(&counters)
        .args(["--timeout", &plan.timeout.as_secs().to_string()]);
    let cmdline = check::resolve(s.cmdline, &bdf);
    if !cmdline.is_empty() {
        cmd.args(["--cmdline", &cmdline]);
    }
    // A socket path short enough for sun_path, whatever the workdir.
    let steps = s.host_steps();
    let sock = std::env::temp_dir().join(format!("p2pvm-{}-{}.sock", std::process::id(), s.name));
    if !steps.is_empty() {
        let _ = std::fs::remove_file(&sock);
        cmd.arg("--control").arg(&sock);
    }
    cmd.args(["--exec", &s.script()])
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    let out = drive(cmd, &sock, &steps)
        .map_err(|e| Error::io(format!("running {}", plan.exe.display()), e));
    let _ = std::fs::remove_file(&sock);
    let (code, stdout, stderr) = out?;
    let _ = std::fs::write(
        dir.join("output.txt"),
        format!("{stdout}\n--- stderr ---\n{stderr}"),
    );
    let doc: Option<serde_json::Value> = std::fs::read_to_string(&counters)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let ev = evidence(&stdout, doc.as_ref(), &stderr);
    if check::section(&stdout, "dmesg").is_none() {
        let last = stderr
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .unwrap_or("the guest did not finish");
        return Ok((
            Outcome::Error(format!("p2pvm run exited {code:?}: {last}")),
            ev,
        ));
    }
    // The picture of what crossed each link, for the report's reader.
    let roots = built.roots();
    let svg = crate::topology::svg::render(
        &built.fabric,
        &roots,
        doc.as_ref(),
        &format!("p2pvm test: {}", s.name),
    );
    let _ = std::fs::write(dir.join("fabric.svg"), svg);
    let image = std::fs::read(dir.join(format!("{}.img", s.setup.client.name()))).ok();
    let j = check::judge(
        s,
        &Observed {
            out: &stdout,
            counters: doc.as_ref(),
            image: image.as_deref(),
            pattern: &pat,
            bdf: &bdf,
        },
    );
    Ok((Outcome::Judged(j), ev))
}
