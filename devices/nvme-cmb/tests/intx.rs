//! Pin-based interrupts: with MSI-X off, the controller's INTA is a
//! level that follows its completion queues, routed through the switch to
//! the GSI the PCI swizzle gives. The rig: root port at 00:01.0, the
//! switch's upstream port device 0 below it, downstream port `c` at device
//! `c` of the switch's bus, controller `c` device 0 below that. INTA of
//! controller 1 so reaches the root port as INTB (swizzled by device 1 at
//! the switch), and the root port's slot 1 INTB is GSI 16 + (1 + 1) % 8.

mod common;

use common::*;
use nvme_cmb::regs::reg;
use nvme_cmb::sqe::Command;

/// Controller 1's GSI, worked out by hand above.
const GSI: u32 = 18;
/// PCI Status register and its Interrupt Status bit.
const STATUS: u16 = 0x06;
const INTERRUPT_STATUS: u16 = 1 << 3;

fn flush() -> Command {
    Command {
        opcode: 0x00,
        nsid: 1,
        ..Command::default()
    }
}

fn status(r: &Rig, c: usize) -> u16 {
    let bdf = r.fabric.bdf(r.ctrls[c].id).unwrap();
    let mut b = [0; 2];
    r.fabric.config_read(bdf, STATUS, &mut b);
    u16::from_le_bytes(b)
}

#[test]
fn inta_follows_the_completion_queues_and_the_mask() {
    let r = Rig::new();
    r.ready(1);
    r.run(1);
    assert!(!r.irqs.level(GSI), "every admin completion consumed");
    assert!(r.irqs.0.lock().unwrap().is_empty(), "no MSI-X message");
    r.submit(1, 1, flush());
    r.run(1);
    assert!(r.irqs.level(GSI), "a completion waits");
    assert_ne!(status(&r, 1) & INTERRUPT_STATUS, 0);
    // INTMS bit 0 masks the pin; INTMC unmasks it.
    r.write32(1, reg::INTMS, 1);
    r.run(1);
    assert!(!r.irqs.level(GSI));
    r.write32(1, reg::INTMC, 1);
    r.run(1);
    assert!(r.irqs.level(GSI));
    // The host consumes the entry and moves the head: the pin drops.
    let cqe = r.reap(1, 1).expect("the flush completed");
    assert!(cqe.status.is_success());
    r.run(1);
    assert!(!r.irqs.level(GSI));
    assert_eq!(status(&r, 1) & INTERRUPT_STATUS, 0);
    // Controller 0 never drove its line (GSI 17).
    assert!(!r.irqs.1.lock().unwrap().iter().any(|(g, _)| *g == 17));
}

#[test]
fn a_reset_drops_the_pin_and_msix_replaces_it() {
    let r = Rig::new();
    r.ready(1);
    r.submit(1, 1, flush());
    r.run(1);
    assert!(r.irqs.level(GSI));
    r.write32(1, reg::CC, 0);
    r.run(1);
    assert!(!r.irqs.level(GSI), "reset deasserts");
    // With MSI-X on, a completion is a message, not the pin.
    msix_on(&r, 1, 1, 0xfee0_1000, 0x51);
    r.ready(1);
    let changes = r.irqs.1.lock().unwrap().len();
    assert!(r.exec(1, 1, flush()).status.is_success());
    assert_eq!(r.irqs.1.lock().unwrap().len(), changes, "no INTx change");
    assert_eq!(r.irqs.0.lock().unwrap().last(), Some(&(0xfee0_1000, 0x51)));
}
