//! Header identity and capability contents, read the way Linux reads them
//! (probe.c, portdrv.c, pci.c's ACS code, aer.c).

mod common;

use common::*;
use pcie_core::{
    cap_id, capabilities, ext_cap_id, ext_capabilities, pcie_reg, reg, CapabilityRef, LinkSpeed,
    PciFunction,
};
use pcie_switch::{
    acs_reg, aer_reg, msi_reg, pm_reg, AcsBits, AcsConfig, BridgeConfig, MsiMessage, PciBridge,
    PortKind,
};

fn std_ids(f: &dyn PciFunction) -> Vec<u8> {
    capabilities(|o| r32(f, o))
        .map(|c: CapabilityRef| c.id)
        .collect()
}

fn ext_ids(f: &dyn PciFunction) -> Vec<(u16, u8)> {
    ext_capabilities(|o| r32(f, o))
        .map(|c| (c.id, c.version))
        .collect()
}

fn pcie(f: &dyn PciFunction) -> u16 {
    capabilities(|o| r32(f, o))
        .find(|c| c.id == cap_id::PCI_EXPRESS)
        .unwrap()
        .offset
}

#[test]
fn type1_header_identity() {
    for config in all_ports() {
        let b = PciBridge::new(config).unwrap();
        let f: &dyn PciFunction = &b;
        assert_eq!(
            r32(f, 0),
            u32::from(config.device_id) << 16 | u32::from(config.vendor_id)
        );
        assert_eq!(r32(f, 0x08) >> 8, 0x06_04_00, "class PCI-to-PCI bridge");
        assert_eq!(r8(f, reg::REVISION_ID), config.revision_id);
        assert_eq!(r8(f, reg::HEADER_TYPE), 0x01);
        assert_ne!(r16(f, reg::STATUS) & 0x10, 0, "capabilities list");
        let pin = if config.kind == PortKind::SwitchUpstream {
            0
        } else {
            1
        };
        assert_eq!(r8(f, reg::INTERRUPT_PIN), pin);
    }
}

#[test]
fn capability_chains() {
    let std = vec![cap_id::POWER_MANAGEMENT, cap_id::MSI, cap_id::PCI_EXPRESS];
    let aer_acs = vec![(ext_cap_id::AER, 2), (ext_cap_id::ACS, 1)];
    for config in [root_port(), downstream_port()] {
        let b = PciBridge::new(config).unwrap();
        assert_eq!(std_ids(&b), std);
        assert_eq!(ext_ids(&b), aer_acs);
        let offs = b.capability_offsets();
        assert_eq!(offs.aer, Some(0x100));
        assert_eq!(b.space().find_ext_capability(ext_cap_id::ACS), offs.acs);
        assert_eq!(pcie(&b), offs.pci_express);
    }
    let up = PciBridge::new(upstream_port()).unwrap();
    assert_eq!(std_ids(&up), std);
    assert_eq!(ext_ids(&up), vec![(ext_cap_id::AER, 2)]);
    assert_eq!(up.acs_control(), None);
    // Without AER, ACS comes first; without either, no extended capability.
    let no_aer = BridgeConfig {
        aer: false,
        hot_plug: false,
        ..root_port()
    };
    let b = PciBridge::new(no_aer).unwrap();
    assert_eq!(ext_ids(&b), vec![(ext_cap_id::ACS, 1)]);
    assert_eq!(b.capability_offsets().acs, Some(0x100));
    let bare = BridgeConfig {
        aer: false,
        hot_plug: false,
        ..upstream_port()
    };
    assert!(ext_ids(&PciBridge::new(bare).unwrap()).is_empty());
}

