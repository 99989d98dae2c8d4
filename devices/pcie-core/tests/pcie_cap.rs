//! The PCI Express capability builder.

use pcie_core::{
    cap_id, pcie_reg, ConfigSpace, Error, LinkSpeed, LinkWidth, MaxPayload, PciExpressCapability,
    PortType,
};

fn build(cap: PciExpressCapability) -> (ConfigSpace, u16) {
    let mut cs = ConfigSpace::new();
    let off = cap.add_to(&mut cs).unwrap();
    (cs, off)
}

#[test]
fn endpoint() {
    let cap = PciExpressCapability::new(PortType::Endpoint)
        .link(LinkSpeed::Gt8, LinkWidth::X4)
        .max_payload(MaxPayload::B512);
    let (cs, off) = build(cap);
    assert_eq!(off, 0x40);
    assert_eq!(cs.find_capability(cap_id::PCI_EXPRESS), Some(0x40));
    assert_eq!(cs.u16_at(off + pcie_reg::CAPS), 0x0002);
    assert_eq!(cs.u32_at(off + pcie_reg::DEVCAP) & 0x7, 2);
    assert_eq!(cs.u32_at(off + pcie_reg::LNKCAP) & 0x3ff, 0x43);
    assert_eq!(cs.u16_at(off + pcie_reg::LNKSTA) & 0x3ff, 0x43);
    assert_eq!(cs.u32_at(off + pcie_reg::LNKCAP) & (1 << 20), 0);
    assert_eq!(cs.u32_at(off + pcie_reg::LNKCAP2), 0b1110);
    assert_eq!(cs.u16_at(off + pcie_reg::LNKCTL2), 3);
    assert_eq!(cs.u16_at(off + pcie_reg::SLTSTA), 0);
    // The next capability starts after the whole structure.
    let mut cs = cs;
    assert_eq!(
        cs.add_capability(cap_id::MSIX, &[0; 10], &[0; 10]).unwrap(),
        0x40 + pcie_reg::LEN as u16
    );
}

#[test]
fn root_port_with_slot() {
    let cap = PciExpressCapability::new(PortType::RootPort)
        .link(LinkSpeed::Gt16, LinkWidth::X16)
        .port_number(3)
        .slot(0x1fff);
    let (mut cs, off) = build(cap);
    assert_eq!(cs.u16_at(off + pcie_reg::CAPS), 0x0142);
    let lnkcap = cs.u32_at(off + pcie_reg::LNKCAP);
    assert_eq!(lnkcap >> 24, 3);
    assert_ne!(lnkcap & (1 << 20), 0, "DLL link active reporting");
    assert_ne!(
        cs.u16_at(off + pcie_reg::LNKSTA) & (1 << 13),
        0,
        "DLL link active"
    );
    assert_eq!(cs.u32_at(off + pcie_reg::SLTCAP) >> 19, 0x1fff);
    assert_eq!(cs.u16_at(off + pcie_reg::SLTSTA), 1 << 6);
    // Root control is writable, root status PME is RW1C.
    cs.write(off + pcie_reg::RTCTL, &[0xff, 0xff]);
    assert_eq!(cs.u16_at(off + pcie_reg::RTCTL), 0xf);
    cs.set_u32(off + pcie_reg::RTSTA, 1 << 16);
    cs.write(off + pcie_reg::RTSTA, &(1u32 << 16).to_le_bytes());
    assert_eq!(cs.u32_at(off + pcie_reg::RTSTA), 0);
}

#[test]
fn switch_ports() {
    let (cs, off) = build(PciExpressCapability::new(PortType::UpstreamPort));
    assert_eq!(cs.u16_at(off + pcie_reg::CAPS), 0x0052);
    assert_eq!(cs.u16_at(off + pcie_reg::SLTSTA), 0);
    let (cs, off) = build(PciExpressCapability::new(PortType::DownstreamPort));
    assert_eq!(cs.u16_at(off + pcie_reg::CAPS), 0x0062);
    assert_eq!(cs.u16_at(off + pcie_reg::SLTSTA), 1 << 6);
    assert_eq!(cs.u16_at(off + pcie_reg::LNKSTA) & 0x3ff, 0x11);
}

#[test]
fn integrated_endpoint_has_no_link() {
    let cap = PciExpressCapability::new(PortType::RootComplexIntegratedEndpoint)
        .link(LinkSpeed::Gt8, LinkWidth::X4);
    let (cs, off) = build(cap);
    assert_eq!(cs.u16_at(off + pcie_reg::CAPS), 0x0092);
    for r in [pcie_reg::LNKCAP, pcie_reg::LNKCAP2] {
        assert_eq!(cs.u32_at(off + r), 0);
    }
    assert_eq!(cs.u16_at(off + pcie_reg::LNKSTA), 0);
}

#[test]
fn device_control_and_status_masks() {
    let (mut cs, off) = build(PciExpressCapability::new(PortType::Endpoint));
    // Defaults: relaxed ordering, no snoop, 512-byte MRRS.
    assert_eq!(cs.u16_at(off + pcie_reg::DEVCTL), 0x2810);
    cs.write(off + pcie_reg::DEVCTL, &[0xff, 0xff]);
    assert_eq!(cs.u16_at(off + pcie_reg::DEVCTL), 0x79ff);
    cs.set_u16(off + pcie_reg::DEVSTA, 0x002f);
    cs.write(off + pcie_reg::DEVSTA, &[0x05, 0xff]);
    assert_eq!(cs.u16_at(off + pcie_reg::DEVSTA), 0x002a);
    // Capability registers are RO.
    cs.write(off + pcie_reg::DEVCAP, &[0; 4]);
    assert_ne!(cs.u32_at(off + pcie_reg::DEVCAP), 0);
}

#[test]
fn slot_errors() {
    let mut cs = ConfigSpace::new();
    let ep = PciExpressCapability::new(PortType::Endpoint).slot(1);
    assert_eq!(
        ep.add_to(&mut cs),
        Err(Error::SlotNotAllowed(PortType::Endpoint))
    );
    let dp = PciExpressCapability::new(PortType::DownstreamPort).slot(0x2000);
    assert!(matches!(
        dp.add_to(&mut cs),
        Err(Error::FieldOutOfRange { .. })
    ));
    assert_eq!(cs.capabilities().count(), 0);
}
