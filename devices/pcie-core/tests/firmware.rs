//! Firmware enumeration of the test fabrics through config space: bus
//! numbers, BARs inside the right aperture, windows holding exactly their
//! children, command registers, and idempotence.

mod common;

use common::firmware::{self as fw, read, write, MEM32_BASE, MEM32_SIZE, MEM64_BASE, MEM64_SIZE};
use common::topo::{standard, two_level, Topo};
use pcie_core::{
    bridge_reg as br, command, pcie_reg, BarKind, BarRegion, NodeReport, RcP2pPolicy, Window,
};

const MIB: u64 = 1 << 20;

fn buses(t: &Topo, name: &str) -> (u8, u8, u8) {
    let b = t.fabric.bridge(t.id(name)).expect("bridge");
    (b.primary, b.secondary, b.subordinate)
}

#[test]
fn standard_bus_numbers() {
    let t = standard(RcP2pPolicy::Forward);
    for (name, want) in [
        ("rp1", (0, 1, 5)),
        ("usp", (1, 2, 5)),
        ("dsp1", (2, 3, 3)),
        ("dsp2", (2, 4, 4)),
        ("dsp3", (2, 5, 5)),
        ("rp2", (0, 6, 6)),
    ] {
        assert_eq!(buses(&t, name), want, "{name}");
        let b = t.report.by_name(name).unwrap().bridge.unwrap();
        assert_eq!((b.primary, b.secondary, b.subordinate), want, "{name}");
    }
    assert_eq!(t.report.nodes.len(), 13);
    assert_eq!(t.report.by_bdf(t.bdf("ep1f1")).unwrap().name, "ep1f1");
}

#[test]
fn two_level_bus_numbers() {
    let t = two_level(RcP2pPolicy::Forward);
    for (name, want) in [
        ("rp1", (0, 1, 7)),
        ("usp_a", (1, 2, 7)),
        ("dsp_a1", (2, 3, 6)),
        ("usp_b", (3, 4, 6)),
        ("dsp_b1", (4, 5, 5)),
        ("dsp_b2", (4, 6, 6)),
        ("dsp_a2", (2, 7, 7)),
    ] {
        assert_eq!(buses(&t, name), want, "{name}");
    }
    assert_eq!(t.bdf("ep_b2").to_string(), "06:00.0");
    assert_eq!(t.bdf("ep_a2").to_string(), "07:00.0");
}

/// Pool of a BAR: 1 for 64-bit prefetchable (64-bit aperture), else 0.
fn pool(kind: BarKind) -> usize {
    usize::from(matches!(kind, BarKind::Memory64 { prefetchable: true }))
}

/// The window of `pool` of a bridge's report.
fn window(n: &NodeReport, pool: usize) -> Option<Window> {
    let b = n.bridge.unwrap();
    [b.mem, b.pref][pool]
}

/// The (first, last) ranges a node occupies on its parent's bus in `pool`.
fn occupied(n: &NodeReport, pool: usize) -> Vec<(u64, u64)> {
    let bars = n.bars.iter().filter(|b| self::pool(b.kind) == pool);
    let mut v: Vec<_> = bars
        .map(|b| (b.addr.unwrap(), b.addr.unwrap() + b.size - 1))
        .collect();
    if n.bridge.is_some() {
        v.extend(window(n, pool).map(|w| (w.base, w.limit)));
    }
    v
}

fn check_resources(t: &Topo) {
    let f = &*t.fabric;
    let mut all = Vec::new();
    for n in &t.report.nodes {
        let mut programmed: Vec<BarRegion> = f.bar_regions(n.node.unwrap());
        programmed.sort_by_key(|r| r.index);
        assert_eq!(programmed.len(), n.bars.len(), "{}", n.name);
        for (b, r) in n.bars.iter().zip(&programmed) {
            let addr = b.addr.expect("assigned");
            assert_eq!((r.index, r.addr, r.size), (b.index, addr, b.size));
            assert_eq!(addr % b.size, 0, "{} BAR{} misaligned", n.name, b.index);
            let (base, size) = [(MEM32_BASE, MEM32_SIZE), (MEM64_BASE, MEM64_SIZE)][pool(b.kind)];
            assert!(addr >= base && addr + b.size <= base + size, "{}", n.name);
            all.push((addr, addr + b.size, &n.name));
        }
    }
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].1 <= w[1].0, "{} overlaps {}", w[0].2, w[1].2);
    }
    for n in t.report.nodes.iter().filter(|n| n.bridge.is_some()) {
        let id = n.node.unwrap();
        let state = f.bridge(id).unwrap();
        assert_eq!(
            (state.mem, state.pref),
            (window(n, 0), window(n, 1)),
            "{}",
            n.name
        );
        assert_eq!(state.io, None, "{}", n.name);
        let kids: Vec<&NodeReport> = f
            .children(id)
            .into_iter()
            .map(|c| t.report.nodes.iter().find(|r| r.node == Some(c)).unwrap())
            .collect();
        for pool in 0..2 {
            let mut inside: Vec<_> = kids.iter().flat_map(|k| occupied(k, pool)).collect();
            inside.sort();
            for w in inside.windows(2) {
                assert!(w[0].1 < w[1].0, "children of {} overlap", n.name);
            }
            match (window(n, pool), inside.first(), inside.last()) {
                (None, None, None) => {}
                (Some(w), Some(first), Some(last)) => {
                    assert_eq!(w.base, first.0, "{} window {pool}", n.name);
                    assert_eq!(w.limit, (last.1 + 1).next_multiple_of(MIB) - 1);
                    assert_eq!(w.base % MIB, 0);
                }
                (w, _, _) => panic!("{} window {pool} is {w:?} for {inside:x?}", n.name),
            }
        }
    }
}

