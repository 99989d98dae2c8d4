//! Builder for the PCI Express capability (ID 0x10, version 2).

use crate::capability::cap_id;
use crate::{ConfigSpace, Error};

/// Register offsets inside the PCI Express capability, from its header.
pub mod pcie_reg {
    /// PCI Express Capabilities register (16 bits): version, port type, slot implemented.
    pub const CAPS: u16 = 0x02;
    /// Device Capabilities (32 bits).
    pub const DEVCAP: u16 = 0x04;
    /// Device Control (16 bits).
    pub const DEVCTL: u16 = 0x08;
    /// Device Status (16 bits).
    pub const DEVSTA: u16 = 0x0a;
    /// Link Capabilities (32 bits).
    pub const LNKCAP: u16 = 0x0c;
    /// Link Control (16 bits).
    pub const LNKCTL: u16 = 0x10;
    /// Link Status (16 bits).
    pub const LNKSTA: u16 = 0x12;
    /// Slot Capabilities (32 bits).
    pub const SLTCAP: u16 = 0x14;
    /// Slot Control (16 bits).
    pub const SLTCTL: u16 = 0x18;
    /// Slot Status (16 bits).
    pub const SLTSTA: u16 = 0x1a;
    /// Root Control (16 bits).
    pub const RTCTL: u16 = 0x1c;
    /// Root Status (32 bits).
    pub const RTSTA: u16 = 0x20;
    /// Device Capabilities 2 (32 bits).
    pub const DEVCAP2: u16 = 0x24;
    /// Device Control 2 (16 bits).
    pub const DEVCTL2: u16 = 0x28;
    /// Link Capabilities 2 (32 bits): supported link speeds vector.
    pub const LNKCAP2: u16 = 0x2c;
    /// Link Control 2 (16 bits): target link speed.
    pub const LNKCTL2: u16 = 0x30;
    /// Total length of a version 2 capability, header included.
    pub const LEN: usize = 0x3c;
}

/// Device Control register bits.
pub mod pcie_devctl {
    /// Correctable Error Reporting Enable.
    pub const COR_ERR_REPORTING: u16 = 1 << 0;
    /// Non-Fatal Error Reporting Enable.
    pub const NONFATAL_ERR_REPORTING: u16 = 1 << 1;
    /// Fatal Error Reporting Enable.
    pub const FATAL_ERR_REPORTING: u16 = 1 << 2;
}

/// Link Capabilities register bits.
pub mod pcie_lnkcap {
    /// Data Link Layer Link Active Reporting Capable.
    pub const DLLLA_REPORTING: u32 = 1 << 20;
}

/// Link Status register bits.
pub mod pcie_lnksta {
    /// Data Link Layer Link Active.
    pub const DLLLA: u16 = 1 << 13;
}

/// Slot Capabilities register bits.
pub mod pcie_sltcap {
    /// Hot-Plug Surprise: the card may be removed without notice.
    pub const HOT_PLUG_SURPRISE: u32 = 1 << 5;
    /// Hot-Plug Capable.
    pub const HOT_PLUG_CAPABLE: u32 = 1 << 6;
    /// No Command Completed Support: Slot Control writes take effect at once.
    pub const NO_COMMAND_COMPLETED: u32 = 1 << 18;
    /// Physical Slot Number, bits 31:19.
    pub const PHYSICAL_SLOT_SHIFT: u32 = 19;
}

/// Slot Control register bits.
pub mod pcie_sltctl {
    /// Attention Button Pressed Enable.
    pub const ABPE: u16 = 1 << 0;
    /// Power Fault Detected Enable.
    pub const PFDE: u16 = 1 << 1;
    /// MRL Sensor Changed Enable.
    pub const MRLSCE: u16 = 1 << 2;
    /// Presence Detect Changed Enable.
    pub const PDCE: u16 = 1 << 3;
    /// Command Completed Interrupt Enable.
    pub const CCIE: u16 = 1 << 4;
    /// Hot-Plug Interrupt Enable.
    pub const HPIE: u16 = 1 << 5;
    /// Data Link Layer State Changed Enable.
    pub const DLLSCE: u16 = 1 << 12;
    /// The enables a hot-plug slot without indicators or power control has.
    pub const HOT_PLUG_WRITABLE: u16 = ABPE | PFDE | MRLSCE | PDCE | CCIE | HPIE | DLLSCE;
}

/// Slot Status register bits.
pub mod pcie_sltsta {
    /// Attention Button Pressed (RW1C).
    pub const ABP: u16 = 1 << 0;
    /// Power Fault Detected (RW1C).
    pub const PFD: u16 = 1 << 1;
    /// MRL Sensor Changed (RW1C).
    pub const MRLSC: u16 = 1 << 2;
    /// Presence Detect Changed (RW1C).
    pub const PDC: u16 = 1 << 3;
    /// Command Completed (RW1C).
    pub const CC: u16 = 1 << 4;
    /// Presence Detect State: a card is in the slot.
    pub const PDS: u16 = 1 << 6;
    /// Data Link Layer State Changed (RW1C).
    pub const DLLSC: u16 = 1 << 8;
    /// Every RW1C event bit.
    pub const EVENTS: u16 = ABP | PFD | MRLSC | PDC | CC | DLLSC;
}

