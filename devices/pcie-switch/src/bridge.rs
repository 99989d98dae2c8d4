//! [`PciBridge`]: the Type-1 function behind root ports, switch upstream
//! ports and switch downstream ports.

use std::ops::RangeInclusive;

use pcie_core::{
    pcie_reg, reg, Bars, ConfigEffects, ConfigSpace, PciExpressCapability, PciFunction, ResetKind,
    Watch,
};

use crate::acs::ACS_EGRESS_VECTOR_DWORDS;
use crate::{acs, std_caps, type1, AcsConfig, BridgeConfig, Error, MsiMessage, PortKind};
use pcie_core::acs_reg;
use pcie_core::aer;
use pcie_core::{bridge_control, bridge_reg};

/// Where a bridge's capabilities sit in its config space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapabilityOffsets {
    /// Power Management capability.
    pub power_management: u16,
    /// MSI capability.
    pub msi: u16,
    /// PCI Express capability.
    pub pci_express: u16,
    /// AER extended capability, when configured.
    pub aer: Option<u16>,
    /// ACS extended capability, when configured.
    pub acs: Option<u16>,
}

/// A PCI-to-PCI bridge (Type-1 header, class 06/04/00) playing one of the
/// three PCIe port roles; see the crate documentation for its config space.
#[derive(Debug, Clone)]
pub struct PciBridge {
    config: BridgeConfig,
    space: ConfigSpace,
    power_on: ConfigSpace,
    bars: Bars,
    caps: CapabilityOffsets,
    child_present: bool,
    /// The link below is up ([`set_link`](Self::set_link)).
    link_up: bool,
    /// Injected ACS misbehaviour ([`set_acs_fault`](Self::set_acs_fault)).
    fault: fault::FaultState,
}

