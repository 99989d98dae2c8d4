//! Interrupts are memory writes: an MSI is a posted one-DWORD write that
//! the router carries up like any other, counts on every link, and the root
//! complex hands to its interrupt sink, untranslated.

mod common;

use std::sync::Arc;

use common::topo::{standard, VecRam, RAM_SIZE};
use common::Apic;
use pcie_core::{DmaError, DmaHandle, Iommu, LinkCounters, RcP2pPolicy, Target};

/// An IOMMU that faults everything.
struct Nothing;

impl Iommu for Nothing {
    fn translate(&self, _rid: u16, _addr: u64, _len: u64, _write: bool) -> Option<u64> {
        None
    }
}

const MSG_ADDR: u64 = 0xfee0_1000; // APIC ID 1
const MSG_DATA: u32 = 0x4031; // vector 0x31, edge, fixed

#[test]
fn an_msi_climbs_every_link_and_reaches_the_sink() {
    let t = standard(RcP2pPolicy::Forward);
    let apic = Arc::new(Apic::default());
    assert!(t.fabric.set_interrupt_sink(apic.clone()));
    assert!(!t.fabric.set_interrupt_sink(apic.clone()), "set once only");
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = DmaHandle::new(t.fabric.clone(), t.id("ep1"), ram.clone());

    let route = t.fabric.route(&t.req("ep1", MSG_ADDR, 4, true)).unwrap();
    assert_eq!(route.target, Target::Interrupt { addr: MSG_ADDR });
    assert_eq!(t.path(&route), "ep1^ dsp1^ usp^ rp1^");

    dma.msi(MSG_ADDR, MSG_DATA).unwrap();
    dma.msi(MSG_ADDR, MSG_DATA + 1).unwrap();
    assert_eq!(
        *apic.0.lock().unwrap(),
        vec![(MSG_ADDR, MSG_DATA), (MSG_ADDR, MSG_DATA + 1)]
    );
    // Two 4-byte posted writes on each link up to the root complex.
    let up = LinkCounters {
        up_bytes: 8,
        up_tlps: 2,
        ..Default::default()
    };
    for n in ["ep1", "dsp1", "usp", "rp1"] {
        assert_eq!(t.fabric.counters(t.id(n)), up, "{n}");
    }
    for n in ["ep2", "dsp2", "rp2", "ep4"] {
        assert!(t.fabric.counters(t.id(n)).is_idle(), "{n}");
    }
    // Not RAM: nothing was written to memory.
    assert!(ram.0.lock().unwrap().iter().all(|&b| b == 0));
}

#[test]
fn bus_mastering_gates_interrupts_and_malformed_messages_are_refused() {
    let t = standard(RcP2pPolicy::Forward);
    let apic = Arc::new(Apic::default());
    t.fabric.set_interrupt_sink(apic.clone());
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = DmaHandle::new(t.fabric.clone(), t.id("ep4"), ram.clone());

    // Reads of the range, short or unaligned writes: Unsupported Request.
    let mut buf = [0u8; 4];
    assert_eq!(
        dma.read(MSG_ADDR, &mut buf),
        Err(DmaError::UnsupportedRequest)
    );
    assert_eq!(
        dma.write(MSG_ADDR, &[1, 2]),
        Err(DmaError::UnsupportedRequest)
    );
    assert_eq!(
        dma.write(MSG_ADDR + 2, &[1, 2, 3, 4]),
        Err(DmaError::UnsupportedRequest)
    );
    assert_eq!(
        dma.write(MSG_ADDR, &[0; 8]),
        Err(DmaError::UnsupportedRequest)
    );
    assert!(apic.0.lock().unwrap().is_empty());

    // Bus Master Enable off: the function cannot raise an MSI (PCIe Base:
    // MSI is a memory write, gated like any other).
    t.clear_command("ep4", 1 << 2);
    assert_eq!(
        dma.msi(MSG_ADDR, MSG_DATA),
        Err(DmaError::BusMasterDisabled)
    );
    // ... nor can a function whose root port does not forward upstream.
    let dma3 = DmaHandle::new(t.fabric.clone(), t.id("ep1"), ram.clone());
    t.clear_command("rp1", 1 << 2);
    assert_eq!(
        dma3.msi(MSG_ADDR, MSG_DATA),
        Err(DmaError::UnsupportedRequest)
    );
    assert!(apic.0.lock().unwrap().is_empty());
}

#[test]
fn interrupts_bypass_the_iommu_and_need_a_sink() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = DmaHandle::new(t.fabric.clone(), t.id("ep4"), ram.clone());
    // No interrupt controller connected yet.
    assert_eq!(
        dma.msi(MSG_ADDR, MSG_DATA),
        Err(DmaError::UnsupportedRequest)
    );

    let apic = Arc::new(Apic::default());
    t.fabric.set_interrupt_sink(apic.clone());
    t.fabric.set_iommu(Some(Arc::new(Nothing)));
    assert_eq!(dma.write(0x2000, &[1; 4]), Err(DmaError::IommuFault));
    dma.msi(MSG_ADDR, MSG_DATA).unwrap();
    assert_eq!(*apic.0.lock().unwrap(), vec![(MSG_ADDR, MSG_DATA)]);
}
