//! Discovery: walks the hierarchy from bus 0 through config accesses,
//! numbering buses depth first, sizing every BAR and probing every
//! bridge's windows, and computes the bridges' window needs bottom-up.

use super::{alloc, BarPlan, BridgePlan, Func, Need, Pool};
use crate::type1::bridge_reg as br;
use crate::{cap_id, capabilities, command, pcie_reg, reg, BarKind, Bdf, Error, Fabric};

/// Config accesses to one function, by BDF.
#[derive(Clone, Copy)]
pub(super) struct Cfg<'a> {
    pub(super) f: &'a Fabric,
    pub(super) at: Bdf,
}

impl Cfg<'_> {
    fn read<const N: usize>(&self, off: u16) -> [u8; N] {
        let mut b = [0; N];
        self.f.config_read(self.at, off, &mut b);
        b
    }

    pub(super) fn r8(&self, off: u16) -> u8 {
        self.read::<1>(off)[0]
    }

    pub(super) fn r16(&self, off: u16) -> u16 {
        u16::from_le_bytes(self.read(off))
    }

    pub(super) fn r32(&self, off: u16) -> u32 {
        u32::from_le_bytes(self.read(off))
    }

    pub(super) fn w8(&self, off: u16, v: u8) {
        self.f.config_write(self.at, off, &[v]);
    }

    pub(super) fn w16(&self, off: u16, v: u16) {
        self.f.config_write(self.at, off, &v.to_le_bytes());
    }

    pub(super) fn w32(&self, off: u16, v: u32) {
        self.f.config_write(self.at, off, &v.to_le_bytes());
    }
}

/// Which pools the path from the root complex down to a bus can carry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flags {
    /// Every bridge above has a 64-bit prefetchable window (and there is
    /// a 64-bit aperture).
    pub(super) pref: bool,
    /// Every bridge above has an I/O window (and there is an I/O range).
    pub(super) io: bool,
}

/// The functions present on `bus`, with their header type byte; functions
/// 1..8 only when function 0 says it is multi-function.
fn functions(f: &Fabric, bus: u8) -> Vec<(Bdf, u8)> {
    let mut found = Vec::new();
    for dev in 0..32 {
        for func in 0..8 {
            let Ok(at) = Bdf::new(bus, dev, func) else {
                continue;
            };
            let c = Cfg { f, at };
            if c.r16(reg::VENDOR_ID) == 0xffff {
                if func == 0 {
                    break;
                }
                continue;
            }
            let ht = c.r8(reg::HEADER_TYPE);
            found.push((at, ht));
            if func == 0 && ht & 0x80 == 0 {
                break;
            }
        }
    }
    found
}

struct Scan<'a> {
    f: &'a Fabric,
    next_bus: u16,
    /// Smallest Max Payload Size Supported seen (encoded).
    mpss: Option<u8>,
}

/// Discovers the hierarchy below the root bus, numbering buses as it goes.
/// Returns the root bus's functions and the Max Payload Size to program
/// (encoded as in Device Control), if any function is PCI Express.
pub(super) fn discover(f: &Fabric, flags: Flags) -> Result<(Vec<Func>, Option<u8>), Error> {
    let mut scan = Scan {
        f,
        next_bus: 1,
        mpss: None,
    };
    let funcs = scan.bus(0, 0, flags)?;
    // 256 bytes (encoding 1) unless some function supports less.
    Ok((funcs, scan.mpss.map(|m| m.min(1))))
}