#[test]
fn pci_express_capability_describes_the_port() {
    for (config, port_type) in all_ports().into_iter().zip([4u16, 5, 6]) {
        let b = PciBridge::new(config).unwrap();
        let f: &dyn PciFunction = &b;
        let p = pcie(f);
        let caps = r16(f, p + pcie_reg::CAPS);
        assert_eq!(caps & 0xf, 2, "capability version");
        assert_eq!(caps >> 4 & 0xf, port_type);
        assert_eq!(
            caps >> 8 & 1 == 1,
            config.slot.is_some(),
            "slot implemented"
        );
        assert_eq!(r32(f, p + pcie_reg::DEVCAP) & 0x7, 1, "MPS 256 supported");
        let lnkcap = r32(f, p + pcie_reg::LNKCAP);
        assert_eq!(lnkcap & 0xf, config.link_speed as u32);
        assert_eq!(lnkcap >> 4 & 0x3f, u32::from(config.link_width));
        assert_eq!(lnkcap >> 24, u32::from(config.port_number));
        assert_eq!(b.port_number(), config.port_number);
        let down = config.kind != PortKind::SwitchUpstream;
        assert_eq!(
            lnkcap >> 20 & 1 == 1,
            down,
            "DLL Link Active Reporting Capable"
        );
        assert_eq!(lnkcap >> 21 & 1, 0, "no bandwidth notification (portdrv)");
        let lnksta = r16(f, p + pcie_reg::LNKSTA);
        assert_eq!(lnksta & 0xf, config.link_speed as u16);
        assert_eq!(lnksta >> 4 & 0x3f, u16::from(config.link_width));
        assert_eq!(lnksta >> 13 & 1 == 1, down, "Data Link Layer Link Active");
        let sltcap = r32(f, p + pcie_reg::SLTCAP);
        assert_eq!(sltcap >> 19, u32::from(config.slot.unwrap_or(0)));
        assert_eq!(sltcap & 0x7f, 0, "no hot-plug features: pciehp stays away");
        assert_eq!(
            r32(f, p + pcie_reg::DEVCAP2) >> 5 & 1,
            0,
            "no ARI forwarding"
        );
        let root = config.kind == PortKind::RootPort;
        // Root Control's PME interrupt enable is what the PME service toggles.
        let mut b = b.clone();
        w16(&mut b, p + pcie_reg::RTCTL, 0x8);
        assert_eq!(r16(&b, p + pcie_reg::RTCTL) == 0x8, root);
    }
}

#[test]
fn slot_presence_follows_the_child() {
    let mut b = PciBridge::new(downstream_port()).unwrap();
    let p = pcie(&b);
    assert_eq!(r16(&b, p + pcie_reg::SLTSTA) & 0x40, 0);
    b.set_child_present(true);
    assert!(b.child_present());
    assert_eq!(r16(&b, p + pcie_reg::SLTSTA) & 0x40, 0x40);
    assert!(w16(&mut b, p + pcie_reg::SLTSTA, 0xffff).is_empty());
    assert_eq!(r16(&b, p + pcie_reg::SLTSTA) & 0x40, 0x40);
}

#[test]
fn power_management_is_d0_only() {
    let mut b = PciBridge::new(root_port()).unwrap();
    let pm = b.capability_offsets().power_management;
    assert_eq!(r16(&b, pm + pm_reg::PMC) & 0x7, 3, "version 3");
    assert_eq!(r16(&b, pm + pm_reg::PMC) >> 9, 0, "no D1/D2, no PME");
    w16(&mut b, pm + pm_reg::PMCSR, 0x8103);
    assert_eq!(
        r16(&b, pm + pm_reg::PMCSR),
        pm_reg::NO_SOFT_RESET,
        "still D0"
    );
}

#[test]
fn msi_programming() {
    let mut b = PciBridge::new(downstream_port()).unwrap();
    let msi = b.capability_offsets().msi;
    assert_eq!(r16(&b, msi + msi_reg::CONTROL), 0x0080, "64-bit, 1 vector");
    w32(&mut b, msi + msi_reg::ADDRESS_LO, 0xfee0_100f);
    w32(&mut b, msi + msi_reg::ADDRESS_HI, 0x1);
    w16(&mut b, msi + msi_reg::DATA, 0x4041);
    assert_eq!(b.msi_message(), None);
    w16(&mut b, msi + msi_reg::CONTROL, 0xffff);
    assert_eq!(r16(&b, msi + msi_reg::CONTROL), 0x00f1);
    let message = MsiMessage {
        addr: 0x1_fee0_100c,
        data: 0x4041,
    };
    assert_eq!(b.msi_message(), Some(message));
}

