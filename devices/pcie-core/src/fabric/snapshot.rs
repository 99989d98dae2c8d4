//! The routing snapshot: an immutable picture of every node's routing
//! registers (command, bus numbers, windows, BARs, ACS), rebuilt after
//! config writes that may change them and shared by all routers.

use std::sync::Arc;

use super::node::Node;
use super::{Iommu, NodeId, RcP2pPolicy};
use crate::acs::acs_reg;
use crate::type1::bridge_reg as br;
use crate::{
    cap_id, capabilities, command, config_read_u32, ext_cap_id, ext_capabilities, pcie_lnkcap,
    pcie_lnksta, pcie_reg, reg, AcsBits, AcsFault, BarRegion, Bdf, PciFunction,
};

/// The tree: changes only when a node is added.
pub(crate) struct Topology {
    pub(crate) nodes: Vec<Arc<Node>>,
    pub(crate) children: Vec<Vec<NodeId>>,
    pub(crate) roots: Vec<NodeId>,
}

/// An inclusive address range decoded by a bridge window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Last address (inclusive).
    pub limit: u64,
}

impl Window {
    /// The window `base..=limit`; `None` when base > limit (disabled).
    pub fn new(base: u64, limit: u64) -> Option<Self> {
        (base <= limit).then_some(Window { base, limit })
    }

    /// Whether `addr` is inside the window.
    pub fn contains(&self, addr: u64) -> bool {
        self.base <= addr && addr <= self.limit
    }
}

/// A bridge's routing registers, as last read into the snapshot.
/// A window is `None` when its base is above its limit (disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeState {
    /// Primary bus number.
    pub primary: u8,
    /// Secondary bus number.
    pub secondary: u8,
    /// Subordinate bus number.
    pub subordinate: u8,
    /// I/O window (port numbers).
    pub io: Option<Window>,
    /// Memory window.
    pub mem: Option<Window>,
    /// Prefetchable memory window (64-bit when the bridge says so).
    pub pref: Option<Window>,
    /// Bridge control register.
    pub control: u16,
}

impl BridgeState {
    /// Whether `bus` is behind this bridge (an unconfigured secondary bus
    /// of 0 claims nothing).
    pub fn claims_bus(&self, bus: u8) -> bool {
        self.secondary != 0 && self.secondary <= bus && bus <= self.subordinate
    }

    /// Whether `addr` is in the memory or prefetchable window.
    pub fn in_window(&self, addr: u64) -> bool {
        self.mem.is_some_and(|w| w.contains(addr)) || self.pref.is_some_and(|w| w.contains(addr))
    }
}

/// A function's ACS capability and control.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcsState {
    pub(crate) offset: u16,
    pub(crate) cap: AcsBits,
    pub(crate) ctrl: AcsBits,
    vector_bits: u16,
    egress: [u32; 8],
}

impl AcsState {
    /// Whether `bit` is both implemented and enabled.
    pub(crate) fn on(&self, bit: AcsBits) -> bool {
        (self.cap & self.ctrl).contains(bit)
    }

    /// Whether the egress control vector blocks port `port`.
    pub(crate) fn egress_blocked(&self, port: u8) -> bool {
        u16::from(port) < self.vector_bits
            && self.egress[port as usize / 32] >> (port % 32) & 1 != 0
    }
}

/// One node's routing registers.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) command: u16,
    pub(crate) bridge: Option<BridgeState>,
    pub(crate) bars: Vec<BarRegion>,
    pub(crate) acs: Option<AcsState>,
    pub(crate) port: u8,
    /// A downstream-facing port whose link is down (Link Status' Data Link
    /// Layer Link Active clear, where the port reports it): nothing below
    /// answers or sends.
    pub(crate) link_down: bool,
    /// The port reports its link state (Data Link Layer Link Active
    /// Reporting Capable).
    pub(crate) link_reporting: bool,
}

impl NodeState {
    pub(crate) fn bus_master(&self) -> bool {
        self.command & command::BUS_MASTER != 0
    }

    fn memory(&self) -> bool {
        self.command & command::MEMORY_SPACE != 0
    }

    /// The memory BAR decoding `addr`, with Memory Space Enable.
    pub(crate) fn bar_hit(&self, addr: u64) -> Option<&BarRegion> {
        if !self.memory() {
            return None;
        }
        self.bars.iter().find(|b| b.contains(addr))
    }

    /// A bridge forwarding `addr` downstream: Memory Space Enable and a window.
    pub(crate) fn window_hit(&self, addr: u64) -> bool {
        self.memory() && self.bridge.is_some_and(|b| b.in_window(addr))
    }

    /// Whether this node positively decodes `addr` on the bus it sits on.
    pub(crate) fn claims(&self, addr: u64) -> bool {
        self.bar_hit(addr).is_some() || self.window_hit(addr)
    }

