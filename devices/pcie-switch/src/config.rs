//! What a Type-1 bridge port is built from: [`BridgeConfig`], its
//! [`PortKind`] and optional [`AcsConfig`], and their validation.

use pcie_core::{AcsBits, LinkSpeed, LinkWidth, PortType};

use crate::Error;

/// Largest ACS egress control vector, in bits.
pub const ACS_EGRESS_VECTOR_MAX: u16 = 256;

/// Which of the three Type-1 PCIe port roles a bridge plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// A root port of the root complex (PCIe port type 4).
    RootPort,
    /// The upstream port of a switch (PCIe port type 5).
    SwitchUpstream,
    /// A downstream port of a switch (PCIe port type 6).
    SwitchDownstream,
}

impl PortKind {
    /// The port type reported in the PCI Express Capabilities register.
    pub const fn port_type(self) -> PortType {
        match self {
            PortKind::RootPort => PortType::RootPort,
            PortKind::SwitchUpstream => PortType::UpstreamPort,
            PortKind::SwitchDownstream => PortType::DownstreamPort,
        }
    }

    /// Whether the port faces downstream (root and switch downstream ports):
    /// those have slots, ACS, a link-active indication and an INTx pin.
    pub const fn is_downstream(self) -> bool {
        !matches!(self, PortKind::SwitchUpstream)
    }
}

/// Access Control Services of a root or switch downstream port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcsConfig {
    /// Implemented features.
    pub capability: AcsBits,
    /// Power-on control bits; a subset of `capability`.
    pub control: AcsBits,
    /// Control bits the guest cannot change (broken firmware or hardware);
    /// a subset of `capability`. They keep their value from `control`.
    pub stuck: AcsBits,
    /// Number of bits of the egress control vector: 1..=256 when
    /// [`AcsBits::EC`] is implemented, 0 otherwise.
    pub egress_vector_size: u16,
    /// Power-on egress control vector, bits 31:0 (bits 32 and up start at
    /// zero). No bit at or beyond `egress_vector_size` may be set.
    pub egress_vector: u32,
}

impl AcsConfig {
    /// Checks the invariants documented on each field.
    pub fn validate(&self) -> Result<(), Error> {
        let cap = self.capability;
        if !cap.contains(self.control) {
            return Err(Error::AcsControlNotImplemented {
                control: self.control.bits(),
                capability: cap.bits(),
            });
        }
        if !cap.contains(self.stuck) {
            return Err(Error::AcsStuckNotImplemented {
                stuck: self.stuck.bits(),
                capability: cap.bits(),
            });
        }
        let size = self.egress_vector_size;
        if !cap.contains(AcsBits::EC) {
            if size != 0 || self.egress_vector != 0 {
                return Err(Error::AcsEgressWithoutEc {
                    size,
                    vector: self.egress_vector,
                });
            }
            return Ok(());
        }
        if size == 0 || size > ACS_EGRESS_VECTOR_MAX {
            return Err(Error::AcsEgressVectorSize(size));
        }
        if size < 32 && self.egress_vector >> size != 0 {
            return Err(Error::AcsEgressVectorTooWide {
                vector: self.egress_vector,
                size,
            });
        }
        Ok(())
    }

    /// Whether P2P Egress Control is implemented.
    pub const fn has_egress_control(&self) -> bool {
        self.capability.contains(AcsBits::EC)
    }

    /// Dwords taken by the egress control vector (0 without Egress Control).
    pub const fn egress_vector_dwords(&self) -> u16 {
        if self.has_egress_control() {
            self.egress_vector_size.div_ceil(32)
        } else {
            0
        }
    }
}

/// Everything a Type-1 port is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeConfig {
    /// Root port, switch upstream port or switch downstream port.
    pub kind: PortKind,
    /// Vendor ID (not 0x0000 or 0xFFFF).
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision_id: u8,
    /// Port number, Link Capabilities bits 31:24; the index of this port in
    /// its peers' ACS egress control vectors.
    pub port_number: u8,
    /// Link speed, maximum and current alike.
    pub link_speed: LinkSpeed,
    /// Link width in lanes, maximum and current alike: 1, 2, 4, 8, 12, 16 or 32.
    pub link_width: u8,
    /// Physical slot number (0..=8191) of the slot below a root or
    /// downstream port; `Some` sets Slot Implemented. Upstream ports: `None`.
    pub slot: Option<u16>,
    /// ACS extended capability; root and downstream ports only.
    pub acs: Option<AcsConfig>,
    /// Whether to expose the AER extended capability.
    pub aer: bool,
    /// Whether the slot is surprise hot-plug capable (pciehp binds to it;
    /// see [`PciBridge::set_link`](crate::PciBridge::set_link)). Needs `slot`.
    pub hot_plug: bool,
}

impl BridgeConfig {
    /// Checks the configuration; every inconsistency is an [`Error`] naming it.
    /// (A reserved vendor ID is reported by [`PciBridge::new`](crate::PciBridge::new).)
    pub fn validate(&self) -> Result<(), Error> {
        self.link_width()?;
        if let Some(slot) = self.slot {
            if !self.kind.is_downstream() {
                return Err(Error::SlotOnUpstreamPort);
            }
            if slot > 0x1fff {
                return Err(Error::SlotNumberOutOfRange(slot));
            }
        }
        if self.hot_plug && self.slot.is_none() {
            return Err(Error::HotPlugWithoutSlot);
        }
        if let Some(acs) = &self.acs {
            if !self.kind.is_downstream() {
                return Err(Error::AcsOnUpstreamPort);
            }
            acs.validate()?;
        }
        Ok(())
    }

    /// The link width as the core's enum.
    pub fn link_width(&self) -> Result<LinkWidth, Error> {
        LinkWidth::from_lanes(self.link_width).ok_or(Error::InvalidLinkWidth(self.link_width))
    }
}
