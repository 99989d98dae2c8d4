//! Base Address Registers: declaration and the sizing protocol.
//!
//! Sizing needs no code of its own: a BAR's writable mask holds exactly the
//! address bits above its size, so writing all ones reads back the size mask
//! with the read-only type bits below it.

use std::ops::Range;

use crate::header::reg;
use crate::{ConfigSpace, Error};

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarKind {
    /// Memory, anywhere in the low 4 GiB.
    Memory32 {
        /// Reads have no side effects; the OS may map it write-combining.
        prefetchable: bool,
    },
    /// Memory, anywhere in 64-bit space; takes this register and the next.
    Memory64 {
        /// Reads have no side effects; the OS may map it write-combining.
        prefetchable: bool,
    },
    /// I/O ports (at most 256 bytes).
    Io,
}

impl BarKind {
    /// The read-only low bits of the BAR register for this kind.
    pub const fn type_bits(self) -> u32 {
        match self {
            BarKind::Memory32 { prefetchable } => (prefetchable as u32) << 3,
            BarKind::Memory64 { prefetchable } => 0b100 | (prefetchable as u32) << 3,
            BarKind::Io => 0b1,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            BarKind::Memory32 { .. } => "32-bit memory",
            BarKind::Memory64 { .. } => "64-bit memory",
            BarKind::Io => "I/O",
        }
    }

    const fn size_limits(self) -> (u64, u64) {
        match self {
            BarKind::Memory32 { .. } => (16, 1 << 31),
            BarKind::Memory64 { .. } => (16, 1 << 63),
            BarKind::Io => (4, 256),
        }
    }

    const fn address_mask(self) -> u64 {
        match self {
            BarKind::Io => !0b11,
            _ => !0b1111,
        }
    }
}

/// A BAR as currently programmed: what the routing snapshot and the VMM
/// read instead of sizing BARs by writing to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarRegion {
    /// BAR register index (0..6 for Type 0, 0..2 for Type 1).
    pub index: u8,
    /// Programmed base address, type bits masked off; never 0.
    pub addr: u64,
    /// Size in bytes, a power of two.
    pub size: u64,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// An I/O BAR (`addr` is a port number).
    pub is_io: bool,
}

impl BarRegion {
    /// Whether `addr` falls inside this BAR.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.addr && addr - self.addr < self.size
    }
}

/// A declared BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bar {
    /// What it decodes.
    pub kind: BarKind,
    /// Its size in bytes, a power of two.
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Bar(Bar),
    Upper,
}

/// The BAR registers of one header: 6 for Type 0, 2 for Type 1.
#[derive(Debug, Clone)]
pub struct Bars {
    slots: [Slot; 6],
    count: u8,
}

impl Bars {
    /// BARs of a Type 0 header.
    pub const TYPE0_COUNT: u8 = 6;
    /// BARs of a Type 1 header.
    pub const TYPE1_COUNT: u8 = 2;

    /// `count` empty BAR registers (clamped to 6). An empty register is
    /// read-only zero, so a function with no BARs reads zero BARs.
    pub fn new(count: u8) -> Self {
        Bars {
            slots: [Slot::Empty; 6],
            count: count.min(6),
        }
    }

    /// How many BAR registers the header has.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// The config-space range of the BAR registers.
    pub fn register_range(&self) -> Range<u16> {
        reg::BAR0..reg::BAR0 + 4 * self.count as u16
    }

    /// Offset of BAR register `index`.
    pub const fn register_offset(index: u8) -> u16 {
        reg::BAR0 + 4 * index as u16
    }

    /// Declares BAR `index` in `space`: writes its type bits and sets the
    /// writable mask of its address bits. A 64-bit BAR also takes `index + 1`.
    ///
    /// Sizes are powers of two: 16 B..=2 GiB for 32-bit memory,
    /// 16 B..=2^63 for 64-bit memory, 4..=256 bytes for I/O.
    pub fn declare(
        &mut self,
        space: &mut ConfigSpace,
        index: u8,
        kind: BarKind,
        size: u64,
    ) -> Result<(), Error> {
        let count = self.count;
        if index >= count {
            return Err(Error::InvalidBarIndex { index, count });
        }
        let (min, max) = kind.size_limits();
        if !size.is_power_of_two() || size < min || size > max {
            return Err(Error::InvalidBarSize {
                size,
                kind: kind.name(),
            });
        }
        let is64 = matches!(kind, BarKind::Memory64 { .. });
        if self.slots[index as usize] != Slot::Empty {
            return Err(Error::BarInUse(index));
        }
        if is64 {
            let upper = index + 1;
            if upper >= count {
                return Err(Error::BarNoUpperHalf(index));
            }
            if self.slots[upper as usize] != Slot::Empty {
                return Err(Error::BarInUse(upper));
            }
        }
        let mask = !(size - 1) & kind.address_mask();
        let off = Self::register_offset(index);
        space.set_u32(off, kind.type_bits());
        space.set_writable_mask(off, &(mask as u32).to_le_bytes());
        if is64 {
            space.set_u32(off + 4, 0);
            space.set_writable_mask(off + 4, &((mask >> 32) as u32).to_le_bytes());
            self.slots[index as usize + 1] = Slot::Upper;
        }
        self.slots[index as usize] = Slot::Bar(Bar { kind, size });
        Ok(())
    }

    /// The BAR declared at `index`; `None` for an empty register or the
    /// upper half of a 64-bit BAR.
    pub fn get(&self, index: u8) -> Option<Bar> {
        match self.slots.get(index as usize) {
            Some(Slot::Bar(bar)) if index < self.count => Some(*bar),
            _ => None,
        }
    }

    /// The address currently programmed in BAR `index` (type bits masked
    /// off); `None` when `get(index)` is `None`.
    pub fn address(&self, space: &ConfigSpace, index: u8) -> Option<u64> {
        let bar = self.get(index)?;
        let off = Self::register_offset(index);
        let mut raw = space.u32_at(off) as u64;
        if matches!(bar.kind, BarKind::Memory64 { .. }) {
            raw |= (space.u32_at(off + 4) as u64) << 32;
        }
        Some(raw & bar.kind.address_mask())
    }

    /// The BARs whose programmed address is not zero, in index order.
    /// Device models return this from `PciFunction::bar_regions`.
    pub fn regions(&self, space: &ConfigSpace) -> Vec<BarRegion> {
        (0..self.count)
            .filter_map(|index| {
                let bar = self.get(index)?;
                let addr = self.address(space, index)?;
                let (prefetchable, is_io) = match bar.kind {
                    BarKind::Memory32 { prefetchable } | BarKind::Memory64 { prefetchable } => {
                        (prefetchable, false)
                    }
                    BarKind::Io => (false, true),
                };
                (addr != 0).then_some(BarRegion {
                    index,
                    addr,
                    size: bar.size,
                    prefetchable,
                    is_io,
                })
            })
            .collect()
    }
}