#[test]
fn acs_registers_and_linux_enable() {
    let mut b = PciBridge::new(root_port()).unwrap();
    let acs = b.capability_offsets().acs.unwrap();
    let cap = r16(&b, acs + acs_reg::CAPABILITY);
    assert_eq!(cap, 40 << 8 | FULL_ACS.capability.bits());
    assert_eq!(b.acs_capability(), Some(cap));
    assert_eq!(b.acs_control(), Some(AcsBits::SV | AcsBits::TB));
    assert_eq!(r32(&b, acs + acs_reg::EGRESS_VECTOR), 1);
    // pci_std_enable_acs: ctrl |= cap & (SV | RR | CR | UF); UF is stuck off.
    let linux = AcsBits::SV | AcsBits::RR | AcsBits::CR | AcsBits::UF;
    let ctrl = r16(&b, acs + acs_reg::CONTROL) | cap & linux.bits();
    assert!(w16(&mut b, acs + acs_reg::CONTROL, ctrl).bridge_changed());
    assert_eq!(
        b.acs_control(),
        Some(AcsBits::SV | AcsBits::TB | AcsBits::RR | AcsBits::CR)
    );
    // pci_acs_flags_enabled(SV|RR|CR|UF) therefore fails, as on broken hardware.
    let flags = linux & (AcsBits::from_register(cap) | AcsBits::EC);
    assert_ne!(b.acs_control().unwrap() & flags, flags);
    // The egress vector is 40 bits wide.
    w32(&mut b, acs + acs_reg::EGRESS_VECTOR, 0xffff_ffff);
    w32(&mut b, acs + acs_reg::EGRESS_VECTOR + 4, 0xffff_ffff);
    let v = b.acs_egress_vector().unwrap();
    assert_eq!(v[..3], [0xffff_ffff, 0xff, 0]);
    assert_eq!(
        r32(&b, acs + acs_reg::EGRESS_VECTOR + 8),
        0,
        "next capability space"
    );
}

#[test]
fn acs_full_egress_vector_encodes_256_as_zero() {
    let acs = AcsConfig {
        capability: AcsBits::EC | AcsBits::RR,
        control: AcsBits::EC,
        stuck: AcsBits::NONE,
        egress_vector_size: 256,
        egress_vector: 0xdead_beef,
    };
    let mut b = PciBridge::new(BridgeConfig {
        acs: Some(acs),
        aer: false,
        hot_plug: false,
        ..root_port()
    })
    .unwrap();
    assert_eq!(
        b.acs_capability().map(AcsBits::from_register),
        Some(AcsBits::EC | AcsBits::RR)
    );
    for i in 0..8u16 {
        w32(&mut b, 0x108 + 4 * i, 0x100 + u32::from(i));
    }
    let v = b.acs_egress_vector().unwrap();
    assert_eq!(v, core::array::from_fn(|i| 0x100 + i as u32));
    // A port without Egress Control has no vector.
    assert_eq!(
        PciBridge::new(downstream_port())
            .unwrap()
            .acs_egress_vector(),
        None
    );
}

#[test]
fn aer_defaults_and_linux_clear_sequence() {
    for config in all_ports() {
        let mut b = PciBridge::new(config).unwrap();
        let aer = b.capability_offsets().aer.unwrap();
        assert_eq!(r32(&b, aer + aer_reg::UNCOR_MASK), 0x0040_0000);
        assert_eq!(r32(&b, aer + aer_reg::UNCOR_SEVERITY), 0x0046_2030);
        assert_eq!(r32(&b, aer + aer_reg::COR_MASK), 0x0000_e000);
        assert_eq!(
            r32(&b, aer + aer_reg::CAP_CONTROL),
            0,
            "no ECRC, no first error"
        );
        // pci_aer_raw_clear_status: read, write back.
        for r in [
            aer_reg::ROOT_STATUS,
            aer_reg::COR_STATUS,
            aer_reg::UNCOR_STATUS,
        ] {
            let v = r32(&b, aer + r);
            assert!(w32(&mut b, aer + r, v).is_empty());
        }
        // aer_enable_rootport: Root Error Command enables stick on root ports only.
        w32(&mut b, aer + aer_reg::ROOT_COMMAND, 0x7);
        let root = config.kind == PortKind::RootPort;
        assert_eq!(
            r32(&b, aer + aer_reg::ROOT_COMMAND),
            if root { 7 } else { 0 }
        );
        // Masks are writable on implemented bits only.
        w32(&mut b, aer + aer_reg::UNCOR_MASK, 0xffff_ffff);
        assert_eq!(
            r32(&b, aer + aer_reg::UNCOR_MASK),
            aer_reg::UNCOR_IMPLEMENTED
        );
    }
}

#[test]
fn every_link_speed_is_reported() {
    for speed in [
        LinkSpeed::Gt2_5,
        LinkSpeed::Gt5,
        LinkSpeed::Gt8,
        LinkSpeed::Gt16,
        LinkSpeed::Gt32,
    ] {
        for width in [1u8, 2, 4, 8, 16, 32] {
            let b = PciBridge::new(BridgeConfig {
                link_speed: speed,
                link_width: width,
                ..root_port()
            })
            .unwrap();
            let lnkcap = r32(&b, pcie(&b) + pcie_reg::LNKCAP);
            assert_eq!(
                (lnkcap & 0xf, lnkcap >> 4 & 0x3f),
                (speed as u32, u32::from(width))
            );
        }
    }
}