impl Scan<'_> {
    fn bus(&mut self, bus: u8, depth: usize, flags: Flags) -> Result<Vec<Func>, Error> {
        let found = functions(self.f, bus);
        // Unnumber every bridge on this bus first, so stale numbers from a
        // previous enumeration cannot shadow the buses handed out now.
        for &(at, ht) in &found {
            if ht & 0x7f == 1 {
                let c = Cfg { f: self.f, at };
                let keep = c.r32(br::PRIMARY_BUS) & 0xff00_0000;
                c.w32(br::PRIMARY_BUS, keep | u32::from(bus));
            }
        }
        found
            .into_iter()
            .map(|(at, ht)| self.function(at, ht & 0x7f == 1, depth, flags))
            .collect()
    }

    fn function(
        &mut self,
        at: Bdf,
        bridge: bool,
        depth: usize,
        flags: Flags,
    ) -> Result<Func, Error> {
        let c = Cfg { f: self.f, at };
        let node = self.f.node_at(at);
        let name = node.map_or_else(|| "?".to_owned(), |n| self.f.name(n));
        let cmd = c.r16(reg::COMMAND);
        // Decoding off while BARs hold sizing patterns.
        c.w16(
            reg::COMMAND,
            cmd & !(command::MEMORY_SPACE | command::IO_SPACE),
        );
        let bars = size_bars(c, if bridge { 2 } else { 6 }, flags);
        let pcie = capabilities(|o| c.r32(o))
            .find(|cap| cap.id == cap_id::PCI_EXPRESS)
            .map(|cap| cap.offset);
        if let Some(p) = pcie {
            let mpss = (c.r32(p + pcie_reg::DEVCAP) & 0x7) as u8;
            self.mpss = Some(self.mpss.map_or(mpss, |m| m.min(mpss)));
        }
        let mut func = Func {
            bdf: at,
            node,
            name,
            depth,
            command: cmd,
            bars,
            pcie,
            bridge: None,
        };
        if bridge {
            func.bridge = Some(self.bridge(c, &func.label(), depth, flags)?);
        }
        Ok(func)
    }

    fn bridge(
        &mut self,
        c: Cfg<'_>,
        label: &str,
        depth: usize,
        flags: Flags,
    ) -> Result<BridgePlan, Error> {
        let has_io = probe8(c, br::IO_BASE, 0xf0) & 0xf0 != 0;
        let pref = probe16(c, br::PREF_BASE, 0xfff0);
        let has_pref = pref & 0xfff0 != 0 && pref & 0xf == u16::from(br::WIDE_DECODE);
        let Ok(secondary) = u8::try_from(self.next_bus) else {
            return Err(Error::TooManyBuses {
                bridge: label.to_owned(),
            });
        };
        self.next_bus += 1;
        let primary = c.at.bus();
        let keep = c.r32(br::PRIMARY_BUS) & 0xff00_0000;
        let buses = u32::from_le_bytes([primary, secondary, 0xff, 0]);
        c.w32(br::PRIMARY_BUS, keep | buses);
        let inner = Flags {
            pref: flags.pref && has_pref,
            io: flags.io && has_io,
        };
        let children = self.bus(secondary, depth + 1, inner)?;
        let subordinate = (self.next_bus - 1) as u8;
        c.w8(br::SUBORDINATE_BUS, subordinate);
        let mut plan = BridgePlan {
            primary,
            secondary,
            subordinate,
            has_io,
            has_pref,
            children,
            need: [Need::default(); 3],
            window: [None; 3],
        };
        alloc::size(&mut plan);
        Ok(plan)
    }
}

/// Writes `pattern` to a byte register, reads it back and restores it.
fn probe8(c: Cfg<'_>, off: u16, pattern: u8) -> u8 {
    let orig = c.r8(off);
    c.w8(off, pattern);
    let back = c.r8(off);
    c.w8(off, orig);
    back
}

/// Writes `pattern` to a 16-bit register, reads it back and restores it.
fn probe16(c: Cfg<'_>, off: u16, pattern: u16) -> u16 {
    let orig = c.r16(off);
    c.w16(off, pattern);
    let back = c.r16(off);
    c.w16(off, orig);
    back
}

/// Writes all ones to a BAR register, reads it back and restores it.
fn probe_bar(c: Cfg<'_>, off: u16) -> u32 {
    let orig = c.r32(off);
    c.w32(off, u32::MAX);
    let back = c.r32(off);
    c.w32(off, orig);
    back
}

/// Sizes the first `count` BAR registers; 64-bit BARs take two.
fn size_bars(c: Cfg<'_>, count: u8, flags: Flags) -> Vec<BarPlan> {
    let mut bars = Vec::new();
    let mut index = 0;
    while index < count {
        let off = reg::BAR0 + 4 * u16::from(index);
        let lo = probe_bar(c, off);
        let (kind, mask, regs) = if lo & 1 == 1 {
            // I/O: 16-bit port addresses.
            (BarKind::Io, u64::from(lo & !0x3) | !0xffff, 1)
        } else {
            let prefetchable = lo & 0x8 != 0;
            let wide = (lo >> 1) & 0x3 == 0x2 && index + 1 < count;
            let hi = if wide { probe_bar(c, off + 4) } else { 0 };
            let kind = if wide {
                BarKind::Memory64 { prefetchable }
            } else {
                BarKind::Memory32 { prefetchable }
            };
            let addr_bits = u64::from(hi) << 32 | u64::from(lo & !0xf);
            // An unimplemented register reads zero.
            let mask = (addr_bits != 0).then_some(addr_bits | if wide { 0 } else { !0xffff_ffff });
            (kind, mask.unwrap_or(0), 1 + u8::from(wide))
        };
        index += regs;
        let size = (!mask).wrapping_add(1);
        if mask == 0 || !size.is_power_of_two() {
            continue;
        }
        let pool = match kind {
            BarKind::Io => flags.io.then_some(Pool::Io),
            BarKind::Memory64 { prefetchable: true } if flags.pref => Some(Pool::Pref),
            _ => Some(Pool::Mem),
        };
        bars.push(BarPlan {
            index: index - regs,
            kind,
            size,
            pool,
            addr: None,
        });
    }
    bars
}
