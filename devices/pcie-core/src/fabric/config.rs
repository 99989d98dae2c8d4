//! Config routing (CPU → config space) and what a config write triggers:
//! a snapshot rebuild, and a hot reset below a bridge whose Secondary Bus
//! Reset bit goes from 0 to 1.

use std::ops::Range;

use super::intx::overlay_status;
use super::snapshot::Snapshot;
use super::{ConfigWrite, Fabric, NodeId};
use crate::header::reg;
use crate::type1::{bridge_control, bridge_reg};
use crate::{ecam_decode, Bars, Bdf, ConfigEffects, ResetKind};

/// Config registers of a Type 0 function whose writes may change routing.
const TYPE0_ROUTING: [Range<u16>; 2] = [
    reg::COMMAND..reg::COMMAND + 2,
    Bars::register_offset(0)..Bars::register_offset(Bars::TYPE0_COUNT),
];

impl Snapshot {
    /// The BDF at which config routing reaches node `index`, if any.
    pub(crate) fn find_bdf(&self, index: usize) -> Option<Bdf> {
        let node = &self.topo.nodes[index];
        let bus = match node.parent {
            None => 0,
            Some(p) => self.state(p).bridge?.secondary,
        };
        let bdf = Bdf::new(bus, node.device, node.function).ok()?;
        (self.lookup(bdf)?.index() == index).then_some(bdf)
    }

    /// Config routing: the node a config request for `bdf` reaches. Bus 0
    /// is the root bus; other buses follow the bridges whose secondary ..=
    /// subordinate range holds them (Type 1), and on a bridge's secondary
    /// bus go to its child at device/function (Type 0). Below a root or
    /// downstream port only device 0 exists.
    pub(crate) fn lookup(&self, bdf: Bdf) -> Option<NodeId> {
        let find = |nodes: &[NodeId]| {
            nodes.iter().copied().find(|&n| {
                let node = self.node(n);
                node.device == bdf.device() && node.function == bdf.function()
            })
        };
        let mut bus_nodes = &self.topo.roots[..];
        if bdf.bus() == 0 {
            return find(bus_nodes);
        }
        'bus: loop {
            for &n in bus_nodes {
                let Some(b) = self.state(n).bridge.filter(|b| b.claims_bus(bdf.bus())) else {
                    continue;
                };
                // Below a link that is down nothing answers.
                if self.state(n).link_down {
                    return None;
                }
                if bdf.bus() != b.secondary {
                    bus_nodes = self.children(n);
                    continue 'bus;
                }
                if self.node(n).kind.is_link_port() && bdf.device() != 0 {
                    return None;
                }
                return find(self.children(n));
            }
            return None;
        }
    }
}

fn overlaps(reg: u16, len: usize, range: &Range<u16>) -> bool {
    let end = reg as usize + len;
    (reg as usize) < range.end as usize && end > range.start as usize
}

impl Fabric {
    /// Config read of register `reg` of the function at `bdf`, routed by
    /// the bridges' bus numbers: all ones (0xFF bytes) when nothing answers.
    /// Config forwarding does not depend on the bridges' command registers.
    /// Status.Interrupt Status comes from the fabric's record of the
    /// function's INTx (see [`set_intx`](Self::set_intx)).
    pub fn config_read(&self, bdf: Bdf, reg: u16, data: &mut [u8]) {
        let snap = self.snapshot();
        match snap.lookup(bdf) {
            // A function calling the fabric from its own handler reads
            // all ones from itself rather than deadlocking.
            Some(id) => match snap.node(id).lock() {
                Some(f) => {
                    f.config_read(reg, data);
                    drop(f);
                    overlay_status(snap.node(id), reg, data);
                }
                None => data.fill(0xff),
            },
            None => data.fill(0xff),
        }
    }

