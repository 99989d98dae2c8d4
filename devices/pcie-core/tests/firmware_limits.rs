//! Firmware enumeration at its limits: apertures too small or missing, I/O
//! resources, and the 256-bus ceiling.

mod common;

use std::sync::Arc;

use common::bridge::TestBridge;
use common::endpoint::FakeEndpoint;
use common::firmware::{APERTURES, IO_RANGE, MEM32_BASE, MEM32_SIZE};
use common::topo::{standard, RAM_SIZE};
use pcie_core::{command, enumerate, Apertures, BarKind, Error, Fabric, NodeKind, RcP2pPolicy};

const MIB: u64 = 1 << 20;

#[test]
fn a_window_too_big_for_its_aperture_names_the_bridge() {
    let t = standard(RcP2pPolicy::Forward);
    let small64 = Apertures {
        mmio64: (APERTURES.mmio64.0, 2 * MIB),
        ..APERTURES
    };
    let err = enumerate(&t.fabric, &small64).unwrap_err();
    assert!(
        matches!(&err, Error::ApertureExhausted { size, aperture: "64-bit MMIO", .. } if *size == 4 * MIB),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("prefetchable window of bridge rp1 (00:01.0)"),
        "{msg}"
    );
    let small32 = Apertures {
        mmio32: (MEM32_BASE, 3 * MIB),
        ..APERTURES
    };
    let msg = enumerate(&t.fabric, &small32).unwrap_err().to_string();
    assert!(
        msg.contains("memory window of bridge rp2 (00:02.0)"),
        "{msg}"
    );
    assert!(msg.contains("needs 0x400100"), "{msg}");
}

#[test]
fn malformed_apertures_are_refused() {
    let t = standard(RcP2pPolicy::Forward);
    for bad in [
        Apertures {
            mmio32: (0xf000_0000, 0x2000_0000),
            ..APERTURES
        },
        Apertures {
            mmio64: (u64::MAX - MIB, 2 * MIB),
            ..APERTURES
        },
    ] {
        let err = enumerate(&t.fabric, &bad).unwrap_err();
        assert!(matches!(err, Error::InvalidAperture { .. }), "{err:?}");
    }
}

#[test]
fn without_a_64_bit_aperture_everything_goes_below_4g() {
    let t = standard(RcP2pPolicy::Forward);
    let r = enumerate(
        &t.fabric,
        &Apertures {
            mmio64: (0, 0),
            ..APERTURES
        },
    )
    .unwrap();
    for n in &r.nodes {
        for b in &n.bars {
            let a = b.addr.unwrap();
            assert!(a >= MEM32_BASE && a + b.size <= MEM32_BASE + MEM32_SIZE);
            assert_eq!(a % b.size, 0);
        }
        if let Some(b) = n.bridge {
            assert_eq!(b.pref, None, "{}", n.name);
            assert_eq!(t.fabric.bridge(n.node.unwrap()).unwrap().pref, None);
        }
    }
    // 1 MiB prefetchable + 16 KiB BARs: two 1 MiB-aligned MiBs per link.
    let dsp2 = r.by_name("dsp2").unwrap().bridge.unwrap().mem.unwrap();
    assert_eq!(dsp2.limit + 1 - dsp2.base, 2 * MIB);
}

/// Root port → endpoint with an I/O BAR and a memory BAR; an integrated
/// endpoint with an I/O BAR.
fn io_fabric() -> Arc<Fabric> {
    let f = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], RcP2pPolicy::Forward));
    let rp = f
        .add(
            None,
            1,
            0,
            "rp",
            NodeKind::RootPort,
            TestBridge::root_port(1),
        )
        .unwrap();
    let mem = BarKind::Memory32 {
        prefetchable: false,
    };
    let (ep, _) = FakeEndpoint::new(&[(0, BarKind::Io, 0x100), (1, mem, 0x1000)], false);
    f.add(Some(rp), 0, 0, "ep", NodeKind::Endpoint, ep).unwrap();
    let (rc, _) = FakeEndpoint::new(&[(4, BarKind::Io, 0x20)], false);
    f.add(None, 2, 0, "rciep", NodeKind::Endpoint, rc).unwrap();
    f
}

