//! Decoding of the two config-space access mechanisms: ECAM (MMIO) and the
//! legacy 0xCF8/0xCFC port pair.

use crate::Bdf;

/// Size of one ECAM window covering buses 0..=255 (1 MiB per bus).
pub const ECAM_SIZE: u64 = 256 << 20;

/// Decodes an offset into the ECAM window into a function and a register.
///
/// The layout is `bus << 20 | device << 15 | function << 12 | register`, the
/// register being 0..4096. Returns `None` for offsets past bus 255.
pub fn ecam_decode(offset: u64) -> Option<(Bdf, u16)> {
    if offset >= ECAM_SIZE {
        return None;
    }
    let bus = (offset >> 20) as u8;
    let device = ((offset >> 15) & 0x1f) as u8;
    let function = ((offset >> 12) & 0x7) as u8;
    let reg = (offset & 0xfff) as u16;
    Some((Bdf::new(bus, device, function).ok()?, reg))
}

/// Enable bit of the 0xCF8 address register.
pub const CF8_ENABLE: u32 = 1 << 31;

/// Decodes a value latched in the 0xCF8 address register.
///
/// Returns `None` when the enable bit (31) is clear. The register is bits 7:2
/// (dword-aligned) plus the AMD-style extended register bits 27:24 as register
/// bits 11:8. The caller adds the byte offset within the 0xCFC dword
/// (the port offset 0..=3).
pub fn cf8_decode(addr: u32) -> Option<(Bdf, u16)> {
    if addr & CF8_ENABLE == 0 {
        return None;
    }
    let bus = (addr >> 16) as u8;
    let device = ((addr >> 11) & 0x1f) as u8;
    let function = ((addr >> 8) & 0x7) as u8;
    let reg = ((addr >> 24) & 0xf) << 8 | (addr & 0xfc);
    Some((Bdf::new(bus, device, function).ok()?, reg as u16))
}
