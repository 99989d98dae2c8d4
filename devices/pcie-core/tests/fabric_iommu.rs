//! Translation at the root complex: an IOMMU's answer can land in RAM or
//! in a peer's BAR (then the RC's P2P policy applies), and the fabric
//! counts what it translated into a BAR.

mod common;

use std::sync::Arc;

use common::topo::standard;
use pcie_core::{Iommu, RcP2pPolicy, Target};

/// Maps the page at 0x4000_0000 to `bar`, everything else 1:1.
struct ToBar(u64);

impl Iommu for ToBar {
    fn translate(&self, _rid: u16, addr: u64, _len: u64, _write: bool) -> Option<u64> {
        Some(if addr & !0xfff == 0x4000_0000 {
            self.0 + (addr & 0xfff)
        } else {
            addr
        })
    }
}

#[test]
fn translated_p2p_is_counted_and_obeys_the_rc_policy() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &t.fabric;
    let bar = t.bar("ep4", 0);
    f.set_iommu(Some(Arc::new(ToBar(bar))));
    // ep1 (below the switch) to the IOVA: up to the RC, translated into
    // ep4's BAR below rp2.
    let r = f.route(&t.req("ep1", 0x4000_0010, 64, true)).unwrap();
    assert!(
        matches!(r.target, Target::Bar { offset: 0x10, .. }),
        "{:?}",
        r.target
    );
    assert_eq!(t.path(&r), "ep1^ dsp1^ usp^ rp1^ rp2v ep4v");
    assert_eq!(f.iommu_p2p(), (1, 64));
    // RAM translations are not P2P.
    assert!(matches!(
        f.route(&t.req("ep1", 0x2000, 64, true)).unwrap().target,
        Target::Ram { .. }
    ));
    assert_eq!(f.iommu_p2p(), (1, 64));
    // Untranslated P2P below the switch never meets the IOMMU.
    let peer = t.bar("ep2", 0);
    assert!(matches!(
        f.route(&t.req("ep1", peer, 64, true)).unwrap().target,
        Target::Bar { .. }
    ));
    assert_eq!(f.iommu_p2p(), (1, 64));
    // The RC refusing P2P refuses translated P2P too.
    f.set_rc_policy(RcP2pPolicy::UnsupportedRequest);
    assert!(f.route(&t.req("ep1", 0x4000_0000, 64, true)).is_err());
    assert_eq!(f.iommu_p2p(), (1, 64));
    f.reset_counters();
    assert_eq!(f.iommu_p2p(), (0, 0));
}
