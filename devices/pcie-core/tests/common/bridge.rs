//! A minimal Type 1 bridge for fabric tests: bus numbers, windows, bridge
//! control, a PCIe capability with a port number and an optional ACS
//! capability built with `add_ext_capability`.

use pcie_core::{
    bridge_reg as br, ext_cap_id, reg, AcsBits, ClassCode, CommonHeader, ConfigEffects,
    ConfigSpace, HeaderLayout, InterruptPin, MsiMessage, PciExpressCapability, PciFunction,
    PortType, ResetKind, Watch,
};

/// Bits of the egress control vector a test bridge implements.
pub const EGRESS_BITS: u8 = 8;

/// A root port, switch upstream port or switch downstream port.
pub struct TestBridge {
    port_type: PortType,
    port: u8,
    acs: AcsBits,
    space: ConfigSpace,
    link_up: bool,
}

/// The interrupt a test bridge raises on every link change: to APIC 2,
/// vector 0x50 plus its port number.
pub fn link_msi(port: u8) -> MsiMessage {
    MsiMessage {
        addr: 0xfee0_2000,
        data: 0x50 + u32::from(port),
    }
}

impl TestBridge {
    /// A bridge of `port_type` with port number `port`, implementing the
    /// ACS bits `acs` (no ACS capability when empty).
    pub fn new(port_type: PortType, port: u8, acs: AcsBits) -> Self {
        TestBridge {
            port_type,
            port,
            acs,
            space: build(port_type, port, acs),
            link_up: true,
        }
    }

    /// A root port with every ACS bit.
    pub fn root_port(port: u8) -> Box<Self> {
        Box::new(Self::new(PortType::RootPort, port, AcsBits::ALL))
    }

    /// A switch upstream port, without ACS.
    pub fn upstream() -> Box<Self> {
        Box::new(Self::new(PortType::UpstreamPort, 0, AcsBits::NONE))
    }

    /// A switch downstream port with every ACS bit.
    pub fn downstream(port: u8) -> Box<Self> {
        Box::new(Self::new(PortType::DownstreamPort, port, AcsBits::ALL))
    }
}

impl TestBridge {
    fn reflect_link(&mut self) {
        let cap = self
            .space
            .capabilities()
            .find(|c| c.id == pcie_core::cap_id::PCI_EXPRESS)
            .expect("PCIe capability");
        let off = cap.offset + pcie_core::pcie_reg::LNKSTA;
        let v = self.space.u16_at(off) & !pcie_core::pcie_lnksta::DLLLA;
        let active = if self.link_up && self.port_type.is_downstream_port() {
            pcie_core::pcie_lnksta::DLLLA
        } else {
            0
        };
        self.space.set_u16(off, v | active);
    }
}

fn build(port_type: PortType, port: u8, acs: AcsBits) -> ConfigSpace {
    let mut s = ConfigSpace::new();
    CommonHeader {
        vendor_id: 0x1b36,
        device_id: 0x000c + port_type as u16,
        revision_id: 0,
        class_code: ClassCode::PCI_BRIDGE,
        multifunction: false,
        interrupt_pin: InterruptPin::None,
    }
    .apply(&mut s, HeaderLayout::Type1)
    .unwrap();
    s.set_writable_mask(br::PRIMARY_BUS, &[0xff, 0xff, 0xff]);
    s.set_bytes(br::IO_BASE, &[br::WIDE_DECODE, br::WIDE_DECODE]);
    s.set_writable_mask(br::IO_BASE, &[0xf0, 0xf0]);
    s.set_writable_mask(br::MEMORY_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    s.set_bytes(br::PREF_BASE, &[br::WIDE_DECODE, 0, br::WIDE_DECODE, 0]);
    s.set_writable_mask(br::PREF_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    s.set_writable_mask(br::PREF_BASE_UPPER, &[0xff; 8]);
    s.set_writable_mask(br::IO_BASE_UPPER, &[0xff; 4]);
    s.set_writable_mask(br::BRIDGE_CONTROL, &[0x4f, 0]);
    PciExpressCapability::new(port_type)
        .port_number(port)
        .add_to(&mut s)
        .unwrap();
    if !acs.is_empty() {
        let ec = acs.contains(AcsBits::EC);
        let vector = if ec { u16::from(EGRESS_BITS) << 8 } else { 0 };
        let mut body = Vec::from((acs.bits() | vector).to_le_bytes());
        let mut mask = vec![0, 0];
        body.extend([0, 0]);
        mask.extend(acs.bits().to_le_bytes());
        if ec {
            body.extend([0; 4]);
            mask.extend([0xff, 0, 0, 0]);
        }
        s.add_ext_capability(ext_cap_id::ACS, 1, &body, &mask)
            .unwrap();
    }
    s
}

impl PciFunction for TestBridge {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.space.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let watches: [Watch; 2] = [
            (reg::COMMAND..reg::COMMAND + 2, ConfigEffects::COMMAND),
            (br::PRIMARY_BUS..0x40, ConfigEffects::BRIDGE),
        ];
        self.space.write_watched(offset, data, &watches)
    }

    fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
        data.fill(0xff)
    }

    fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}

    fn reset(&mut self, _kind: ResetKind) {
        self.space = build(self.port_type, self.port, self.acs);
        self.reflect_link();
    }

    /// Downstream-facing ports: Data Link Layer Link Active follows `up`,
    /// and every change raises [`link_msi`].
    fn set_link(&mut self, up: bool) -> Result<Option<MsiMessage>, String> {
        if !self.port_type.is_downstream_port() {
            return Err("no link below".into());
        }
        let changed = self.link_up != up;
        self.link_up = up;
        self.reflect_link();
        Ok(changed.then(|| link_msi(self.port)))
    }
}
