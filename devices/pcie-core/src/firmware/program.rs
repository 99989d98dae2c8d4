//! Programming what allocation decided: BARs, bridge windows, Max Payload
//! Size and command registers, through config writes.

use super::scan::Cfg;
use super::{BridgePlan, Func, Pool};
use crate::type1::bridge_reg as br;
use crate::{command, pcie_reg, reg, BarKind, Fabric};

/// Device Control's Max Payload Size field (bits 7:5).
const DEVCTL_MPS: u16 = 0x7 << 5;

/// Programs `funcs` and everything below them; `mps` is the encoded Max
/// Payload Size for every PCI Express function.
pub(super) fn program(f: &Fabric, funcs: &[Func], mps: Option<u8>) {
    for func in funcs {
        let c = Cfg { f, at: func.bdf };
        for bar in &func.bars {
            let addr = bar.addr.unwrap_or(0);
            let off = reg::BAR0 + 4 * u16::from(bar.index);
            c.w32(off, addr as u32);
            if matches!(bar.kind, BarKind::Memory64 { .. }) {
                c.w32(off + 4, (addr >> 32) as u32);
            }
        }
        if let (Some(p), Some(mps)) = (func.pcie, mps) {
            let ctl = c.r16(p + pcie_reg::DEVCTL) & !DEVCTL_MPS;
            c.w16(p + pcie_reg::DEVCTL, ctl | u16::from(mps) << 5);
        }
        if let Some(b) = &func.bridge {
            windows(c, b);
            program(f, &b.children, mps);
        }
        c.w16(reg::COMMAND, command_for(func));
    }
}

/// The command register `func` is left with: its other bits kept, Memory
/// Space and Bus Master Enable on bridges and on endpoints with BARs, I/O
/// Space Enable with an I/O window or BAR. Endpoints without BARs get back
/// what they had.
fn command_for(func: &Func) -> u16 {
    let enables = command::MEMORY_SPACE | command::IO_SPACE | command::BUS_MASTER;
    let keep = func.command & !enables;
    let assigned = |io: bool| {
        func.bars
            .iter()
            .any(|b| b.addr.is_some() && (b.kind == BarKind::Io) == io)
    };
    let (mem, io) = match &func.bridge {
        Some(b) => (true, b.window[Pool::Io as usize].is_some()),
        None if func.bars.is_empty() => return func.command,
        None => (assigned(false), assigned(true)),
    };
    let mut cmd = keep | command::BUS_MASTER;
    if mem {
        cmd |= command::MEMORY_SPACE;
    }
    if io {
        cmd |= command::IO_SPACE;
    }
    cmd
}

/// The (base, limit) of window `pool` of `b`, if open.
fn bounds(b: &BridgePlan, pool: Pool) -> Option<(u64, u64)> {
    b.window[pool as usize].map(|(base, size)| (base, base + size - 1))
}

/// Programs the bridge's bus-independent windows; empty ones are closed
/// (base above limit).
fn windows(c: Cfg<'_>, b: &BridgePlan) {
    let (base, limit) = bounds(b, Pool::Mem).unwrap_or((0xfff0_0000, 0));
    c.w16(br::MEMORY_BASE, (base >> 16) as u16 & 0xfff0);
    c.w16(br::MEMORY_LIMIT, (limit >> 16) as u16 & 0xfff0);
    if b.has_pref {
        let (base, limit) = bounds(b, Pool::Pref).unwrap_or((0xfff0_0000, 0));
        c.w32(br::PREF_BASE_UPPER, (base >> 32) as u32);
        c.w32(br::PREF_LIMIT_UPPER, (limit >> 32) as u32);
        c.w16(br::PREF_BASE, (base >> 16) as u16 & 0xfff0);
        c.w16(br::PREF_LIMIT, (limit >> 16) as u16 & 0xfff0);
    }
    if b.has_io {
        let (base, limit) = bounds(b, Pool::Io).unwrap_or((0xf000, 0));
        c.w16(br::IO_BASE_UPPER, 0);
        c.w16(br::IO_LIMIT_UPPER, 0);
        c.w8(br::IO_BASE, (base >> 8) as u8 & 0xf0);
        c.w8(br::IO_LIMIT, (limit >> 8) as u8 & 0xf0);
    }
}
