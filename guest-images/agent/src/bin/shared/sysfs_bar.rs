//! What the guest tools share: sysfs paths, errors, and a BAR mapped
//! through sysfs `resourceN` (what the guest CPU sees of it). Included by
//! each tool with `#[path]`; the tools add their own accessors.

use std::fs::OpenOptions;
use std::io::{Error, Result};
use std::os::unix::io::AsRawFd;

/// An error with a message.
pub fn fail(msg: impl Into<String>) -> Error {
    Error::other(msg.into())
}

/// `/sys/bus/pci/devices/0000:BDF/FILE`.
pub fn sysfs(bdf: &str, file: &str) -> String {
    format!("/sys/bus/pci/devices/0000:{bdf}/{file}")
}

/// A shared mapping of a whole BAR, unmapped on drop.
pub struct Bar {
    /// Where this process sees the BAR's first byte.
    pub ptr: *mut u8,
    /// The BAR's size.
    pub len: usize,
}

impl Bar {
    /// Maps BAR `bar` of `bdf` whole.
    pub fn map(bdf: &str, bar: u8) -> Result<Bar> {
        let path = sysfs(bdf, &format!("resource{bar}"));
        let f = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = f.metadata()?.len() as usize;
        // SAFETY: a fresh shared mapping of the whole resource file.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(fail(format!("mmap {path}: {}", Error::last_os_error())));
        }
        Ok(Bar { ptr: p.cast(), len })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
