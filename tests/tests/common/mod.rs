//! Helpers for the end-to-end tests: run the real `p2pvm` command and
//! capture what it and the guest report. Each test binary uses a part.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `p2pvm` command under test (`$P2PVM_BIN`, else this package's
/// `p2pvm-e2e`, which is the same entry point as vmm's `p2pvm`).
pub fn p2pvm_bin() -> PathBuf {
    std::env::var_os("P2PVM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_p2pvm-e2e")))
}

/// What one run of `p2pvm` produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr (for [`guest`]: the command's stderr only).
    pub stderr: String,
    /// For [`guest`]: the guest's `dmesg` after the command, if it got
    /// that far.
    pub dmesg: Option<String>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            dmesg: None,
        }
    }
}

/// Runs `p2pvm` with `args`, stdin closed, and waits for it.
pub fn p2pvm(args: &[&str]) -> Run {
    Command::new(p2pvm_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn p2pvm")
        .into()
}

/// `--timeout` of every [`guest`] run.
pub const GUEST_TIMEOUT: &str = "150";

/// Marks where the guest's kernel log starts on stderr.
const DMESG_MARKER: &str = "\n=== p2pvm-test dmesg ===\n";

/// Boots the default guest with `extra` options and runs `cmd` in it
/// (in a subshell, so `exit` in it ends only the command). Afterwards the
/// guest's `dmesg` goes through the shared check ([`p2pvm::dmesg`]): a run
/// whose kernel log has a WARNING, call trace, BUG, Oops, Firmware Bug or
/// segfault fails here, whatever the test checks next. A command that
/// reported its status must have left its kernel log.
pub fn guest(extra: &[&str], cmd: &str) -> Run {
    let wrapped = format!(
        "(\n{cmd}\n)\nrc=$?\nprintf '{}' >&2\ndmesg >&2\nexit $rc\n",
        DMESG_MARKER.replace('\n', "\\n")
    );
    // A hung guest fails in minutes with its console, not at nextest's
    // deadline with nothing (boots take 10 to 40 s).
    let mut args = vec!["run", "--timeout", GUEST_TIMEOUT];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--exec", &wrapped]);
    let mut r = p2pvm(&args);
    if let Some(at) = r.stderr.find(DMESG_MARKER) {
        r.dmesg = Some(r.stderr[at + DMESG_MARKER.len()..].to_string());
        r.stderr.truncate(at);
    }
    eprintln!(
        "p2pvm run {extra:?} --exec {cmd:?} -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        r.code, r.stdout, r.stderr
    );
    match &r.dmesg {
        Some(log) => {
            if let Err(report) = p2pvm::dmesg::check(log) {
                panic!("{report}--- dmesg ---\n{log}");
            }
        }
        // Without a log the script never finished: the guest died or reset.
        None => assert_ne!(r.code, 0, "the command succeeded but left no dmesg"),
    }
    r
}

/// The text between `=== name ===` and the next marker (or the end).
pub fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("=== {name} ===\n");
    let start = out
        .find(&marker)
        .unwrap_or_else(|| panic!("no section {name} in:\n{out}"))
        + marker.len();
    let rest = &out[start..];
    let end = rest.find("\n=== ").map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

/// Number field `field` of node `name` in a `--counters` file.
pub fn counter(json: &str, name: &str, field: &str) -> u64 {
    let line = json
        .lines()
        .find(|l| l.contains(&format!("\"name\": \"{name}\",")))
        .unwrap_or_else(|| panic!("no node {name} in\n{json}"));
    let at = line.find(&format!("\"{field}\": ")).expect(field) + field.len() + 4;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `(up_bytes, down_bytes)` of `name`'s link in a `--counters` file.
pub fn link_bytes(json: &str, name: &str) -> (u64, u64) {
    (
        counter(json, name, "up_bytes"),
        counter(json, name, "down_bytes"),
    )
}

/// Fails unless `file` validates against the JUnit schema CI systems read
/// (`tests/fixtures/junit.xsd`, with xmllint).
pub fn valid_junit(file: &std::path::Path) {
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/junit.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
        .arg(file)
        .output()
        .expect("xmllint (libxml2-utils, installed by guest-images/deps.sh)");
    assert!(
        out.status.success(),
        "{} does not validate:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `prove` on a TAP file: it must parse, and pass or fail as `pass`.
pub fn prove(file: &std::path::Path, pass: bool) {
    let out = Command::new("prove")
        .args(["-e", "cat"])
        .arg(file)
        .output()
        .expect("prove (perl)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.success(), pass, "prove:\n{text}");
    assert!(!text.contains("Parse errors"), "{text}");
}

/// Renders an SVG to PNG (rsvg-convert) and counts its red pixels.
pub fn red_pixels(svg: &std::path::Path) -> usize {
    let png_path = svg.with_extension("png");
    let st = Command::new("rsvg-convert")
        .arg(svg)
        .arg("-o")
        .arg(&png_path)
        .status()
        .expect("rsvg-convert (librsvg2-bin, installed by guest-images/deps.sh)");
    assert!(st.success(), "rsvg-convert {}", svg.display());
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    assert!(px >= 3, "{:?}", info.color_type);
    buf[..info.buffer_size()]
        .chunks(px)
        .filter(|p| p[0] > 180 && p[1] < 90 && p[2] < 90)
        .count()
}
