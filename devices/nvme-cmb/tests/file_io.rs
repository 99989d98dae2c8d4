//! A file-backed namespace through the Rust test driver: its I/O runs on
//! the controller's file pool, many commands in flight at once, and the
//! bytes land in the backing file itself. A reset with commands in flight
//! posts nothing and moves no data afterwards.

mod common;

use std::collections::BTreeSet;

use common::*;
use nvme_cmb::regs::{cc, csts, reg};
use nvme_cmb::sqe::{io_op, Command};
use nvme_cmb::Status;

fn rig(file: &TempFile) -> Rig {
    file_rig(file)
}

fn file_bytes(f: &TempFile, off: u64, len: usize) -> Vec<u8> {
    let all = std::fs::read(&f.0).unwrap();
    all[off as usize..off as usize + len].to_vec()
}

/// Reaps every completion now on CQ 1.
fn reap_all(r: &Rig) -> Vec<nvme_cmb::sqe::Completion> {
    std::iter::from_fn(|| r.reap(1, 1)).collect()
}

#[test]
fn sixteen_writes_in_flight_land_in_the_file_and_read_back() {
    let f = TempFile::new("qd16");
    let r = rig(&f);
    let mut cids = BTreeSet::new();
    for i in 0..16u64 {
        let at = DATA + i * 0x1000;
        r.host_write(at, &pattern(4096, i as u8));
        // 8 blocks each, spread out so none is adjacent to another.
        cids.insert(r.submit(1, 1, rw(true, i * 24, 8, prp(at, 0))));
    }
    r.run(1);
    let done = reap_all(&r);
    assert_eq!(done.len(), 16);
    for c in &done {
        assert!(c.status.is_success(), "{}", c.status);
    }
    let got: BTreeSet<u16> = done.iter().map(|c| c.cid).collect();
    assert_eq!(got, cids, "each command completes exactly once");
    for i in 0..16u64 {
        assert_eq!(file_bytes(&f, i * 24 * 512, 4096), pattern(4096, i as u8));
    }
    // Read them back at QD16 into other buffers.
    let back = DATA + 0x10_0000;
    for i in 0..16u64 {
        r.submit(1, 1, rw(false, i * 24, 8, prp(back + i * 0x1000, 0)));
    }
    r.run(1);
    let done = reap_all(&r);
    assert_eq!(done.len(), 16);
    assert!(done.iter().all(|c| c.status.is_success()));
    for i in 0..16u64 {
        assert_eq!(r.host_read(back + i * 0x1000, 4096), pattern(4096, i as u8));
    }
    assert_eq!(r.engine(1).in_flight(), 0);
    // RAM is mappable: every byte went file <-> guest memory directly.
    let c = r.engine(1).counters().snapshot();
    let get = |k: &str| c.iter().find(|(n, _)| *n == k).unwrap().1;
    assert_eq!(get("mapped_data_bytes"), 2 * 16 * 4096);
}

#[test]
fn compare_flush_and_write_zeroes_on_a_file() {
    let f = TempFile::new("ops");
    let r = rig(&f);
    let data = pattern(4096, 9);
    r.host_write(DATA, &data);
    assert!(r
        .exec(1, 1, rw(true, 64, 8, prp(DATA, 0)))
        .status
        .is_success());
    let same = Command {
        opcode: io_op::COMPARE,
        ..rw(false, 64, 8, prp(DATA, 0))
    };
    assert_eq!(r.exec(1, 1, same).status, Status::SUCCESS);
    r.host_write(DATA + 100, &[0xee]);
    assert_eq!(r.exec(1, 1, same).status, Status::COMPARE_FAILURE);
    let flush = Command {
        opcode: io_op::FLUSH,
        nsid: 1,
        ..Command::default()
    };
    assert!(r.exec(1, 1, flush).status.is_success());
    let zero = Command {
        opcode: io_op::WRITE_ZEROES,
        nsid: 1,
        cdw10: 66,
        cdw12: 1, // two blocks
        ..Command::default()
    };
    assert!(r.exec(1, 1, zero).status.is_success());
    let want: Vec<u8> = data[..1024]
        .iter()
        .copied()
        .chain([0; 1024])
        .chain(data[2048..].iter().copied())
        .collect();
    assert_eq!(file_bytes(&f, 64 * 512, 4096), want);
    // Out of range on a file namespace: refused before the pool.
    let beyond = rw(false, NS_SIZE / 512, 1, prp(DATA, 0));
    assert_eq!(r.exec(1, 1, beyond).status, Status::LBA_OUT_OF_RANGE);
}

