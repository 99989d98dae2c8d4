//! The link below a root or downstream port going down and up (a surprise
//! removal and insertion), and the hot-plug events a hot-plug capable
//! slot latches for it (PCIe Base 6.7.3).
//!
//! A change latches Data Link Layer State Changed and, when a card sits
//! in the slot, Presence Detect Changed. The port sends its MSI when Hot-
//! Plug Interrupt Enable is set and an enabled event goes from none
//! latched to some latched (6.7.3.4: software must clear every latched
//! event before the port interrupts again; Linux's pciehp re-reads Slot
//! Status until it is clear). INTx is not raised for hot-plug events.

use pcie_core::{pcie_reg, pcie_sltctl as ctl, pcie_sltsta as sta, MsiMessage};

use super::PciBridge;
use crate::Error;

/// Each Slot Status event and the Slot Control bit enabling it.
const EVENT_ENABLES: [(u16, u16); 6] = [
    (sta::ABP, ctl::ABPE),
    (sta::PFD, ctl::PFDE),
    (sta::MRLSC, ctl::MRLSCE),
    (sta::PDC, ctl::PDCE),
    (sta::CC, ctl::CCIE),
    (sta::DLLSC, ctl::DLLSCE),
];

impl PciBridge {
    /// Whether the link below is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Brings the link below down or up. Link Status and Presence Detect
    /// State follow; a hot-plug capable slot latches the change. Returns
    /// the hot-plug MSI to send, if the change raises one. Bringing a link
    /// to the state it is in does nothing. Upstream ports have no link
    /// below them.
    pub fn change_link(&mut self, up: bool) -> Result<Option<MsiMessage>, Error> {
        if !self.config.kind.is_downstream() {
            return Err(Error::NoLinkBelow);
        }
        if self.link_up == up {
            return Ok(None);
        }
        let before = self.hot_plug_pending();
        self.link_up = up;
        self.reflect_presence();
        if self.config.hot_plug {
            let mut events = sta::DLLSC;
            if self.child_present {
                events |= sta::PDC;
            }
            let off = self.caps.pci_express + pcie_reg::SLTSTA;
            let v = self.space.u16_at(off);
            self.space.set_u16(off, v | events);
        }
        Ok((!before && self.hot_plug_pending())
            .then(|| self.msi_message())
            .flatten())
    }

    /// A hot-plug interrupt is asked for: Hot-Plug Interrupt Enable and
    /// at least one enabled event latched.
    pub(crate) fn hot_plug_pending(&self) -> bool {
        if !self.config.hot_plug {
            return false;
        }
        let control = self.space.u16_at(self.caps.pci_express + pcie_reg::SLTCTL);
        let status = self.space.u16_at(self.caps.pci_express + pcie_reg::SLTSTA);
        control & ctl::HPIE != 0
            && EVENT_ENABLES
                .iter()
                .any(|&(event, enable)| status & event != 0 && control & enable != 0)
    }
}

#[cfg(test)]
mod tests {
    use pcie_core::{msi_reg, pcie_lnksta, pcie_sltcap, LinkSpeed, PciFunction, ResetKind};

    use super::*;
    use crate::{BridgeConfig, PortKind};

    fn port(kind: PortKind, hot_plug: bool) -> PciBridge {
        let mut b = PciBridge::new(BridgeConfig {
            kind,
            vendor_id: 0x1b36,
            device_id: 0x000c,
            revision_id: 0,
            port_number: 1,
            link_speed: LinkSpeed::Gt8,
            link_width: 4,
            slot: (kind != PortKind::SwitchUpstream).then_some(5),
            acs: None,
            aer: false,
            hot_plug,
        })
        .unwrap();
        b.set_child_present(true);
        b
    }

    fn r16(b: &PciBridge, reg: u16) -> u16 {
        b.space.u16_at(b.caps.pci_express + reg)
    }

    fn w16(b: &mut PciBridge, reg: u16, v: u16) {
        let off = b.caps.pci_express + reg;
        b.config_write(off, &v.to_le_bytes());
    }

    /// What pciehp does at probe: MSI on, then HPIE, PDCE and DLLSCE.
    fn enable(b: &mut PciBridge) {
        let msi = b.caps.msi;
        b.config_write(msi + msi_reg::ADDRESS_LO, &0xfee0_0000u32.to_le_bytes());
        b.config_write(msi + msi_reg::DATA, &0x41u16.to_le_bytes());
        b.config_write(msi + msi_reg::CONTROL, &msi_reg::ENABLE.to_le_bytes());
        w16(b, pcie_reg::SLTCTL, 0x1028);
    }

