//! Building the tree and routing config requests through it.

mod common;

use common::bridge::TestBridge;
use common::endpoint::FakeEndpoint;
use common::firmware::{read, write};
use common::topo::standard;
use pcie_core::{
    bridge_control, bridge_reg as br, command, reg, Bdf, ConfigEffects, Error, Fabric,
    HeaderLayout, NodeKind, PciFunction, RcP2pPolicy, MAX_DEPTH,
};

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).unwrap()
}

#[test]
fn fabric_is_shareable() {
    fn sync_send<T: Sync + Send>() {}
    sync_send::<Fabric>();
    sync_send::<pcie_core::DmaHandle>();
}

#[test]
fn firmware_numbering_gives_expected_bdfs() {
    let t = standard(RcP2pPolicy::Forward);
    let want = [
        ("hb", "00:00.0"),
        ("rp1", "00:01.0"),
        ("usp", "01:00.0"),
        ("dsp1", "02:00.0"),
        ("dsp2", "02:01.0"),
        ("dsp3", "02:02.0"),
        ("ep1", "03:00.0"),
        ("ep1f1", "03:00.1"),
        ("ep2", "04:00.0"),
        ("ep3", "05:00.0"),
        ("rp2", "00:02.0"),
        ("ep4", "06:00.0"),
        ("rciep", "00:03.0"),
    ];
    for (name, at) in want {
        assert_eq!(t.bdf(name).to_string(), at, "{name}");
        assert_eq!(t.fabric.node_at(t.bdf(name)), Some(t.id(name)));
    }
    let b = t.fabric.bridge(t.id("rp1")).unwrap();
    assert_eq!((b.primary, b.secondary, b.subordinate), (0, 1, 5));
    assert!(b.pref.is_some() && b.mem.is_some());
    assert_eq!(t.fabric.kind(t.id("usp")), NodeKind::SwitchUpstream);
    assert_eq!(t.fabric.parent(t.id("usp")), Some(t.id("rp1")));
    assert_eq!(t.fabric.children(t.id("usp")).len(), 3);
    assert_eq!(t.fabric.name(t.id("ep2")), "ep2");
    assert_eq!(t.fabric.slot(t.id("ep1f1")), (0, 1));
    assert_eq!(t.fabric.nodes().len(), 13);
}

#[test]
fn type1_to_type0_and_absent_functions() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    assert_eq!(read::<2>(f, bdf(4, 0, 0), reg::VENDOR_ID), 0x1234);
    assert_eq!(read::<1>(f, bdf(2, 1, 0), reg::HEADER_TYPE), 1);
    // Absent functions, buses nobody claims, devices > 0 below a link.
    for at in [
        bdf(0, 9, 0),
        bdf(2, 5, 0),
        bdf(9, 0, 0),
        bdf(3, 1, 0),
        bdf(4, 0, 3),
    ] {
        for len in [1, 2, 4] {
            let mut data = vec![0; len];
            f.config_read(at, reg::VENDOR_ID, &mut data);
            assert!(data.iter().all(|&b| b == 0xff), "{at}");
        }
        assert_eq!(
            f.config_write(at, reg::COMMAND, &[7, 0]),
            ConfigEffects::NONE
        );
        assert_eq!(f.node_at(at), None);
    }
    // ECAM is the same thing.
    let mut data = [0; 2];
    f.ecam_read(4 << 20, &mut data);
    assert_eq!(u16::from_le_bytes(data), 0x1234);
    f.ecam_read(pcie_core::ECAM_SIZE, &mut data);
    assert_eq!(data, [0xff; 2]);
    let w = f.ecam_write(4 << 20 | 4, &[0, 0]);
    assert_eq!(w.node, Some(t.id("ep2")));
    assert!(w.effects.command_changed());
    assert_eq!(
        f.ecam_write(9 << 20, &[0]),
        pcie_core::ConfigWrite::default()
    );
}

#[test]
fn config_forwarding_ignores_command_register() {
    let t = standard(RcP2pPolicy::Forward);
    for n in ["rp1", "usp", "dsp2"] {
        t.clear_command(
            n,
            command::MEMORY_SPACE | command::BUS_MASTER | command::IO_SPACE,
        );
    }
    assert_eq!(read::<2>(&t.fabric, bdf(4, 0, 0), reg::VENDOR_ID), 0x1234);
}

#[test]
fn renumbering_moves_bdfs() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    let ep4 = t.id("ep4");
    write::<2>(f, t.bdf("rp2"), br::SECONDARY_BUS, 0x2020);
    assert_eq!(f.bdf(ep4), Some(bdf(0x20, 0, 0)));
    assert_eq!(read::<2>(f, bdf(0x20, 0, 0), reg::VENDOR_ID), 0x1234);
    assert_eq!(read::<2>(f, bdf(6, 0, 0), reg::VENDOR_ID), 0xffff);
    // Unconfigured (secondary 0): unreachable, no BDF.
    write::<1>(f, bdf(0, 2, 0), br::SECONDARY_BUS, 0);
    assert_eq!(f.bdf(ep4), None);
    // A switch renumbered out of its root port's range is unreachable.
    write::<1>(f, t.bdf("usp"), br::SUBORDINATE_BUS, 0x30);
    write::<1>(f, t.bdf("usp"), br::SECONDARY_BUS, 0x30);
    assert_eq!(f.bdf(t.id("dsp1")), None);
    assert_eq!(f.bdf(t.id("usp")), Some(bdf(1, 0, 0)));
}

