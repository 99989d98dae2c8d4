//! Injected misbehaviour: what a broken platform or a buggy IOMMU driver
//! would leave the unit doing. Each is documented in docs/CONTROL.md with
//! what Linux is expected to do.

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Injection {
    /// Translations for `rid` (every requester when `None`) fault as if
    /// their second-level entry were not present (reason 5 for writes, 6
    /// for reads); with `peer_only`, only those whose page lies outside
    /// guest RAM (in a peer's BAR).
    DropMappings {
        /// The requester, or all.
        rid: Option<u16>,
        /// Only mappings into a peer's BAR.
        peer_only: bool,
    },
    /// Translations for `rid` (every requester when `None`) that the
    /// tables send to an odd 4 KiB page land on the even page before it
    /// (a corrupted mapping: two IOVA pages alias one); with `peer_only`,
    /// only those into a peer's BAR.
    PoisonMappings {
        /// The requester, or all.
        rid: Option<u16>,
        /// Only mappings into a peer's BAR.
        peer_only: bool,
    },
    /// `rid`'s context entry reads as not present (reason 2).
    ContextNotPresent {
        /// The requester.
        rid: u16,
    },
    /// `rid`'s context is used as pass-through (`true`: the IOVA goes out
    /// as a physical address) or as translated (`false`: its table is
    /// walked even when TT says pass-through).
    ForceType {
        /// The requester.
        rid: u16,
        /// Pass-through instead of translation.
        pass_through: bool,
    },
    /// `rid`'s context entry reads with domain ID `domain`, so its IOTLB
    /// entries live under another domain than the one Linux invalidates.
    WrongDomain {
        /// The requester.
        rid: u16,
        /// The domain ID it is given.
        domain: u16,
    },
    /// Context-cache and IOTLB invalidations complete but drop nothing
    /// (a stale IOTLB).
    IgnoreInvalidations,
    /// The fault event is never sent: FECTL reads IM clear, but the unit
    /// behaves as if it were set.
    MaskFaultEvent,
    /// The next `count` invalidation descriptors are refused (IQE).
    FailDescriptors {
        /// How many.
        count: u64,
    },
    /// The fault records are full: every new fault overflows (PFO).
    OverflowRecords,
}
