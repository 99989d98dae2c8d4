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
    /// Everything on stderr.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
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

/// Boots the default guest with `extra` options and runs `cmd` in it.
pub fn guest(extra: &[&str], cmd: &str) -> Run {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--exec", cmd]);
    let r = p2pvm(&args);
    eprintln!(
        "p2pvm {args:?} -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        r.code, r.stdout, r.stderr
    );
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