impl PciBridge {
    /// Validates `config` and builds the port in its power-on state, with no
    /// child present.
    pub fn new(config: BridgeConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut space = ConfigSpace::new();
        type1::apply_header(&mut space, &config)?;
        let power_management = std_caps::add_power_management(&mut space)?;
        let msi = pcie_core::add_msi(&mut space)?;
        let mut pcie = PciExpressCapability::new(config.kind.port_type())
            .link(config.link_speed, config.link_width()?)
            .port_number(config.port_number);
        if let Some(slot) = config.slot {
            pcie = pcie.slot(slot).hot_plug(config.hot_plug);
        }
        let pci_express = pcie.add_to(&mut space)?;
        let root = config.kind == PortKind::RootPort;
        let aer = if config.aer {
            Some(aer::add(&mut space, root)?)
        } else {
            None
        };
        let acs = match &config.acs {
            Some(a) => Some(acs::add(&mut space, a)?),
            None => None,
        };
        let mut bridge = PciBridge {
            config,
            power_on: ConfigSpace::new(),
            space,
            bars: Bars::new(Bars::TYPE1_COUNT),
            caps: CapabilityOffsets {
                power_management,
                msi,
                pci_express,
                aer,
                acs,
            },
            child_present: false,
            link_up: true,
            fault: Default::default(),
        };
        bridge.reflect_presence();
        bridge.power_on = bridge.space.clone();
        Ok(bridge)
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// Root port, switch upstream port or switch downstream port.
    pub fn kind(&self) -> PortKind {
        self.config.kind
    }

    /// Port number from Link Capabilities.
    pub fn port_number(&self) -> u8 {
        self.config.port_number
    }

    /// Where each capability sits.
    pub fn capability_offsets(&self) -> CapabilityOffsets {
        self.caps
    }

    /// Its config space, read-only (for dumps and the topology printer).
    pub fn space(&self) -> &ConfigSpace {
        &self.space
    }

    /// Primary bus number.
    pub fn primary_bus(&self) -> u8 {
        self.space.u8_at(bridge_reg::PRIMARY_BUS)
    }

    /// Secondary bus number: the bus directly below the bridge.
    pub fn secondary_bus(&self) -> u8 {
        self.space.u8_at(bridge_reg::SECONDARY_BUS)
    }

    /// Subordinate bus number: the highest bus below the bridge.
    pub fn subordinate_bus(&self) -> u8 {
        self.space.u8_at(bridge_reg::SUBORDINATE_BUS)
    }

    /// The command register (Memory/I/O Space Enable gate forwarding down,
    /// Bus Master Enable gates forwarding up).
    pub fn command(&self) -> u16 {
        self.space.u16_at(reg::COMMAND)
    }

    /// The bridge control register.
    pub fn bridge_control(&self) -> u16 {
        self.space.u16_at(bridge_reg::BRIDGE_CONTROL)
    }

    /// Whether Secondary Bus Reset is asserted: the owner holds everything
    /// below in hot reset until it clears.
    pub fn secondary_bus_reset(&self) -> bool {
        self.bridge_control() & bridge_control::SECONDARY_BUS_RESET != 0
    }

    /// The programmed I/O window (bus addresses, inclusive); `None` when
    /// base > limit. Forwarding also needs I/O Space Enable. Like every
    /// window, the power-on zeros decode as an open window at address 0
    /// (4 KiB here, 1 MiB for memory), exactly as Linux reads them.
    pub fn io_window(&self) -> Option<RangeInclusive<u64>> {
        type1::io_window(&self.space)
    }

    /// The programmed non-prefetchable memory window; `None` when base >
    /// limit. Forwarding also needs Memory Space Enable.
    pub fn memory_window(&self) -> Option<RangeInclusive<u64>> {
        type1::memory_window(&self.space)
    }

    /// The programmed 64-bit prefetchable memory window; `None` when base >
    /// limit. Forwarding also needs Memory Space Enable.
    pub fn prefetchable_window(&self) -> Option<RangeInclusive<u64>> {
        type1::prefetchable_window(&self.space)
    }

    /// The ACS Capability register, if the port has ACS.
    pub fn acs_capability(&self) -> Option<u16> {
        let off = self.caps.acs?;
        Some(self.space.u16_at(off + acs_reg::CAPABILITY))
    }

    /// The current ACS Control register, if the port has ACS.
    pub fn acs_control(&self) -> Option<pcie_core::AcsBits> {
        let off = self.caps.acs?;
        let reg = self.space.u16_at(off + acs_reg::CONTROL);
        Some(pcie_core::AcsBits::from_register(reg))
    }

    /// The current egress control vector (bit `n` is egress port number
    /// `n`), when ACS Egress Control is implemented. Bits past the vector
    /// size are zero.
    pub fn acs_egress_vector(&self) -> Option<[u32; ACS_EGRESS_VECTOR_DWORDS]> {
        let acs = self.config.acs.filter(|a| a.has_egress_control())?;
        let off = self.caps.acs?;
        Some(acs::egress_vector(
            &self.space,
            off,
            acs.egress_vector_dwords(),
        ))
    }

    /// The MSI message the port sends, when MSI is enabled.
    pub fn msi_message(&self) -> Option<MsiMessage> {
        pcie_core::msi_message(&self.space, self.caps.msi)
    }

    /// Whether a child is present below the port (see [`set_child_present`](Self::set_child_present)).
    pub fn child_present(&self) -> bool {
        self.child_present
    }

    /// Records whether a device is attached below the port. With a slot
    /// implemented this drives Slot Status' Presence Detect State (which
    /// otherwise reads 1 on downstream-facing ports, as the spec requires).
    /// No hot-plug event is latched (that is [`set_link`](Self::set_link)'s
    /// job). The state survives resets.
    pub fn set_child_present(&mut self, present: bool) {
        self.child_present = present;
        self.reflect_presence();
    }

    /// Makes Slot Status' Presence Detect State (a card is there and its
    /// link is up) and Link Status' Data Link Layer Link Active say what
    /// is below.
    fn reflect_presence(&mut self) {
        use pcie_core::{pcie_lnksta::DLLLA, pcie_sltsta::PDS};
        let set = |space: &mut ConfigSpace, off: u16, bit: u16, on: bool| {
            let v = space.u16_at(off) & !bit;
            space.set_u16(off, if on { v | bit } else { v });
        };
        if self.config.kind.is_downstream() {
            let off = self.caps.pci_express + pcie_reg::LNKSTA;
            set(&mut self.space, off, DLLLA, self.link_up);
        }
        if self.config.slot.is_some() {
            let off = self.caps.pci_express + pcie_reg::SLTSTA;
            set(
                &mut self.space,
                off,
                PDS,
                self.child_present && self.link_up,
            );
        }
    }

    fn watches(&self) -> [Watch; 7] {
        use bridge_reg::*;
        let acs = match (self.caps.acs, &self.config.acs) {
            (Some(off), Some(a)) => {
                off + acs_reg::CONTROL..off + acs_reg::EGRESS_VECTOR + 4 * a.egress_vector_dwords()
            }
            _ => 0..0,
        };
        [
            (reg::COMMAND..reg::COMMAND + 2, ConfigEffects::COMMAND),
            (self.bars.register_range(), ConfigEffects::BARS),
            // Bus numbers (not the secondary latency timer).
            (PRIMARY_BUS..SECONDARY_LATENCY_TIMER, ConfigEffects::BRIDGE),
            // I/O base/limit; secondary status moves nothing.
            (IO_BASE..SECONDARY_STATUS, ConfigEffects::BRIDGE),
            // Memory and prefetchable windows, I/O upper 16 bits.
            (
                MEMORY_BASE..reg::CAPABILITIES_POINTER,
                ConfigEffects::BRIDGE,
            ),
            (BRIDGE_CONTROL..BRIDGE_CONTROL + 2, ConfigEffects::BRIDGE),
            (acs, ConfigEffects::BRIDGE),
        ]
    }
}

impl PciFunction for PciBridge {
    fn acs_fault(&self) -> Option<pcie_core::AcsFault> {
        self.fault_view()
    }