#[test]
fn a_reset_with_reads_in_flight_posts_nothing_and_moves_no_data_after_ready_drops() {
    let f = TempFile::new("reset");
    let r = rig(&f);
    // Data on disk and out of the page cache, so (at least the first) reads
    // must wait for the disk: they go to the pool.
    uncached(&f, 8 * 4096);
    let canary = vec![0x5a; 8 * 4096];
    r.host_write(DATA, &canary);
    for i in 0..8u64 {
        r.submit(1, 1, rw(false, i * 8, 8, prp(DATA + i * 0x1000, 0)));
    }
    // One pass: the reads go to the pool (mapped: each job reads straight
    // into its buffer). Then the reset: jobs not started are cancelled,
    // running ones finish before CSTS.RDY drops.
    r.engine(1).run();
    assert!(r.engine(1).in_flight() > 0, "some reads went to the pool");
    r.write32(1, reg::CC, 0);
    r.engine(1).run();
    assert_eq!(r.read32(1, reg::CSTS) & csts::RDY, 0);
    let at_reset = r.host_read(DATA, canary.len());
    let cq_at_reset = r.host_read(IOCQ, 32 * 16);
    std::thread::sleep(std::time::Duration::from_millis(100));
    r.engine(1).run();
    assert_eq!(r.engine(1).in_flight(), 0);
    assert_eq!(
        r.host_read(DATA, canary.len()),
        at_reset,
        "no DMA once the host sees the reset done"
    );
    // Whatever a finished job wrote is the file's data, never garbage.
    for page in at_reset.chunks(4096) {
        assert!(page == [0x5a; 4096] || page == [0x11; 4096]);
    }
    // Reads that found their data cached completed in line, before the
    // reset; nothing is posted after it.
    assert_eq!(r.host_read(IOCQ, 32 * 16), cq_at_reset, "no completion");
    // The controller comes back and the file is still readable.
    r.ready(1);
    let rd = r.exec(1, 1, rw(false, 0, 8, prp(DATA, 0)));
    assert!(rd.status.is_success(), "{}", rd.status);
    assert_eq!(r.host_read(DATA, 4096), vec![0x11; 4096]);
}

/// Fills the file's first `len` bytes with 0x11, makes them durable and
/// drops them from the page cache.
fn uncached(f: &TempFile, len: usize) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(&f.0).unwrap();
    file.write_all_at(&vec![0x11; len], 0).unwrap();
    file.sync_all().unwrap();
    // SAFETY: advice on a descriptor we own; no memory is touched.
    let r = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
}

#[test]
fn shutdown_waits_for_writes_in_flight() {
    let f = TempFile::new("shn");
    let r = rig(&f);
    for i in 0..8u64 {
        r.host_write(DATA + i * 0x1000, &pattern(4096, 40 + i as u8));
        r.submit(1, 1, rw(true, i * 8, 8, prp(DATA + i * 0x1000, 0)));
    }
    r.engine(1).run();
    let en = r.read32(1, reg::CC);
    r.write32(1, reg::CC, en | 1 << cc::SHN_SHIFT);
    r.run(1);
    assert_eq!(
        r.read32(1, reg::CSTS) & csts::SHST_MASK,
        csts::SHST_COMPLETE
    );
    for i in 0..8u64 {
        assert_eq!(
            file_bytes(&f, i * 8 * 512, 4096),
            pattern(4096, 40 + i as u8)
        );
    }
}

#[test]
fn a_file_read_into_the_peers_cmb_lands_in_its_memory() {
    let f = TempFile::new("p2p");
    let r = rig(&f);
    r.enable(0);
    // Controller 0's CMB is a RAM-backed BAR: controller 1's file read
    // maps it (no bounce buffer) through the switch.
    let data = pattern(8192, 77);
    r.host_write(DATA, &data);
    assert!(r
        .exec(1, 1, rw(true, 200, 16, prp(DATA, DATA + 4096)))
        .status
        .is_success());
    let cmb = r.bar(0, nvme_cmb::CMB_BAR);
    let rd = r.exec(1, 1, rw(false, 200, 16, prp(cmb + 0x10000, cmb + 0x11000)));
    assert!(rd.status.is_success(), "{}", rd.status);
    assert_eq!(r.host_read(cmb + 0x10000, 8192), data);
}
