//! Config-access helpers, and the apertures every test fabric is
//! enumerated with by the library's firmware ([`pcie_core::enumerate`]).

use pcie_core::{Apertures, Bdf, EnumerationReport, Fabric};

/// Start of the 32-bit MMIO aperture.
pub const MEM32_BASE: u64 = 0xc000_0000;
/// Size of the 32-bit MMIO aperture.
pub const MEM32_SIZE: u64 = 0x2000_0000;
/// Start of the 64-bit MMIO aperture.
pub const MEM64_BASE: u64 = 0x40_0000_0000;
/// Size of the 64-bit MMIO aperture.
pub const MEM64_SIZE: u64 = 0x10_0000_0000;
/// The I/O range, inclusive.
pub const IO_RANGE: (u16, u16) = (0x1000, 0xffff);

/// The apertures of every test fabric.
pub const APERTURES: Apertures = Apertures {
    mmio32: (MEM32_BASE, MEM32_SIZE),
    mmio64: (MEM64_BASE, MEM64_SIZE),
    io: IO_RANGE,
};

/// Config read of `N` bytes.
pub fn read<const N: usize>(f: &Fabric, at: Bdf, off: u16) -> u64 {
    let mut b = [0u8; N];
    f.config_read(at, off, &mut b);
    b.iter().rev().fold(0, |acc, &x| acc << 8 | x as u64)
}

/// Config write of the low `N` bytes of `value`.
pub fn write<const N: usize>(f: &Fabric, at: Bdf, off: u16, value: u64) {
    f.config_write(at, off, &value.to_le_bytes()[..N]);
}

/// Numbers the buses, assigns every BAR and window from [`APERTURES`] and
/// enables decoding and bus mastering, like firmware.
pub fn enumerate(f: &Fabric) -> EnumerationReport {
    pcie_core::enumerate(f, &APERTURES).expect("enumeration")
}
