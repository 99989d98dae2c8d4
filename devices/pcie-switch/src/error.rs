//! The one error type of `pcie-switch`.

/// Everything that can go wrong while building bridges and ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Building the function's config space failed.
    #[error(transparent)]
    Core(#[from] pcie_core::Error),
    /// A link width other than x1, x2, x4, x8, x12, x16 or x32.
    #[error("invalid link width x{0} (must be x1, x2, x4, x8, x12, x16 or x32)")]
    InvalidLinkWidth(u8),
    /// A switch upstream port was given a slot; only root and downstream ports have one.
    #[error("a switch upstream port cannot implement a slot")]
    SlotOnUpstreamPort,
    /// A link change asked of a switch upstream port, which has no link below.
    #[error("a switch upstream port has no link below it")]
    NoLinkBelow,
    /// Hot-plug asked for on a port without a slot.
    #[error("a hot-plug capable port needs a slot")]
    HotPlugWithoutSlot,
    /// A physical slot number that does not fit in Slot Capabilities' 13 bits.
    #[error("physical slot number {0} does not fit in 13 bits (max 8191)")]
    SlotNumberOutOfRange(u16),
    /// A switch upstream port was given an ACS capability; only root and
    /// downstream ports have one.
    #[error("a switch upstream port cannot have an ACS capability")]
    AcsOnUpstreamPort,
    /// An initial ACS control bit whose feature is not implemented.
    #[error("ACS control {control:#06x} enables features the capability {capability:#06x} does not implement")]
    AcsControlNotImplemented {
        /// The rejected control value.
        control: u16,
        /// The implemented features.
        capability: u16,
    },
    /// A stuck ACS control bit whose feature is not implemented.
    #[error(
        "ACS stuck bits {stuck:#06x} are not all implemented by the capability {capability:#06x}"
    )]
    AcsStuckNotImplemented {
        /// The rejected stuck bits.
        stuck: u16,
        /// The implemented features.
        capability: u16,
    },
    /// An ACS fault injected into a port without an ACS capability.
    #[error("an ACS fault needs a port with an ACS capability")]
    AcsFaultWithoutAcs,
    /// An egress control vector size outside 1..=256 while Egress Control is implemented.
    #[error("ACS egress control vector size {0} out of range (1..=256 with Egress Control)")]
    AcsEgressVectorSize(u16),
    /// An egress control vector size or vector without Egress Control implemented.
    #[error("ACS egress control vector given (size {size}, vector {vector:#x}) but Egress Control is not implemented")]
    AcsEgressWithoutEc {
        /// The configured vector size.
        size: u16,
        /// The configured initial vector.
        vector: u32,
    },
    /// Initial egress control vector bits at or beyond the vector size.
    #[error("ACS egress control vector {vector:#x} has bits beyond its size of {size}")]
    AcsEgressVectorTooWide {
        /// The configured initial vector.
        vector: u32,
        /// The configured vector size in bits.
        size: u16,
    },
}
