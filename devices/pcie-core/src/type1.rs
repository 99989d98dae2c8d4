//! Register offsets and bits of the Type 1 (PCI-to-PCI bridge) header, as
//! read by the fabric's routing snapshot and written by bridge models.

/// Offsets of the Type 1-only registers (the shared ones are in [`crate::reg`]).
pub mod bridge_reg {
    /// Primary bus number (8 bits).
    pub const PRIMARY_BUS: u16 = 0x18;
    /// Secondary bus number (8 bits): the bus directly below the bridge.
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Subordinate bus number (8 bits): the highest bus below the bridge.
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Secondary latency timer (8 bits, 0 on PCIe).
    pub const SECONDARY_LATENCY_TIMER: u16 = 0x1b;
    /// I/O base (8 bits): address bits 15:12 in 7:4, addressing type in 3:0.
    pub const IO_BASE: u16 = 0x1c;
    /// I/O limit (8 bits), same layout as the base.
    pub const IO_LIMIT: u16 = 0x1d;
    /// Secondary status (16 bits).
    pub const SECONDARY_STATUS: u16 = 0x1e;
    /// Memory base (16 bits): address bits 31:20 in 15:4.
    pub const MEMORY_BASE: u16 = 0x20;
    /// Memory limit (16 bits), same layout as the base.
    pub const MEMORY_LIMIT: u16 = 0x22;
    /// Prefetchable memory base (16 bits): bits 31:20 in 15:4, type in 3:0.
    pub const PREF_BASE: u16 = 0x24;
    /// Prefetchable memory limit (16 bits), same layout as the base.
    pub const PREF_LIMIT: u16 = 0x26;
    /// Prefetchable base, address bits 63:32 (when 64-bit).
    pub const PREF_BASE_UPPER: u16 = 0x28;
    /// Prefetchable limit, address bits 63:32 (when 64-bit).
    pub const PREF_LIMIT_UPPER: u16 = 0x2c;
    /// I/O base, address bits 31:16 (when 32-bit I/O).
    pub const IO_BASE_UPPER: u16 = 0x30;
    /// I/O limit, address bits 31:16 (when 32-bit I/O).
    pub const IO_LIMIT_UPPER: u16 = 0x32;
    /// Expansion ROM base address of a Type 1 header.
    pub const EXPANSION_ROM: u16 = 0x38;
    /// Bridge control (16 bits).
    pub const BRIDGE_CONTROL: u16 = 0x3e;
    /// Addressing-type value (bits 3:0) of a 64-bit prefetchable window or
    /// a 32-bit I/O window.
    pub const WIDE_DECODE: u8 = 0x1;
}

/// Bridge control register bits.
pub mod bridge_control {
    /// Parity Error Response Enable.
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 0;
    /// SERR# Enable.
    pub const SERR_ENABLE: u16 = 1 << 1;
    /// ISA Enable.
    pub const ISA_ENABLE: u16 = 1 << 2;
    /// VGA Enable.
    pub const VGA_ENABLE: u16 = 1 << 3;
    /// Secondary Bus Reset: a 0 → 1 write hot-resets everything below.
    pub const SECONDARY_BUS_RESET: u16 = 1 << 6;
}
