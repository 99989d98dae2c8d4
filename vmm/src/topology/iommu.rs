//! `[iommu]` and its injected faults: what the topology file and the
//! control socket's `iommu-fault` both turn into [`vtd::Injection`]s.

use serde::Deserialize;

/// `[iommu]`: the remapping hardware at the root complex.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IommuConfig {
    /// Which IOMMU.
    pub kind: IommuKind,
    /// Faults armed from power-on (`[[iommu.fault]]`).
    #[serde(default)]
    pub fault: Vec<IommuFault>,
}

/// Kinds of IOMMU.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IommuKind {
    /// Intel VT-d in legacy mode, described by an ACPI DMAR table.
    VtD,
}

/// What an injected IOMMU fault does (see [`vtd::Injection`]).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IommuFaultKind {
    /// The device's mappings fault as not present.
    DropMappings,
    /// The device's mappings land one page off.
    PoisonMappings,
    /// The device's context entry reads as not present.
    ContextNotPresent,
    /// The device's context is used as pass-through.
    PassThrough,
    /// The device's context is walked even when it says pass-through.
    Translate,
    /// The device's context reads with another domain ID.
    WrongDomain,
    /// Invalidations drop nothing.
    IgnoreInvalidations,
    /// The fault event is never sent.
    MaskFaultEvent,
    /// The next `count` invalidation descriptors are refused.
    FailDescriptors,
    /// Every fault overflows the records.
    OverflowRecords,
}

/// One `[[iommu.fault]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IommuFault {
    /// What it does.
    pub what: IommuFaultKind,
    /// The requester (an endpoint's name); every requester when absent,
    /// for `drop-mappings`.
    #[serde(default)]
    pub device: Option<String>,
    /// `drop-mappings`: only mappings into a peer's BAR.
    #[serde(default)]
    pub peer_only: bool,
    /// `wrong-domain`: the domain ID it is given.
    #[serde(default)]
    pub domain: Option<u16>,
    /// `fail-descriptors`: how many (default 1).
    #[serde(default)]
    pub count: Option<u64>,
}

impl IommuFault {
    /// The injection, with the device's requester ID `rid` (its BDF).
    pub fn injection(&self, rid: Option<u16>) -> Result<vtd::Injection, String> {
        use vtd::Injection as I;
        use IommuFaultKind as K;
        let need = || rid.ok_or_else(|| format!("{:?} needs a \"device\"", self.what));
        Ok(match self.what {
            K::DropMappings => I::DropMappings {
                rid,
                peer_only: self.peer_only,
            },
            K::PoisonMappings => I::PoisonMappings {
                rid,
                peer_only: self.peer_only,
            },
            K::ContextNotPresent => I::ContextNotPresent { rid: need()? },
            K::PassThrough => I::ForceType {
                rid: need()?,
                pass_through: true,
            },
            K::Translate => I::ForceType {
                rid: need()?,
                pass_through: false,
            },
            K::WrongDomain => I::WrongDomain {
                rid: need()?,
                domain: self
                    .domain
                    .ok_or("wrong-domain needs a \"domain\"".to_string())?,
            },
            K::IgnoreInvalidations => I::IgnoreInvalidations,
            K::MaskFaultEvent => I::MaskFaultEvent,
            K::FailDescriptors => I::FailDescriptors {
                count: self.count.unwrap_or(1),
            },
            K::OverflowRecords => I::OverflowRecords,
        })
    }
}