#[test]
fn secondary_bus_reset_resets_everything_below() {
    let t = standard(RcP2pPolicy::Forward);
    let f = &*t.fabric;
    let ep2 = t.bdf("ep2");
    assert_ne!(read::<2>(f, ep2, reg::COMMAND), 0);
    let ctl = bridge_control::SECONDARY_BUS_RESET as u64;
    write::<2>(f, t.bdf("dsp2"), br::BRIDGE_CONTROL, ctl);
    assert_eq!(read::<2>(f, ep2, reg::COMMAND), 0);
    assert!(f.bar_regions(t.id("ep2")).is_empty(), "snapshot refreshed");
    assert_ne!(
        read::<2>(f, t.bdf("ep3"), reg::COMMAND),
        0,
        "siblings untouched"
    );
}

fn ep() -> Box<dyn PciFunction> {
    FakeEndpoint::standard(false).0
}

#[test]
fn placement_rules() {
    use NodeKind::*;
    let f = Fabric::new(vec![], RcP2pPolicy::Forward);
    let rp = f
        .add(None, 1, 0, "rp", RootPort, TestBridge::root_port(1))
        .unwrap();
    let usp = f
        .add(
            Some(rp),
            0,
            0,
            "usp",
            SwitchUpstream,
            TestBridge::upstream(),
        )
        .unwrap();
    let dsp = f
        .add(
            Some(usp),
            3,
            0,
            "dsp",
            SwitchDownstream,
            TestBridge::downstream(4),
        )
        .unwrap();
    let e = f.add(Some(dsp), 0, 7, "e", Endpoint, ep()).unwrap();
    let foreign = standard(RcP2pPolicy::Forward).id("rciep");
    let cases: Vec<(Result<_, Error>, &str)> = vec![
        (f.add(None, 1, 0, "x", Endpoint, ep()), "DuplicateNode"),
        (f.add(Some(dsp), 0, 7, "x", Endpoint, ep()), "DuplicateNode"),
        (f.add(Some(e), 0, 0, "x", Endpoint, ep()), "NotABridge"),
        (
            f.add(Some(rp), 1, 0, "x", Endpoint, ep()),
            "LinkDeviceNotZero",
        ),
        (
            f.add(Some(dsp), 2, 0, "x", Endpoint, ep()),
            "LinkDeviceNotZero",
        ),
        (
            f.add(None, 5, 0, "x", SwitchUpstream, TestBridge::upstream()),
            "Misplaced",
        ),
        (
            f.add(Some(usp), 5, 0, "x", RootPort, TestBridge::root_port(1)),
            "Misplaced",
        ),
        (
            f.add(
                Some(rp),
                0,
                1,
                "x",
                SwitchDownstream,
                TestBridge::downstream(1),
            ),
            "Misplaced",
        ),
        (f.add(Some(rp), 0, 1, "x", HostBridge, ep()), "Misplaced"),
        (f.add(None, 6, 0, "x", RootPort, ep()), "HeaderMismatch"),
        (
            f.add(None, 6, 0, "x", Endpoint, TestBridge::root_port(1)),
            "HeaderMismatch",
        ),
        (f.add(None, 32, 0, "x", Endpoint, ep()), "InvalidBdf"),
        (
            f.add(Some(foreign), 0, 0, "x", Endpoint, ep()),
            "UnknownNode",
        ),
    ];
    for (i, (got, want)) in cases.into_iter().enumerate() {
        let err = got.expect_err(want);
        assert!(format!("{err:?}").starts_with(want), "case {i}: {err:?}");
    }
    assert!(matches!(
        f.add(None, 6, 0, "x", RootPort, ep()),
        Err(Error::HeaderMismatch {
            expected: HeaderLayout::Type1,
            ..
        })
    ));
    // Functions 0..7 of device 0 below a link are fine; so is an endpoint
    // on a switch's internal bus.
    f.add(Some(dsp), 0, 0, "e0", Endpoint, ep()).unwrap();
    f.add(Some(usp), 7, 0, "mgmt", Endpoint, ep()).unwrap();
    assert_eq!(f.nodes().len(), 6);
}

#[test]
fn depth_is_bounded() {
    use NodeKind::*;
    let f = Fabric::new(vec![], RcP2pPolicy::Forward);
    let mut parent = f
        .add(None, 1, 0, "rp", RootPort, TestBridge::root_port(1))
        .unwrap();
    let mut depth = 1;
    let err = loop {
        let (kind, b) = if depth % 2 == 1 {
            (SwitchUpstream, TestBridge::upstream())
        } else {
            (SwitchDownstream, TestBridge::downstream(1))
        };
        match f.add(Some(parent), 0, 0, "p", kind, b) {
            Ok(id) => parent = id,
            Err(e) => break e,
        }
        depth += 1;
    };
    assert_eq!(err, Error::TooDeep(MAX_DEPTH));
    assert_eq!(depth, MAX_DEPTH);
}
