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
    /// VGA 16-bit decode.
    pub const VGA_16BIT: u16 = 1 << 4;
    /// Master Abort Mode.
    pub const MASTER_ABORT_MODE: u16 = 1 << 5;
    /// Secondary Bus Reset: a 0 → 1 write hot-resets everything below.
    pub const SECONDARY_BUS_RESET: u16 = 1 << 6;
    /// The bits a bridge model lets the guest write.
    pub const WRITABLE: u16 = PARITY_ERROR_RESPONSE
        | SERR_ENABLE
        | ISA_ENABLE
        | VGA_ENABLE
        | VGA_16BIT
        | MASTER_ABORT_MODE
        | SECONDARY_BUS_RESET;
}

use crate::Window;

/// A bridge's three windows, `None` where base > limit (disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeWindows {
    /// I/O window (port numbers): 4 KiB granular; bits 31:16 from the
    /// upper registers only when the addressing type says 32-bit I/O.
    pub io: Option<Window>,
    /// Memory window: 1 MiB granular, 32-bit.
    pub mem: Option<Window>,
    /// Prefetchable memory window: 1 MiB granular; bits 63:32 from the
    /// upper registers only when the addressing type says 64-bit.
    pub pref: Option<Window>,
}

/// The one window decoder: the windows of a Type 1 header whose 16-bit
/// and 32-bit registers `r16` and `r32` read (the little-endian value at a
/// 2- or 4-byte aligned offset; `r16(IO_BASE)` is the I/O base in bits 7:0
/// and the I/O limit in bits 15:8).
///
/// The base registers' addressing-type nibble decides the width: the upper
/// registers count only for 32-bit I/O and 64-bit prefetchable windows
/// ([`bridge_reg::WIDE_DECODE`]), as Linux and the routing snapshot read
/// them.
pub fn decode_windows(r16: impl Fn(u16) -> u16, r32: impl Fn(u16) -> u32) -> BridgeWindows {
    use bridge_reg::*;
    let wide = |v: u16| v & 0xf == u16::from(WIDE_DECODE);
    let io = r16(IO_BASE);
    let io_upper = |reg: u16| {
        if wide(io) {
            u64::from(r16(reg)) << 16
        } else {
            0
        }
    };
    let mem = |reg: u16, low| u64::from(r16(reg) & 0xfff0) << 16 | low;
    let pref_wide = wide(r16(PREF_BASE));
    let upper = |reg: u16| {
        if pref_wide {
            u64::from(r32(reg)) << 32
        } else {
            0
        }
    };
    BridgeWindows {
        io: Window::new(
            u64::from(io & 0xf0) << 8 | io_upper(IO_BASE_UPPER),
            u64::from(io & 0xf000) | 0xfff | io_upper(IO_LIMIT_UPPER),
        ),
        mem: Window::new(mem(MEMORY_BASE, 0), mem(MEMORY_LIMIT, 0xf_ffff)),
        pref: Window::new(
            mem(PREF_BASE, 0) | upper(PREF_BASE_UPPER),
            mem(PREF_LIMIT, 0xf_ffff) | upper(PREF_LIMIT_UPPER),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Type 1 header's bytes 0x00..0x40 as the two readers.
    fn decode(bytes: &[u8; 0x40]) -> BridgeWindows {
        let at = |o: u16| &bytes[usize::from(o)..];
        decode_windows(
            |o| u16::from_le_bytes([at(o)[0], at(o)[1]]),
            |o| u32::from_le_bytes([at(o)[0], at(o)[1], at(o)[2], at(o)[3]]),
        )
    }

    fn header(io_type: u8, pref_type: u8) -> [u8; 0x40] {
        use bridge_reg::*;
        let mut h = [0u8; 0x40];
        let mut put = |o: u16, v: &[u8]| {
            h[usize::from(o)..usize::from(o) + v.len()].copy_from_slice(v);
        };
        put(IO_BASE, &[0x20 | io_type, 0x30 | io_type]);
        put(IO_BASE_UPPER, &[0x01, 0x00, 0x01, 0x00]);
        put(MEMORY_BASE, &[0x00, 0xc0, 0x10, 0xc0]);
        let pref_type = u16::from(pref_type);
        put(PREF_BASE, &(0x8000 | pref_type).to_le_bytes());
        put(PREF_LIMIT, &(0x8ff0 | pref_type).to_le_bytes());
        put(PREF_BASE_UPPER, &4u32.to_le_bytes());
        put(PREF_LIMIT_UPPER, &4u32.to_le_bytes());
        h
    }

    fn window(base: u64, limit: u64) -> Option<Window> {
        Some(Window { base, limit })
    }

    #[test]
    fn wide_windows_use_the_upper_registers() {
        let w = decode(&header(bridge_reg::WIDE_DECODE, bridge_reg::WIDE_DECODE));
        assert_eq!(w.io, window(0x1_2000, 0x1_3fff));
        assert_eq!(w.mem, window(0xc000_0000, 0xc01f_ffff));
        assert_eq!(w.pref, window(0x4_8000_0000, 0x4_8fff_ffff));
    }

    #[test]
    fn narrow_windows_ignore_the_upper_registers() {
        let w = decode(&header(0, 0));
        assert_eq!(w.io, window(0x2000, 0x3fff));
        assert_eq!(w.mem, window(0xc000_0000, 0xc01f_ffff));
        assert_eq!(w.pref, window(0x8000_0000, 0x8fff_ffff));
    }

    #[test]
    fn base_above_limit_is_disabled() {
        let mut h = header(0, 0);
        h[usize::from(bridge_reg::MEMORY_BASE) + 1] = 0xd0;
        h[usize::from(bridge_reg::IO_BASE)] = 0x40;
        let w = decode(&h);
        assert_eq!((w.io, w.mem), (None, None));
        assert!(w.pref.is_some());
    }
}