#[test]
fn io_bars_get_io_windows_and_io_space_enable() {
    let f = io_fabric();
    let r = enumerate(&f, &APERTURES).unwrap();
    let rp = r.by_name("rp").unwrap();
    let io = rp.bridge.unwrap().io.unwrap();
    assert_eq!((io.base, io.limit), (u64::from(IO_RANGE.0), 0x1fff));
    assert_eq!(f.bridge(rp.node.unwrap()).unwrap().io, Some(io));
    let ep = r.by_name("ep").unwrap();
    let bar = ep.bars[0];
    assert_eq!((bar.kind, bar.addr), (BarKind::Io, Some(0x1000)));
    let rciep = r.by_name("rciep").unwrap().bars[0];
    assert_eq!((rciep.index, rciep.addr), (4, Some(0x2000)));
    let all = command::IO_SPACE | command::MEMORY_SPACE | command::BUS_MASTER;
    assert_eq!(rp.command, all);
    assert_eq!(ep.command, all);
    let rc = r.by_name("rciep").unwrap();
    assert_eq!(rc.command, command::IO_SPACE | command::BUS_MASTER);
}

#[test]
fn without_an_io_range_io_bars_stay_unassigned() {
    let f = io_fabric();
    let r = enumerate(
        &f,
        &Apertures {
            io: (1, 0),
            ..APERTURES
        },
    )
    .unwrap();
    let rp = r.by_name("rp").unwrap();
    assert_eq!(rp.bridge.unwrap().io, None);
    assert_eq!(f.bridge(rp.node.unwrap()).unwrap().io, None);
    let ep = r.by_name("ep").unwrap();
    assert_eq!(ep.bars[0].addr, None);
    assert!(ep.bars[1].addr.is_some());
    assert_eq!(ep.command, command::MEMORY_SPACE | command::BUS_MASTER);
}

/// Root port → switch with one downstream port per entry of `fanout`,
/// each leading to a switch with that many downstream ports. Uses
/// 3 + Σ(2 + n) bus numbers, bus 0 included.
fn wide(fanout: &[u8]) -> Arc<Fabric> {
    use NodeKind::*;
    let f = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], RcP2pPolicy::Forward));
    let rp = f.add(None, 1, 0, "rp", RootPort, TestBridge::root_port(1));
    let usp = f.add(
        Some(rp.unwrap()),
        0,
        0,
        "usp",
        SwitchUpstream,
        TestBridge::upstream(),
    );
    let usp = usp.unwrap();
    for (i, &n) in fanout.iter().enumerate() {
        let i = i as u8;
        let dsp = TestBridge::downstream(i + 1);
        let d = f.add(Some(usp), i, 0, &format!("dsp{i}"), SwitchDownstream, dsp);
        let u = f.add(
            Some(d.unwrap()),
            0,
            0,
            &format!("usp{i}"),
            SwitchUpstream,
            TestBridge::upstream(),
        );
        let u = u.unwrap();
        for j in 0..n {
            let name = format!("dsp{i}.{j}");
            let dsp = TestBridge::downstream(j + 1);
            f.add(Some(u), j, 0, &name, SwitchDownstream, dsp).unwrap();
        }
    }
    f
}

#[test]
fn exactly_256_buses_fit() {
    // 3 + 14 * 17 + 15 = 256 buses.
    let mut fanout = vec![15; 14];
    fanout.push(13);
    let f = wide(&fanout);
    let r = enumerate(&f, &APERTURES).unwrap();
    let rp = r.by_name("rp").unwrap().bridge.unwrap();
    assert_eq!((rp.secondary, rp.subordinate), (1, 255));
    let last = r.by_name("dsp14.12").unwrap().bridge.unwrap();
    assert_eq!((last.secondary, last.subordinate), (255, 255));
}

#[test]
fn more_than_256_buses_is_an_error() {
    let mut fanout = vec![15; 14];
    fanout.push(14);
    let f = wide(&fanout);
    let err = enumerate(&f, &APERTURES).unwrap_err();
    assert_eq!(
        err,
        Error::TooManyBuses {
            bridge: "dsp14.13 (f2:0d.0)".into()
        }
    );
    assert!(err.to_string().contains("at most 256 buses"));
}
