//! Shadow doorbells (Doorbell Buffer Config): the driver keeps tails and
//! heads in host memory and rings only when EventIdx asks; the engine puts
//! the I/O doorbells on their ioeventfds and reads the shadow. Checked:
//! the command's rules, which doorbells are armed when, that I/O works
//! with no I/O doorbell write reaching the registers, and the bytes.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use nvme_cmb::sqe::{admin_op, Command};
use nvme_cmb::Status;

/// The driver's shadow doorbell and EventIdx pages.
const DBS: u64 = 0x6_0000;
const EIS: u64 = 0x6_1000;

fn dbbuf(r: &Rig, c: usize, dbs: u64, eis: u64) -> Status {
    r.exec(
        c,
        0,
        Command {
            opcode: admin_op::DOORBELL_BUFFER_CONFIG,
            dptr: prp(dbs, eis),
            ..Command::default()
        },
    )
    .status
}

/// Reads a u32 from the guest RAM.
fn word(r: &Rig, at: u64) -> u32 {
    u32::from_le_bytes(r.peek(at, 4).try_into().unwrap())
}

#[test]
fn doorbell_buffer_config_checks_its_pages() {
    let r = Rig::new();
    r.enable(1);
    // OACS bit 8 in Identify Controller.
    let id = r.exec(
        1,
        0,
        Command {
            opcode: admin_op::IDENTIFY,
            dptr: prp(DATA, 0),
            cdw10: 1,
            ..Command::default()
        },
    );
    assert!(id.status.is_success());
    let oacs = u16::from_le_bytes(r.peek(DATA + 256, 2).try_into().unwrap());
    assert_eq!(oacs & (1 << 8), 1 << 8, "OACS {oacs:#x}");
    assert_eq!(dbbuf(&r, 1, DBS + 8, EIS), Status::INVALID_FIELD);
    assert_eq!(dbbuf(&r, 1, DBS, 0), Status::INVALID_FIELD);
    assert!(
        r.ctrls[1].bells.on().is_empty(),
        "nothing armed by a failed command"
    );
    assert_eq!(dbbuf(&r, 1, DBS, EIS), Status::SUCCESS);
    // No I/O queue yet: nothing to arm.
    assert!(r.ctrls[1].bells.on().is_empty());
}

#[test]
fn io_through_shadow_doorbells_never_writes_an_io_doorbell_register() {
    let r = Rig::new();
    r.enable(1);
    assert_eq!(dbbuf(&r, 1, DBS, EIS), Status::SUCCESS);
    *r.ctrls[1].shadow.lock().unwrap() = Some((DBS, EIS));
    r.create_io_queue(1, 1, 32, IOSQ, IOCQ);
    // SQ 1 tail and CQ 1 head: function doorbells 0 and 1.
    assert_eq!(r.ctrls[1].bells.on(), [0, 1]);
    for i in 0..40u64 {
        let data = pattern(4096, i as u8);
        r.host_write(DATA, &data);
        let w = r.exec(1, 1, rw(true, 8 * i, 8, prp(DATA, 0)));
        assert!(w.status.is_success(), "write {i}: {}", w.status);
        let rd = r.exec(1, 1, rw(false, 8 * i, 8, prp(DATA + 0x10000, 0)));
        assert!(rd.status.is_success(), "read {i}: {}", rd.status);
        assert_eq!(r.host_read(DATA + 0x10000, 4096), data, "block {i}");
    }
    assert_eq!(r.ctrls[1].mmio_rings.load(Ordering::SeqCst), 0);
    // The engine asked to hear of the next submission past the last tail.
    let tail = r.ctrls[1].queues.lock().unwrap()[1].as_ref().unwrap().tail;
    assert_eq!(word(&r, EIS + 8), tail);
    assert_eq!(word(&r, DBS + 8), tail);
}

#[test]
fn submissions_the_driver_did_not_ring_for_are_still_run() {
    let r = Rig::new();
    r.enable(1);
    assert_eq!(dbbuf(&r, 1, DBS, EIS), Status::SUCCESS);
    *r.ctrls[1].shadow.lock().unwrap() = Some((DBS, EIS));
    r.create_io_queue(1, 1, 32, IOSQ, IOCQ);
    // EventIdx says "tell me past 20": the driver stays quiet for these.
    r.poke(EIS + 8, &20u32.to_le_bytes());
    let cids: Vec<u16> = (0..5)
        .map(|i| r.submit(1, 1, rw(false, i, 1, prp(DATA + 0x1000 * i, 0))))
        .collect();
    r.run(1);
    for cid in cids {
        let c = r.reap(1, 1).expect("a completion");
        assert_eq!(c.cid, cid);
        assert!(c.status.is_success(), "{}", c.status);
    }
    assert_eq!(word(&r, EIS + 8), 5);
}

#[test]
fn a_reset_takes_the_doorbells_off_their_eventfds() {
    let r = Rig::new();
    r.enable(1);
    assert_eq!(dbbuf(&r, 1, DBS, EIS), Status::SUCCESS);
    r.create_io_queue(1, 1, 32, IOSQ, IOCQ);
    r.create_io_queue(1, 2, 16, IOSQ + 0x1000, IOCQ + 0x1000);
    assert_eq!(r.ctrls[1].bells.on(), [0, 1, 2, 3]);
    r.write32(1, nvme_cmb::regs::reg::CC, 0);
    r.run(1);
    assert!(r.ctrls[1].bells.on().is_empty());
    // A controller enabled again, without the command, uses the registers.
    r.ready(1);
    assert!(r.ctrls[1].bells.on().is_empty());
    let w = r.exec(1, 1, rw(false, 0, 1, prp(DATA, 0)));
    assert!(w.status.is_success());
    assert!(r.ctrls[1].mmio_rings.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_full_cq_asks_for_the_head_update_that_frees_it() {
    let r = Rig::new();
    r.enable(1);
    assert_eq!(dbbuf(&r, 1, DBS, EIS), Status::SUCCESS);
    *r.ctrls[1].shadow.lock().unwrap() = Some((DBS, EIS));
    // A 4-entry CQ holds 3 completions.
    r.create_io_queue(1, 1, 4, IOSQ, IOCQ);
    r.poke(EIS + 12, &9u32.to_le_bytes());
    let cids: Vec<u16> = (0..3)
        .map(|i| r.submit(1, 1, rw(false, i, 1, prp(DATA, 0))))
        .collect();
    r.run(1);
    // Full: EventIdx of CQ 1's head is its head, so the next reap rings.
    assert_eq!(word(&r, EIS + 12), 0);
    let more = r.submit(1, 1, rw(false, 7, 1, prp(DATA, 0)));
    r.run(1);
    for cid in cids.into_iter().chain([more]) {
        let c = r.reap(1, 1).expect("a completion");
        assert_eq!(c.cid, cid);
        r.run(1);
    }
    assert_eq!(r.ctrls[1].mmio_rings.load(Ordering::SeqCst), 0);
}
