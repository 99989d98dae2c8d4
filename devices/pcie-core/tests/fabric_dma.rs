//! DmaHandle: 4 KiB splitting, RAM and peer BARs, link counters, DMA into
//! oneself, the IOMMU hook and the JSON trace.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::endpoint::DOORBELL_DATA;
use common::topo::{standard, Topo, VecRam, RAM_SIZE};
use pcie_core::{AcsBits, DmaError, DmaHandle, Iommu, LinkCounters, RcP2pPolicy};

fn handle(t: &Topo, name: &str, ram: &Arc<VecRam>) -> DmaHandle {
    DmaHandle::new(t.fabric.clone(), t.id(name), ram.clone())
}

fn counters(t: &Topo, name: &str) -> LinkCounters {
    t.fabric.counters(t.id(name))
}

#[test]
fn splits_at_4k_and_counts_writes() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    dma.write(0x1800, &data).unwrap();
    assert_eq!(&ram.0.lock().unwrap()[0x1800..0x1800 + 6000], &data[..]);
    // Pieces of 2048 and 3952 bytes: 8 + 16 TLPs of <= 256 bytes.
    let up = LinkCounters {
        up_bytes: 6000,
        up_tlps: 24,
        ..Default::default()
    };
    for n in ["ep1", "dsp1", "usp", "rp1"] {
        assert_eq!(counters(&t, n), up, "{n}");
    }
    for n in ["ep2", "dsp2", "rp2", "ep4", "ep1f1"] {
        assert!(counters(&t, n).is_idle(), "{n}");
    }
    let mut back = vec![0; 6000];
    dma.read(0x1800, &mut back).unwrap();
    assert_eq!(back, data);
    t.fabric.reset_counters();
    assert!(counters(&t, "ep1").is_idle());
}

#[test]
fn reads_count_requests_up_and_completions_down() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep4", &ram);
    let mut buf = [0; 1024];
    dma.read(0x4000, &mut buf).unwrap();
    let want = LinkCounters {
        up_bytes: 0,
        up_tlps: 2,
        down_bytes: 1024,
        down_tlps: 4,
    };
    assert_eq!(counters(&t, "ep4"), want);
    assert_eq!(counters(&t, "rp2"), want);
    dma.write(0x4000, &buf[..100]).unwrap();
    let c = counters(&t, "rp2");
    assert_eq!((c.up_bytes, c.up_tlps), (100, 3));
}

#[test]
fn p2p_below_a_switch_never_crosses_the_root_port() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let ep2 = t.bar("ep2", 0);
    dma.write(ep2 + 0x100, &[0xab; 8192]).unwrap();
    assert_eq!(t.ep("ep2").peek(0, 0x100, 8192), vec![0xab; 8192]);
    let mut back = [0; 16];
    dma.read(ep2 + 0x100, &mut back).unwrap();
    assert_eq!(back, [0xab; 16]);
    for n in ["usp", "rp1", "rp2"] {
        assert!(counters(&t, n).is_idle(), "{n}");
    }
    // Write data goes ep1 → ep2; the read's completion data comes back.
    for (n, up, down) in [
        ("ep1", 8192, 16),
        ("dsp1", 8192, 16),
        ("dsp2", 16, 8192),
        ("ep2", 16, 8192),
    ] {
        let c = counters(&t, n);
        assert_eq!((c.up_bytes, c.down_bytes), (up, down), "{n}");
    }

    // The same with P2P Request Redirect: now it goes through the RC.
    t.fabric.reset_counters();
    t.set_acs("dsp1", AcsBits::RR | AcsBits::UF);
    t.set_acs("rp1", AcsBits::UF);
    dma.write(ep2, &[1; 64]).unwrap();
    let c = counters(&t, "rp1");
    assert_eq!((c.up_bytes, c.down_bytes), (64, 64));
    assert_eq!(counters(&t, "usp").down_bytes, 64);
    // ... and with the RC refusing peer-to-peer, nothing arrives.
    t.fabric.set_rc_policy(RcP2pPolicy::UnsupportedRequest);
    assert_eq!(dma.write(ep2, &[2; 64]), Err(DmaError::UnsupportedRequest));
    assert_eq!(t.ep("ep2").peek(0, 0, 1), [1]);
    // Counted as refused at the root complex, with the bytes it asked for.
    let r = t.fabric.refused();
    assert_eq!(
        (
            r.unsupported_request,
            r.at_root_complex,
            r.at_root_complex_bytes
        ),
        (1, 1, 64)
    );
    // Its bytes show on the links it crossed, none past the refusal.
    for (n, b) in [
        ("ep1", 64),
        ("dsp1", 64),
        ("usp", 64),
        ("rp1", 64),
        ("dsp2", 0),
        ("ep2", 0),
    ] {
        assert_eq!(t.fabric.refused_bytes(t.id(n)), b, "{n}");
    }
    // A request refused below the root complex is not counted there.
    t.set_acs("dsp1", AcsBits::SV | AcsBits::EC);
    let mut req = t.req("ep1", ep2, 4, true);
    req.requester_id = Some(0x0900);
    assert!(t.fabric.route(&req).is_err());
    let r = t.fabric.refused();
    assert_eq!((r.acs_violation, r.at_root_complex), (1, 1), "{r:?}");
    t.fabric.reset_counters();
    assert_eq!(t.fabric.refused(), Default::default());
}

