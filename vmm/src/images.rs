//! The default guest images, built on first use by the scripts in
//! `guest-images/` and cached under `~/.cache/p2pvm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The `guest-images/` directory: `$P2PVM_GUEST_IMAGES`, else the one in
/// the source tree this binary was built from.
pub fn images_dir() -> PathBuf {
    std::env::var_os("P2PVM_GUEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-images"))
}

/// Runs one of the `guest-images/` scripts, its progress on our stderr;
/// returns its exit status and its stdout's last non-empty line.
fn run(script: &str) -> Result<(std::process::ExitStatus, String)> {
    run_with(script, &[])
}

/// [`run`] with arguments.
fn run_with(script: &str, args: &[&std::ffi::OsStr]) -> Result<(std::process::ExitStatus, String)> {
    let path = images_dir().join(script);
    if !path.exists() {
        return Err(Error::Images(format!(
            "{} not found; set P2PVM_GUEST_IMAGES to the guest-images directory",
            path.display()
        )));
    }
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io(format!("running {}", path.display()), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().map(str::trim).find(|l| !l.is_empty());
    Ok((out.status, last.unwrap_or_default().to_string()))
}

/// Runs a build script and returns the path it prints on its last line.
fn run_script(script: &str) -> Result<PathBuf> {
    let (status, last) = run(script)?;
    if !status.success() {
        return Err(Error::Images(format!("{script} failed ({status})")));
    }
    if last.is_empty() {
        return Err(Error::Images(format!("{script} printed no path")));
    }
    Ok(PathBuf::from(last))
}

/// Makes sure the host has the Debian packages the images and the box are
/// built from (`deps.sh`). As root it installs what is missing, with apt's
/// progress on stderr. As another user it fails with the one line
/// `deps.sh` prints: the exact command to run.
pub fn host_packages() -> Result<()> {
    let (status, said) = run("deps.sh")?;
    if status.success() {
        return Ok(());
    }
    Err(Error::Images(if said.is_empty() {
        format!("deps.sh failed ({status})")
    } else {
        said
    }))
}

/// The default guest kernel, building it if needed: the ELF `vmlinux`,
/// which p2pvm loads straight into place. The `bzImage` beside it would
/// first decompress itself inside the guest.
pub fn default_kernel() -> Result<PathBuf> {
    let dir = run_script("build-kernel.sh")?;
    Ok(dir.join("vmlinux"))
}

/// Fails unless `src` looks like a kernel tree.
pub fn check_tree(src: &Path) -> Result<()> {
    if !src.join("Makefile").is_file() {
        return Err(Error::Usage(format!(
            "--kernel-src {}: not a kernel tree (no Makefile)",
            src.display()
        )));
    }
    Ok(())
}

/// A kernel built from the tree `src` with p2pvm's config fragment
/// (`build-kernel.sh --kernel-src`): its ELF `vmlinux`.
pub fn kernel_from_tree(src: &Path) -> Result<PathBuf> {
    check_tree(src)?;
    let (status, last) = run_with(
        "build-kernel.sh",
        &["--kernel-src".as_ref(), src.as_os_str()],
    )?;
    if !status.success() || last.is_empty() {
        return Err(Error::Images(format!(
            "building the kernel in {} failed ({status})",
            src.display()
        )));
    }
    Ok(PathBuf::from(last).join("vmlinux"))
}

/// The default initramfs, building it if needed.
pub fn default_initrd() -> Result<PathBuf> {
    run_script("build-initramfs.sh")
}
