//! The crate's one error type (building a controller or a namespace).

/// What can go wrong building a controller or its namespaces. Errors a
/// guest causes are NVMe statuses ([`crate::Status`]), never this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace backing file could not be opened, created or sized.
    #[error("namespace backing file {path}: {source}")]
    Backing {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Anonymous memory (a RAM namespace, the CMB) could not be mapped.
    #[error("cannot map {0} bytes of memory")]
    OutOfMemory(u64),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Building the config space failed.
    #[error("config space: {0}")]
    ConfigSpace(#[from] pcie_core::Error),
}
