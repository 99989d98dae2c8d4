//! `p2pvm run`: validate the request, pick the host, and boot the guest.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::cli::{HostArg, HostRunArgs, ImagesArgs, RunArgs, TopologyArgs};
use crate::console::RawTerminal;
use crate::devices::VmExit;
use crate::error::{Error, Result};
use crate::fabric::{self, NoRam, VmFabric};
use crate::hostbox::{self, BoxConfig, HostChoice, HostKind};
use crate::layout::ram_regions;
use crate::layout::MIN_MEMORY;
use crate::topology::Topology;
use crate::vm::{self, VmConfig};
use crate::{boot, images, initrd};

/// Largest guest RAM we accept.
const MAX_MEMORY: u64 = 256 << 30;
/// How much longer than `--timeout` the KVM host box may take: its own
/// boot and power-off.
const BOX_GRACE: std::time::Duration = std::time::Duration::from_secs(90);
/// Console lines shown when the guest fails.
const TAIL_LINES: usize = 40;

/// p2pvm's own kernel arguments; the user's `--cmdline` follows them.
pub fn base_cmdline(exec: bool) -> String {
    // pci=lastbus=0: the host bridge's _CRS already gives Linux the bus
    // range; without it, x86's legacy peer-bridge probe reads vendor IDs on
    // all 256 ECAM buses (8192 config exits, about 2 s in the host box).
    let mut c = String::from("console=ttyS0 reboot=k panic=-1 pci=lastbus=0");
    if exec {
        // The console is only kept for error reports; printing costs exits.
        c.push_str(" quiet");
    }
    c
}

/// `--host` as the host box module takes it.
pub(crate) fn host_choice(h: HostArg) -> HostChoice {
    match h {
        HostArg::Auto => HostChoice::Auto,
        HostArg::Kvm => HostChoice::Kvm,
        HostArg::Box => HostChoice::Box,
    }
}

/// Runs `p2pvm host-run` and returns the program's exit status.
pub fn host_run(args: HostRunArgs) -> Result<i32> {
    let (kind, reason) = hostbox::detect(host_choice(args.host))?;
    log::info!("{reason}");
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::Usage("host-run needs a program to run".into()))?;
    match kind {
        HostKind::Kvm => {
            let status = std::process::Command::new(program)
                .args(rest)
                .status()
                .map_err(|e| Error::io(format!("running {}", program.to_string_lossy()), e))?;
            Ok(status.code().unwrap_or(128))
        }
        HostKind::Box => {
            let program = resolve_program(std::path::Path::new(program))?;
            let cfg = BoxConfig {
                control: None,
                cpus: args.cpus,
                memory_mib: args.memory >> 20,
                interactive: false,
                deadline: None,
            };
            hostbox::run_in_box(&program, rest, &cfg)
        }
    }
}

/// Runs `p2pvm images`: everything `run` builds on first use, built now.
pub fn images(args: ImagesArgs) -> Result<i32> {
    let (kind, reason) = hostbox::detect(host_choice(args.host))?;
    images::host_packages()?;
    log::info!("{reason}");
    println!("kernel: {}", images::default_kernel()?.display());
    println!("initramfs: {}", images::default_initrd()?.display());
    if kind == HostKind::Box {
        println!("box: {}", hostbox::prepare()?.display());
    }
    Ok(0)
}

