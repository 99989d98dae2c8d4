//! The KVM host box: where p2pvm runs when this machine's /dev/kvm cannot
//! run an unmodified Linux guest (PVM), or is missing.
//!
//! The box is `qemu-system-x86_64` in TCG mode with `-cpu max`, which
//! emulates AMD SVM with nested paging, booting Debian's stock 6.12 kernel
//! with kvm-amd loaded. Its /init (`guest-images/box-init`) mounts the host's
//! `/` over virtio-9p, chroots into it, gives it the box's own /proc, /sys
//! and /dev (so /dev/kvm is the box's real KVM), and runs one command in the
//! caller's current directory. The command's stdout comes back on our stdout
//! (box ttyS0), its stderr on our stderr (ttyS1), and its exit status through
//! a file in a per-run directory on the host. Everything it writes under `/`
//! lands in the host's own files.

mod image;
mod launch;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use crate::error::{Error, Result};

/// Builds the box's images if they are missing or stale; returns the
/// kernel it boots.
pub fn prepare() -> Result<PathBuf> {
    Ok(image::box_images()?.kernel)
}

/// Where the guest VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// On this machine's /dev/kvm (hardware virtualization).
    Kvm,
    /// Inside the KVM host box (see the module docs).
    Box,
}

/// What the user asked for (`--host auto|kvm|box`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HostChoice {
    /// Use /dev/kvm when it is hardware KVM, else the box.
    #[default]
    Auto,
    /// Use /dev/kvm whatever it is.
    Kvm,
    /// Use the box even where /dev/kvm would do.
    Box,
}

/// How the box is described in reasons and logs.
const BOX_DESC: &str = "the KVM host box (qemu TCG -cpu max + Debian 6.12 kvm-amd)";

/// Decide where to run; the String is a one-line human reason, e.g.
/// "host: /dev/kvm is PVM (/sys/module/kvm_pvm), running inside the KVM host
/// box (qemu TCG -cpu max + Debian 6.12 kvm-amd)" or "host: /dev/kvm is
/// hardware KVM (kvm_intel), running directly". `Kvm` forced on a PVM host is
/// allowed but the reason warns; `Kvm` forced without /dev/kvm is an error.
pub fn detect(choice: HostChoice) -> Result<(HostKind, String)> {
    detect_at(Path::new("/"), choice)
}

/// [`detect`] with `/dev/kvm` and `/sys/module` looked up under `root`.
fn detect_at(root: &Path, choice: HostChoice) -> Result<(HostKind, String)> {
    let has_kvm = root.join("dev/kvm").exists();
    let module = |name: &str| root.join("sys/module").join(name).exists();
    let pvm = module("kvm_pvm");
    let hw = ["kvm_intel", "kvm_amd"].into_iter().find(|m| module(m));
    let what = match (has_kvm, pvm, hw) {
        (false, _, _) => "there is no /dev/kvm".to_string(),
        (true, true, _) => "/dev/kvm is PVM (/sys/module/kvm_pvm)".to_string(),
        (true, false, Some(m)) => format!("/dev/kvm is hardware KVM ({m})"),
        (true, false, None) => {
            "/dev/kvm is neither hardware KVM (no kvm_intel or kvm_amd) nor PVM".to_string()
        }
    };
    Ok(match choice {
        HostChoice::Auto if has_kvm && !pvm && hw.is_some() => {
            (HostKind::Kvm, format!("host: {what}, running directly"))
        }
        HostChoice::Auto => (
            HostKind::Box,
            format!("host: {what}, running inside {BOX_DESC}"),
        ),
        HostChoice::Box => (
            HostKind::Box,
            format!("host: {what}; --host box: running inside {BOX_DESC}"),
        ),
        HostChoice::Kvm if !has_kvm => {
            return Err(Error::HostBox(format!(
                "--host kvm, but {what}; use --host box or auto"
            )))
        }
        HostChoice::Kvm if pvm || hw.is_none() => (
            HostKind::Kvm,
            format!(
                "host: {what}; --host kvm: running directly anyway \
                 (warning: an unmodified Linux guest will likely fail here)"
            ),
        ),
        HostChoice::Kvm => (HostKind::Kvm, format!("host: {what}, running directly")),
    })
}

