//! The one error type of `vtd`.

/// What can go wrong setting up a remapping unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The register page's base is not 4 KiB aligned.
    #[error("the VT-d register base {0:#x} is not 4 KiB aligned")]
    Unaligned(u64),
}
