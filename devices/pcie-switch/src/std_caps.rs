//! The standard (non-PCIe) capabilities of a bridge port: Power Management
//! and MSI.

use pcie_core::{cap_id, ConfigSpace, MsiMessage};

use crate::Error;

/// Power Management capability registers, as offsets from its header.
pub mod pm_reg {
    /// Power Management Capabilities (16 bits).
    pub const PMC: u16 = 0x02;
    /// Power Management Control/Status (16 bits).
    pub const PMCSR: u16 = 0x04;
    /// Version 3 of the PCI Bus Power Management Interface specification.
    pub const VERSION: u16 = 3;
    /// PMCSR No_Soft_Reset: leaving D3hot keeps the function's state.
    pub const NO_SOFT_RESET: u16 = 1 << 3;
}

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

/// Adds a version 3 Power Management capability that supports D0 only:
/// PMCSR's power state and PME bits are read-only zero (a write of another
/// state is discarded, as for any unsupported state), No_Soft_Reset is set.
pub(crate) fn add_power_management(space: &mut ConfigSpace) -> Result<u16, Error> {
    let pmc = pm_reg::VERSION;
    let pmcsr = pm_reg::NO_SOFT_RESET;
    let mut body = [0u8; 6];
    body[0..2].copy_from_slice(&pmc.to_le_bytes());
    body[2..4].copy_from_slice(&pmcsr.to_le_bytes());
    // PMCSR_BSE and Data (bytes 6 and 7) read zero.
    Ok(space.add_capability(cap_id::POWER_MANAGEMENT, &body, &[0; 6])?)
}

/// Adds a 64-bit MSI capability with one vector and no per-vector masking:
/// enable, multiple message enable, address (dword-aligned) and data are
/// writable; the capability bits are read-only.
pub(crate) fn add_msi(space: &mut ConfigSpace) -> Result<u16, Error> {
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
    Ok(space.add_capability(cap_id::MSI, &body, &mask)?)
}

/// The programmed message of the MSI capability at `offset`, when enabled.
pub(crate) fn msi_message(space: &ConfigSpace, offset: u16) -> Option<MsiMessage> {
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