fn check_commands(t: &Topo) {
    let both = command::MEMORY_SPACE | command::BUS_MASTER;
    for n in &t.report.nodes {
        let cmd = read::<2>(&t.fabric, n.bdf, 0x04) as u16;
        assert_eq!(cmd, n.command, "{}", n.name);
        let want = if n.bridge.is_some() || !n.bars.is_empty() {
            both
        } else {
            0
        };
        assert_eq!(cmd, want, "{}", n.name);
    }
}

#[test]
fn resources_and_commands() {
    for t in [
        standard(RcP2pPolicy::Forward),
        two_level(RcP2pPolicy::Forward),
    ] {
        check_resources(&t);
        check_commands(&t);
    }
}

#[test]
fn max_payload_is_256_everywhere() {
    let t = standard(RcP2pPolicy::Forward);
    assert_eq!(t.report.max_payload, Some(256));
    for name in ["rp1", "usp", "dsp2", "rp2"] {
        let cap = pcie_core::capabilities(|o| read::<4>(&t.fabric, t.bdf(name), o) as u32)
            .find(|c| c.id == pcie_core::cap_id::PCI_EXPRESS)
            .unwrap();
        let ctl = read::<2>(&t.fabric, t.bdf(name), cap.offset + pcie_reg::DEVCTL);
        assert_eq!(ctl >> 5 & 7, 1, "{name}");
    }
}

/// Every node's first 64 config bytes, read behind the fabric's back.
fn headers(t: &Topo) -> Vec<[u8; 64]> {
    let f = &t.fabric;
    f.nodes()
        .into_iter()
        .map(|id| {
            let mut b = [0; 64];
            f.with_function(id, |func| func.config_read(0, &mut b));
            b
        })
        .collect()
}

#[test]
fn enumerating_again_changes_nothing() {
    for t in [
        standard(RcP2pPolicy::Forward),
        two_level(RcP2pPolicy::Forward),
    ] {
        let before = headers(&t);
        assert_eq!(fw::enumerate(&t.fabric), t.report);
        assert_eq!(headers(&t), before);
        check_resources(&t);
    }
}

#[test]
fn enumeration_repairs_a_scrambled_fabric() {
    let t = standard(RcP2pPolicy::Forward);
    let before = headers(&t);
    let f = &*t.fabric;
    let (ep2, dsp3, usp) = (t.bdf("ep2"), t.bdf("dsp3"), t.bdf("usp"));
    write::<4>(f, ep2, 0x18, 0);
    write::<2>(f, dsp3, br::MEMORY_BASE, 0);
    write::<2>(f, usp, 0x04, 0);
    // Renumber rp1's hierarchy to buses that collide with rp2's.
    write::<4>(f, t.bdf("rp1"), br::PRIMARY_BUS, 0x0006_0600);
    assert_eq!(fw::enumerate(f), t.report);
    assert_eq!(headers(&t), before);
}

#[test]
fn report_prints_one_line_per_function_and_resource() {
    let t = standard(RcP2pPolicy::Forward);
    let text = t.report.to_string();
    assert!(
        text.contains("00:01.0 rp1 cmd 0x0006 bus 00 -> 01..=05\n"),
        "{text}"
    );
    assert!(text.contains("    io   closed\n"));
    let ep2 = t.bar("ep2", 0);
    assert!(text.contains(&format!("BAR0 mem64 pref 1 MiB at {ep2:#x}")));
    assert!(text.contains("BAR2 mem32 16 KiB at 0xc0"));
}
