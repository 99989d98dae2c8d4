//! The one error type of `pcie-switch`.

/// Everything that can go wrong while building bridges and ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Building the function's config space failed.
    #[error(transparent)]
    Core(#[from] pcie_core::Error),
}
