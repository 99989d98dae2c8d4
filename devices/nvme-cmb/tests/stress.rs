//! The lock rule under load: both controllers' engines on threads of
//! their own (file I/O on controller 1's pool, mapped DMA into controller
//! 0's CMB through the switch, controller 0 reading its own CMB), while
//! vCPU-like threads hammer both controllers' registers, doorbell area and
//! config space. Every round's bytes are checked; a wait that outlasts its
//! deadline fails the test (a lock held across a DMA or a file access
//! would stall the register threads or the engines).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nvme_cmb::regs::{cmb, reg};
use nvme_cmb::sqe::Completion;
use nvme_cmb::CMB_BAR;

/// Rounds of write, peer read, copy and read back.
const ROUNDS: u64 = 60;
/// Bytes per round: two pages.
const LEN: usize = 8192;

/// Sets the flag when dropped, so a failing driver stops the threads.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits (the engines run on their threads) for the next completion.
fn wait(r: &Rig, c: usize) -> Completion {
    let t0 = Instant::now();
    loop {
        if let Some(cqe) = r.reap(c, 1) {
            return cqe;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "controller {c} stalled"
        );
        thread::yield_now();
    }
}

fn io(r: &Rig, c: usize, write: bool, slba: u64, a: u64, b: u64) {
    let cid = r.submit(c, 1, rw(write, slba, (LEN / 512) as u32, prp(a, b)));
    let cqe = wait(r, c);
    assert_eq!(cqe.cid, cid, "controller {c}");
    assert!(cqe.status.is_success(), "controller {c}: {}", cqe.status);
}

#[test]
fn engines_and_register_traffic_at_once_keep_every_byte() {
    let f = TempFile::new("stress");
    let r = file_rig(&f);
    // Controller 1's queues are at IOSQ/IOCQ; controller 0's beside them.
    r.enable(0);
    r.create_io_queue(0, 1, 32, IOSQ + 0x8000, IOCQ + 0x8000);
    let cmb_bus = r.bar(0, CMB_BAR);
    // Controller Memory Space on: controller 0 reads its CMB internally.
    r.write64(0, reg::CMBMSC, cmb::CRE | cmb::CMSE | cmb_bus);
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    thread::scope(|s| {
        for c in 0..2 {
            let (r, stop) = (&r, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    r.engine(c).run();
                    thread::yield_now();
                }
            });
        }
        for t in 0..2usize {
            let (r, stop, reads) = (&r, &stop, &reads);
            s.spawn(move || {
                let bdf = r.fabric.bdf(r.ctrls[t].id).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    for c in 0..2 {
                        assert_eq!(r.read32(c, reg::CSTS) & 1, 1, "CSTS.RDY");
                        // A doorbell of a queue that does not exist: an
                        // event nobody asked for, harmless.
                        r.write32(c, reg::DOORBELLS + 8 * 40, 0);
                    }
                    let mut b = [0; 4];
                    r.fabric.config_read(bdf, 0, &mut b);
                    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x1b36);
                    // The CMB through the CPU's path, while DMA lands in it.
                    let _ = r.host_read(cmb_bus + 0x20_0000, 64);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let _stop = Stop(&stop);
        for i in 0..ROUNDS {
            let data = pattern(LEN, i as u8);
            let (src, back) = (DATA + 0x4000, DATA + 0x8000);
            let peer = cmb_bus + (i % 16) * LEN as u64;
            r.host_write(src, &data);
            // Controller 1 writes its file, then reads it into 0's CMB.
            io(&r, 1, true, i * 16, src, src + 4096);
            io(&r, 1, false, i * 16, peer, peer + 4096);
            assert_eq!(r.host_read(peer, LEN), data, "round {i}: peer CMB");
            // Controller 0 writes from its own CMB, reads back to RAM.
            io(&r, 0, true, i * 16, peer, peer + 4096);
            io(&r, 0, false, i * 16, back, back + 4096);
            assert_eq!(r.host_read(back, LEN), data, "round {i}: read back");
        }
    });
    assert!(
        reads.load(Ordering::Relaxed) > 0,
        "the register threads ran"
    );
}
