//! Programming a rig's fabric as enumeration does, quickly (see
//! [`Rig::program`]).

use std::sync::OnceLock;

use pcie_core::{enumerate, Apertures};

use crate::Rig;

/// Where enumeration puts BARs and windows.
const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

/// The header dwords kept from an enumerated fabric: 0x00 to 0x3f.
const HEADER_DWORDS: usize = 16;
/// The first one written back: BAR 0 (after it, the bus numbers and
/// windows of a bridge).
const HEADER_FIRST: usize = 4;

/// A node's BARs and, for a bridge, its bus numbers and windows.
type Routing = (Vec<pcie_core::BarRegion>, Option<pcie_core::BridgeState>);

/// What enumeration programmed: every node's header dwords (in
/// [`Fabric::nodes`] order) and the routing that resulted.
struct Template {
    headers: Vec<Vec<u32>>,
    routing: Vec<Routing>,
}

impl Rig {
    /// Programs the fabric as [`enumerate`] does, quickly: the first rig
    /// of each shape is enumerated and its nodes' header registers kept;
    /// later ones get those registers written straight into their
    /// functions and one snapshot rebuild (enumeration rebuilds the
    /// routing snapshot on every config write, which made it most of an
    /// execution's time).
    pub(crate) fn program(&self, peer: bool) {
        static TEMPLATES: [OnceLock<Template>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = &TEMPLATES[usize::from(peer)];
        if let Some(t) = slot.get() {
            for (&id, dwords) in self.fabric.nodes().iter().zip(&t.headers) {
                self.fabric.with_function(id, |f| {
                    for (i, v) in dwords.iter().enumerate().skip(HEADER_FIRST) {
                        f.config_write(4 * i as u16, &v.to_le_bytes());
                    }
                    // Command last: decoding on once everything is placed.
                    f.config_write(4, &dwords[1].to_le_bytes()[..2]);
                });
            }
            self.fabric.refresh();
            assert_eq!(self.routing(), t.routing, "replayed enumeration");
            return;
        }
        enumerate(&self.fabric, &APERTURES).unwrap();
        let headers = self
            .fabric
            .nodes()
            .iter()
            .map(|&id| {
                self.fabric.with_function(id, |f| {
                    (0..HEADER_DWORDS)
                        .map(|i| {
                            let mut b = [0; 4];
                            f.config_read(4 * i as u16, &mut b);
                            u32::from_le_bytes(b)
                        })
                        .collect()
                })
            })
            .collect();
        let routing = self.routing();
        let _ = slot.set(Template { headers, routing });
    }

    /// Every node's BARs and bridge registers as the fabric routes them.
    fn routing(&self) -> Vec<Routing> {
        let f = &self.fabric;
        f.nodes()
            .iter()
            .map(|&id| (f.bar_regions(id), f.bridge(id)))
            .collect()
    }
}
