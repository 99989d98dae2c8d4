//! The vmm crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the VMM, with a message fit for one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line option is wrong.
    #[error("{0}")]
    Usage(String),
    /// The topology file cannot be used.
    #[error("topology {path}: {msg}")]
    Topology {
        /// The file (or `<default>`).
        path: String,
        /// What is wrong, naming the line and field where possible.
        msg: String,
    },
    /// The kernel image cannot be read or loaded.
    #[error("kernel {path}: {msg}")]
    Kernel {
        /// The kernel file.
        path: PathBuf,
        /// Why it cannot be used.
        msg: String,
    },
    /// An initramfs archive cannot be read or placed.
    #[error("initramfs {path}: {msg}")]
    Initrd {
        /// The archive.
        path: PathBuf,
        /// Why it cannot be used.
        msg: String,
    },
    /// A KVM ioctl failed.
    #[error("kvm: {what}: {source}")]
    Kvm {
        /// What we were doing.
        what: &'static str,
        /// The errno KVM returned.
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be set up or accessed.
    #[error("guest memory: {0}")]
    Memory(String),
    /// ACPI tables could not be built or written.
    #[error("acpi: {0}")]
    Acpi(String),
    /// Building the guest images failed.
    #[error("guest images: {0}")]
    Images(String),
    /// The KVM host box failed.
    #[error("host box: {0}")]
    HostBox(String),
    /// The fabric refused a device or a placement.
    #[error("fabric: {0}")]
    Fabric(String),
    /// The guest failed or ended without doing what was asked.
    #[error("guest: {0}")]
    Guest(String),
    /// Host I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl From<pcie_core::Error> for Error {
    fn from(e: pcie_core::Error) -> Self {
        Error::Fabric(e.to_string())
    }
}

/// Result alias for the vmm crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Wraps a KVM error with what was being done.
    pub fn kvm(what: &'static str, source: kvm_ioctls::Error) -> Self {
        Error::Kvm { what, source }
    }
}
