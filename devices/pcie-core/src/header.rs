//! The part of the config header shared by Type 0 (endpoint) and Type 1
//! (bridge) functions: register offsets, command and status bits, IDs.

use crate::{ConfigSpace, Error};

/// Offsets of the registers shared by Type 0 and Type 1 headers, and of the
/// Type 0-only ones.
pub mod reg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION_ID: u16 = 0x08;
    /// Programming interface, the low byte of the class code.
    pub const CLASS_PROG_IF: u16 = 0x09;
    /// Sub-class.
    pub const CLASS_SUB: u16 = 0x0a;
    /// Base class.
    pub const CLASS_BASE: u16 = 0x0b;
    /// Cache line size (8 bits, read-write, no effect on PCIe).
    pub const CACHE_LINE_SIZE: u16 = 0x0c;
    /// Latency timer (8 bits, hardwired 0 on PCIe).
    pub const LATENCY_TIMER: u16 = 0x0d;
    /// Header type: layout in bits 6:0, multi-function in bit 7.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// BIST (8 bits, unimplemented: 0).
    pub const BIST: u16 = 0x0f;
    /// First BAR register.
    pub const BAR0: u16 = 0x10;
    /// Subsystem vendor ID (Type 0 only).
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
    /// Subsystem ID (Type 0 only).
    pub const SUBSYSTEM_ID: u16 = 0x2e;
    /// Expansion ROM base address (Type 0; 0x38 in Type 1).
    pub const EXPANSION_ROM: u16 = 0x30;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITIES_POINTER: u16 = 0x34;
    /// Interrupt line (8 bits, scratch for software).
    pub const INTERRUPT_LINE: u16 = 0x3c;
    /// Interrupt pin (8 bits): 0 none, 1..=4 INTA..INTD.
    pub const INTERRUPT_PIN: u16 = 0x3d;
}

/// Command register bits.
pub mod command {
    /// I/O Space Enable.
    pub const IO_SPACE: u16 = 1 << 0;
    /// Memory Space Enable.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// Bus Master Enable.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Parity Error Response.
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 6;
    /// SERR# Enable.
    pub const SERR_ENABLE: u16 = 1 << 8;
    /// Interrupt Disable (INTx).
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// The bits a guest may write.
    pub const WRITABLE: u16 =
        IO_SPACE | MEMORY_SPACE | BUS_MASTER | PARITY_ERROR_RESPONSE | SERR_ENABLE | INTX_DISABLE;
}

/// Status register bits.
pub mod status {
    /// Interrupt Status: an INTx is pending (set by the device model).
    pub const INTERRUPT_STATUS: u16 = 1 << 3;
    /// Capabilities List: the capabilities pointer at 0x34 is valid.
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
    /// Master Data Parity Error (RW1C).
    pub const MASTER_DATA_PARITY_ERROR: u16 = 1 << 8;
    /// Signaled Target Abort (RW1C).
    pub const SIGNALED_TARGET_ABORT: u16 = 1 << 11;
    /// Received Target Abort (RW1C).
    pub const RECEIVED_TARGET_ABORT: u16 = 1 << 12;
    /// Received Master Abort (RW1C).
    pub const RECEIVED_MASTER_ABORT: u16 = 1 << 13;
    /// Signaled System Error (RW1C).
    pub const SIGNALED_SYSTEM_ERROR: u16 = 1 << 14;
    /// Detected Parity Error (RW1C).
    pub const DETECTED_PARITY_ERROR: u16 = 1 << 15;
    /// The bits a guest clears by writing 1.
    pub const W1C: u16 = MASTER_DATA_PARITY_ERROR
        | SIGNALED_TARGET_ABORT
        | RECEIVED_TARGET_ABORT
        | RECEIVED_MASTER_ABORT
        | SIGNALED_SYSTEM_ERROR
        | DETECTED_PARITY_ERROR;
}

/// A 24-bit class code: base class, sub-class and programming interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassCode {
    /// Base class (offset 0x0B).
    pub base: u8,
    /// Sub-class (offset 0x0A).
    pub sub: u8,
    /// Programming interface (offset 0x09).
    pub prog_if: u8,
}

impl ClassCode {
    /// Host bridge, 06/00/00.
    pub const HOST_BRIDGE: Self = ClassCode::new(0x06, 0x00, 0x00);
    /// PCI-to-PCI bridge (root and switch ports), 06/04/00.
    pub const PCI_BRIDGE: Self = ClassCode::new(0x06, 0x04, 0x00);

    /// A class code from its three bytes.
    pub const fn new(base: u8, sub: u8, prog_if: u8) -> Self {
        ClassCode { base, sub, prog_if }
    }
}

/// Legacy interrupt pin a function uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InterruptPin {
    /// No INTx.
    #[default]
    None = 0,
    /// INTA#.
    IntA = 1,
    /// INTB#.
    IntB = 2,
    /// INTC#.
    IntC = 3,
    /// INTD#.
    IntD = 4,
}

/// Layout of the header (bits 6:0 of the header type register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderLayout {
    /// Type 0: endpoints and host bridges.
    Type0 = 0,
    /// Type 1: PCI-to-PCI bridges (root ports, switch ports).
    Type1 = 1,
}

/// Fields shared by Type 0 and Type 1 headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonHeader {
    /// Vendor ID; 0x0000 and 0xFFFF are rejected.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision_id: u8,
    /// Class code.
    pub class_code: ClassCode,
    /// Sets header type bit 7: the device has functions besides 0.
    pub multifunction: bool,
    /// INTx pin used.
    pub interrupt_pin: InterruptPin,
}

impl CommonHeader {
    /// Writes the shared header into `space` and sets its masks: command bits
    /// writable as in [`command::WRITABLE`], status bits RW1C as in
    /// [`status::W1C`], cache line size and interrupt line writable,
    /// everything else read-only.
    pub fn apply(&self, space: &mut ConfigSpace, layout: HeaderLayout) -> Result<(), Error> {
        if self.vendor_id == 0 || self.vendor_id == 0xffff {
            return Err(Error::InvalidVendorId(self.vendor_id));
        }
        space.set_u16(reg::VENDOR_ID, self.vendor_id);
        space.set_u16(reg::DEVICE_ID, self.device_id);
        space.set_u8(reg::REVISION_ID, self.revision_id);
        space.set_u8(reg::CLASS_PROG_IF, self.class_code.prog_if);
        space.set_u8(reg::CLASS_SUB, self.class_code.sub);
        space.set_u8(reg::CLASS_BASE, self.class_code.base);
        let mf = if self.multifunction { 0x80 } else { 0 };
        space.set_u8(reg::HEADER_TYPE, layout as u8 | mf);
        space.set_u8(reg::INTERRUPT_PIN, self.interrupt_pin as u8);
        space.set_writable_mask(reg::COMMAND, &command::WRITABLE.to_le_bytes());
        space.set_w1c_mask(reg::STATUS, &status::W1C.to_le_bytes());
        space.set_writable_mask(reg::CACHE_LINE_SIZE, &[0xff]);
        space.set_writable_mask(reg::INTERRUPT_LINE, &[0xff]);
        Ok(())
    }
}
