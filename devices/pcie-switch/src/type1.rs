//! The Type-1 (PCI-to-PCI bridge) header: register offsets, bridge control
//! bits, how the header is laid out with its masks, and how its windows decode.

use std::ops::RangeInclusive;

use pcie_core::{ClassCode, CommonHeader, ConfigSpace, HeaderLayout, InterruptPin};

use crate::{BridgeConfig, Error};

/// Offsets of the Type-1-only header registers (the shared ones are in
/// [`pcie_core::reg`]).
pub mod type1_reg {
    /// Primary bus number (8 bits).
    pub const PRIMARY_BUS: u16 = 0x18;
    /// Secondary bus number (8 bits).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Subordinate bus number (8 bits).
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Secondary latency timer (8 bits).
    pub const SECONDARY_LATENCY_TIMER: u16 = 0x1b;
    /// I/O base (8 bits): address bits 15:12 in 7:4, addressing type in 3:0.
    pub const IO_BASE: u16 = 0x1c;
    /// I/O limit (8 bits), encoded like the base.
    pub const IO_LIMIT: u16 = 0x1d;
    /// Secondary status (16 bits).
    pub const SECONDARY_STATUS: u16 = 0x1e;
    /// Memory base (16 bits): address bits 31:20 in 15:4.
    pub const MEMORY_BASE: u16 = 0x20;
    /// Memory limit (16 bits), encoded like the base.
    pub const MEMORY_LIMIT: u16 = 0x22;
    /// Prefetchable memory base (16 bits): address bits 31:20 in 15:4, type in 3:0.
    pub const PREF_BASE: u16 = 0x24;
    /// Prefetchable memory limit (16 bits), encoded like the base.
    pub const PREF_LIMIT: u16 = 0x26;
    /// Prefetchable base, address bits 63:32.
    pub const PREF_BASE_UPPER32: u16 = 0x28;
    /// Prefetchable limit, address bits 63:32.
    pub const PREF_LIMIT_UPPER32: u16 = 0x2c;
    /// I/O base, address bits 31:16.
    pub const IO_BASE_UPPER16: u16 = 0x30;
    /// I/O limit, address bits 31:16.
    pub const IO_LIMIT_UPPER16: u16 = 0x32;
    /// Expansion ROM base address of a Type-1 header (not implemented: zero).
    pub const EXPANSION_ROM: u16 = 0x38;
    /// Bridge control (16 bits).
    pub const BRIDGE_CONTROL: u16 = 0x3e;
}

/// Bridge control register bits.
pub mod bridge_control {
    /// Parity Error Response Enable (secondary interface).
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 0;
    /// SERR# Enable: forward ERR_NONFATAL/ERR_FATAL from below.
    pub const SERR_ENABLE: u16 = 1 << 1;
    /// ISA Enable.
    pub const ISA_ENABLE: u16 = 1 << 2;
    /// VGA Enable: forward the legacy VGA ranges.
    pub const VGA_ENABLE: u16 = 1 << 3;
    /// VGA 16-bit decode.
    pub const VGA_16BIT: u16 = 1 << 4;
    /// Master Abort Mode.
    pub const MASTER_ABORT_MODE: u16 = 1 << 5;
    /// Secondary Bus Reset: while set, everything below is held in hot reset.
    pub const SECONDARY_BUS_RESET: u16 = 1 << 6;
    /// The bits a guest may write.
    pub const WRITABLE: u16 = PARITY_ERROR_RESPONSE
        | SERR_ENABLE
        | ISA_ENABLE
        | VGA_ENABLE
        | VGA_16BIT
        | MASTER_ABORT_MODE
        | SECONDARY_BUS_RESET;
}

/// Secondary status bits a guest clears by writing 1: master data parity
/// error, signaled/received target abort, received master abort, received
/// system error, detected parity error.
pub const SECONDARY_STATUS_W1C: u16 = 0xf900;

/// Addressing-type nibble of the I/O base/limit: 32-bit I/O.
pub const IO_RANGE_32BIT: u8 = 0x1;
/// Addressing-type nibble of the prefetchable base/limit: 64-bit.
pub const PREF_RANGE_64BIT: u16 = 0x1;

/// Writes the Type-1 header of `config` into `space` with its masks.
///
/// Root and downstream ports use INTA (the legacy fallback for their PME,
/// AER and slot events when MSI is off); upstream ports signal nothing of
/// their own and report no pin.
pub(crate) fn apply_header(space: &mut ConfigSpace, config: &BridgeConfig) -> Result<(), Error> {
    use type1_reg::*;
    let common = CommonHeader {
        vendor_id: config.vendor_id,
        device_id: config.device_id,
        revision_id: config.revision_id,
        class_code: ClassCode::PCI_BRIDGE,
        multifunction: false,
        interrupt_pin: if config.kind.is_downstream() {
            InterruptPin::IntA
        } else {
            InterruptPin::None
        },
    };
    common.apply(space, HeaderLayout::Type1)?;
    // Bus numbers and the secondary latency timer.
    space.set_writable_mask(PRIMARY_BUS, &[0xff; 4]);
    space.set_u8(IO_BASE, IO_RANGE_32BIT);
    space.set_u8(IO_LIMIT, IO_RANGE_32BIT);
    space.set_writable_mask(IO_BASE, &[0xf0, 0xf0]);
    space.set_w1c_mask(SECONDARY_STATUS, &SECONDARY_STATUS_W1C.to_le_bytes());
    space.set_writable_mask(MEMORY_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    space.set_u16(PREF_BASE, PREF_RANGE_64BIT);
    space.set_u16(PREF_LIMIT, PREF_RANGE_64BIT);
    space.set_writable_mask(PREF_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    space.set_writable_mask(PREF_BASE_UPPER32, &[0xff; 8]);
    space.set_writable_mask(IO_BASE_UPPER16, &[0xff; 4]);
    space.set_writable_mask(BRIDGE_CONTROL, &bridge_control::WRITABLE.to_le_bytes());
    Ok(())
}

/// The I/O window programmed in `space` (4 KiB granular, 32-bit), `None`
/// when base > limit.
pub(crate) fn io_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    use type1_reg::*;
    let lo = |off| u64::from(space.u8_at(off) & 0xf0) << 8;
    let hi = |off| u64::from(space.u16_at(off)) << 16;
    let base = hi(IO_BASE_UPPER16) | lo(IO_BASE);
    let limit = hi(IO_LIMIT_UPPER16) | lo(IO_LIMIT) | 0xfff;
    (base <= limit).then_some(base..=limit)
}

/// The non-prefetchable memory window (1 MiB granular, 32-bit), `None`
/// when base > limit.
pub(crate) fn memory_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    use type1_reg::*;
    let base = u64::from(space.u16_at(MEMORY_BASE) & 0xfff0) << 16;
    let limit = u64::from(space.u16_at(MEMORY_LIMIT) & 0xfff0) << 16 | 0xf_ffff;
    (base <= limit).then_some(base..=limit)
}

/// The prefetchable memory window (1 MiB granular, 64-bit), `None` when
/// base > limit.
pub(crate) fn prefetchable_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    use type1_reg::*;
    let decode = |lo: u16, hi: u16| {
        u64::from(space.u32_at(hi)) << 32 | u64::from(space.u16_at(lo) & 0xfff0) << 16
    };
    let base = decode(PREF_BASE, PREF_BASE_UPPER32);
    let limit = decode(PREF_LIMIT, PREF_LIMIT_UPPER32) | 0xf_ffff;
    (base <= limit).then_some(base..=limit)
}
