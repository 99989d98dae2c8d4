//! I/O through the Rust test driver: PRPs, PRP lists, SGLs, data and SQs
//! in the CMB, peer-to-peer into the other controller's CMB, and the
//! errors the spec defines. Every transfer's bytes are checked.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use nvme_cmb::regs::reg;
use nvme_cmb::sqe::{admin_op, Command};
use nvme_cmb::{CmbFlags, Status};

/// Writes `data` to LBA `slba` from `at` (PRP1 only, so `data` fits in
/// one page from `at`), then reads it back to `back`; returns what came back.
fn round_trip(r: &Rig, c: usize, slba: u64, at: u64, back: u64, data: &[u8]) -> Vec<u8> {
    r.host_write(at, data);
    let blocks = (data.len() / 512) as u32;
    let w = r.exec(c, 1, rw(true, slba, blocks, prp(at, 0)));
    assert!(w.status.is_success(), "write: {}", w.status);
    let rd = r.exec(c, 1, rw(false, slba, blocks, prp(back, 0)));
    assert!(rd.status.is_success(), "read: {}", rd.status);
    r.host_read(back, data.len())
}

#[test]
fn write_then_read_with_prp1_prp2_and_a_prp_list() {
    let r = Rig::new();
    r.ready(1);
    let one = pattern(4096, 1);
    assert_eq!(round_trip(&r, 1, 8, DATA, DATA + 0x10000, &one), one);
    // Two pages: PRP1 with an offset, PRP2 the next page.
    let two = pattern(4096, 2);
    r.poke(DATA + 0x800, &two[..2048]);
    r.poke(DATA + 0x3000, &two[2048..]);
    let w = r.exec(1, 1, rw(true, 100, 8, prp(DATA + 0x800, DATA + 0x3000)));
    assert!(w.status.is_success(), "{}", w.status);
    // A list: 16 KiB into four scattered pages (PRP1 + a list of three).
    let four = pattern(16384, 3);
    let pages = [
        DATA + 0x20000,
        DATA + 0x40000,
        DATA + 0x22000,
        DATA + 0x31000,
    ];
    let mut list = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        r.poke(*p, &four[i * 4096..(i + 1) * 4096]);
        if i > 0 {
            list.extend_from_slice(&p.to_le_bytes());
        }
    }
    r.poke(PRP_LISTS, &list);
    let w = r.exec(1, 1, rw(true, 200, 32, prp(pages[0], PRP_LISTS)));
    assert!(w.status.is_success(), "{}", w.status);
    // Read both back contiguously and compare.
    let rd = r.exec(1, 1, rw(false, 100, 8, prp(DATA + 0x60000, 0)));
    assert!(rd.status.is_success());
    assert_eq!(r.peek(DATA + 0x60000, 4096), two);
    let back = [
        DATA + 0x70000,
        DATA + 0x71000,
        DATA + 0x72000,
        DATA + 0x73000,
    ];
    let list: Vec<u8> = back[1..].iter().flat_map(|p| p.to_le_bytes()).collect();
    r.poke(PRP_LISTS + 0x1000, &list);
    let rd = r.exec(1, 1, rw(false, 200, 32, prp(back[0], PRP_LISTS + 0x1000)));
    assert!(rd.status.is_success());
    assert_eq!(r.peek(DATA + 0x70000, 16384), four);
}