/// RAM the box needs besides the inner guest's: the box kernel and its
/// modules take about 70 MiB; the rest is for the VMM process, KVM's own
/// tables and the 9p page cache. `BoxConfig::memory_mib` = guest RAM + this.
pub const BOX_MEMORY_HEADROOM_MIB: u64 = 256;

/// Below this the box kernel does not boot (QEMU just exits).
const BOX_MEMORY_MIN_MIB: u64 = 128;

/// The box's size and whether the command gets our terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxConfig {
    /// The box's vCPU count.
    pub cpus: u8,
    /// The box's own RAM in MiB: the inner guest's RAM plus
    /// [`BOX_MEMORY_HEADROOM_MIB`].
    pub memory_mib: u64,
    /// Forward our stdin (a terminal, put in raw mode by QEMU) to the
    /// command, whose stdin/stdout are then a normal terminal in the box that
    /// ^C reaches. Otherwise its stdin is /dev/null and its output raw.
    pub interactive: bool,
    /// Kill the box when it is still running after this long.
    pub deadline: Option<std::time::Duration>,
    /// Offer the box's fourth serial port ([`CONTROL_TTY`]) as a UNIX
    /// socket QEMU serves here (the control relay connects to it).
    pub control: Option<std::path::PathBuf>,
}

/// The serial port inside the box that carries the control protocol.
pub const CONTROL_TTY: &str = "/dev/ttyS3";

/// Runs `program args…` inside the box, chrooted into the host's own root file
/// system shared over 9p, in the same current directory, and returns its exit
/// status (128 + N when a signal N ended it).
///
/// The command gets only `RUST_LOG`, `RUST_BACKTRACE`, `HOME`, `PATH`, `TERM`
/// and `P2PVM_*` from our environment, plus `P2PVM_IN_HOST_BOX=1`. Builds the
/// box images first if they are not cached. When the box fails to report a
/// status, the error holds the end of its console log, kept in the run
/// directory it names; on success that directory is removed (kept when
/// `P2PVM_BOX_KEEP` is set).
pub fn run_in_box(program: &Path, args: &[OsString], cfg: &BoxConfig) -> Result<i32> {
    let t0 = (Instant::now(), SystemTime::now());
    if cfg.memory_mib < BOX_MEMORY_MIN_MIB {
        return Err(Error::HostBox(format!(
            "{} MiB is too little for the box; give it the guest's RAM + {BOX_MEMORY_HEADROOM_MIB} MiB",
            cfg.memory_mib
        )));
    }
    let qemu = find_in_path("qemu-system-x86_64").ok_or_else(|| {
        Error::HostBox(
            "qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)".into(),
        )
    })?;
    let images = image::box_images()?;
    let cwd = std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?;
    let run_dir = launch::make_run_dir()?;
    let result = write_run_script(&run_dir, &cwd, program, args, cfg.interactive)
        .and_then(|()| launch::qemu_args(&images, &run_dir, cfg))
        .and_then(|qemu_args| boot(&qemu, &qemu_args, &run_dir, cfg, t0));
    let keep = std::env::var_os("P2PVM_BOX_KEEP").is_some();
    if (result.is_ok() && !keep) || (result.is_err() && !run_dir.join("console.log").exists()) {
        let _ = std::fs::remove_dir_all(&run_dir);
    } else if keep {
        log::info!("host box: kept {}", run_dir.display());
    }
    result
}

