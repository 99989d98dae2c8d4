//! Port fixtures and config-space helpers shared by the bridge tests.

#![allow(dead_code)]

use pcie_core::{config_read_u32, LinkSpeed, PciFunction};
use pcie_switch::{AcsBits, AcsConfig, BridgeConfig, PortKind};

/// Every ACS feature, SV and TB on at power-on, UF stuck off, a 40-bit
/// egress vector blocking port 0.
pub const FULL_ACS: AcsConfig = AcsConfig {
    capability: AcsBits::ALL,
    control: AcsBits::SV.union(AcsBits::TB),
    stuck: AcsBits::UF,
    egress_vector_size: 40,
    egress_vector: 0x1,
};

/// A Gen4 x16 root port, port number 1, slot 1, AER and full ACS.
pub fn root_port() -> BridgeConfig {
    BridgeConfig {
        kind: PortKind::RootPort,
        vendor_id: 0x1b36,
        device_id: 0x000c,
        revision_id: 0,
        port_number: 1,
        link_speed: LinkSpeed::Gt16,
        link_width: 16,
        slot: Some(1),
        acs: Some(FULL_ACS),
        aer: true,
        hot_plug: false,
    }
}

/// A Gen3 x8 switch upstream port, port number 0, AER, no slot or ACS.
pub fn upstream_port() -> BridgeConfig {
    BridgeConfig {
        kind: PortKind::SwitchUpstream,
        vendor_id: 0x104c,
        device_id: 0x8232,
        revision_id: 2,
        port_number: 0,
        link_speed: LinkSpeed::Gt8,
        link_width: 8,
        slot: None,
        acs: None,
        aer: true,
        hot_plug: false,
    }
}

/// A Gen3 x4 switch downstream port, port number 2, slot 0x1234, AER and
/// ACS without Egress Control.
pub fn downstream_port() -> BridgeConfig {
    BridgeConfig {
        kind: PortKind::SwitchDownstream,
        vendor_id: 0x104c,
        device_id: 0x8233,
        revision_id: 2,
        port_number: 2,
        link_speed: LinkSpeed::Gt8,
        link_width: 4,
        slot: Some(0x1234),
        acs: Some(AcsConfig {
            capability: AcsBits::SV | AcsBits::RR | AcsBits::CR | AcsBits::UF,
            control: AcsBits::NONE,
            stuck: AcsBits::NONE,
            egress_vector_size: 0,
            egress_vector: 0,
        }),
        aer: true,
        hot_plug: false,
    }
}

pub fn all_ports() -> [BridgeConfig; 3] {
    [root_port(), upstream_port(), downstream_port()]
}

pub fn r8(f: &dyn PciFunction, off: u16) -> u8 {
    let mut b = [0; 1];
    f.config_read(off, &mut b);
    b[0]
}

pub fn r16(f: &dyn PciFunction, off: u16) -> u16 {
    let mut b = [0; 2];
    f.config_read(off, &mut b);
    u16::from_le_bytes(b)
}

pub fn r32(f: &dyn PciFunction, off: u16) -> u32 {
    config_read_u32(f, off)
}

pub fn w16(f: &mut dyn PciFunction, off: u16, v: u16) -> pcie_core::ConfigEffects {
    f.config_write(off, &v.to_le_bytes())
}

pub fn w32(f: &mut dyn PciFunction, off: u16, v: u32) -> pcie_core::ConfigEffects {
    f.config_write(off, &v.to_le_bytes())
}
