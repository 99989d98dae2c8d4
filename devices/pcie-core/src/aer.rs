//! Advanced Error Reporting (PCIe Base, "Advanced Error Reporting
//! Capability", ID 0x0001, version 2), for every function: the capability,
//! and the error messages (ERR_COR, ERR_NONFATAL, ERR_FATAL) that a
//! function sends up to its root port, which logs them in Root Error
//! Status and raises its interrupt.

use std::ops::Range;

use crate::{ext_cap_id, ConfigSpace, Error};

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
    /// Root Error Status: ERR_COR Received.
    pub const ROOT_COR_RECEIVED: u32 = 1 << 0;
    /// Root Error Status: Multiple ERR_COR Received.
    pub const ROOT_MULTI_COR: u32 = 1 << 1;
    /// Root Error Status: ERR_FATAL/NONFATAL Received.
    pub const ROOT_UNCOR_RECEIVED: u32 = 1 << 2;
    /// Root Error Status: Multiple ERR_FATAL/NONFATAL Received.
    pub const ROOT_MULTI_UNCOR: u32 = 1 << 3;
    /// Root Error Status: First Uncorrectable Fatal.
    pub const ROOT_FIRST_FATAL: u32 = 1 << 4;
    /// Root Error Status: Non-Fatal Error Messages Received.
    pub const ROOT_NONFATAL_RECEIVED: u32 = 1 << 5;
    /// Root Error Status: Fatal Error Messages Received.
    pub const ROOT_FATAL_RECEIVED: u32 = 1 << 6;
    /// Root Error Command: Correctable Error Reporting Enable.
    pub const ROOT_COR_ENABLE: u32 = 1 << 0;
    /// Root Error Command: Non-Fatal Error Reporting Enable.
    pub const ROOT_NONFATAL_ENABLE: u32 = 1 << 1;
    /// Root Error Command: Fatal Error Reporting Enable.
    pub const ROOT_FATAL_ENABLE: u32 = 1 << 2;
    /// Correctable Error Status: Receiver Error.
    pub const COR_RECEIVER_ERROR: u32 = 1 << 0;
}

/// The severity of an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSeverity {
    /// ERR_COR.
    Correctable,
    /// ERR_NONFATAL.
    NonFatal,
    /// ERR_FATAL.
    Fatal,
}

/// An error message as a root port receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorMessage {
    /// ERR_COR, ERR_NONFATAL or ERR_FATAL.
    pub severity: ErrorSeverity,
    /// The requester ID of the function that sent it.
    pub source: u16,
}

/// Adds the AER capability. Root-port-only registers are implemented when
/// `root_port`, otherwise they read zero. Returns its offset.
pub fn add(space: &mut ConfigSpace, root_port: bool) -> Result<u16, Error> {
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
pub fn sticky_ranges(offset: u16) -> [Range<u16>; 2] {
    use aer_reg::*;
    [
        offset + UNCOR_STATUS..offset + ROOT_COMMAND,
        offset + ROOT_STATUS..offset + TLP_PREFIX_LOG,
    ]
}

/// A root port's AER capability at `offset` receives `msg`: Root Error
/// Status and Error Source Identification log it (the "multiple" bits when
/// one of its kind is logged already). Returns whether Root Error Command
/// enables reporting it, that is whether the port must raise its
/// interrupt.
pub fn log_at_root(space: &mut ConfigSpace, offset: u16, msg: ErrorMessage) -> bool {
    use aer_reg::*;
    let status = space.u32_at(offset + ROOT_STATUS);
    let source = space.u32_at(offset + ERROR_SOURCE);
    let command = space.u32_at(offset + ROOT_COMMAND);
    let (mut st, mut src) = (status, source);
    let enable = match msg.severity {
        ErrorSeverity::Correctable => {
            if status & ROOT_COR_RECEIVED != 0 {
                st |= ROOT_MULTI_COR;
            } else {
                st |= ROOT_COR_RECEIVED;
                src = (src & 0xffff_0000) | u32::from(msg.source);
            }
            ROOT_COR_ENABLE
        }
        sev => {
            let fatal = sev == ErrorSeverity::Fatal;
            if status & ROOT_UNCOR_RECEIVED != 0 {
                st |= ROOT_MULTI_UNCOR;
            } else {
                st |= ROOT_UNCOR_RECEIVED;
                src = (src & 0xffff) | u32::from(msg.source) << 16;
                if fatal {
                    st |= ROOT_FIRST_FATAL;
                }
            }
            st |= if fatal {
                ROOT_FATAL_RECEIVED
            } else {
                ROOT_NONFATAL_RECEIVED
            };
            if fatal {
                ROOT_FATAL_ENABLE
            } else {
                ROOT_NONFATAL_ENABLE
            }
        }
    };
    space.set_u32(offset + ROOT_STATUS, st);
    space.set_u32(offset + ERROR_SOURCE, src);
    command & enable != 0
}
