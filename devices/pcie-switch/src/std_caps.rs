//! The standard (non-PCIe) capabilities of a bridge port: Power Management
//! (MSI is pcie-core's).

use pcie_core::{cap_id, ConfigSpace};

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