/// An SGL Data Block descriptor.
fn data_block(addr: u64, len: u32) -> [u8; 16] {
    let mut d = [0; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d
}

#[test]
fn sgl_last_segment_of_data_blocks_and_a_bit_bucket() {
    let r = Rig::new();
    r.ready(1);
    let data = pattern(8192, 9);
    r.poke(DATA, &data[..1000]);
    r.poke(DATA + 0x9000, &data[1000..]);
    let mut seg = Vec::new();
    seg.extend_from_slice(&data_block(DATA, 1000));
    seg.extend_from_slice(&data_block(DATA + 0x9000, 8192 - 1000));
    r.poke(PRP_LISTS, &seg);
    let mut last = data_block(PRP_LISTS, 32);
    last[15] = 0x30; // Last Segment
    let mut w = rw(true, 64, 16, last);
    w.psdt = 1;
    let cqe = r.exec(1, 1, w);
    assert!(cqe.status.is_success(), "{}", cqe.status);
    // Read the 8 KiB back, discarding the first 512 bytes in a bit bucket.
    let mut seg = Vec::new();
    let mut bucket = data_block(0, 512);
    bucket[15] = 0x10;
    seg.extend_from_slice(&bucket);
    seg.extend_from_slice(&data_block(DATA + 0x20000, 8192 - 512));
    r.poke(PRP_LISTS + 0x100, &seg);
    let mut last = data_block(PRP_LISTS + 0x100, 32);
    last[15] = 0x30;
    let mut rd = rw(false, 64, 16, last);
    rd.psdt = 1;
    let cqe = r.exec(1, 1, rd);
    assert!(cqe.status.is_success(), "{}", cqe.status);
    assert_eq!(r.peek(DATA + 0x20000, 8192 - 512), data[512..]);
}

#[test]
fn data_and_sqs_in_the_cmb_never_leave_the_controller() {
    let r = Rig::new();
    r.enable(0);
    let cmb = r.bar(0, 2);
    r.write64(0, reg::CMBMSC, 1 | 2 | cmb);
    r.create_io_queue(0, 1, 32, cmb, IOCQ);
    let sq_dma = || r.engine(0).counters().sqe_fetch_dma.load(Ordering::Relaxed);
    let sq_cmb = || r.engine(0).counters().sqe_fetch_cmb.load(Ordering::Relaxed);
    let before = sq_dma();
    let data = pattern(4096, 5);
    // Data in the CMB too: written there by the host (MMIO), read back to RAM.
    assert_eq!(round_trip(&r, 0, 0, cmb + 0x10000, DATA, &data), data);
    assert_eq!(sq_dma(), before, "no SQ entry fetched from RAM");
    assert_eq!(sq_cmb(), 2);
    // The bytes really sit in the CMB's memory.
    assert_eq!(r.host_read(cmb + 0x10000, 4096), data);
}

#[test]
fn peer_to_peer_read_into_the_other_controllers_cmb() {
    let r = Rig::new();
    r.enable(0);
    let cmb = r.bar(0, 2);
    r.write64(0, reg::CMBMSC, 1 | 2 | cmb);
    r.ready(1);
    let data = pattern(4096, 7);
    r.poke(DATA, &data);
    assert!(r
        .exec(1, 1, rw(true, 5, 8, prp(DATA, 0)))
        .status
        .is_success());
    // Controller 1 reads its namespace into controller 0's CMB: a peer write.
    let cqe = r.exec(1, 1, rw(false, 5, 8, prp(cmb + 0x4000, 0)));
    assert!(cqe.status.is_success(), "{}", cqe.status);
    assert_eq!(r.host_read(cmb + 0x4000, 4096), data);
}

#[test]
fn without_rds_read_data_into_the_cmb_is_invalid_use() {
    let flags = CmbFlags {
        rds: false,
        ..CmbFlags::default()
    };
    let r = Rig::with([config(0, Some(flags)), config(1, None)]);
    r.ready(0);
    let cmb = r.bar(0, 2);
    r.write64(0, reg::CMBMSC, 1 | 2 | cmb);
    let cqe = r.exec(0, 1, rw(false, 0, 8, prp(cmb, 0)));
    assert_eq!(cqe.status, Status::INVALID_USE_OF_CMB);
}

#[test]
fn errors_get_their_spec_status_and_an_error_log_entry() {
    let r = Rig::new();
    r.ready(1);
    let blocks = NS_SIZE / 512;
    let st = |cmd| r.exec(1, 1, cmd).status;
    assert_eq!(
        st(rw(false, blocks, 1, prp(DATA, 0))),
        Status::LBA_OUT_OF_RANGE
    );
    assert_eq!(
        st(rw(false, blocks - 1, 2, prp(DATA, 0))),
        Status::LBA_OUT_OF_RANGE
    );
    assert_eq!(
        st(rw(false, u64::MAX, 1, prp(DATA, 0))),
        Status::LBA_OUT_OF_RANGE
    );
    let mut bad_ns = rw(false, 0, 1, prp(DATA, 0));
    bad_ns.nsid = 9;
    assert_eq!(st(bad_ns), Status::INVALID_NAMESPACE);
    assert_eq!(
        st(rw(false, 0, 1, prp(DATA + 2, 0))),
        Status::PRP_OFFSET_INVALID
    );
    // Past guest RAM: the router's Unsupported Request is a data error.
    assert_eq!(
        st(rw(false, 0, 1, prp(0x1_0000_0000, 0))),
        Status::DATA_TRANSFER_ERROR
    );
    let mut op = rw(false, 0, 1, prp(DATA, 0));
    op.opcode = 0x7e;
    assert_eq!(st(op), Status::INVALID_OPCODE);
    // More than MDTS (512 KiB).
    assert_eq!(st(rw(false, 0, 2048, prp(DATA, 0))), Status::INVALID_FIELD);
    // The error log has them, newest first.
    let cqe = r.exec(
        1,
        0,
        Command {
            opcode: admin_op::GET_LOG_PAGE,
            dptr: prp(DATA + 0x8000, 0),
            cdw10: 1 | ((64 * 8 / 4 - 1) << 16),
            ..Command::default()
        },
    );
    assert!(cqe.status.is_success());
    let log = r.peek(DATA + 0x8000, 64);
    let count = u64::from_le_bytes(log[0..8].try_into().unwrap());
    assert_eq!(count, 8);
    let status = u16::from_le_bytes([log[12], log[13]]) >> 1;
    assert_eq!(status & 0xff, 0x02, "the newest: Invalid Field");
}

#[test]
fn compare_write_zeroes_and_deallocate() {
    let r = Rig::new();
    r.ready(1);
    let data = pattern(4096, 4);
    r.poke(DATA, &data);
    assert!(r
        .exec(1, 1, rw(true, 0, 8, prp(DATA, 0)))
        .status
        .is_success());
    let mut cmp = rw(true, 0, 8, prp(DATA, 0));
    cmp.opcode = 0x05;
    assert!(r.exec(1, 1, cmp).status.is_success());
    r.poke(DATA + 100, &[0xaa]);
    assert_eq!(r.exec(1, 1, cmp).status, Status::COMPARE_FAILURE);
    // Write Zeroes on blocks 2..4.
    let wz = Command {
        opcode: 0x08,
        nsid: 1,
        cdw10: 2,
        cdw12: 1,
        ..Command::default()
    };
    assert!(r.exec(1, 1, wz).status.is_success());
    assert!(r
        .exec(1, 1, rw(false, 0, 8, prp(DATA + 0x4000, 0)))
        .status
        .is_success());
    let back = r.peek(DATA + 0x4000, 4096);
    assert_eq!(back[..1024], data[..1024]);
    assert!(back[1024..2048].iter().all(|&b| b == 0));
    assert_eq!(back[2048..], data[2048..]);
    // Deallocate blocks 0..2 (one range) reads zeroes.
    let mut range = [0u8; 16];
    range[4..8].copy_from_slice(&2u32.to_le_bytes());
    r.poke(DATA + 0x8000, &range);
    let dsm = Command {
        opcode: 0x09,
        nsid: 1,
        dptr: prp(DATA + 0x8000, 0),
        cdw10: 0,
        cdw11: 1 << 2,
        ..Command::default()
    };
    assert!(r.exec(1, 1, dsm).status.is_success());
    assert!(r
        .exec(1, 1, rw(false, 0, 2, prp(DATA + 0x4000, 0)))
        .status
        .is_success());
    assert!(r.peek(DATA + 0x4000, 1024).iter().all(|&b| b == 0));
}

#[test]
fn bad_doorbells_raise_an_async_event_and_the_next_command_works() {
    let r = Rig::new();
    r.ready(1);
    let aer = r.submit(
        1,
        0,
        Command {
            opcode: admin_op::ASYNC_EVENT_REQUEST,
            ..Command::default()
        },
    );
    r.run(1);
    assert_eq!(r.reap(1, 0), None, "held until an event");
    // A doorbell for queue 9, which does not exist.
    r.write32(1, reg::DOORBELLS + 8 * 9, 1);
    r.run(1);
    let ev = r.reap(1, 0).expect("the event");
    assert_eq!(ev.cid, aer);
    assert_eq!(
        ev.dw0 & 0xff_ffff,
        0x01_00_00,
        "error event, invalid doorbell register, log 1"
    );
    // A tail past the end of SQ 1 (32 entries) is an invalid value; it is
    // ignored, and the queue keeps working.
    r.write32(1, reg::DOORBELLS + 8, 40);
    r.run(1);
    let data = pattern(512, 3);
    assert_eq!(round_trip(&r, 1, 1, DATA, DATA + 0x1000, &data), data);
}

#[test]
fn a_full_cq_holds_completions_until_the_host_frees_it() {
    let r = Rig::new();
    r.enable(1);
    // Two-entry CQ: one completion fills it.
    r.create_io_queue(1, 1, 2, IOSQ, IOCQ);
    let flush = Command {
        opcode: 0x00,
        nsid: 1,
        ..Command::default()
    };
    let a = r.submit(1, 1, flush);
    r.run(1);
    let b = r.submit(1, 1, flush);
    r.run(1);
    // Only the first was posted; the second waits for room.
    let first = r.reap(1, 1).expect("first");
    assert_eq!(first.cid, a);
    r.run(1);
    let second = r.reap(1, 1).expect("second, after the head moved");
    assert_eq!(second.cid, b);
}

#[test]
fn doorbell_errors_are_logged_and_an_event_waits_while_its_type_is_masked() {
    let r = Rig::new();
    r.ready(1);
    let aer = Command {
        opcode: admin_op::ASYNC_EVENT_REQUEST,
        ..Command::default()
    };
    let first = r.submit(1, 0, aer);
    // Doorbell 200: inside BAR 0, past the 65 queue pairs there can be.
    r.write32(1, reg::DOORBELLS + 4 * 200, 1);
    r.run(1);
    let ev = r.reap(1, 0).expect("the event");
    assert_eq!((ev.cid, ev.dw0 & 0xff_ffff), (first, 0x01_00_00));
    // Error events are masked now. CQ 1 is empty (head = tail = 0): a
    // head of 5 moves over entries never posted, an invalid value.
    let second = r.submit(1, 0, aer);
    r.write32(1, reg::DOORBELLS + 8 + 4, 5);
    r.run(1);
    assert_eq!(r.reap(1, 0), None, "masked until the log is read");
    // Reading the Error log (RAE = 0) unmasks; the waiting event comes.
    let log = r.exec(
        1,
        0,
        Command {
            opcode: admin_op::GET_LOG_PAGE,
            dptr: prp(DATA, 0),
            cdw10: 1 | (15 << 16), // LID 1, 16 dwords: the newest entry
            ..Command::default()
        },
    );
    assert!(log.status.is_success());
    let e = r.peek(DATA, 64);
    assert_eq!(
        u64::from_le_bytes(e[0..8].try_into().unwrap()),
        2,
        "two errors"
    );
    assert_eq!(&e[8..12], &[0xff; 4], "no SQ, no command");
    let ev = r.reap(1, 0).expect("the event that waited");
    assert_eq!((ev.cid, ev.dw0 & 0xff_ffff), (second, 0x01_01_00));
    // The bad head was ignored: I/O on queue 1 still works.
    let data = pattern(512, 4);
    assert_eq!(round_trip(&r, 1, 2, DATA, DATA + 0x1000, &data), data);
}