/// Writes `run.sh` (see `launch::run_script`) into the run directory.
fn write_run_script(
    run_dir: &Path,
    cwd: &Path,
    program: &Path,
    args: &[OsString],
    interactive: bool,
) -> Result<()> {
    let winsize = interactive.then(launch::terminal_size).flatten();
    let env = launch::passed_env(std::env::vars_os());
    let script = launch::run_script(cwd, program, args, &env, winsize)?;
    let path = run_dir.join("run.sh");
    std::fs::write(&path, script).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Waits for `child`; past `deadline` kills it (the box then has no
/// status, and the caller reports its console).
fn wait_until(
    child: &mut std::process::Child,
    deadline: Option<Instant>,
) -> std::io::Result<std::process::ExitStatus> {
    let Some(deadline) = deadline else {
        return child.wait();
    };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            log::error!("host box: still running past its deadline; killing it");
            child.kill()?;
            return child.wait();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs QEMU to the end and returns the status box-init left in the run
/// directory.
fn boot(
    qemu: &Path,
    qemu_args: &[OsString],
    run_dir: &Path,
    cfg: &BoxConfig,
    t0: (Instant, SystemTime),
) -> Result<i32> {
    log::info!(
        "host box: booting ({} vCPUs, {} MiB)",
        cfg.cpus,
        cfg.memory_mib
    );
    log::debug!(
        "host box: {}",
        launch::display_command(
            std::iter::once(qemu.as_os_str()).chain(qemu_args.iter().map(|a| a.as_os_str()))
        )
    );

    // QEMU's stderr is a pipe that we copy to ours: the command's stderr
    // (ttyS1) reaches it through /proc/self/fd/2, which for a pipe is the same
    // pipe, so nothing reopens our own stderr at another offset.
    let mut child = Command::new(qemu)
        .args(qemu_args)
        .stdin(if cfg.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", qemu.display()), e))?;
    let relay = child
        .stderr
        .take()
        .map(|from| std::thread::spawn(move || relay(from, std::io::stderr())));
    let qemu_status = wait_until(&mut child, cfg.deadline.map(|d| t0.0 + d))
        .map_err(|e| Error::io(format!("waiting for {}", qemu.display()), e));
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    let qemu_status = qemu_status?;

    let started = std::fs::metadata(run_dir.join("started"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(t0.1).ok());
    let total = t0.0.elapsed();
    match started {
        Some(s) => log::debug!(
            "host box: the command started {:.1}s after run_in_box began; {:.1}s in all",
            s.as_secs_f64(),
            total.as_secs_f64()
        ),
        None => log::debug!("host box: {:.1}s in all", total.as_secs_f64()),
    }

    let status_path = run_dir.join("status");
    match std::fs::read_to_string(&status_path) {
        Ok(text) => text.trim().parse::<i32>().map_err(|_| {
            Error::HostBox(format!(
                "{} holds '{}', not a number",
                status_path.display(),
                text.trim()
            ))
        }),
        Err(_) => {
            let console = run_dir.join("console.log");
            Err(Error::HostBox(format!(
                "the box stopped without an exit status (qemu: {qemu_status}); \
                 the last lines of {}:\n{}",
                console.display(),
                last_lines(&console, 15)
            )))
        }
    }
}

/// Copies `from` to `to` until EOF. Write errors (our stderr closed) do not
/// stop the reading, so QEMU never blocks on a full pipe.
fn relay(mut from: impl Read, mut to: impl Write) {
    let mut buf = [0u8; 8192];
    let mut ok = true;
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => ok = ok && to.write_all(&buf[..n]).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The last `n` lines of a (log) file, or why there are none.
fn last_lines(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => {
            "(empty: the box kernel never started; see QEMU's messages above)".to_string()
        }
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}

/// The first executable `name` in `$PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root with the given files and /sys/module entries.
    fn fake_root(name: &str, dev_kvm: bool, modules: &[&str]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("p2pvm-hostbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(root.join("sys/module/kvm")).unwrap();
        if dev_kvm {
            std::fs::write(root.join("dev/kvm"), b"").unwrap();
        }
        for m in modules {
            std::fs::create_dir_all(root.join("sys/module").join(m)).unwrap();
        }
        root
    }

    fn check(root: &Path, choice: HostChoice, kind: HostKind, needles: &[&str]) {
        let (got, reason) = detect_at(root, choice).unwrap();
        assert_eq!(got, kind, "{reason}");
        assert!(
            reason.starts_with("host: ") && !reason.contains('\n'),
            "{reason}"
        );
        for n in needles {
            assert!(reason.contains(n), "'{n}' not in '{reason}'");
        }
    }

    #[test]
    fn pvm_goes_to_the_box() {
        let root = fake_root("pvm", true, &["kvm_pvm"]);
        check(&root, HostChoice::Auto, HostKind::Box, &[
            "/dev/kvm is PVM (/sys/module/kvm_pvm), running inside the KVM host box (qemu TCG -cpu max + Debian 6.12 kvm-amd)",
        ]);
        check(&root, HostChoice::Kvm, HostKind::Kvm, &["PVM", "warning"]);
        check(&root, HostChoice::Box, HostKind::Box, &["--host box"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn hardware_kvm_runs_directly() {
        for m in ["kvm_intel", "kvm_amd"] {
            let root = fake_root(m, true, &[m]);
            check(
                &root,
                HostChoice::Auto,
                HostKind::Kvm,
                &[&format!("/dev/kvm is hardware KVM ({m}), running directly")],
            );
            check(&root, HostChoice::Kvm, HostKind::Kvm, &["running directly"]);
            check(
                &root,
                HostChoice::Box,
                HostKind::Box,
                &["--host box", "KVM host box"],
            );
            std::fs::remove_dir_all(root).unwrap();
        }
    }

    #[test]
    fn pvm_wins_over_hardware_modules() {
        let root = fake_root("both", true, &["kvm_pvm", "kvm_intel"]);
        check(&root, HostChoice::Auto, HostKind::Box, &["PVM"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_dev_kvm() {
        // Modules loaded but no device node (e.g. a container): box.
        let root = fake_root("nokvm", false, &["kvm_amd"]);
        check(
            &root,
            HostChoice::Auto,
            HostKind::Box,
            &["there is no /dev/kvm", "KVM host box"],
        );
        assert!(matches!(
            detect_at(&root, HostChoice::Kvm),
            Err(Error::HostBox(_))
        ));
        check(&root, HostChoice::Box, HostKind::Box, &[]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unknown_kvm_goes_to_the_box() {
        let root = fake_root("unknown", true, &[]);
        check(
            &root,
            HostChoice::Auto,
            HostKind::Box,
            &["neither hardware KVM", "KVM host box"],
        );
        check(&root, HostChoice::Kvm, HostKind::Kvm, &["warning"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn last_lines_of_a_log() {
        let p = std::env::temp_dir().join(format!("p2pvm-hostbox-log-{}", std::process::id()));
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(last_lines(&p, 2), "c\nd");
        assert_eq!(last_lines(&p, 10), "a\nb\nc\nd");
        std::fs::write(&p, "").unwrap();
        assert!(last_lines(&p, 2).starts_with("(empty"));
        std::fs::remove_file(&p).unwrap();
        assert!(last_lines(&p, 2).starts_with("(cannot read it"));
    }

    #[test]
    fn relay_copies_and_survives_a_dead_writer() {
        struct Dead;
        impl Write for Dead {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let data = vec![7u8; 100_000];
        let mut out = Vec::new();
        relay(&data[..], &mut out);
        assert_eq!(out, data);
        let mut src = &data[..];
        relay(&mut src, Dead);
        assert!(src.is_empty(), "everything was read");
    }

    #[test]
    fn finds_sh_in_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-p2pvm").is_none());
    }

    /// Boots the real box (tens of seconds under TCG):
    /// `cargo test -p p2pvm hostbox -- --ignored --nocapture`.
    #[test]
    #[ignore = "boots qemu; slow"]
    fn boots_and_runs_a_command() {
        let marker = std::env::temp_dir().join(format!("p2pvm-box-wrote-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let script = format!(
            "test -c /dev/kvm && grep -q svm /proc/cpuinfo && echo to-stdout && \
             echo to-stderr >&2 && echo hi > {} && exit 3",
            marker.display()
        );
        let cfg = BoxConfig {
            control: None,
            cpus: 2,
            memory_mib: 512,
            interactive: false,
            deadline: Some(std::time::Duration::from_secs(300)),
        };
        let tiny = BoxConfig {
            control: None,
            memory_mib: 64,
            ..cfg.clone()
        };
        assert!(run_in_box(Path::new("/bin/true"), &[], &tiny).is_err());
        let st = run_in_box(Path::new("/bin/sh"), &["-c".into(), script.into()], &cfg).unwrap();
        assert_eq!(st, 3);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hi\n");
        std::fs::remove_file(&marker).unwrap();
    }
}
