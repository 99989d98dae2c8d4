//! The route cache: reuse within a decision range, invalidation by config
//! writes, range boundaries, and exact counters.

use std::sync::Arc;

mod common;

use common::topo::{standard, Topo, VecRam, RAM_SIZE};
use pcie_core::{command, AcsBits, DmaError, DmaHandle, LinkCounters, RcP2pPolicy};

fn handle(t: &Topo, name: &str, ram: &Arc<VecRam>) -> DmaHandle {
    DmaHandle::new(t.fabric.clone(), t.id(name), ram.clone())
}

fn all_counters(t: &Topo) -> Vec<(&'static str, LinkCounters)> {
    let mut v: Vec<_> = t
        .ids
        .iter()
        .map(|(n, id)| (*n, t.fabric.counters(*id)))
        .collect();
    v.sort_by_key(|(n, _)| *n);
    v
}

#[test]
fn route_is_reused_within_its_range() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    dma.write(0x1000, &[1; 64]).unwrap();
    let (routed, range) = dma.cache_stats();
    assert_eq!(routed, 1);
    assert_eq!(range, Some((0, RAM_SIZE)));
    for i in 0..10u64 {
        dma.write(0x2000 + i * 0x1000, &[2; 4096]).unwrap();
        let mut buf = [0; 100];
        dma.read(0x3000 + i * 0x1000, &mut buf).unwrap();
    }
    assert_eq!(dma.cache_stats().0, 1, "served from the cache");
    assert_eq!(ram.0.lock().unwrap()[0x2000], 2);
    // P2P to ep2's BAR 0: a new route, then reused.
    let bar = t.bar("ep2", 0);
    dma.write(bar, &[3; 128]).unwrap();
    dma.write(bar + 0x1000, &[4; 128]).unwrap();
    assert_eq!(dma.cache_stats().0, 2);
    assert_eq!(t.ep("ep2").peek(0, 0x1000, 2), vec![4, 4]);
    let mut back = [0; 128];
    dma.read(bar, &mut back).unwrap();
    assert_eq!(back, [3; 128]);
    assert_eq!(dma.cache_stats().0, 2);
}

#[test]
fn not_used_across_a_range_boundary() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let bar = t.bar("ep2", 0);
    let size = t.fabric.bar_regions(t.id("ep2"))[0].size;
    dma.write(bar, &[1; 64]).unwrap();
    let (_, range) = dma.cache_stats();
    assert_eq!(range, Some((bar, bar + size)));
    // Running past the end of the BAR (a 4 KiB boundary): the first piece
    // is served from the cache, the second is routed afresh.
    let end = bar + size;
    for (edge, lo) in [(end, bar), (RAM_SIZE, 0)] {
        dma.write(edge - 0x1000, &[1; 64]).unwrap();
        assert_eq!(dma.cache_stats().1.map(|r| r.0), Some(lo));
        let routed = dma.cache_stats().0;
        let got = dma.write(edge - 64, &[1; 128]);
        let want = t.fabric.route(&t.req("ep1", edge, 64, true));
        assert_eq!(got.is_ok(), want.is_ok(), "{edge:#x}: {got:?} vs {want:?}");
        // (A refused request is not counted as routed: nothing to cache.)
        let cached = u64::from(want.is_ok());
        assert_eq!(dma.cache_stats().0, routed + cached, "{edge:#x}");
        if want.is_ok() {
            assert_eq!(dma.cache_stats().1.map(|r| r.0), Some(edge));
        }
    }
}

#[test]
fn invalidated_by_config_writes() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let bar = t.bar("ep2", 0);

    // ACS: RR + UF... on dsp1 redirects ep1 -> ep2 through the upstream port.
    dma.write(bar, &[1; 64]).unwrap();
    assert!(t.fabric.counters(t.id("usp")).is_idle());
    t.set_acs("dsp1", AcsBits::RR | AcsBits::UF);
    dma.write(bar, &[1; 64]).unwrap();
    assert_eq!(t.fabric.counters(t.id("usp")).up_bytes, 64);
    t.set_acs("dsp1", AcsBits::NONE);

    // Moving the BAR: the old address no longer reaches ep2.
    t.fabric.reset_counters();
    dma.write(bar, &[1; 64]).unwrap();
    assert_eq!(t.fabric.counters(t.id("ep2")).down_bytes, 64);
    t.clear_command("ep2", command::MEMORY_SPACE);
    assert_eq!(dma.write(bar, &[1; 64]), Err(DmaError::UnsupportedRequest));
    assert_eq!(t.fabric.counters(t.id("ep2")).down_bytes, 64);

    // The requester's own Bus Master Enable.
    dma.write(0x1000, &[1; 64]).unwrap();
    dma.write(0x2000, &[1; 64]).unwrap();
    t.clear_command("ep1", command::BUS_MASTER);
    assert_eq!(
        dma.write(0x2000, &[1; 64]),
        Err(DmaError::BusMasterDisabled)
    );
    // A bridge's Bus Master Enable on the way up.
    let h2 = handle(&t, "ep3", &ram);
    h2.write(0x1000, &[1; 64]).unwrap();
    t.clear_command("usp", command::BUS_MASTER);
    assert_eq!(
        h2.write(0x1000, &[1; 64]),
        Err(DmaError::UnsupportedRequest)
    );
}

/// A handle with caching and one without, on two identical fabrics, doing
/// the same transfers: the same counters, every time they are read.
#[test]
fn counters_stay_exact() {
    let (a, b) = (
        standard(RcP2pPolicy::Forward),
        standard(RcP2pPolicy::Forward),
    );
    let (ram_a, ram_b) = (
        VecRam::new(RAM_SIZE as usize),
        VecRam::new(RAM_SIZE as usize),
    );
    let cached = handle(&a, "ep1", &ram_a);
    let plain = handle(&b, "ep1", &ram_b);
    plain.set_route_cache(false);
    let peer = a.bar("ep2", 0);
    assert_eq!(peer, b.bar("ep2", 0));
    let ep3 = a.bar("ep3", 2);
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut buf = vec![0u8; 20000];
    for i in 0..400 {
        let base = match next() % 4 {
            0 => 0x1000,
            1 => peer,
            2 => ep3,
            _ => 0x8_0000,
        };
        let addr = base + next() % 0x2000;
        let len = 1 + (next() % 9000) as usize;
        let write = next() % 2 == 0;
        let (ra, rb) = if write {
            (
                cached.write(addr, &buf[..len]),
                plain.write(addr, &buf[..len]),
            )
        } else {
            (
                cached.read(addr, &mut buf[..len]),
                plain.read(addr, &mut buf[..len]),
            )
        };
        assert_eq!(ra, rb, "request {i}");
        if i % 7 == 0 {
            assert_eq!(all_counters(&a), all_counters(&b), "after request {i}");
        }
        if i == 200 {
            a.fabric.reset_counters();
            b.fabric.reset_counters();
        }
    }
    assert_eq!(all_counters(&a), all_counters(&b));
    assert!(cached.cache_stats().0 < 400);
    assert_eq!(plain.cache_stats().0, 0);
    // A clone, then dropping both: the pending counts land in the atomics.
    let clone = cached.clone();
    clone.write(0x1000, &buf[..4096]).unwrap();
    plain.write(0x1000, &buf[..4096]).unwrap();
    drop(cached);
    drop(clone);
    assert_eq!(all_counters(&a), all_counters(&b));
    assert_eq!(
        a.fabric.route_cache_count(),
        0,
        "dropped handles unregister"
    );
}
