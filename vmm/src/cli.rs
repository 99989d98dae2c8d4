//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// p2pvm: a VMM whose PCIe fabric routes peer-to-peer DMA like hardware.
#[derive(Debug, Parser)]
#[command(name = "p2pvm", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a guest.
    Run(RunArgs),
    /// Print the PCIe tree a topology gives the guest, like `lspci -tv`.
    Topology(TopologyArgs),
    /// Run a host program where p2pvm runs its VMs: directly on hardware
    /// KVM, or inside the KVM host box (for side-by-side benchmarks).
    HostRun(HostRunArgs),
    /// Prepare everything `run` needs on this host, with progress: the host
    /// packages, the guest kernel and initramfs, and the KVM host box when
    /// there is no hardware KVM. Prints the paths.
    Images(ImagesArgs),
    /// Run the P2PDMA validation suite on a kernel: boots it on a set of
    /// fabrics, checks what the kernel decided and what the fabric did,
    /// prints a matrix, writes JUnit/TAP, exits 1 on any failure.
    Test(TestArgs),
    /// Send one command to a running VM's control socket (`run
    /// --control`) and print the reply: `p2pvm ctl SOCK set-acs-fault
    /// port=sw1-dp1 'stuck_on=["RR"]'`. See docs/CONTROL.md.
    Ctl(CtlArgs),
    /// Print a running VM's fabric counters (through its control socket).
    Stats(StatsArgs),
}

/// `p2pvm ctl`.
#[derive(Debug, Clone, clap::Args)]
pub struct CtlArgs {
    /// The VM's control socket.
    pub socket: PathBuf,
    /// The command (`query-commands` lists them).
    pub command: String,
    /// Arguments as KEY=VALUE; a VALUE that is JSON is taken as JSON.
    pub args: Vec<String>,
}

/// `p2pvm stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// The VM's control socket.
    pub socket: PathBuf,
}

/// `p2pvm test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Guest kernel to test: ELF vmlinux or bzImage (default: p2pvm's).
    #[arg(long, conflicts_with = "kernel_src")]
    pub kernel: Option<PathBuf>,
    /// Build this kernel tree with p2pvm's config fragment (cached by
    /// hash, built incrementally in its own output directory) and test it.
    #[arg(long)]
    pub kernel_src: Option<PathBuf>,
    /// Which suite (see --list).
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// Only scenarios matching these globs (comma-separated, `*` and `?`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write TAP (version 13) here; `--tap` alone prints it on stdout
    /// (the matrix then goes to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    pub tap: Option<PathBuf>,
    /// Scenarios run side by side (each boots its own VM).
    #[arg(long, default_value_t = 1)]
    pub jobs: u8,
    /// Run every scenario even after one fails.
    #[arg(long)]
    pub keep_going: bool,
    /// List the suites and scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Keep every scenario's files here (topology, counters, backing
    /// files, output); by default a temporary directory, removed when all pass.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Where the VMs run.
    #[arg(long, value_enum, default_value_t = HostArg::Auto)]
    pub host: HostArg,
}

/// `p2pvm images`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImagesArgs {
    /// Where the VMs will run (decides whether the box is built).
    #[arg(long, value_enum, default_value_t = HostArg::Auto)]
    pub host: HostArg,
}

/// `p2pvm topology`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyArgs {
    /// Topology file (default: the embedded default topology).
    pub file: Option<PathBuf>,
    /// Guest memory (it places the 64-bit aperture).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub memory: u64,
    /// A `--counters` file of a run on this topology: its traffic goes
    /// into the picture.
    #[arg(long, requires = "svg")]
    pub counters: Option<PathBuf>,
    /// Draw the tree as SVG here: line width follows the bytes over each
    /// link, refused traffic is red.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `p2pvm host-run`.
