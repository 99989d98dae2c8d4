//! The one error type of `rnic`.

/// Why an RNIC function could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Building its config space failed.
    #[error(transparent)]
    Core(#[from] pcie_core::Error),
    /// A link width other than x1, x2, x4, x8, x12, x16 or x32.
    #[error("invalid link width x{0} (must be x1, x2, x4, x8, x12, x16 or x32)")]
    LinkWidth(u8),
}