    fn record_uncorrectable(&mut self, status_bit: u32) -> bool {
        self.log_uncorrectable(status_bit)
    }

    fn inject_acs_fault(
        &mut self,
        stuck_on: pcie_core::AcsBits,
        hidden: bool,
    ) -> Result<(), String> {
        self.set_acs_fault(stuck_on, hidden)
            .map_err(|e| e.to_string())
    }

    fn set_link(&mut self, up: bool) -> Result<Option<MsiMessage>, String> {
        self.change_link(up).map_err(|e| e.to_string())
    }

    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.space.read(offset, data)
    }

    /// Reports [`ConfigEffects::COMMAND`] when the command register changes
    /// and [`ConfigEffects::BRIDGE`] when bus numbers, windows, bridge
    /// control, ACS control or the egress vector change.
    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let watches = self.watches();
        self.space.write_watched(offset, data, &watches)
    }

    /// No BARs: nothing decodes, reads return all ones.
    fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    /// No BARs: writes are dropped.
    fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}

    /// Root ports with AER log the message in Root Error Status and raise
    /// their MSI when Root Error Command enables its severity; other
    /// ports never receive messages (the fabric passes them up).
    fn error_message(&mut self, msg: pcie_core::ErrorMessage) -> Option<MsiMessage> {
        let aer = self
            .caps
            .aer
            .filter(|_| self.config.kind == PortKind::RootPort)?;
        if !aer::log_at_root(&mut self.space, aer, msg) {
            return None;
        }
        self.msi_message()
    }

    /// Returns to the power-on state: command 0, bus numbers and windows
    /// zero, the configured ACS control and egress vector. Hot and
    /// function-level resets keep AER's sticky registers. Child presence
    /// and the link state are physical and are kept.
    fn reset(&mut self, kind: ResetKind) {
        let sticky: Vec<(u16, Vec<u8>)> = match (kind, self.caps.aer) {
            (ResetKind::Fundamental, _) | (_, None) => Vec::new(),
            (_, Some(off)) => aer::sticky_ranges(off)
                .into_iter()
                .map(|r| {
                    let mut bytes = vec![0; r.len()];
                    self.space.read(r.start, &mut bytes);
                    (r.start, bytes)
                })
                .collect(),
        };
        self.space = self.power_on.clone();
        for (off, bytes) in sticky {
            self.space.set_bytes(off, &bytes);
        }
        self.reflect_presence();
    }
}

#[cfg(test)]
mod tests;

mod fault;
mod hotplug;

impl PciBridge {
    /// A port for rigs, fuzzers and tools that build fabrics by hand:
    /// 1b36:000c, an 8 GT/s x4 link, AER, a slot on root and downstream
    /// ports, the given ACS, and a device present below it.
    pub fn simple(kind: PortKind, port_number: u8, acs: Option<AcsConfig>) -> Box<PciBridge> {
        let downstream = kind != PortKind::SwitchUpstream;
        let mut b = PciBridge::new(BridgeConfig {
            kind,
            vendor_id: 0x1b36,
            device_id: 0x000c,
            revision_id: 0,
            port_number,
            link_speed: pcie_core::LinkSpeed::Gt8,
            link_width: 4,
            slot: downstream.then_some(u16::from(port_number)),
            acs,
            aer: true,
            hot_plug: false,
        })
        .expect("a simple port's configuration is valid");
        b.set_child_present(true);
        Box::new(b)
    }
}