    #[test]
    fn a_hot_plug_slot_advertises_surprise_removal_without_controls() {
        let mut b = port(PortKind::SwitchDownstream, true);
        let cap = b.space.u32_at(b.caps.pci_express + pcie_reg::SLTCAP);
        // HPC (6), HPS (5), NCCS (18), physical slot 5 at 31:19; no
        // attention button, power controller, MRL or indicators.
        assert_eq!(cap, 1 << 6 | 1 << 5 | 1 << 18 | 5 << 19);
        assert_eq!(cap & pcie_sltcap::HOT_PLUG_CAPABLE, 1 << 6);
        // Slot Control: only the event enables and HPIE (bits 0-5, 12) are
        // writable; indicator, power and interlock controls read 0.
        w16(&mut b, pcie_reg::SLTCTL, 0xffff);
        assert_eq!(r16(&b, pcie_reg::SLTCTL), 0x103f);
        // Without hot-plug, Slot Capabilities has the slot number only and
        // Slot Control is read-only zero.
        let mut plain = port(PortKind::SwitchDownstream, false);
        assert_eq!(
            plain
                .space
                .u32_at(plain.caps.pci_express + pcie_reg::SLTCAP),
            5 << 19
        );
        w16(&mut plain, pcie_reg::SLTCTL, 0xffff);
        assert_eq!(r16(&plain, pcie_reg::SLTCTL), 0);
    }

    #[test]
    fn surprise_down_and_up_latch_events_and_send_one_msi_per_edge() {
        let mut b = port(PortKind::SwitchDownstream, true);
        enable(&mut b);
        b.config_write(0x04, &0x0006u16.to_le_bytes());
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 6);
        let m = b.change_link(false).unwrap().expect("an MSI on link down");
        assert_eq!((m.addr, m.data), (0xfee0_0000, 0x41));
        // DLLSC (8) and PDC (3) latched, Presence Detect State (6) clear,
        // Data Link Layer Link Active (LNKSTA 13) clear.
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 8 | 1 << 3);
        assert_eq!(r16(&b, pcie_reg::LNKSTA) & 1 << 13, 0);
        assert!(!b.link_up());
        // Down again: nothing changes, nothing is sent.
        assert_eq!(b.change_link(false).unwrap(), None);
        // Up while the events are still latched: no new MSI (6.7.3.4).
        assert_eq!(b.change_link(true).unwrap(), None);
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 8 | 1 << 6 | 1 << 3);
        // Software clears them (RW1C); the next change interrupts again.
        w16(&mut b, pcie_reg::SLTSTA, 1 << 8 | 1 << 3);
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 6);
        assert!(b.change_link(false).unwrap().is_some());
        w16(&mut b, pcie_reg::SLTSTA, 0xffff);
        assert!(b.change_link(true).unwrap().is_some());
        assert_eq!(r16(&b, pcie_reg::LNKSTA) & pcie_lnksta::DLLLA, 1 << 13);
    }

    #[test]
    fn disabled_interrupts_and_events_latch_silently() {
        let mut b = port(PortKind::RootPort, true);
        // HPIE clear: events latch, no MSI.
        assert_eq!(b.change_link(false).unwrap(), None);
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 8 | 1 << 3);
        w16(&mut b, pcie_reg::SLTSTA, 0xffff);
        // HPIE with only PDCE, and an empty slot: DLLSC alone, not enabled.
        w16(&mut b, pcie_reg::SLTCTL, 1 << 5 | 1 << 3);
        b.set_child_present(false);
        assert_eq!(b.change_link(true).unwrap(), None);
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 8);
        // HPIE and an enabled event, but MSI off: nothing to send.
        w16(&mut b, pcie_reg::SLTCTL, 1 << 5 | 1 << 12);
        w16(&mut b, pcie_reg::SLTSTA, 0xffff);
        assert_eq!(b.change_link(false).unwrap(), None);
        assert!(b.hot_plug_pending());
    }

    #[test]
    fn without_hot_plug_only_the_link_state_changes_and_resets_keep_it() {
        let mut b = port(PortKind::SwitchDownstream, false);
        enable(&mut b);
        assert_eq!(b.change_link(false).unwrap(), None);
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 0);
        assert_eq!(r16(&b, pcie_reg::LNKSTA) & 1 << 13, 0);
        b.reset(ResetKind::Hot);
        assert_eq!(r16(&b, pcie_reg::LNKSTA) & 1 << 13, 0);
        assert!(!b.link_up());
        assert!(b.change_link(true).unwrap().is_none());
        assert_eq!(r16(&b, pcie_reg::SLTSTA), 1 << 6);
        assert_eq!(
            port(PortKind::SwitchUpstream, false).change_link(false),
            Err(Error::NoLinkBelow)
        );
    }
}
