//! MSI (PCI Local Bus / PCIe Base, "MSI Capability Structure") for every
//! function: the 64-bit capability with one vector and no per-vector
//! masking, and the message it is programmed to send.

use crate::{cap_id, ConfigSpace, Error, MsiMessage};

/// MSI capability registers (64-bit, no per-vector masking), as offsets
/// from its header.
pub mod msi_reg {
    /// Message Control (16 bits).
    pub const CONTROL: u16 = 0x02;
    /// Message Address, bits 31:2 (bits 1:0 read zero).
    pub const ADDRESS_LO: u16 = 0x04;
    /// Message Upper Address, bits 63:32.
    pub const ADDRESS_HI: u16 = 0x08;
    /// Message Data (16 bits).
    pub const DATA: u16 = 0x0c;
    /// Message Control: MSI Enable.
    pub const ENABLE: u16 = 1 << 0;
    /// Message Control: Multiple Message Enable field (bits 6:4).
    pub const MULTIPLE_MESSAGE_ENABLE: u16 = 0x0070;
    /// Message Control: 64-bit Address Capable.
    pub const ADDRESS_64: u16 = 1 << 7;
}

/// Adds a 64-bit MSI capability with one vector and no per-vector masking:
/// enable, multiple message enable, address (dword-aligned) and data are
/// writable; the capability bits are read-only.
pub fn add_msi(space: &mut ConfigSpace) -> Result<u16, Error> {
    use msi_reg::*;
    let mut body = [0u8; 14];
    let mut mask = [0u8; 14];
    let mut put = |off: u16, value: &[u8], writable: &[u8]| {
        let at = off as usize - 2;
        body[at..at + value.len()].copy_from_slice(value);
        mask[at..at + value.len()].copy_from_slice(writable);
    };
    put(
        CONTROL,
        &ADDRESS_64.to_le_bytes(),
        &(ENABLE | MULTIPLE_MESSAGE_ENABLE).to_le_bytes(),
    );
    put(ADDRESS_LO, &[0; 4], &0xffff_fffc_u32.to_le_bytes());
    put(ADDRESS_HI, &[0; 4], &[0xff; 4]);
    put(DATA, &[0; 2], &[0xff; 2]);
    space.add_capability(cap_id::MSI, &body, &mask)
}

/// The programmed message of the MSI capability at `offset`, when enabled.
pub fn msi_message(space: &ConfigSpace, offset: u16) -> Option<MsiMessage> {
    use msi_reg::*;
    if space.u16_at(offset + CONTROL) & ENABLE == 0 {
        return None;
    }
    let address = u64::from(space.u32_at(offset + ADDRESS_HI)) << 32
        | u64::from(space.u32_at(offset + ADDRESS_LO));
    Some(MsiMessage {
        addr: address,
        data: u32::from(space.u16_at(offset + DATA)),
    })
}
