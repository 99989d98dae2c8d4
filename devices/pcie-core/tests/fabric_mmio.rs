//! CPU-side memory routing: down through windows to one BAR, or master abort.

mod common;

use common::topo::standard;
use pcie_core::{command, RcP2pPolicy};

#[test]
fn cpu_access_reaches_the_bar_through_windows() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    for (name, bar) in [
        ("ep2", 0),
        ("ep2", 2),
        ("ep4", 0),
        ("ep1f1", 0),
        ("rciep", 0),
    ] {
        let addr = t.bar(name, bar) + 0x40;
        assert_eq!(
            f.resolve_mmio(addr),
            Some((t.id(name), bar, 0x40)),
            "{name}"
        );
        assert!(f.mmio_write(addr, &[1, 2, 3, 4]));
        assert_eq!(t.ep(name).peek(bar, 0x40, 4), [1, 2, 3, 4]);
        let mut back = [0; 4];
        assert!(f.mmio_read(addr, &mut back));
        assert_eq!(back, [1, 2, 3, 4]);
    }
}

#[test]
fn master_abort() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    let ep2 = t.bar("ep2", 0);
    let mut data = [0; 8];
    for addr in [0xd000_0000, 0x50_0000_0000, 0x1000] {
        assert_eq!(f.resolve_mmio(addr), None);
        assert!(!f.mmio_read(addr, &mut data));
        assert_eq!(data, [0xff; 8]);
        assert!(!f.mmio_write(addr, &data));
    }
    // Memory Space Enable off on the target or on any bridge above it.
    for n in ["ep2", "dsp2", "usp", "rp1"] {
        let t = standard(RcP2pPolicy::Forward);
        t.clear_command(n, command::MEMORY_SPACE);
        assert_eq!(t.fabric.resolve_mmio(ep2), None, "{n}");
        assert!(!t.fabric.mmio_write(ep2, &[9]), "{n}");
        assert_eq!(t.ep("ep2").peek(0, 0, 1), [0]);
    }
    // Bus Master Enable does not matter for the CPU's accesses.
    let t = standard(RcP2pPolicy::Forward);
    t.clear_command("dsp2", command::BUS_MASTER);
    assert!(t.fabric.mmio_read(ep2, &mut data));
}

#[test]
fn moving_a_bar_moves_the_decode() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    let old = t.bar("ep3", 0);
    let gen = f.generation();
    // Move ep3's BAR 0 to the top of dsp3's prefetchable window: still decodes.
    let w = f.bridge(t.id("dsp3")).unwrap().pref.unwrap();
    let new = w.limit + 1 - (1 << 20);
    let at = t.bdf("ep3");
    common::firmware::write::<4>(f, at, 0x10, new & 0xffff_ffff);
    common::firmware::write::<4>(f, at, 0x14, new >> 32);
    assert!(f.generation() > gen);
    if new != old {
        assert_eq!(f.resolve_mmio(old), None);
    }
    assert_eq!(f.resolve_mmio(new + 8), Some((t.id("ep3"), 0, 8)));
    // Outside every window: programmed, but nothing routes to it.
    common::firmware::write::<4>(f, at, 0x14, 0x7f);
    assert_eq!(f.resolve_mmio(0x7f_0000_0000 | (new & 0xffff_ffff)), None);
}