#[derive(Debug, Clone, clap::Args)]
pub struct HostRunArgs {
    /// Where to run.
    #[arg(long, value_enum, default_value_t = HostArg::Auto)]
    pub host: HostArg,
    /// vCPUs of the box.
    #[arg(long, default_value_t = 2, value_parser = parse_cpus)]
    pub cpus: u8,
    /// RAM of the box, e.g. 2G.
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub memory: u64,
    /// The program and its arguments.
    #[arg(required = true, last = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Where the VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostArg {
    /// Hardware KVM when present, else the KVM host box.
    Auto,
    /// This machine's /dev/kvm.
    Kvm,
    /// The KVM host box (QEMU TCG with nested SVM).
    Box,
}

/// `p2pvm run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Guest kernel: ELF vmlinux or bzImage (default: the built guest kernel).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initramfs archive; repeat to concatenate (default: the built guest initramfs).
    #[arg(long)]
    pub initrd: Vec<PathBuf>,
    /// Archive appended after the initramfs in use; repeatable.
    #[arg(long = "extra-initrd")]
    pub extra_initrd: Vec<PathBuf>,
    /// Topology file (TOML; default: the embedded default topology).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Extra kernel command-line arguments, appended to p2pvm's own.
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Number of vCPUs (1-64).
    #[arg(long, default_value_t = 1, value_parser = parse_cpus)]
    pub cpus: u8,
    /// Guest memory, e.g. 512M or 2G.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub memory: u64,
    /// Run this command in the guest with /bin/sh -c, stream its output, exit with its status.
    #[arg(long)]
    pub exec: Option<String>,
    /// Where the VM runs.
    #[arg(long, value_enum, default_value_t = HostArg::Auto)]
    pub host: HostArg,
    /// Keep the fabric's per-link byte and TLP counters in this JSON file
    /// (rewritten during the run, final at exit).
    #[arg(long)]
    pub counters: Option<PathBuf>,
    /// Write one JSON line per routed request (requester, address, length,
    /// the links it crossed, outcome) to this file. Slower: mapped DMA and
    /// the route cache are off while tracing.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Serve the control socket (JSON lines, docs/CONTROL.md) here:
    /// counters, trace, ACS faults, RC policy, error injection at run time.
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Set by p2pvm itself inside the KVM host box: serve the control
    /// protocol on this serial port (the outer p2pvm relays the socket).
    #[arg(long, hide = true)]
    pub control_tty: Option<PathBuf>,
    /// Show the guest console on stderr (with --exec; it is always shown without).
    #[arg(long)]
    pub console: bool,
    /// Give up when the guest has not ended after this long (e.g. 300,
    /// 90s or 5m): p2pvm stops the VM, prints the last console lines and
    /// exits 1. For CI, where a hung kernel must fail, not stall.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Set by p2pvm itself for the copy that runs inside the KVM host box.
    #[arg(long, hide = true)]
    pub in_box: bool,
}

/// Parses `--cpus`: 1 to 64.
pub fn parse_cpus(s: &str) -> Result<u8, String> {
    let n: u8 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of vCPUs"))?;
    if !(1..=64).contains(&n) {
        return Err(format!("{n} vCPUs: must be between 1 and 64"));
    }
    Ok(n)
}

/// Parses a size such as `512M`, `2G`, `1048576` (bytes) or `64MiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Parses a duration: seconds (`300`, `90s`) or minutes (`5m`), not 0.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, mult) = match t.strip_suffix('m') {
        Some(n) => (n, 60),
        None => (t.strip_suffix('s').unwrap_or(t), 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (use e.g. 300, 90s or 5m)"))?;
    match n.checked_mul(mult) {
        Some(0) => Err(format!("'{s}': the timeout must be longer than 0")),
        Some(secs) => Ok(std::time::Duration::from_secs(secs)),
        None => Err(format!("'{s}' is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5T").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
    }

    #[test]
    fn cpus() {
        assert!(parse_cpus("0").is_err());
        assert_eq!(parse_cpus("2"), Ok(2));
        assert!(parse_cpus("65").is_err());
        assert!(parse_cpus("-1").is_err());
    }
}