    /// The enabled ACS bit `bit`.
    pub(crate) fn acs_on(&self, bit: AcsBits) -> bool {
        self.acs.is_some_and(|a| a.on(bit))
    }

    /// A node whose registers could not be read: decodes nothing.
    fn absent() -> Self {
        NodeState {
            command: 0,
            bridge: None,
            bars: Vec::new(),
            acs: None,
            port: 0,
            link_down: false,
            link_reporting: false,
        }
    }

    /// Reads the routing registers of `f` through its config space.
    fn read(f: &dyn PciFunction, bridge: bool) -> Self {
        let r32 = |off: u16| config_read_u32(f, off & !3) >> ((off & 3) * 8);
        let r16 = |off: u16| r32(off) as u16;
        let bridge = bridge.then(|| read_bridge(&r16, &r32));
        let mut acs = ext_capabilities(&r32)
            .find(|c| c.id == ext_cap_id::ACS)
            .map(|c| read_acs(c.offset, &r32));
        if let Some(fault) = f.acs_fault() {
            acs = apply_acs_fault(acs, fault);
        }
        let express = capabilities(&r32).find(|c| c.id == cap_id::PCI_EXPRESS);
        let lnkcap = express.map_or(0, |c| r32(c.offset + pcie_reg::LNKCAP));
        let port = (lnkcap >> 24) as u8;
        let link_reporting = bridge.is_some() && lnkcap & pcie_lnkcap::DLLLA_REPORTING != 0;
        let link_down = link_reporting
            && express.is_some_and(|c| r16(c.offset + pcie_reg::LNKSTA) & pcie_lnksta::DLLLA == 0);
        let mut bars = f.bar_regions();
        bars.retain(|b| !b.is_io && b.size != 0);
        NodeState {
            command: r16(reg::COMMAND),
            bridge,
            bars,
            acs,
            port,
            link_down,
            link_reporting,
        }
    }
}

fn read_bridge(r16: &dyn Fn(u16) -> u16, r32: &dyn Fn(u16) -> u32) -> BridgeState {
    let buses = r32(br::PRIMARY_BUS);
    let w = crate::type1::decode_windows(r16, r32);
    BridgeState {
        primary: buses as u8,
        secondary: (buses >> 8) as u8,
        subordinate: (buses >> 16) as u8,
        io: w.io,
        mem: w.mem,
        pref: w.pref,
        control: r16(br::BRIDGE_CONTROL),
    }
}

/// The ACS a faulty port applies: its visible state (if any) with the
/// stuck bits forced on, or, hidden, the state it behaves as. A hidden
/// capability has no registers, so its `offset` is past config space
/// (no config write reaches it).
fn apply_acs_fault(visible: Option<AcsState>, fault: AcsFault) -> Option<AcsState> {
    let mut acs = match (visible, fault.hidden) {
        (_, Some((cap, ctrl))) => Some(AcsState {
            offset: crate::CONFIG_SPACE_SIZE as u16,
            cap,
            ctrl,
            vector_bits: 0,
            egress: [0; 8],
        }),
        (v, None) => v,
    };
    if let Some(a) = &mut acs {
        a.cap |= fault.stuck_on;
        a.ctrl |= fault.stuck_on;
    }
    acs
}

fn read_acs(offset: u16, r32: &dyn Fn(u16) -> u32) -> AcsState {
    let regs = r32(offset + acs_reg::CAPABILITY);
    let cap = AcsBits::from_register(regs as u16);
    let mut egress = [0; 8];
    let mut vector_bits = 0;
    if cap.contains(AcsBits::EC) {
        vector_bits = match (regs >> 8) as u8 {
            0 => 256,
            n => u16::from(n),
        };
        for (i, word) in egress
            .iter_mut()
            .enumerate()
            .take(vector_bits.div_ceil(32).into())
        {
            *word = r32(offset + acs_reg::EGRESS_VECTOR + 4 * i as u16);
        }
    }
    AcsState {
        offset,
        cap,
        ctrl: AcsBits::from_register((regs >> 16) as u16),
        vector_bits,
        egress,
    }
}

/// Everything the routers read, immutable once built.
pub(crate) struct Snapshot {
    pub(crate) topo: Arc<Topology>,
    pub(crate) state: Vec<NodeState>,
    pub(crate) bdfs: Vec<Option<Bdf>>,
    pub(crate) policy: RcP2pPolicy,
    pub(crate) iommu: Option<Arc<dyn Iommu>>,
    pub(crate) generation: u64,
    /// Every address where a routing decision may change (the edges of
    /// every BAR, bridge memory window and RAM range), sorted, unique.
    pub(crate) bounds: Vec<u64>,
    /// Where the CPU reaches each watched BAR (RAM-backed, or with
    /// doorbells) whole, if it does: see [`Snapshot::cpu_address`].
    pub(crate) watched: Vec<(NodeId, u8, Option<u64>)>,
}