/// Device/port type (PCI Express Capabilities register bits 7:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortType {
    /// PCI Express endpoint.
    Endpoint = 0x0,
    /// Root port of a root complex.
    RootPort = 0x4,
    /// Upstream port of a switch.
    UpstreamPort = 0x5,
    /// Downstream port of a switch.
    DownstreamPort = 0x6,
    /// Root complex integrated endpoint (no link).
    RootComplexIntegratedEndpoint = 0x9,
}

impl PortType {
    /// Whether a link sits below this function (all but integrated endpoints).
    pub const fn has_link(self) -> bool {
        !matches!(self, PortType::RootComplexIntegratedEndpoint)
    }

    /// Whether this is a downstream-facing port (root or switch downstream).
    pub const fn is_downstream_port(self) -> bool {
        matches!(self, PortType::RootPort | PortType::DownstreamPort)
    }
}

/// Link speed, as encoded in the link registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkSpeed {
    /// 2.5 GT/s (Gen 1).
    Gt2_5 = 1,
    /// 5 GT/s (Gen 2).
    Gt5 = 2,
    /// 8 GT/s (Gen 3).
    Gt8 = 3,
    /// 16 GT/s (Gen 4).
    Gt16 = 4,
    /// 32 GT/s (Gen 5).
    Gt32 = 5,
    /// 64 GT/s (Gen 6).
    Gt64 = 6,
}

/// Link width in lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkWidth {
    /// x1.
    X1 = 1,
    /// x2.
    X2 = 2,
    /// x4.
    X4 = 4,
    /// x8.
    X8 = 8,
    /// x12.
    X12 = 12,
    /// x16.
    X16 = 16,
    /// x32.
    X32 = 32,
}

impl LinkWidth {
    /// The width for a lane count, if PCIe defines one (1, 2, 4, 8, 12, 16, 32).
    pub const fn from_lanes(lanes: u8) -> Option<Self> {
        Some(match lanes {
            1 => LinkWidth::X1,
            2 => LinkWidth::X2,
            4 => LinkWidth::X4,
            8 => LinkWidth::X8,
            12 => LinkWidth::X12,
            16 => LinkWidth::X16,
            32 => LinkWidth::X32,
            _ => return None,
        })
    }
}

/// Max payload size, as encoded in Device Capabilities/Control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MaxPayload {
    /// 128 bytes.
    B128 = 0,
    /// 256 bytes.
    B256 = 1,
    /// 512 bytes.
    B512 = 2,
    /// 1024 bytes.
    B1024 = 3,
    /// 2048 bytes.
    B2048 = 4,
    /// 4096 bytes.
    B4096 = 5,
}

/// Builds a PCI Express capability and adds it to a config space.
///
/// The link is always up at its maximum speed and width. Downstream-facing
/// ports report Data Link Layer Link Active (and the capability to report
/// it) and a present slot. A slot may be surprise hot-plug capable
/// ([`hot_plug`](Self::hot_plug)); there is no ASPM or FLR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciExpressCapability {
    port_type: PortType,
    max_payload: MaxPayload,
    speed: LinkSpeed,
    width: LinkWidth,
    port_number: u8,
    slot: Option<u16>,
    hot_plug: bool,
}

impl PciExpressCapability {
    /// A capability of `port_type`: 256-byte max payload, 2.5 GT/s x1 link,
    /// port number 0, no slot.
    pub fn new(port_type: PortType) -> Self {
        PciExpressCapability {
            port_type,
            max_payload: MaxPayload::B256,
            speed: LinkSpeed::Gt2_5,
            width: LinkWidth::X1,
            port_number: 0,
            slot: None,
            hot_plug: false,
        }
    }

    /// Max payload size supported.
    pub fn max_payload(mut self, mps: MaxPayload) -> Self {
        self.max_payload = mps;
        self
    }

    /// Maximum (and current) link speed and width. Ignored for integrated endpoints.
    pub fn link(mut self, speed: LinkSpeed, width: LinkWidth) -> Self {
        self.speed = speed;
        self.width = width;
        self
    }

    /// Port number reported in Link Capabilities.
    pub fn port_number(mut self, port: u8) -> Self {
        self.port_number = port;
        self
    }

    /// Marks a slot implemented with this physical slot number (13 bits).
    /// Only root and downstream ports have slots.
    pub fn slot(mut self, physical_slot: u16) -> Self {
        self.slot = Some(physical_slot);
        self
    }

    /// Makes the slot surprise hot-plug capable: Slot Capabilities says
    /// Hot-Plug Capable, Hot-Plug Surprise and No Command Completed
    /// Support (no power controller, MRL, button or indicators), and Slot
    /// Control's event enables become writable. Needs a slot.
    pub fn hot_plug(mut self, on: bool) -> Self {
        self.hot_plug = on;
        self
    }

