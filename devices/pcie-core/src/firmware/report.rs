//! What enumeration did, per function: for logs and `p2pvm topology`.

use std::fmt;

use super::{Func, Pool};
use crate::{reg, BarKind, Bdf, Fabric, NodeId, Window};

/// One BAR as enumeration left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarAssignment {
    /// BAR register index (a 64-bit BAR also takes the next one).
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Size in bytes.
    pub size: u64,
    /// Assigned address; `None` when it could not be reached (an I/O BAR
    /// without an I/O path) and was left at 0.
    pub addr: Option<u64>,
}

/// A bridge's bus numbers and windows as programmed; `None` windows are
/// closed (or not implemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeReport {
    /// Primary bus number.
    pub primary: u8,
    /// Secondary bus number.
    pub secondary: u8,
    /// Subordinate bus number: the highest bus below the bridge.
    pub subordinate: u8,
    /// Memory window (32-bit aperture).
    pub mem: Option<Window>,
    /// 64-bit prefetchable window (64-bit aperture).
    pub pref: Option<Window>,
    /// I/O window.
    pub io: Option<Window>,
}

/// One function as enumeration left it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeReport {
    /// Its address.
    pub bdf: Bdf,
    /// The fabric node answering at that address.
    pub node: Option<NodeId>,
    /// The node's name ("?" if none answers, which cannot happen on a
    /// fabric left alone during enumeration).
    pub name: String,
    /// Bridges between it and the root bus.
    pub depth: usize,
    /// Its command register afterwards.
    pub command: u16,
    /// Its BARs.
    pub bars: Vec<BarAssignment>,
    /// Bus numbers and windows, for a bridge.
    pub bridge: Option<BridgeReport>,
}

/// Every function found, depth first in bus-scan order (a bridge before
/// the functions below it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EnumerationReport {
    /// The functions.
    pub nodes: Vec<NodeReport>,
    /// The Max Payload Size programmed everywhere, in bytes; `None` when
    /// no function is PCI Express.
    pub max_payload: Option<u16>,
}

impl EnumerationReport {
    /// The function whose node is called `name`.
    pub fn by_name(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The function at `bdf`.
    pub fn by_bdf(&self, bdf: Bdf) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.bdf == bdf)
    }
}

pub(super) fn build(f: &Fabric, funcs: &[Func], mps: Option<u8>) -> EnumerationReport {
    let mut report = EnumerationReport {
        nodes: Vec::new(),
        max_payload: mps.map(|m| 128 << m),
    };
    collect(f, funcs, &mut report.nodes);
    report
}

fn collect(f: &Fabric, funcs: &[Func], out: &mut Vec<NodeReport>) {
    for func in funcs {
        let mut cmd = [0; 2];
        f.config_read(func.bdf, reg::COMMAND, &mut cmd);
        let window = |b: &super::BridgePlan, pool: Pool| {
            b.window[pool as usize].map(|(base, size)| Window {
                base,
                limit: base + size - 1,
            })
        };
        out.push(NodeReport {
            bdf: func.bdf,
            node: func.node,
            name: func.name.clone(),
            depth: func.depth,
            command: u16::from_le_bytes(cmd),
            bars: func
                .bars
                .iter()
                .map(|b| BarAssignment {
                    index: b.index,
                    kind: b.kind,
                    size: b.size,
                    addr: b.addr,
                })
                .collect(),
            bridge: func.bridge.as_ref().map(|b| BridgeReport {
                primary: b.primary,
                secondary: b.secondary,
                subordinate: b.subordinate,
                mem: window(b, Pool::Mem),
                pref: window(b, Pool::Pref),
                io: window(b, Pool::Io),
            }),
        });
        if let Some(b) = &func.bridge {
            collect(f, &b.children, out);
        }
    }
}

/// `size` as "4 KiB", "1 MiB", or bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0;
        let mut unit = 0;
        while v >= 1024 && v & 1023 == 0 && unit + 1 < UNITS.len() {
            v /= 1024;
            unit += 1;
        }
        write!(f, "{v} {}", UNITS[unit])
    }
}

impl fmt::Display for EnumerationReport {
    /// One line per function (indented by depth), then one per window and
    /// per BAR, e.g. `01:00.0 usp cmd 0x0006 bus 01 -> 02..=05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mps) = self.max_payload {
            writeln!(f, "max payload size {mps} bytes")?;
        }
        for n in &self.nodes {
            let pad = "  ".repeat(n.depth);
            write!(f, "{pad}{} {} cmd {:#06x}", n.bdf, n.name, n.command)?;
            let Some(b) = &n.bridge else {
                writeln!(f)?;
                for bar in &n.bars {
                    write_bar(f, &pad, bar)?;
                }
                continue;
            };
            writeln!(
                f,
                " bus {:02x} -> {:02x}..={:02x}",
                b.primary, b.secondary, b.subordinate
            )?;
            for bar in &n.bars {
                write_bar(f, &pad, bar)?;
            }
            for (name, w) in [("mem", b.mem), ("pref", b.pref), ("io", b.io)] {
                match w {
                    Some(w) => writeln!(f, "{pad}    {name:<4} {:#x}..={:#x}", w.base, w.limit)?,
                    None => writeln!(f, "{pad}    {name:<4} closed")?,
                }
            }
        }
        Ok(())
    }
}

fn write_bar(f: &mut fmt::Formatter<'_>, pad: &str, bar: &BarAssignment) -> fmt::Result {
    let kind = match bar.kind {
        BarKind::Memory32 { prefetchable } => ["mem32", "mem32 pref"][prefetchable as usize],
        BarKind::Memory64 { prefetchable } => ["mem64", "mem64 pref"][prefetchable as usize],
        BarKind::Io => "io",
    };
    let size = Size(bar.size);
    match bar.addr {
        Some(a) => writeln!(f, "{pad}    BAR{} {kind} {size} at {a:#x}", bar.index),
        None => writeln!(f, "{pad}    BAR{} {kind} {size} unassigned", bar.index),
    }
}