/// The box runs programs by path: look bare names up in PATH.
fn resolve_program(p: &std::path::Path) -> Result<PathBuf> {
    if p.components().count() > 1 {
        return Ok(p.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .ok_or_else(|| Error::Usage(format!("{} not found in PATH", p.display())))
}

/// Runs `p2pvm run` and returns the process exit status.
pub fn run(args: RunArgs) -> Result<i32> {
    if args.memory < MIN_MEMORY {
        return Err(Error::Usage(format!(
            "--memory {} MiB is too small: the guest needs at least {} MiB",
            args.memory >> 20,
            MIN_MEMORY >> 20
        )));
    }
    if args.memory > MAX_MEMORY {
        return Err(Error::Usage(format!(
            "--memory {} GiB is more than the {} GiB p2pvm supports",
            args.memory >> 30,
            MAX_MEMORY >> 30
        )));
    }
    let topology = Topology::load(args.topology.as_deref())?;
    // Building the fabric validates the topology before anything slow runs
    // (the p2pvm outside the box has done it for the one inside).
    if !args.in_box {
        dry_build(&topology, args.memory)?;
    }
    if let Some(k) = &args.kernel {
        boot::kernel_format(k)?;
    }
    for p in args.initrd.iter().chain(&args.extra_initrd) {
        initrd::check(p)?;
    }

    let (kind, reason) = hostbox::detect(host_choice(args.host))?;
    // The default images and the box are built from host packages. The
    // p2pvm inside the box is handed everything it needs. Checked first, so
    // that a user who lacks them sees one line: what to run.
    let builds = args.kernel.is_none() || args.initrd.is_empty() || kind == HostKind::Box;
    if builds && !args.in_box {
        images::host_packages()?;
    }
    if args.in_box {
        log::debug!("{reason}");
    } else {
        log::info!("{reason}");
    }
    let kernel = match &args.kernel {
        Some(k) => k.clone(),
        None => images::default_kernel()?,
    };
    let initrds = if args.initrd.is_empty() {
        vec![images::default_initrd()?]
    } else {
        args.initrd.clone()
    };

    match kind {
        HostKind::Box => {
            let exe = std::env::current_exe().map_err(|e| Error::io("locating p2pvm", e))?;
            let inner = inner_args(&args, &kernel, &initrds);
            // One box vCPU whatever the guest has: the box's KVM runs the
            // guest's vCPU threads on it. A multi-vCPU TCG box was seen to
            // panic (apic_has_pending_timer) and to soft-lock in its own
            // kvm module; the benchmarks use one box vCPU for the same reason.
            let control = match &args.control {
                Some(path) => {
                    let up = std::env::temp_dir()
                        .join(format!("p2pvm-control-{}.sock", std::process::id()));
                    let _ = std::fs::remove_file(&up);
                    crate::control::relay(path, up.clone())?;
                    Some(up)
                }
                None => None,
            };
            let cfg = BoxConfig {
                control: control.clone(),
                cpus: 1,
                memory_mib: ((args.memory + crate::topology::device_memory(&topology)) >> 20)
                    + hostbox::BOX_MEMORY_HEADROOM_MIB,
                interactive: args.exec.is_none(),
                // The VM inside keeps its own deadline; this one catches a
                // box that hangs itself (its boot takes well under a minute).
                deadline: args.timeout.map(|t| t + BOX_GRACE),
            };
            let r = hostbox::run_in_box(&exe, &inner, &cfg);
            for p in control.iter().chain(&args.control) {
                let _ = std::fs::remove_file(p);
            }
            r
        }
        HostKind::Kvm => {
            let r = run_kvm(&args, topology, kernel, &initrds);
            if let Some(p) = &args.control {
                let _ = std::fs::remove_file(p);
            }
            r
        }
    }
}

/// The arguments for the p2pvm that runs inside the box, on its real KVM.
fn inner_args(
    args: &RunArgs,
    kernel: &std::path::Path,
    initrds: &[PathBuf],
) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["run".into(), "--kernel".into(), kernel.into()];
    for i in initrds {
        v.extend(["--initrd".into(), i.into()]);
    }
    for i in &args.extra_initrd {
        v.extend(["--extra-initrd".into(), i.into()]);
    }
    if let Some(t) = &args.topology {
        v.extend(["--topology".into(), t.into()]);
    }
    if let Some(c) = &args.counters {
        v.extend(["--counters".into(), c.into()]);
    }
    if let Some(t) = &args.trace {
        v.extend(["--trace".into(), t.into()]);
    }
    if args.control.is_some() {
        // The outer p2pvm serves the socket and relays to this port.
        v.extend(["--control-tty".into(), hostbox::CONTROL_TTY.into()]);
    }
    if let Some(c) = &args.cmdline {
        v.extend(["--cmdline".into(), c.into()]);
    }
    v.extend([
        "--cpus".into(),
        args.cpus.to_string().into(),
        "--memory".into(),
        args.memory.to_string().into(),
        "--host".into(),
        "kvm".into(),
        "--in-box".into(),
    ]);
    if let Some(e) = &args.exec {
        v.extend(["--exec".into(), e.into()]);
    }
    if args.console {
        v.push("--console".into());
    }
    if let Some(t) = args.timeout {
        v.extend(["--timeout".into(), t.as_secs().to_string().into()]);
    }
    v
}

/// Builds and enumerates the fabric without a VM (no RAM behind it).
pub(crate) fn dry_build(topology: &Topology, memory: u64) -> Result<VmFabric> {
    fabric::build(topology, memory, ram_regions(memory), Arc::new(NoRam))
}

/// `p2pvm topology`: prints the tree and BDFs the guest will see.
pub fn topology(args: TopologyArgs) -> Result<i32> {
    let topology = Topology::load(args.file.as_deref())?;
    let built = dry_build(&topology, args.memory)?;
    let roots = built.roots();
    let Some(svg) = &args.svg else {
        print!("{}", crate::topology::render(&built.fabric, &roots));
        return Ok(0);
    };
    let counters = match &args.counters {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                    Error::Usage(format!("{}: not a --counters file: {e}", p.display()))
                })?,
            )
        }
    };
    let title = match (&args.file, &args.counters) {
        (f, Some(c)) => format!(
            "{} with {}",
            f.as_ref()
                .map_or("default topology".into(), |f| f.display().to_string()),
            c.display()
        ),
        (f, None) => f
            .as_ref()
            .map_or("default topology".into(), |f| f.display().to_string()),
    };
    let picture = crate::topology::svg::render(&built.fabric, &roots, counters.as_ref(), &title);
    std::fs::write(svg, picture).map_err(|e| Error::io(format!("writing {}", svg.display()), e))?;
    Ok(0)
}