/// Which nodes a rebuild must read again: all, or only these (the others'
/// registers are taken from the snapshot it replaces).
#[derive(Clone, Copy)]
pub(crate) enum Reread<'a> {
    All,
    Only(&'a [NodeId]),
}

impl Snapshot {
    /// Reads the nodes' registers, one function locked at a time: every
    /// node, or (`Reread::Only`, same topology as `prev`) just the listed
    /// ones, taking the others' from `prev`. A function that this thread
    /// holds already (a device calling the fabric from its own handler)
    /// keeps its previous registers.
    pub(crate) fn build(
        topo: Arc<Topology>,
        policy: RcP2pPolicy,
        iommu: Option<Arc<dyn Iommu>>,
        generation: u64,
        ram: &[(u64, u64)],
        prev: Option<&Snapshot>,
        reread: Reread<'_>,
    ) -> Self {
        let state = topo
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let old = prev.and_then(|p| p.state.get(i));
                let skip = match reread {
                    Reread::All => false,
                    Reread::Only(ids) => !ids.iter().any(|id| id.index() == i),
                };
                match (skip, old) {
                    (true, Some(old)) => old.clone(),
                    (_, old) => match n.lock() {
                        Some(f) => NodeState::read(&*f, n.kind.is_bridge()),
                        None => old.cloned().unwrap_or_else(NodeState::absent),
                    },
                }
            })
            .collect();
        let mut snap = Snapshot {
            topo,
            state,
            bdfs: Vec::new(),
            policy,
            iommu,
            generation,
            bounds: Vec::new(),
            watched: Vec::new(),
        };
        snap.bounds = snap.decision_bounds(ram);
        snap.watched = snap
            .topo
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.watched_bars().map(move |b| (NodeId(i as u32), b)))
            .map(|(id, bar)| (id, bar, snap.cpu_address(id, bar)))
            .collect();
        snap.bdfs = (0..snap.topo.nodes.len())
            .map(|i| snap.find_bdf(i))
            .collect();
        snap
    }

    /// The edges of every range the router tests an address against: BARs
    /// (enabled or not), bridge memory and prefetchable windows, RAM, the
    /// interrupt range.
    /// Between two consecutive edges, every such test has the same outcome,
    /// so a request's route depends on its address only through the
    /// interval it falls in (its length only through the interval's end).
    fn decision_bounds(&self, ram: &[(u64, u64)]) -> Vec<u64> {
        let mut b = Vec::new();
        let mut range = |start: u64, end: Option<u64>| {
            b.push(start);
            b.extend(end);
        };
        for st in &self.state {
            for bar in &st.bars {
                range(bar.addr, bar.addr.checked_add(bar.size));
            }
            let windows = st.bridge.iter().flat_map(|br| [br.mem, br.pref]);
            for w in windows.flatten() {
                range(w.base, w.limit.checked_add(1));
            }
        }
        for &(start, len) in ram {
            range(start, start.checked_add(len));
        }
        range(*super::MSI_RANGE.start(), Some(*super::MSI_RANGE.end() + 1));
        b.sort_unstable();
        b.dedup();
        b
    }

    /// The half-open range around `addr` over which routing cannot change:
    /// [previous edge, next edge).
    pub(crate) fn range_of(&self, addr: u64) -> (u64, u64) {
        let i = self.bounds.partition_point(|&b| b <= addr);
        let lo = if i == 0 { 0 } else { self.bounds[i - 1] };
        (lo, self.bounds.get(i).copied().unwrap_or(u64::MAX))
    }

    /// Where the CPU reaches BAR `bar` of node `id` whole (its first and
    /// last byte both decode to it through every bridge above), if it does.
    pub(crate) fn cpu_address(&self, id: NodeId, bar: u8) -> Option<u64> {
        let region = self.state(id).bars.iter().find(|r| r.index == bar)?;
        let end = region.addr.checked_add(region.size - 1)?;
        let hits = |a: u64| self.resolve_down(a) == Some((id, bar, a - region.addr));
        (hits(region.addr) && hits(end)).then_some(region.addr)
    }

    /// What moved between `self` and `next` (same topology or grown):
    /// every watched BAR whose CPU address differs.
    pub(crate) fn moves(&self, next: &Snapshot) -> Vec<super::BarMove> {
        next.watched
            .iter()
            .filter_map(|&(node, bar, to)| {
                let from = self
                    .watched
                    .iter()
                    .find(|w| (w.0, w.1) == (node, bar))
                    .and_then(|w| w.2);
                (from != to).then_some(super::BarMove {
                    node,
                    bar,
                    from,
                    to,
                })
            })
            .collect()
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.topo.nodes[id.index()]
    }

    pub(crate) fn state(&self, id: NodeId) -> &NodeState {
        &self.state[id.index()]
    }

    pub(crate) fn children(&self, id: NodeId) -> &[NodeId] {
        &self.topo.children[id.index()]
    }
}
