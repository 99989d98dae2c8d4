//! A tiny firmware: numbers buses and assigns BARs and bridge windows
//! through config accesses only, the way a BIOS or Linux would.

use pcie_core::{bridge_reg as br, command, reg, Bdf, Fabric};

/// Start of the 32-bit MMIO aperture the firmware allocates from.
pub const MEM32_BASE: u64 = 0xc000_0000;
/// Start of the 64-bit MMIO aperture.
pub const MEM64_BASE: u64 = 0x40_0000_0000;
const MIB: u64 = 1 << 20;

fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(bus, dev, func).unwrap()
}

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

/// The functions present on `bus`, with their header type byte.
pub fn scan(f: &Fabric, bus: u8) -> Vec<(Bdf, u8)> {
    let mut found = Vec::new();
    for dev in 0..32 {
        for func in 0..8 {
            let at = bdf(bus, dev, func);
            if read::<2>(f, at, reg::VENDOR_ID) == 0xffff {
                if func == 0 {
                    break;
                }
                continue;
            }
            let ht = read::<1>(f, at, reg::HEADER_TYPE) as u8;
            found.push((at, ht));
            if func == 0 && ht & 0x80 == 0 {
                break;
            }
        }
    }
    found
}

/// Numbers every bus below `bus` depth first; returns the last bus used.
pub fn number_buses(f: &Fabric, bus: u8) -> u8 {
    let mut last = bus;
    for (at, ht) in scan(f, bus) {
        if ht & 0x7f == 1 {
            let sec = last + 1;
            write::<3>(
                f,
                at,
                br::PRIMARY_BUS,
                u64::from_le_bytes([bus, sec, 0xff, 0, 0, 0, 0, 0]),
            );
            last = number_buses(f, sec);
            write::<1>(f, at, br::SUBORDINATE_BUS, last.into());
        }
    }
    last
}

struct Alloc {
    mem32: u64,
    mem64: u64,
}

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

impl Alloc {
    fn bars(&mut self, f: &Fabric, at: Bdf, count: u8) {
        let mut i = 0;
        while i < count {
            let off = reg::BAR0 + 4 * i as u16;
            write::<4>(f, at, off, 0xffff_ffff);
            let lo = read::<4>(f, at, off);
            let wide = lo & 0b111 == 0b100;
            let mut mask = lo & !0xf;
            if wide {
                write::<4>(f, at, off + 4, 0xffff_ffff);
                mask |= read::<4>(f, at, off + 4) << 32;
            } else if mask != 0 {
                mask |= 0xffff_ffff << 32;
            }
            if lo & 1 == 0 && mask != 0 {
                let size = !mask + 1;
                let pool = if wide {
                    &mut self.mem64
                } else {
                    &mut self.mem32
                };
                let addr = align(*pool, size);
                *pool = addr + size;
                write::<4>(f, at, off, addr & 0xffff_ffff);
                if wide {
                    write::<4>(f, at, off + 4, addr >> 32);
                }
            } else {
                write::<4>(f, at, off, 0);
            }
            i += if wide { 2 } else { 1 };
        }
    }

    fn bus(&mut self, f: &Fabric, bus: u8) {
        for (at, ht) in scan(f, bus) {
            let bridge = ht & 0x7f == 1;
            self.bars(f, at, if bridge { 2 } else { 6 });
            if bridge {
                let (m32, m64) = (align(self.mem32, MIB), align(self.mem64, MIB));
                (self.mem32, self.mem64) = (m32, m64);
                let sec = read::<1>(f, at, br::SECONDARY_BUS) as u8;
                self.bus(f, sec);
                let (e32, e64) = (align(self.mem32, MIB), align(self.mem64, MIB));
                (self.mem32, self.mem64) = (e32, e64);
                let (base, limit) = if e32 > m32 { (m32, e32 - 1) } else { (MIB, 0) };
                write::<2>(f, at, br::MEMORY_BASE, base >> 16);
                write::<2>(f, at, br::MEMORY_LIMIT, limit >> 16);
                let (base, limit) = if e64 > m64 { (m64, e64 - 1) } else { (MIB, 0) };
                write::<2>(f, at, br::PREF_BASE, base >> 16 & 0xfff0);
                write::<2>(f, at, br::PREF_LIMIT, limit >> 16 & 0xfff0);
                write::<4>(f, at, br::PREF_BASE_UPPER, base >> 32);
                write::<4>(f, at, br::PREF_LIMIT_UPPER, limit >> 32);
            }
            let cmd = (command::MEMORY_SPACE | command::BUS_MASTER) as u64;
            write::<2>(f, at, reg::COMMAND, cmd);
        }
    }
}

/// Numbers the buses, assigns every BAR and window, and enables memory
/// decoding and bus mastering everywhere.
pub fn enumerate(f: &Fabric) {
    number_buses(f, 0);
    Alloc {
        mem32: MEM32_BASE,
        mem64: MEM64_BASE,
    }
    .bus(f, 0);
}