#[test]
fn dma_into_itself_and_through_doorbells() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    for n in ["ep1", "ep2", "ep3"] {
        *t.ep(n).dma.lock().unwrap() = Some(handle(&t, n, &ram));
    }
    let dma = handle(&t, "ep1", &ram);
    assert_eq!(
        dma.write(t.bar("ep1", 0), &[1]),
        Err(DmaError::CompleterAbort)
    );
    // CPU rings ep2's doorbell: ep2 DMAs into ep3 while the fabric holds ep2.
    let ep3 = t.bar("ep3", 0) + 0x10;
    assert!(t.fabric.mmio_write(t.bar("ep2", 2), &ep3.to_le_bytes()));
    assert_eq!(t.ep("ep2").doorbells.lock().unwrap()[..], [Ok(())]);
    assert_eq!(t.ep("ep3").peek(0, 0x10, 4), DOORBELL_DATA);
    // A doorbell DMA into the ringing device itself.
    let own = t.bar("ep3", 0);
    assert!(t.fabric.mmio_write(t.bar("ep3", 2), &own.to_le_bytes()));
    assert_eq!(
        t.ep("ep3").doorbells.lock().unwrap()[..],
        [Err(DmaError::CompleterAbort)]
    );
    // CPU rings ep1, whose DMA rings ep2, whose DMA targets ep1: the thread
    // holds ep1 already, so that is a completer abort, not a deadlock.
    *t.ep("ep1").payload.lock().unwrap() = t.bar("ep1", 0).to_le_bytes().to_vec();
    assert!(t
        .fabric
        .mmio_write(t.bar("ep1", 2), &t.bar("ep2", 2).to_le_bytes()));
    assert_eq!(t.ep("ep1").doorbells.lock().unwrap()[..], [Ok(())]);
    let ep2_rings = t.ep("ep2").doorbells.lock().unwrap().clone();
    assert_eq!(ep2_rings, [Ok(()), Err(DmaError::CompleterAbort)]);
    // Afterwards, ep1 is free again.
    assert!(dma.write(t.bar("ep2", 0), &[1]).is_ok());
    assert!(handle(&t, "ep2", &ram).write(t.bar("ep1", 0), &[1]).is_ok());
}

struct Window(u64);

impl Iommu for Window {
    /// Maps bus addresses [base, base + 1 MiB) onto RAM at 0; faults elsewhere.
    fn translate(&self, _rid: u16, addr: u64, _len: u64, _write: bool) -> Option<u64> {
        addr.checked_sub(self.0).filter(|&a| a < RAM_SIZE)
    }
}

#[test]
fn iommu_translates_untranslated_requests_only() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    t.fabric.set_iommu(Some(Arc::new(Window(0x1_0000_0000))));
    let dma = handle(&t, "ep4", &ram);
    dma.write(0x1_0000_2000, &[7; 4]).unwrap();
    assert_eq!(ram.0.lock().unwrap()[0x2000..0x2004], [7; 4]);
    assert_eq!(dma.write(0x2000, &[7; 4]), Err(DmaError::IommuFault));
    let mut req = t.req("ep4", 0x3000, 4, true);
    req.translated = true;
    assert!(t.fabric.route(&req).is_ok(), "translated: no IOMMU");
    t.fabric.set_iommu(None);
    dma.write(0x2000, &[8; 4]).unwrap();
}

#[test]
fn failed_ram_access_is_unsupported_request() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(0x1000);
    let dma = handle(&t, "ep4", &ram);
    assert_eq!(dma.write(0x8000, &[1]), Err(DmaError::UnsupportedRequest));
    assert!(counters(&t, "ep4").up_bytes > 0, "the request did travel");
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn trace_writes_one_json_line_per_request() {
    let t = standard(RcP2pPolicy::Forward);
    let lines = Lines::default();
    t.fabric.trace_to(Box::new(lines.clone()));
    let ep2 = t.bar("ep2", 0);
    t.fabric.route(&t.req("ep1", ep2 + 0x20, 64, true)).unwrap();
    t.set_acs("dsp1", AcsBits::EC);
    t.set_egress("dsp1", 1 << 2);
    t.fabric.route(&t.req("ep1", ep2, 8, false)).unwrap_err();
    t.fabric.route(&t.req("ep4", 0x1000, 4, false)).unwrap();
    t.fabric.set_trace(None);
    t.fabric.route(&t.req("ep4", 0x1000, 4, false)).unwrap();
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let got: Vec<&str> = text.lines().collect();
    let want = [
        format!(
            r#"{{"requester":"ep1","rid":"03:00.0","op":"write","addr":"{:#x}","len":64,"at":false,"path":[{{"node":"ep1","dir":"up"}},{{"node":"dsp1","dir":"up"}},{{"node":"dsp2","dir":"down"}},{{"node":"ep2","dir":"down"}}],"outcome":{{"bar":{{"node":"ep2","bar":0,"offset":"0x20"}}}}}}"#,
            ep2 + 0x20
        ),
        format!(
            r#"{{"requester":"ep1","rid":"03:00.0","op":"read","addr":"{ep2:#x}","len":8,"at":false,"path":[{{"node":"ep1","dir":"up"}},{{"node":"dsp1","dir":"up"}}],"outcome":{{"error":"acs_violation","port":"dsp1","kind":"egress_control"}}}}"#
        ),
        r#"{"requester":"ep4","rid":"06:00.0","op":"read","addr":"0x1000","len":4,"at":false,"path":[{"node":"ep4","dir":"up"},{"node":"rp2","dir":"up"}],"outcome":{"ram":"0x1000"}}"#.to_owned(),
    ];
    assert_eq!(got, want);
}

