//! Test fabrics, built and then programmed through config space like
//! firmware would, and helpers to poke at them.

use std::collections::HashMap;
use std::sync::Arc;

use pcie_core::{
    acs_reg, ext_cap_id, ext_capabilities, reg, AcsBits, BarKind, Bdf, Dir, DmaRequest,
    EnumerationReport, Fabric, NodeId, NodeKind, RcP2pPolicy, Route,
};

use super::bridge::TestBridge;
use super::endpoint::{EpShared, FakeEndpoint};
use super::firmware::{self, read, write};
use super::Dummy;

/// Guest RAM of every test fabric: 1 MiB at 0.
pub const RAM_SIZE: u64 = 1 << 20;

/// A built and enumerated fabric, with its nodes by name.
pub struct Topo {
    /// The fabric.
    pub fabric: Arc<Fabric>,
    /// Nodes by name.
    pub ids: HashMap<&'static str, NodeId>,
    /// Endpoints' shared state by name.
    pub eps: HashMap<&'static str, Arc<EpShared>>,
    /// What the firmware did.
    pub report: EnumerationReport,
}

impl Topo {
    /// The node called `name`.
    pub fn id(&self, name: &str) -> NodeId {
        *self
            .ids
            .get(name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The endpoint state of `name`.
    pub fn ep(&self, name: &str) -> &Arc<EpShared> {
        &self.eps[name]
    }

    /// The bus address of BAR `bar` of `name`.
    pub fn bar(&self, name: &str, bar: u8) -> u64 {
        let regions = self.fabric.bar_regions(self.id(name));
        regions.iter().find(|r| r.index == bar).expect("BAR").addr
    }

    /// The BDF of `name`.
    pub fn bdf(&self, name: &str) -> Bdf {
        self.fabric.bdf(self.id(name)).expect("configured")
    }

    /// Sets ACS control of `name` to `bits`.
    pub fn set_acs(&self, name: &str, bits: AcsBits) {
        let at = self.bdf(name);
        let f = &*self.fabric;
        let cap = ext_capabilities(|o| read::<4>(f, at, o) as u32)
            .find(|c| c.id == ext_cap_id::ACS)
            .expect("ACS capability");
        write::<2>(f, at, cap.offset + acs_reg::CONTROL, bits.bits().into());
    }

    /// Sets the egress control vector (first dword) of `name`.
    pub fn set_egress(&self, name: &str, vector: u32) {
        let at = self.bdf(name);
        let f = &*self.fabric;
        let cap = ext_capabilities(|o| read::<4>(f, at, o) as u32)
            .find(|c| c.id == ext_cap_id::ACS)
            .expect("ACS capability");
        write::<4>(f, at, cap.offset + acs_reg::EGRESS_VECTOR, vector.into());
    }

    /// Clears command register bits of `name`.
    pub fn clear_command(&self, name: &str, bits: u16) {
        let at = self.bdf(name);
        let cmd = read::<2>(&self.fabric, at, reg::COMMAND) & !u64::from(bits);
        write::<2>(&self.fabric, at, reg::COMMAND, cmd);
    }

    /// A request from `from`.
    pub fn req(&self, from: &str, addr: u64, len: u64, write: bool) -> DmaRequest {
        DmaRequest {
            requester: self.id(from),
            requester_id: None,
            addr,
            len,
            write,
            translated: false,
        }
    }

    /// A route as `"ep1^ dsp1^ dsp2v ep2v"`.
    pub fn path(&self, route: &Route) -> String {
        let names: HashMap<NodeId, &str> = self.ids.iter().map(|(k, v)| (*v, *k)).collect();
        route
            .hops
            .iter()
            .map(|h| {
                format!(
                    "{}{}",
                    names[&h.node],
                    if h.dir == Dir::Up { "^" } else { "v" }
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Builds a tree from `(name, parent, device, function, kind)` rows; the
/// endpoints get [`FakeEndpoint::standard`] unless named `rciep` (one
/// 256-byte 32-bit BAR). Bridges implement every ACS bit but switch
/// upstream ports, which have no ACS. Port numbers: device number + 1.
pub fn build(
    rows: &[(&'static str, Option<&'static str>, u8, u8, NodeKind)],
    policy: RcP2pPolicy,
) -> Topo {
    let fabric = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], policy));
    let mut topo = Topo {
        fabric,
        ids: HashMap::new(),
        eps: HashMap::new(),
        report: EnumerationReport::default(),
    };
    for &(name, parent, dev, func, kind) in rows {
        let multi = rows
            .iter()
            .any(|r| r.1 == parent && r.2 == dev && r.3 != 0 && func == 0);
        let f: Box<dyn pcie_core::PciFunction> = match kind {
            NodeKind::HostBridge => Box::new(Dummy(super::config(0x8086, 0x29c0))),
            NodeKind::RootPort => TestBridge::root_port(dev + 1),
            NodeKind::SwitchUpstream => TestBridge::upstream(),
            NodeKind::SwitchDownstream => TestBridge::downstream(dev + 1),
            NodeKind::Endpoint => {
                let small = (
                    0,
                    BarKind::Memory32 {
                        prefetchable: false,
                    },
                    0x100,
                );
                let (ep, shared) = if name == "rciep" {
                    FakeEndpoint::new(&[small], false)
                } else {
                    FakeEndpoint::standard(multi)
                };
                topo.eps.insert(name, shared);
                ep
            }
        };
        let parent = parent.map(|p| topo.id(p));
        let id = topo.fabric.add(parent, dev, func, name, kind, f).unwrap();
        topo.ids.insert(name, id);
    }
    topo.report = firmware::enumerate(&topo.fabric);
    topo
}

/// RC with a host bridge; root port 1 → switch (upstream port + 3
/// downstream ports, each with an endpoint; the first endpoint has a
/// second function `ep1f1`); root port 2 → `ep4`; an integrated `rciep`.
pub fn standard(policy: RcP2pPolicy) -> Topo {
    use NodeKind::*;
    build(
        &[
            ("hb", None, 0, 0, HostBridge),
            ("rp1", None, 1, 0, RootPort),
            ("usp", Some("rp1"), 0, 0, SwitchUpstream),
            ("dsp1", Some("usp"), 0, 0, SwitchDownstream),
            ("dsp2", Some("usp"), 1, 0, SwitchDownstream),
            ("dsp3", Some("usp"), 2, 0, SwitchDownstream),
            ("ep1", Some("dsp1"), 0, 0, Endpoint),
            ("ep1f1", Some("dsp1"), 0, 1, Endpoint),
            ("ep2", Some("dsp2"), 0, 0, Endpoint),
            ("ep3", Some("dsp3"), 0, 0, Endpoint),
            ("rp2", None, 2, 0, RootPort),
            ("ep4", Some("rp2"), 0, 0, Endpoint),
            ("rciep", None, 3, 0, Endpoint),
        ],
        policy,
    )
}

/// Two switch levels: root port → switch A; A's first downstream port →
/// switch B with two endpoints; A's second downstream port → `ep_a2`.
pub fn two_level(policy: RcP2pPolicy) -> Topo {
    use NodeKind::*;
    build(
        &[
            ("hb", None, 0, 0, HostBridge),
            ("rp1", None, 1, 0, RootPort),
            ("usp_a", Some("rp1"), 0, 0, SwitchUpstream),
            ("dsp_a1", Some("usp_a"), 0, 0, SwitchDownstream),
            ("dsp_a2", Some("usp_a"), 1, 0, SwitchDownstream),
            ("usp_b", Some("dsp_a1"), 0, 0, SwitchUpstream),
            ("dsp_b1", Some("usp_b"), 0, 0, SwitchDownstream),
            ("dsp_b2", Some("usp_b"), 1, 0, SwitchDownstream),
            ("ep_b1", Some("dsp_b1"), 0, 0, Endpoint),
            ("ep_b2", Some("dsp_b2"), 0, 0, Endpoint),
            ("ep_a2", Some("dsp_a2"), 0, 0, Endpoint),
        ],
        policy,
    )
}

/// Guest RAM over a vector (the crate's own).
// Not every user of this module (the router bench) needs it.
#[allow(unused_imports)]
pub use pcie_core::VecRam;