    /// Config write to register `reg` of the function at `bdf`; dropped
    /// when nothing answers. Returns what the function reported changed.
    ///
    /// The routing snapshot is rebuilt when the effects are not empty, when
    /// the write hit a bridge, a Type 0 command or BAR register, or an ACS
    /// capability. A 0 → 1 write of a bridge's Secondary Bus Reset bit hot
    /// resets every function below it, deasserting their INTx. A write
    /// to a Command register re-evaluates the function's INTx wire
    /// against Interrupt Disable.
    pub fn config_write(&self, bdf: Bdf, reg: u16, data: &[u8]) -> ConfigEffects {
        self.config_write_node(bdf, reg, data).effects
    }

    /// Like [`config_write`](Self::config_write), and says which node was
    /// written and which watched BARs moved (for the VMM's memory slots
    /// and doorbells).
    ///
    /// Only the registers of the node written are read again (of every
    /// node below it after a Secondary Bus Reset), one lock at a time.
    /// A function this thread holds already (re-entry from its own
    /// handler) drops the write.
    pub fn config_write_node(&self, bdf: Bdf, reg: u16, data: &[u8]) -> ConfigWrite {
        let snap = self.snapshot();
        let Some(id) = snap.lookup(bdf) else {
            return ConfigWrite::default();
        };
        let node = snap.node(id);
        let is_bridge = node.kind.is_bridge();
        let ctl = bridge_reg::BRIDGE_CONTROL..bridge_reg::BRIDGE_CONTROL + 2;
        let hits_ctl = is_bridge && overlaps(reg, data.len(), &ctl);
        let (effects, sbr_rose) = {
            let Some(mut f) = node.lock() else {
                return ConfigWrite::default();
            };
            let sbr = |f: &dyn crate::PciFunction| {
                let mut b = [0; 2];
                f.config_read(bridge_reg::BRIDGE_CONTROL, &mut b);
                u16::from_le_bytes(b) & bridge_control::SECONDARY_BUS_RESET != 0
            };
            let before = hits_ctl && sbr(&*f);
            let effects = f.config_write(reg, data);
            (effects, hits_ctl && !before && sbr(&*f))
        };
        let mut reread = vec![id];
        if sbr_rose {
            let below = self.reset_below(id, ResetKind::Hot);
            self.intx_forget(&below);
            reread.extend(below);
        }
        let acs = snap.state(id).acs.map(|a| a.offset..a.offset + 0x28);
        let routing = !effects.is_empty()
            || is_bridge
            || sbr_rose
            || TYPE0_ROUTING.iter().any(|r| overlaps(reg, data.len(), r))
            || acs.is_some_and(|r| overlaps(reg, data.len(), &r));
        let moved = if routing {
            self.refresh_nodes(&reread)
        } else {
            Vec::new()
        };
        ConfigWrite {
            node: Some(id),
            effects,
            moved,
        }
    }

    /// Resets every function below bridge `id` (not the bridge itself),
    /// one lock at a time; returns them.
    pub(super) fn reset_below(&self, id: NodeId, kind: ResetKind) -> Vec<NodeId> {
        let snap = self.snapshot();
        let mut stack: Vec<NodeId> = snap.children(id).to_vec();
        let mut done = Vec::new();
        while let Some(n) = stack.pop() {
            if let Some(mut f) = snap.node(n).lock() {
                f.reset(kind);
            }
            done.push(n);
            stack.extend_from_slice(snap.children(n));
        }
        done
    }

    /// Config read at `offset` into the ECAM window (see [`ecam_decode`]);
    /// all ones outside it or where nothing answers.
    pub fn ecam_read(&self, offset: u64, data: &mut [u8]) {
        match ecam_decode(offset) {
            Some((bdf, reg)) => self.config_read(bdf, reg, data),
            None => data.fill(0xff),
        }
    }

    /// Config write at `offset` into the ECAM window: what it did (see
    /// [`config_write_node`](Self::config_write_node)).
    pub fn ecam_write(&self, offset: u64, data: &[u8]) -> ConfigWrite {
        match ecam_decode(offset) {
            Some((bdf, reg)) => self.config_write_node(bdf, reg, data),
            None => ConfigWrite::default(),
        }
    }
}
