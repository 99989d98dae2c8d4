//! The Advanced Error Reporting extended capability (ID 0x0001, version 2).

use std::ops::Range;

use pcie_core::{ext_cap_id, ConfigSpace};

use crate::Error;

/// AER registers, as offsets from the capability header.
pub mod aer_reg {
    /// Uncorrectable Error Status (32 bits, RW1CS).
    pub const UNCOR_STATUS: u16 = 0x04;
    /// Uncorrectable Error Mask (32 bits, RWS).
    pub const UNCOR_MASK: u16 = 0x08;
    /// Uncorrectable Error Severity (32 bits, RWS).
    pub const UNCOR_SEVERITY: u16 = 0x0c;
    /// Correctable Error Status (32 bits, RW1CS).
    pub const COR_STATUS: u16 = 0x10;
    /// Correctable Error Mask (32 bits, RWS).
    pub const COR_MASK: u16 = 0x14;
    /// Advanced Error Capabilities and Control (32 bits; no ECRC: read-only).
    pub const CAP_CONTROL: u16 = 0x18;
    /// Header Log (4 dwords, ROS).
    pub const HEADER_LOG: u16 = 0x1c;
    /// Root Error Command (32 bits, root ports only).
    pub const ROOT_COMMAND: u16 = 0x2c;
    /// Root Error Status (32 bits, RW1CS, root ports only).
    pub const ROOT_STATUS: u16 = 0x30;
    /// Error Source Identification (32 bits, ROS, root ports only).
    pub const ERROR_SOURCE: u16 = 0x34;
    /// TLP Prefix Log (4 dwords; no prefixes: zero).
    pub const TLP_PREFIX_LOG: u16 = 0x38;
    /// Length of the capability, header included.
    pub const LEN: u16 = 0x48;

    /// Uncorrectable errors implemented (status, mask and severity bits):
    /// data link protocol, surprise down, poisoned TLP, flow control
    /// protocol, completion timeout, completer abort, unexpected completion,
    /// receiver overflow, malformed TLP, ECRC, unsupported request, ACS
    /// violation, uncorrectable internal error.
    pub const UNCOR_IMPLEMENTED: u32 = 0x007f_f030;
    /// Uncorrectable Error Mask default: uncorrectable internal error masked.
    pub const UNCOR_MASK_DEFAULT: u32 = 0x0040_0000;
    /// Uncorrectable Error Severity default: data link protocol, surprise
    /// down, flow control protocol, receiver overflow, malformed TLP and
    /// uncorrectable internal error are fatal.
    pub const UNCOR_SEVERITY_DEFAULT: u32 = 0x0046_2030;
    /// Correctable errors implemented: receiver error, bad TLP, bad DLLP,
    /// replay rollover, replay timeout, advisory non-fatal, corrected
    /// internal, header log overflow.
    pub const COR_IMPLEMENTED: u32 = 0x0000_f1c1;
    /// Correctable Error Mask default: advisory non-fatal, corrected
    /// internal and header log overflow masked.
    pub const COR_MASK_DEFAULT: u32 = 0x0000_e000;
    /// Root Error Command: correctable, non-fatal and fatal reporting enables.
    pub const ROOT_COMMAND_WRITABLE: u32 = 0x7;
    /// Root Error Status bits cleared by writing 1 (bits 6:0).
    pub const ROOT_STATUS_W1C: u32 = 0x7f;
}

/// Adds the AER capability. Root-port-only registers are implemented when
/// `root_port`, otherwise they read zero.
pub(crate) fn add(space: &mut ConfigSpace, root_port: bool) -> Result<u16, Error> {
    use aer_reg::*;
    const BODY: usize = LEN as usize - 4;
    let mut body = [0u8; BODY];
    let mut writable = [0u8; BODY];
    let mut w1c = [0u8; BODY];
    let mut put = |off: u16, value: u32, rw: u32, c: u32| {
        let at = off as usize - 4;
        body[at..at + 4].copy_from_slice(&value.to_le_bytes());
        writable[at..at + 4].copy_from_slice(&rw.to_le_bytes());
        w1c[at..at + 4].copy_from_slice(&c.to_le_bytes());
    };
    put(UNCOR_STATUS, 0, 0, UNCOR_IMPLEMENTED);
    put(UNCOR_MASK, UNCOR_MASK_DEFAULT, UNCOR_IMPLEMENTED, 0);
    put(UNCOR_SEVERITY, UNCOR_SEVERITY_DEFAULT, UNCOR_IMPLEMENTED, 0);
    put(COR_STATUS, 0, 0, COR_IMPLEMENTED);
    put(COR_MASK, COR_MASK_DEFAULT, COR_IMPLEMENTED, 0);
    if root_port {
        put(ROOT_COMMAND, 0, ROOT_COMMAND_WRITABLE, 0);
        put(ROOT_STATUS, 0, 0, ROOT_STATUS_W1C);
    }
    let offset = space.add_ext_capability(ext_cap_id::AER, 2, &body, &writable)?;
    space.set_w1c_mask(offset + 4, &w1c);
    Ok(offset)
}

/// The sticky registers of the capability at `offset` (kept across hot
/// and function-level resets): everything from the uncorrectable status to
/// the header log, then root error status and error source.
pub(crate) fn sticky_ranges(offset: u16) -> [Range<u16>; 2] {
    use aer_reg::*;
    [
        offset + UNCOR_STATUS..offset + ROOT_COMMAND,
        offset + ROOT_STATUS..offset + TLP_PREFIX_LOG,
    ]
}