    /// The port type.
    pub fn port_type(&self) -> PortType {
        self.port_type
    }

    /// Adds the capability to `space` and returns its offset.
    pub fn add_to(&self, space: &mut ConfigSpace) -> Result<u16, Error> {
        if self.hot_plug && self.slot.is_none() {
            return Err(Error::HotPlugWithoutSlot);
        }
        if let Some(slot) = self.slot {
            if !self.port_type.is_downstream_port() {
                return Err(Error::SlotNotAllowed(self.port_type));
            }
            if slot > 0x1fff {
                return Err(Error::FieldOutOfRange {
                    field: "physical slot number",
                    value: slot.into(),
                });
            }
        }
        let mut regs = Regs::default();
        self.fill(&mut regs);
        let offset =
            space.add_capability(cap_id::PCI_EXPRESS, &regs.value[2..], &regs.writable[2..])?;
        space.set_w1c_mask(offset + 2, &regs.w1c[2..]);
        Ok(offset)
    }

    fn fill(&self, r: &mut Regs) {
        use pcie_reg::*;
        let down = self.port_type.is_downstream_port();
        let slot_bit = if self.slot.is_some() { 1 << 8 } else { 0 };
        r.set16(CAPS, 2 | (self.port_type as u16) << 4 | slot_bit, 0, 0);
        // Role-based error reporting, 8-bit tags.
        r.set32(DEVCAP, self.max_payload as u32 | 1 << 5 | 1 << 15, 0, 0);
        // Relaxed ordering and no snoop enabled, 512-byte max read request;
        // error reporting enables, MPS, extended tags, MRRS writable.
        r.set16(DEVCTL, 1 << 4 | 1 << 11 | 2 << 12, 0x79ff, 0);
        r.set16(DEVSTA, 0, 0, 0x000f);
        if self.port_type.has_link() {
            let (speed, width) = (self.speed as u32, self.width as u32);
            let dll = if down {
                pcie_lnkcap::DLLLA_REPORTING
            } else {
                0
            };
            r.set32(
                LNKCAP,
                speed | width << 4 | dll | (self.port_number as u32) << 24,
                0,
                0,
            );
            let link_disable = if down { 1 << 4 } else { 0 };
            r.set16(LNKCTL, 0, 0x00c3 | link_disable, 0);
            let active = if down { pcie_lnksta::DLLLA } else { 0 };
            r.set16(
                LNKSTA,
                (speed | width << 4) as u16 | 1 << 12 | active,
                0,
                0xc000,
            );
            r.set32(LNKCAP2, ((1 << speed) - 1) << 1, 0, 0);
            r.set16(LNKCTL2, speed as u16, 0x000f, 0);
        }
        if let Some(slot) = self.slot {
            use pcie_sltcap::*;
            let hp = if self.hot_plug {
                HOT_PLUG_CAPABLE | HOT_PLUG_SURPRISE | NO_COMMAND_COMPLETED
            } else {
                0
            };
            r.set32(SLTCAP, (slot as u32) << PHYSICAL_SLOT_SHIFT | hp, 0, 0);
            if self.hot_plug {
                r.set16(SLTCTL, 0, pcie_sltctl::HOT_PLUG_WRITABLE, 0);
            }
        }
        if down {
            // Presence Detect State: a card present (the owner may say not).
            r.set16(SLTSTA, pcie_sltsta::PDS, 0, pcie_sltsta::EVENTS);
        }
        if self.port_type == PortType::RootPort {
            r.set16(RTCTL, 0, 0x000f, 0);
            r.set32(RTSTA, 0, 0, 1 << 16);
        }
    }
}

/// Scratch values and masks of the capability while it is built.
struct Regs {
    value: [u8; pcie_reg::LEN],
    writable: [u8; pcie_reg::LEN],
    w1c: [u8; pcie_reg::LEN],
}

impl Default for Regs {
    fn default() -> Self {
        Regs {
            value: [0; pcie_reg::LEN],
            writable: [0; pcie_reg::LEN],
            w1c: [0; pcie_reg::LEN],
        }
    }
}

impl Regs {
    fn put(&mut self, off: u16, value: &[u8], writable: &[u8], w1c: &[u8]) {
        let range = off as usize..off as usize + value.len();
        self.value[range.clone()].copy_from_slice(value);
        self.writable[range.clone()].copy_from_slice(writable);
        self.w1c[range].copy_from_slice(w1c);
    }

    fn set16(&mut self, off: u16, value: u16, writable: u16, w1c: u16) {
        self.put(
            off,
            &value.to_le_bytes(),
            &writable.to_le_bytes(),
            &w1c.to_le_bytes(),
        );
    }

    fn set32(&mut self, off: u16, value: u32, writable: u32, w1c: u32) {
        self.put(
            off,
            &value.to_le_bytes(),
            &writable.to_le_bytes(),
            &w1c.to_le_bytes(),
        );
    }
}