#[test]
fn add_with_hands_out_the_id_before_building() {
    use common::bridge::TestBridge;
    use common::endpoint::FakeEndpoint;
    use pcie_core::{Error, Fabric, NodeKind, PciFunction};

    let fabric = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], RcP2pPolicy::Forward));
    let ram = VecRam::new(RAM_SIZE as usize);
    let rp = fabric
        .add(
            None,
            1,
            0,
            "rp",
            NodeKind::RootPort,
            TestBridge::root_port(1),
        )
        .unwrap();
    let mut shared = None;
    let ep = fabric
        .add_with(Some(rp), 0, 0, "ep", NodeKind::Endpoint, |id| {
            let (ep, s) = FakeEndpoint::standard(false);
            let ram: Arc<dyn pcie_core::GuestRam> = ram.clone();
            *s.dma.lock().unwrap() = Some(DmaHandle::new(fabric.clone(), id, ram));
            shared = Some(s);
            Ok::<Box<dyn PciFunction>, Error>(ep)
        })
        .unwrap();
    common::firmware::enumerate(&fabric);
    let bar2 = fabric
        .bar_regions(ep)
        .into_iter()
        .find(|r| r.index == 2)
        .unwrap();
    assert!(fabric.mmio_write(bar2.addr, &0x100u64.to_le_bytes()));
    assert_eq!(shared.unwrap().doorbells.lock().unwrap()[..], [Ok(())]);
    assert_eq!(ram.0.lock().unwrap()[0x100..0x104], DOORBELL_DATA);
    // A failing constructor adds nothing.
    let failed = fabric.add_with(Some(rp), 0, 1, "x", NodeKind::Endpoint, |_| {
        Err::<Box<dyn PciFunction>, _>(Error::TooDeep(0))
    });
    assert_eq!(failed, Err(Error::TooDeep(0)));
    assert_eq!(fabric.nodes().len(), 2);
}

#[test]
fn injected_faults_abort_or_poison_what_crosses_their_node() {
    use pcie_core::{InjectedFault, TlpFault};
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let ep2 = t.bar("ep2", 0);
    t.fabric.inject_fault(InjectedFault {
        node: t.id("dsp2"),
        fault: TlpFault::CompleterAbort,
        p2p_only: true,
        remaining: Some(2),
    });
    // RAM traffic is not peer-to-peer: untouched.
    dma.write(0x1000, &[1; 64]).unwrap();
    // Two P2P requests through dsp2 are aborted, then it is spent.
    assert_eq!(dma.write(ep2, &[2; 64]), Err(DmaError::CompleterAbort));
    let mut b = [0; 8];
    assert_eq!(dma.read(ep2, &mut b), Err(DmaError::CompleterAbort));
    assert_eq!(t.ep("ep2").peek(0, 0, 1), [0], "nothing landed");
    dma.write(ep2, &[3; 64]).unwrap();
    assert_eq!(t.ep("ep2").peek(0, 0, 1), [3]);
    assert_eq!(t.fabric.refused().completer_abort, 2);
    assert_eq!(t.fabric.faults()[0].remaining, Some(0));
    // Poisoned, every request, RAM included, only where it crosses ep1's link.
    t.fabric.clear_faults();
    t.fabric.inject_fault(InjectedFault {
        node: t.id("ep1"),
        fault: TlpFault::Poisoned,
        p2p_only: false,
        remaining: None,
    });
    assert_eq!(dma.write(0x2000, &[4; 16]), Err(DmaError::Poisoned));
    assert_eq!(ram.0.lock().unwrap()[0x2000], 0);
    let other = handle(&t, "ep4", &ram);
    other.write(0x2000, &[5; 16]).unwrap();
    assert_eq!(t.fabric.refused().poisoned, 1);
    t.fabric.clear_faults();
    dma.write(0x2000, &[6; 16]).unwrap();
    assert_eq!(ram.0.lock().unwrap()[0x2000], 6);
}
