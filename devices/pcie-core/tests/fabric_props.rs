//! Properties of the router over random ACS settings, policies and
//! requests, and a concurrency smoke test.

mod common;

use std::sync::Arc;
use std::thread;

use common::topo::{standard, two_level, Topo, VecRam, RAM_SIZE};
use pcie_core::{AcsBits, Dir, DmaHandle, RcP2pPolicy, Route, Target};
use proptest::prelude::*;

const ENDPOINTS: [&str; 5] = ["ep1", "ep1f1", "ep2", "ep3", "ep4"];
const PORTS: [&str; 5] = ["rp1", "rp2", "dsp1", "dsp2", "dsp3"];

/// Every hop follows a link of the tree: up to the parent, across one bus
/// (same parent: a switch's internal bus, a port turning around, or the
/// root complex), down to a child; and the route ends where the target is.
fn well_formed(t: &Topo, from: &str, route: &Route, addr: u64) {
    let f = &*t.fabric;
    let hops = &route.hops;
    assert_eq!((hops[0].node, hops[0].dir), (t.id(from), Dir::Up));
    for w in hops.windows(2) {
        let (a, b) = (w[0], w[1]);
        match (a.dir, b.dir) {
            (Dir::Up, Dir::Up) => assert_eq!(f.parent(a.node), Some(b.node)),
            (Dir::Up, Dir::Down) => assert_eq!(f.parent(a.node), f.parent(b.node)),
            (Dir::Down, Dir::Down) => assert_eq!(f.parent(b.node), Some(a.node)),
            (Dir::Down, Dir::Up) => panic!("went back up: {hops:?}"),
        }
    }
    let last = hops[hops.len() - 1];
    match route.target {
        Target::Ram { addr: ram } | Target::Interrupt { addr: ram } => {
            assert_eq!((last.dir, f.parent(last.node)), (Dir::Up, None));
            assert_eq!(ram, addr);
        }
        Target::Bar { node, bar, offset } => {
            assert_eq!((last.node, last.dir), (node, Dir::Down));
            let regions = f.bar_regions(node);
            let r = regions.iter().find(|r| r.index == bar).unwrap();
            assert_eq!(r.addr + offset, addr);
        }
    }
}

fn acs_bits() -> impl Strategy<Value = AcsBits> {
    (0u16..0x80).prop_map(AcsBits::from_register)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn routes_follow_the_tree(
        acs in proptest::array::uniform5(acs_bits()),
        egress in proptest::array::uniform5(0u32..16),
        refuse in any::<bool>(),
        from in 0..ENDPOINTS.len(),
        to in 0..ENDPOINTS.len() + 1,
        offset in 0u64..0x3f000,
        write in any::<bool>(),
        translated in any::<bool>(),
    ) {
        thread_local! {
            static TOPO: Topo = standard(RcP2pPolicy::Forward);
        }
        TOPO.with(|t| {
            for (i, port) in PORTS.iter().enumerate() {
                t.set_acs(port, acs[i]);
                t.set_egress(port, egress[i]);
            }
            let policy = if refuse { RcP2pPolicy::UnsupportedRequest } else { RcP2pPolicy::Forward };
            t.fabric.set_rc_policy(policy);
            let addr = match ENDPOINTS.get(to) {
                Some(ep) => t.bar(ep, 0) + offset,
                None => offset,
            };
            let mut req = t.req(ENDPOINTS[from], addr, 64, write);
            req.translated = translated;
            if let Ok(route) = t.fabric.route(&req) {
                well_formed(t, ENDPOINTS[from], &route, addr);
                // Without redirection anywhere, a switch never sends a
                // request to its own port's subtree through the root port.
                let redirect = acs.iter().any(|a| !(*a & (AcsBits::RR | AcsBits::UF | AcsBits::EC)).is_empty());
                let local = from < 4 && (1..4).contains(&to);
                if local && !redirect {
                    prop_assert!(!route.crosses(t.id("rp1")));
                    prop_assert!(!route.crosses(t.id("usp")));
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn concurrent_dma_mmio_and_config() {
    let t = Arc::new(two_level(RcP2pPolicy::Forward));
    let ram = VecRam::new(RAM_SIZE as usize);
    let b2 = t.bar("ep_b2", 0);
    let a2 = t.bar("ep_a2", 0);
    let mut workers = Vec::new();
    // Each DMA worker owns a 64 KiB region (the CPU thread below owns the
    // first one of ep_b2's BAR): every write must complete, and every read
    // must return what that worker wrote last.
    for (k, (from, to)) in [
        ("ep_b1", b2),
        ("ep_b2", a2),
        ("ep_a2", b2),
        ("ep_b1", 0x1000),
    ]
    .into_iter()
    .enumerate()
    {
        let dma = DmaHandle::new(t.fabric.clone(), t.id(from), ram.clone());
        let base = to + 0x1_0000 * (k as u64 + 1);
        workers.push(thread::spawn(move || {
            for i in 0..500u64 {
                let at = base + (i * 64) % 0x8000;
                let data = [(k as u8) << 6 | (i % 64) as u8; 300];
                dma.write(at, &data)
                    .unwrap_or_else(|e| panic!("{from} write {at:#x}: {e}"));
                let mut back = [0u8; 300];
                dma.read(at, &mut back)
                    .unwrap_or_else(|e| panic!("{from} read {at:#x}: {e}"));
                assert_eq!(back, data, "{from} at {at:#x}");
            }
        }));
    }
    let cpu = t.clone();
    workers.push(thread::spawn(move || {
        for i in 0..500u64 {
            cpu.fabric.mmio_write(b2 + i * 8, &i.to_le_bytes());
            let mut back = [0; 8];
            cpu.fabric.mmio_read(b2 + i * 8, &mut back);
            assert_eq!(u64::from_le_bytes(back), i);
        }
    }));
    for w in workers {
        w.join().unwrap();
    }
    // Config writes (snapshot rebuilds) while DMA runs: redirected or not,
    // each write reaches ep_a2 (the root complex forwards peer traffic).
    let dma = DmaHandle::new(t.fabric.clone(), t.id("ep_b1"), ram.clone());
    let runner = thread::spawn(move || {
        for i in 0..500u32 {
            dma.write(a2, &[(i % 251) as u8; 64]).unwrap();
        }
    });
    for i in 0..200 {
        let bits = if i % 2 == 0 {
            AcsBits::RR
        } else {
            AcsBits::NONE
        };
        t.set_acs("dsp_b1", bits);
    }
    runner.join().unwrap();
    assert_eq!(t.ep("ep_a2").peek(0, 0, 64), vec![(499 % 251) as u8; 64]);
    assert!(!t.fabric.counters(t.id("dsp_b1")).is_idle());
}
