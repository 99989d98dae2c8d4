//! The box's kernel and initramfs, built by `guest-images/build-box.sh` and
//! cached under `${P2PVM_CACHE:-~/.cache/p2pvm}/box/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The files QEMU boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoxImages {
    /// The unpacked vmlinux (PVH entry) when there is one, else the bzImage.
    pub kernel: PathBuf,
    /// The gzip newc initramfs holding busybox, the modules and box-init.
    pub initrd: PathBuf,
}

/// `${P2PVM_CACHE:-$HOME/.cache/p2pvm}`, as the build scripts compute it.
fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("P2PVM_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/p2pvm")
}

/// The images in a build directory, if both are there.
fn images_in(dir: &Path) -> Option<BoxImages> {
    let initrd = dir.join("initrd.gz");
    let kernel = ["vmlinux", "vmlinuz"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())?;
    initrd.is_file().then_some(BoxImages { kernel, initrd })
}

/// True when the cached build was made from the `build-box.sh` and `box-init`
/// in `sources` (the build keeps copies of both). This avoids asking apt for
/// the package version, which takes seconds, on every run.
fn is_current(build: &Path, sources: &Path) -> bool {
    ["build-box.sh", "box-init"].iter().all(|name| {
        match (
            std::fs::read(build.join(name)),
            std::fs::read(sources.join(name)),
        ) {
            (Ok(cached), Ok(source)) => cached == source,
            // No sources (an installed binary): trust the cache.
            (Ok(_), Err(_)) => true,
            _ => false,
        }
    })
}

/// Returns the box images, running `build-box.sh` first when the cache is
/// missing or was built from other versions of the script or box-init.
pub(crate) fn box_images() -> Result<BoxImages> {
    let sources = crate::images::images_dir();
    let current = cache_root().join("box/current");
    if let Some(images) = images_in(&current).filter(|_| is_current(&current, &sources)) {
        log::debug!("host box: cached images in {}", current.display());
        return Ok(images);
    }
    let script = sources.join("build-box.sh");
    if !script.is_file() {
        return Err(Error::HostBox(format!(
            "no box images in {} and no {} to build them; set P2PVM_GUEST_IMAGES to the \
             guest-images directory",
            current.display(),
            script.display()
        )));
    }
    log::info!(
        "host box: building the box images with {}",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io(format!("running {}", script.display()), e))?;
    if !out.status.success() {
        return Err(Error::HostBox(format!(
            "{} failed ({})",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    images_in(&dir).ok_or_else(|| {
        Error::HostBox(format!(
            "{} printed '{}', which holds no vmlinux/vmlinuz + initrd.gz",
            script.display(),
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("p2pvm-hostbox-image-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn prefers_vmlinux_and_needs_initrd() {
        let dir = scratch("pick");
        assert_eq!(images_in(&dir), None);
        std::fs::write(dir.join("vmlinuz"), b"bz").unwrap();
        assert_eq!(images_in(&dir), None, "no initrd yet");
        std::fs::write(dir.join("initrd.gz"), b"gz").unwrap();
        assert_eq!(images_in(&dir).unwrap().kernel, dir.join("vmlinuz"));
        std::fs::write(dir.join("vmlinux"), b"elf").unwrap();
        assert_eq!(images_in(&dir).unwrap().kernel, dir.join("vmlinux"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_when_sources_differ() {
        let build = scratch("build");
        let src = scratch("src");
        for dir in [&build, &src] {
            std::fs::write(dir.join("build-box.sh"), b"script v1").unwrap();
            std::fs::write(dir.join("box-init"), b"init v1").unwrap();
        }
        assert!(is_current(&build, &src));
        std::fs::write(src.join("box-init"), b"init v2").unwrap();
        assert!(!is_current(&build, &src));
        // Without sources the cache is all there is.
        assert!(is_current(&build, &src.join("missing")));
        std::fs::remove_file(build.join("box-init")).unwrap();
        assert!(!is_current(&build, &src));
        std::fs::remove_dir_all(&build).unwrap();
        std::fs::remove_dir_all(&src).unwrap();
    }
}
