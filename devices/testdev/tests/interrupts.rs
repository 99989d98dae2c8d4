//! The completion interrupt: an MSI-X message the engine sends through
//! the fabric after the copy, honouring the vector's mask and pending bit,
//! Function Mask and Bus Master Enable, and counted on every link up to
//! the root complex.

mod common;

use std::sync::{Arc, Mutex};

use common::Rig;
use p2pvm_testdev::{bar4, dma_reg, DmaStatus, DMA_CAP_OFFSET};
use pcie_core::{cap_id, capabilities, command, msix_control, reg, InterruptSink, MSI_RANGE};

/// Records every message.
#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, u32)>>);

impl InterruptSink for Recorder {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((addr, data));
        true
    }
}

fn msix_control_reg(r: &Rig) -> u16 {
    let cap = capabilities(|o| r.read32(r.a, o))
        .find(|c| c.id == cap_id::MSIX)
        .unwrap();
    cap.offset + 2
}

fn set_control(r: &Rig, v: u16) {
    let at = msix_control_reg(r);
    r.fabric.config_write(r.bdf(r.a), at, &v.to_le_bytes());
}

fn table_dword(r: &Rig, i: u64, v: u32) {
    let at = r.bar(r.a, 4) + u64::from(bar4::MSIX_TABLE) + 4 * i;
    assert!(r.fabric.mmio_write(at, &v.to_le_bytes()));
}

fn pba(r: &Rig) -> u64 {
    let mut b = [0; 8];
    let at = r.bar(r.a, 4) + u64::from(bar4::MSIX_PBA);
    assert!(r.fabric.mmio_read(at, &mut b));
    u64::from_le_bytes(b)
}

#[test]
fn a_completion_raises_vector_0_through_the_fabric() {
    let r = Rig::new();
    let apic = Arc::new(Recorder::default());
    assert!(r.fabric.set_interrupt_sink(apic.clone()));
    let addr = *MSI_RANGE.start() | 0x1000;
    table_dword(&r, 0, addr as u32);
    table_dword(&r, 2, 0x4321);
    // Disabled: nothing is sent, nothing is pending.
    let dst = r.bar(r.b, 2);
    assert_eq!(r.dma(r.a, 0, dst, 64).0, DmaStatus::Done.code());
    assert!(apic.0.lock().unwrap().is_empty());
    assert_eq!(pba(&r), 0);
    // Enabled but the vector still masked (its reset state): pending.
    set_control(&r, msix_control::ENABLE);
    assert_eq!(r.dma(r.a, 0, dst, 64).0, DmaStatus::Done.code());
    assert!(apic.0.lock().unwrap().is_empty());
    assert_eq!(pba(&r), 1);
    // Unmasking hands the pending message to the engine, which sends it.
    let before = r.notified[0].0.load(std::sync::atomic::Ordering::SeqCst);
    table_dword(&r, 3, 0);
    assert!(r.notified[0].0.load(std::sync::atomic::Ordering::SeqCst) > before);
    r.engine(r.a).run();
    assert_eq!(*apic.0.lock().unwrap(), [(addr, 0x4321)]);
    assert_eq!(pba(&r), 0);
    // Unmasked: one message per completion, counted up every link.
    r.fabric.reset_counters();
    assert_eq!(r.dma(r.a, 0, dst, 64).0, DmaStatus::Done.code());
    assert_eq!(apic.0.lock().unwrap().len(), 2);
    for port in [r.dsp1, r.usp, r.rp] {
        let c = r.fabric.counters(port);
        // The source read went up too: 1 read request, then the message.
        assert!(c.up_tlps >= 2 && c.up_bytes >= 4, "{c:?}");
    }
    // Function Mask holds it back; clearing it sends it.
    set_control(&r, msix_control::ENABLE | msix_control::FUNCTION_MASK);
    assert_eq!(r.dma(r.a, 0, dst, 64).0, DmaStatus::Done.code());
    assert_eq!(apic.0.lock().unwrap().len(), 2);
    set_control(&r, msix_control::ENABLE);
    r.engine(r.a).run();
    assert_eq!(apic.0.lock().unwrap().len(), 3);
    // Without Bus Master Enable the message cannot be sent (nor the copy).
    let cmd = r.read32(r.a, reg::COMMAND) as u16 & !command::BUS_MASTER;
    r.fabric
        .config_write(r.bdf(r.a), reg::COMMAND, &cmd.to_le_bytes());
    let (status, _) = r.dma(r.a, 0, dst, 64);
    assert_eq!(status, DmaStatus::BusMasterDisabled.code());
    assert_eq!(apic.0.lock().unwrap().len(), 3);
}

#[test]
fn go_while_busy_is_ignored_and_the_doorbell_is_go() {
    let r = Rig::new();
    let reg = |off| DMA_CAP_OFFSET + off;
    r.write32(r.a, reg(dma_reg::LENGTH), 16);
    r.write32(r.a, reg(dma_reg::DST_LO), r.bar(r.b, 2) as u32);
    r.write32(r.a, reg(dma_reg::DST_HI), (r.bar(r.b, 2) >> 32) as u32);
    let doorbell = r.bar(r.a, 4) + bar4::DOORBELL;
    assert!(r.fabric.mmio_write(doorbell, &[1, 0, 0, 0]));
    assert_eq!(r.read32(r.a, reg(dma_reg::STATUS)), DmaStatus::Busy.code());
    // A second GO while busy latches nothing new.
    r.write32(r.a, reg(dma_reg::LENGTH), 0);
    r.write32(r.a, reg(dma_reg::CONTROL), 1);
    r.engine(r.a).run();
    assert_eq!(r.read32(r.a, reg(dma_reg::STATUS)), DmaStatus::Done.code());
    assert_eq!(r.read32(r.a, reg(dma_reg::DONE)), 16);
    assert_eq!(r.read32(r.a, reg(dma_reg::COUNT)), 1);
    // Nothing left to run.
    r.engine(r.a).run();
    assert_eq!(r.read32(r.a, reg(dma_reg::COUNT)), 1);
}
