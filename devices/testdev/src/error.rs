//! The one error type of `p2pvm-testdev`.

/// Why a test endpoint could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Building its config space failed.
    #[error(transparent)]
    Core(#[from] pcie_core::Error),
    /// BAR 2 must be a power of two of at least 4 KiB (so that it can be
    /// mapped into the guest page by page).
    #[error("BAR 2 size {0:#x} is not a power of two of at least 4 KiB")]
    Bar2Size(u64),
    /// The host could not allocate BAR 2's memory.
    #[error("cannot allocate {0:#x} bytes for BAR 2")]
    OutOfMemory(u64),
    /// A link width other than x1, x2, x4, x8, x12, x16 or x32.
    #[error("invalid link width x{0} (must be x1, x2, x4, x8, x12, x16 or x32)")]
    LinkWidth(u8),
}
