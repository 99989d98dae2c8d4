//! A link brought down below a port (a surprise removal): nothing below
//! answers config or memory requests, nothing below can send, the port's
//! interrupt still climbs the fabric, and the link coming back up brings
//! back functions in their power-on state.

mod common;

use std::sync::Arc;

use common::bridge::link_msi;
use common::firmware::read;
use common::topo::standard;
use common::Apic;
use pcie_core::{DmaError, LinkCounters, LinkState, RcP2pPolicy, Target};

#[test]
fn below_a_link_that_is_down_nothing_answers_or_sends() {
    let t = standard(RcP2pPolicy::Forward);
    let apic = Arc::new(Apic::default());
    t.fabric.set_interrupt_sink(apic.clone());
    let f = &*t.fabric;
    let (ep1, ep1f1, bar1, bar2) = (
        t.bdf("ep1"),
        t.bdf("ep1f1"),
        t.bar("ep1", 0),
        t.bar("ep2", 0),
    );
    let vendor = read::<4>(f, ep1, 0);
    assert_ne!(vendor, 0xffff_ffff);
    let dsp1 = t.id("dsp1");
    assert_eq!(f.link_state(dsp1), Some(LinkState { up: true, downs: 0 }));
    // Upstream ports and endpoints have no link state to report or change.
    assert_eq!(f.link_state(t.id("usp")), None);
    assert_eq!(f.link_state(t.id("ep1")), None);
    assert!(f.set_link(t.id("usp"), false).is_err());
    assert!(f.set_link(t.id("ep1"), false).is_err());

    f.reset_counters();
    f.set_link(dsp1, false).unwrap();
    assert_eq!(
        f.link_state(dsp1),
        Some(LinkState {
            up: false,
            downs: 1
        })
    );
    // Config: both functions below read all ones; the port itself answers.
    assert_eq!(read::<4>(f, ep1, 0), 0xffff_ffff);
    assert_eq!(read::<4>(f, ep1f1, 0), 0xffff_ffff);
    assert_ne!(read::<4>(f, t.bdf("dsp1"), 0), 0xffff_ffff);
    // The CPU's reads of its BAR master abort.
    let mut b = [0u8; 4];
    assert!(!f.mmio_read(bar1, &mut b));
    assert_eq!(b, [0xff; 4]);
    // Nothing leaves the link: RAM, a peer, an interrupt.
    for (addr, len) in [(0x1000, 64), (bar2, 64), (0xfee0_0000, 4)] {
        let e = f.route(&t.req("ep1", addr, len, true)).unwrap_err();
        assert_eq!(e, DmaError::UnsupportedRequest, "{addr:#x}");
    }
    // Nothing reaches it: a peer's write, and one through the root complex.
    assert_eq!(
        f.route(&t.req("ep2", bar1, 64, true)).unwrap_err(),
        DmaError::UnsupportedRequest
    );
    assert_eq!(
        f.route(&t.req("ep4", bar1, 64, true)).unwrap_err(),
        DmaError::UnsupportedRequest
    );
    // Everyone else goes on: ep2 to RAM and to ep3.
    assert!(matches!(
        f.route(&t.req("ep2", 0x2000, 64, true)).unwrap().target,
        Target::Ram { .. }
    ));
    assert!(matches!(
        f.route(&t.req("ep2", t.bar("ep3", 0), 64, true))
            .unwrap()
            .target,
        Target::Bar { .. }
    ));
    // The port's own interrupt went up through the switch, one DWORD per link.
    assert_eq!(
        *apic.0.lock().unwrap(),
        vec![(link_msi(1).addr, link_msi(1).data)]
    );
    let one = LinkCounters {
        up_bytes: 4,
        up_tlps: 1,
        ..Default::default()
    };
    for n in ["dsp1", "usp", "rp1"] {
        assert_eq!(f.counters(t.id(n)), one, "{n}");
    }
    assert!(f.counters(t.id("ep1")).is_idle());

    // Up again: the functions answer, but in their power-on state (the
    // link went down under them): no BAR decodes, no bus mastering.
    f.set_link(dsp1, true).unwrap();
    assert_eq!(f.link_state(dsp1), Some(LinkState { up: true, downs: 1 }));
    assert_eq!(read::<4>(f, ep1, 0), vendor);
    assert_eq!(read::<2>(f, ep1, 0x04), 0, "command register reset");
    assert!(!f.mmio_read(bar1, &mut b));
    assert_eq!(
        f.route(&t.req("ep1", 0x1000, 64, true)).unwrap_err(),
        DmaError::BusMasterDisabled
    );
    assert_eq!(apic.0.lock().unwrap().len(), 2);
    // Going up twice changes nothing and raises nothing.
    f.set_link(dsp1, true).unwrap();
    assert_eq!(apic.0.lock().unwrap().len(), 2);
}