fn run_kvm(
    args: &RunArgs,
    topology: Topology,
    kernel: PathBuf,
    initrds: &[PathBuf],
) -> Result<i32> {
    let mut extra = Vec::new();
    if let Some(cmd) = &args.exec {
        extra.push(initrd::exec_archive(cmd));
    }
    let mut archives = initrds.to_vec();
    archives.extend(args.extra_initrd.iter().cloned());
    let initrd = initrd::Initrd::new(&archives, extra)?;
    let mut cmdline = base_cmdline(args.exec.is_some());
    if let Some(c) = &args.cmdline {
        cmdline.push(' ');
        cmdline.push_str(c);
    }
    let interactive = args.exec.is_none();
    let console_echo: Option<Arc<Mutex<dyn Write + Send>>> = if interactive {
        Some(Arc::new(Mutex::new(std::io::stdout())))
    } else if args.console {
        Some(Arc::new(Mutex::new(std::io::stderr())))
    } else {
        None
    };
    let _raw = interactive.then(RawTerminal::enter);
    let outcome = vm::run(VmConfig {
        cpus: args.cpus,
        memory: args.memory,
        kernel,
        initrd,
        cmdline,
        topology,
        counters: args.counters.clone(),
        trace: args.trace.clone(),
        control: args.control.clone(),
        control_tty: args.control_tty.clone(),
        interactive,
        console_echo,
        timeout: args.timeout,
    })?;
    let tail = || outcome.console.last_lines(TAIL_LINES);
    match (&outcome.exit, args.exec.is_some(), outcome.agent.status) {
        (VmExit::Error(m), _, _) => Err(Error::Guest(format!(
            "{m}\n--- last console lines ---\n{}",
            tail()
        ))),
        (_, true, Some(status)) => Ok(status),
        (exit, true, None) => {
            let why = if outcome.agent.errors.is_empty() {
                String::new()
            } else {
                format!(" (agent: {})", outcome.agent.errors.join("; "))
            };
            Err(Error::Guest(format!(
                "the guest ended ({exit:?}) before the command reported its status{why}\n--- last console lines ---\n{}",
                tail()
            )))
        }
        (VmExit::Reboot, false, _) => {
            log::info!("guest rebooted; p2pvm stops");
            Ok(0)
        }
        (_, false, _) => Ok(0),
    }
}
