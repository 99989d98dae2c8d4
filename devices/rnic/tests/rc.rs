//! The QP engine between two RNICs on one wire, driven by the Rust
//! driver: RC SEND/RECV, RDMA WRITE (with immediate), RDMA READ, RNR
//! waiting, access errors and flush-on-error, CQ notification, and UD on
//! the GSI QP with its GRH. Every test checks the bytes that landed.

mod rdma;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma::*;
use rnic::pvrdma::regs::{access, cmd, qp_state, qp_type};
use rnic::pvrdma::wqe::{status, wc, wr};
use rnic::Wire;

const WR: u32 = 64;
const SGE: u32 = 4;
const CQE: u32 = 256;

struct Host {
    r: Rig,
    ip: [u8; 4],
    pd: u32,
    dma_key: u32,
    cq: u32,
    cq_base: u64,
    cq_head: u32,
    qp: u32,
    qp_base: u64,
    sq_tail: u32,
    rq_tail: u32,
    buf: u64,
}

fn gid(ip: [u8; 4]) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[10] = 0xff;
    g[11] = 0xff;
    g[12..].copy_from_slice(&ip);
    g
}

const SQ_STRIDE: u64 = 256; // 80 + 16 * 4, rounded up
const RQ_STRIDE: u64 = 128; // 16 + 16 * 4, rounded up
const SQ_PAGES: u64 = (WR as u64 * SQ_STRIDE) / 4096;
const RQ_PAGES: u64 = (WR as u64 * RQ_STRIDE) / 4096;

impl Host {
    fn new(wire: &Arc<Wire>, last: u8, kind: u8) -> Host {
        let mac = [0x00, 0x50, 0x56, 0x50, 0x32, last];
        let r = Rig::on(wire, mac);
        r.probe();
        let ip = [10, 9, 0, last];
        let bind = P::default()
            .u32(0, 1024)
            .u32(4, 0xfff)
            .u32(8, 0)
            .at(12, &gid(ip))
            .u8(28, 2);
        r.ok(cmd::CREATE_BIND, &bind.0);
        let pd = u32_at(&r.ok(cmd::CREATE_PD, &[0; 4]), 0);
        let mr = r.ok(
            cmd::CREATE_MR,
            &P::default().u32(24, pd).u32(28, 1).u32(32, 1).0,
        );
        let n = 1 + (u64::from(CQE) * 64).div_ceil(4096);
        let (pdir, cq_base) = r.page_dir(n);
        let cq = u32_at(
            &r.ok(
                cmd::CREATE_CQ,
                &P::default().u64(0, pdir).u32(12, CQE).u32(16, n as u32).0,
            ),
            0,
        );
        let total = 1 + SQ_PAGES + RQ_PAGES;
        let (pdir, qp_base) = r.page_dir(total);
        let p = P::default()
            .u64(0, pdir)
            .u32(8, pd)
            .u32(12, cq)
            .u32(16, cq)
            .u32(24, WR)
            .u32(28, WR)
            .u32(32, SGE)
            .u32(36, SGE)
            .u16(52, total as u16)
            .u16(54, SQ_PAGES as u16)
            .u8(59, kind);
        let qp = u32_at(&r.ok(cmd::CREATE_QP, &p.0), 4);
        let buf = r.alloc(64);
        Host {
            r,
            ip,
            pd,
            dma_key: u32_at(&mr, 4),
            cq,
            cq_base,
            cq_head: 0,
            qp,
            qp_base,
            sq_tail: 0,
            rq_tail: 0,
            buf,
        }
    }

    fn modify(&self, state: u32, extra: impl FnOnce(P) -> P, mask: u32) -> u32 {
        let p = P::default().u32(0, self.qp).u32(4, 1 | mask).u32(8, state);
        self.r.command(cmd::MODIFY_QP, &extra(p).0).0
    }

    /// INIT, RTR towards `peer`, RTS.
    fn connect(&self, peer: &Host) {
        let acc = access::LOCAL_WRITE | access::REMOTE_WRITE | access::REMOTE_READ;
        assert_eq!(
            self.modify(qp_state::INIT, |p| p.u32(8 + 32, acc), 1 << 3),
            0
        );
        let rtr = |p: P| {
            p.u32(8 + 28, peer.qp)
                .at(8 + 80, &gid(peer.ip))
                .u8(8 + 80 + 20, 0)
        };
        assert_eq!(self.modify(qp_state::RTR, rtr, 1 << 7 | 1 << 20), 0);
        assert_eq!(self.modify(qp_state::RTS, |p| p, 0), 0);
    }

    /// A user MR over `pages` fresh pages with `acc`: (key, va, first page).
    fn user_mr(&self, pages: u64, acc: u32) -> (u32, u64, u64) {
        let (pdir, first) = self.r.page_dir(pages);
        let va = 0x7f00_0000_0000;
        let p = P::default()
            .u64(0, va)
            .u64(8, pages * 4096)
            .u64(16, pdir)
            .u32(24, self.pd)
            .u32(28, acc)
            .u32(36, pages as u32);
        let m = self.r.ok(cmd::CREATE_MR, &p.0);
        (u32_at(&m, 4), va, first)
    }

    fn ring(&self, send: bool) {
        self.r
            .uar(0, 0, self.qp | if send { 1 << 30 } else { 1 << 31 });
    }

    /// Posts a send WQE: opcode, flags, ex, remote address and key, SGEs.
    #[allow(clippy::too_many_arguments)]
    fn post_send(
        &mut self,
        wr_id: u64,
        opcode: u32,
        flags: u32,
        ex: u32,
        raddr: u64,
        rkey: u32,
        sges: &[(u64, u32, u32)],
    ) {
        let slot = u64::from(self.sq_tail % WR);
        let at = self.qp_base + 4096 + slot * SQ_STRIDE;
        let mut w = P::default()
            .u64(0, wr_id)
            .u32(8, sges.len() as u32)
            .u32(16, opcode)
            .u32(20, flags)
            .u32(24, ex)
            .u64(32, raddr)
            .u32(40, rkey);
        for (i, (a, l, k)) in sges.iter().enumerate() {
            w = w
                .u64(80 + 16 * i, *a)
                .u32(88 + 16 * i, *l)
                .u32(92 + 16 * i, *k);
        }
        self.r.poke(at, &w.0);
        self.sq_tail = (self.sq_tail + 1) % (2 * WR);
        self.r.poke32(self.qp_base, self.sq_tail);
        self.ring(true);
    }

    fn post_recv(&mut self, wr_id: u64, sges: &[(u64, u32, u32)]) {
        let slot = u64::from(self.rq_tail % WR);
        let at = self.qp_base + 4096 * (1 + SQ_PAGES) + slot * RQ_STRIDE;
        let mut w = P::default().u64(0, wr_id).u32(8, sges.len() as u32);
        for (i, (a, l, k)) in sges.iter().enumerate() {
            w = w
                .u64(16 + 16 * i, *a)
                .u32(24 + 16 * i, *l)
                .u32(28 + 16 * i, *k);
        }
        self.r.poke(at, &w.0);
        self.rq_tail = (self.rq_tail + 1) % (2 * WR);
        self.r.poke32(self.qp_base + 8, self.rq_tail);
        self.ring(false);
    }

    /// CQEs that arrived: (wr_id, opcode, status, byte_len, imm, flags, src_qp).
    fn poll(&mut self) -> Vec<(u64, u32, u32, u32, u32, u32, u32)> {
        let mut out = Vec::new();
        loop {
            let tail = self.r.peek32(self.cq_base + 8);
            if tail == self.cq_head {
                break;
            }
            let at = self.cq_base + 4096 + u64::from(self.cq_head % CQE) * 64;
            let c = self.r.peek(at, 64);
            assert_eq!(u32_at(&c, 8), self.qp, "the CQE names a live QP");
            let wr_id = u64::from_le_bytes(c[..8].try_into().unwrap());
            out.push((
                wr_id,
                u32_at(&c, 16),
                u32_at(&c, 20),
                u32_at(&c, 24),
                u32_at(&c, 28),
                u32_at(&c, 36),
                u32_at(&c, 32),
            ));
            self.cq_head = (self.cq_head + 1) % (2 * CQE);
            self.r.poke32(self.cq_base + 12, self.cq_head);
        }
        out
    }

    /// Polls until `n` CQEs arrived (or 10 s passed).
    fn wait(&mut self, n: usize) -> Vec<(u64, u32, u32, u32, u32, u32, u32)> {
        let t0 = Instant::now();
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(self.poll());
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{} of {n} CQEs: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    }

    fn quiet(&mut self) -> Vec<(u64, u32, u32, u32, u32, u32, u32)> {
        std::thread::sleep(Duration::from_millis(100));
        self.poll()
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(29) ^ seed ^ (i >> 8) as u8)
        .collect()
}

fn pair() -> (Host, Host) {
    let wire = Wire::new();
    let a = Host::new(&wire, 1, qp_type::RC);
    let b = Host::new(&wire, 2, qp_type::RC);
    a.connect(&b);
    b.connect(&a);
    (a, b)
}

#[test]
fn rc_send_lands_in_the_posted_receive_byte_for_byte() {
    let (mut a, mut b) = pair();
    let data = pattern(10_000, 1);
    a.r.poke(a.buf, &data);
    // Two receive SGEs; the send gathers from three.
    b.post_recv(
        77,
        &[(b.buf, 4096, b.dma_key), (b.buf + 0x10000, 8192, b.dma_key)],
    );
    a.post_send(
        5,
        wr::SEND,
        2,
        0,
        0,
        0,
        &[
            (a.buf, 1000, a.dma_key),
            (a.buf + 1000, 5000, a.dma_key),
            (a.buf + 6000, 4000, a.dma_key),
        ],
    );
    assert_eq!(a.wait(1), vec![(5, wc::SEND, status::SUCCESS, 0, 0, 0, 0)]);
    let got = b.wait(1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].2, got[0].3),
        (77, wc::RECV, status::SUCCESS, 10_000)
    );
    assert_eq!(got[0].6, a.qp, "source QP");
    let mut placed = b.r.peek(b.buf, 4096);
    placed.extend(b.r.peek(b.buf + 0x10000, 10_000 - 4096));
    assert_eq!(placed, data);
}

#[test]
fn a_send_without_a_receive_waits_then_completes_when_one_is_posted() {
    let (mut a, mut b) = pair();
    a.r.poke(a.buf, &pattern(300, 2));
    a.post_send(
        1,
        wr::SEND_WITH_IMM,
        2,
        0x1234_5678,
        0,
        0,
        &[(a.buf, 300, a.dma_key)],
    );
    assert!(a.quiet().is_empty(), "RNR: not complete without a receive");
    assert!(b.quiet().is_empty());
    b.post_recv(9, &[(b.buf, 4096, b.dma_key)]);
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    let got = b.wait(1);
    assert_eq!((got[0].0, got[0].3, got[0].4), (9, 300, 0x1234_5678));
    assert_eq!(got[0].5 & 2, 2, "WITH_IMM");
    assert_eq!(b.r.peek(b.buf, 300), pattern(300, 2));
}

#[test]
fn rdma_write_and_read_move_bytes_through_the_remote_mr() {
    let (mut a, mut b) = pair();
    let (rkey, va, page) = b.user_mr(
        4,
        access::LOCAL_WRITE | access::REMOTE_WRITE | access::REMOTE_READ,
    );
    let data = pattern(12_000, 3);
    a.r.poke(a.buf, &data);
    // Write at VA + 100 (crossing pages in B's MR), unsignaled, then a
    // signaled read of it back into A at 0x20000.
    a.post_send(
        1,
        wr::RDMA_WRITE,
        0,
        0,
        va + 100,
        rkey,
        &[(a.buf, 12_000, a.dma_key)],
    );
    a.post_send(
        2,
        wr::RDMA_READ,
        2,
        0,
        va + 100,
        rkey,
        &[(a.buf + 0x20000, 12_000, a.dma_key)],
    );
    let got = a.wait(1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].2),
        (2, wc::RDMA_READ, status::SUCCESS),
        "only the signaled one"
    );
    assert_eq!(b.r.peek(page + 100, 12_000), data, "in B's pages");
    assert_eq!(a.r.peek(a.buf + 0x20000, 12_000), data, "and read back");
    assert!(b.quiet().is_empty(), "a plain write consumes no receive");
    // With immediate: B's receive completes with the immediate.
    b.post_recv(4, &[]);
    a.post_send(
        3,
        wr::RDMA_WRITE_WITH_IMM,
        2,
        0xabcd,
        va,
        rkey,
        &[(a.buf, 64, a.dma_key)],
    );
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    let got = b.wait(1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].3, got[0].4),
        (4, wc::RECV_RDMA_WITH_IMM, 64, 0xabcd)
    );
}

#[test]
fn a_bad_rkey_fails_the_request_and_flushes_the_rest() {
    let (mut a, b) = pair();
    let (rkey, va, _) = b.user_mr(1, access::LOCAL_WRITE | access::REMOTE_READ);
    a.r.poke(a.buf, &pattern(64, 4));
    // The MR does not allow remote writes; the two after it are flushed,
    // signaled or not.
    a.post_send(1, wr::RDMA_WRITE, 2, 0, va, rkey, &[(a.buf, 64, a.dma_key)]);
    a.post_send(2, wr::SEND, 0, 0, 0, 0, &[(a.buf, 64, a.dma_key)]);
    let got = a.wait(2);
    assert_eq!(
        got[0],
        (1, wc::RDMA_WRITE, status::REM_ACCESS_ERR, 0, 0, 0, 0)
    );
    assert_eq!(got[1].2, status::WR_FLUSH_ERR);
    a.post_send(3, wr::SEND, 0, 0, 0, 0, &[(a.buf, 64, a.dma_key)]);
    let got = a.wait(1);
    assert_eq!(
        (got[0].0, got[0].2),
        (3, status::WR_FLUSH_ERR),
        "posted in ERR: flushed"
    );
    let q = a.r.ok(cmd::QUERY_QP, &P::default().u32(0, a.qp).0);
    assert_eq!(u32_at(&q, 0), qp_state::ERR);
}

#[test]
fn a_local_key_outside_its_mr_is_a_protection_error() {
    let (mut a, _b) = pair();
    let (lkey, va, _) = a.user_mr(1, access::LOCAL_WRITE);
    a.post_send(1, wr::SEND, 2, 0, 0, 0, &[(va + 4000, 200, lkey)]);
    assert_eq!(a.wait(1)[0].2, status::LOC_PROT_ERR);
}

#[test]
fn moving_a_qp_to_error_flushes_its_receives_for_ib_drain_qp() {
    let (_a, mut b) = pair();
    for i in 0..3 {
        b.post_recv(10 + i, &[(b.buf, 64, b.dma_key)]);
    }
    assert_eq!(b.modify(qp_state::ERR, |p| p, 0), 0);
    let got = b.wait(3);
    assert_eq!(
        got.iter().map(|c| (c.0, c.1, c.2)).collect::<Vec<_>>(),
        vec![
            (10, wc::RECV, status::WR_FLUSH_ERR),
            (11, wc::RECV, status::WR_FLUSH_ERR),
            (12, wc::RECV, status::WR_FLUSH_ERR)
        ]
    );
    // ib_drain_sq: an unsignaled zero-SGE write posted in ERR completes.
    b.post_send(99, wr::RDMA_WRITE, 0, 0, 0, 0, &[]);
    assert_eq!(b.wait(1)[0].0, 99);
}

#[test]
fn an_armed_cq_writes_a_notification_and_fires_vector_2() {
    let (mut a, mut b) = pair();
    b.r.uar(0, 4, b.cq | 1 << 30);
    std::thread::sleep(Duration::from_millis(20));
    let before = b.r.irqs(2);
    b.post_recv(1, &[(b.buf, 64, b.dma_key)]);
    a.post_send(1, wr::SEND, 2, 0, 0, 0, &[(a.buf, 64, a.dma_key)]);
    a.wait(1);
    b.wait(1);
    let t0 = Instant::now();
    while b.r.irqs(2) == before {
        assert!(t0.elapsed() < Duration::from_secs(5), "no CQ interrupt");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The CQ-notify ring holds the CQ's handle (its state at page 0 +8).
    let e = b.r.engine.lock().unwrap().stats();
    assert_eq!(e.cq_notifications, 1);
    // Disarmed: the next completion notifies nothing.
    b.post_recv(2, &[(b.buf, 64, b.dma_key)]);
    a.post_send(2, wr::SEND, 2, 0, 0, 0, &[(a.buf, 64, a.dma_key)]);
    b.wait(1);
    assert_eq!(b.r.engine.lock().unwrap().stats().cq_notifications, 1);
}

#[test]
fn ud_on_the_gsi_qp_delivers_a_grh_with_the_ipv4_header() {
    let wire = Wire::new();
    let mut a = Host::new(&wire, 1, qp_type::GSI);
    let mut b = Host::new(&wire, 2, qp_type::GSI);
    assert_eq!((a.qp, b.qp), (1, 1));
    for h in [&a, &b] {
        let qkey = |p: P| p.u32(8 + 16, 0x8001_0000);
        assert_eq!(h.modify(qp_state::INIT, qkey, 1 << 6), 0);
        assert_eq!(h.modify(qp_state::RTR, |p| p, 0), 0);
        assert_eq!(h.modify(qp_state::RTS, |p| p, 0), 0);
    }
    let mad = pattern(256, 5);
    a.r.poke(a.buf, &mad);
    b.post_recv(3, &[(b.buf, 40 + 256, b.dma_key)]);
    // A send with no address vector (DGID ::): nobody has that GID, so
    // nothing reaches B, and A completes (UD is unreliable).
    a.post_send(8, wr::SEND, 2, 0, 0, 0, &[(a.buf, 256, a.dma_key)]);
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    assert!(b.quiet().is_empty());
    // Now a proper UD WQE.
    let slot = u64::from(a.sq_tail % WR);
    let at = a.qp_base + 4096 + slot * SQ_STRIDE;
    let w = P::default()
        .u64(0, 9)
        .u32(8, 1)
        .u32(16, wr::SEND)
        .u32(20, 2)
        .u32(32, 1)
        .u32(36, 0x8001_0000)
        .at(48, &gid(b.ip))
        .u8(65, 0)
        .u64(80, a.buf)
        .u32(88, 256)
        .u32(92, a.dma_key);
    a.r.poke(at, &w.0);
    a.sq_tail = (a.sq_tail + 1) % (2 * WR);
    a.r.poke32(a.qp_base, a.sq_tail);
    a.ring(true);
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    let got = b.wait(1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].3, got[0].6),
        (3, wc::RECV, 296, 1)
    );
    assert_eq!(got[0].5, 1 | 64, "GRH and network header type");
    let g = b.r.peek(b.buf, 296);
    assert_eq!(g[..20], [0; 20]);
    assert_eq!(g[20], 0x45);
    assert_eq!(g[29], 17, "UDP");
    assert_eq!(g[32..36], [10, 9, 0, 1], "source address");
    assert_eq!(g[36..40], [10, 9, 0, 2], "destination address");
    let sum: u32 = g[20..40]
        .chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(w[1]))
        .sum();
    assert_eq!(
        (sum & 0xffff) + (sum >> 16),
        0xffff,
        "a valid header checksum"
    );
    assert_eq!(g[40..], mad[..]);
}

#[test]
fn a_wqe_claiming_too_many_sges_completes_in_error() {
    let (mut a, _b) = pair();
    let at = a.qp_base + 4096;
    a.r.poke(
        at,
        &P::default()
            .u64(0, 42)
            .u32(8, 1000)
            .u32(16, wr::SEND)
            .u32(20, 2)
            .0,
    );
    a.sq_tail = 1;
    a.r.poke32(a.qp_base, 1);
    a.ring(true);
    let got = a.wait(1);
    assert_eq!((got[0].0, got[0].2), (42, status::LOC_QP_OP_ERR));
    let q = a.r.ok(cmd::QUERY_QP, &P::default().u32(0, a.qp).0);
    assert_eq!(u32_at(&q, 0), qp_state::ERR);
}

#[test]
fn an_invalid_producer_index_or_a_foreign_doorbell_does_nothing() {
    let (mut a, mut b) = pair();
    b.post_recv(1, &[(b.buf, 64, b.dma_key)]);
    // A producer index outside the ring's arithmetic (2 * WR and up).
    a.r.poke32(a.qp_base, 0xffff_ffff);
    a.ring(true);
    assert!(a.quiet().is_empty());
    // A doorbell on a user page for a kernel QP is not the QP's.
    a.r.poke32(a.qp_base, 0);
    a.r.uar(3, 0, a.qp | 1 << 30);
    assert!(a.quiet().is_empty());
    // The device still works.
    a.post_send(7, wr::SEND, 2, 0, 0, 0, &[(a.buf, 64, a.dma_key)]);
    assert_eq!(a.wait(1)[0].0, 7);
    assert_eq!(b.wait(1)[0].0, 1);
}

#[test]
fn rc_payload_in_flight_is_bounded_and_waits_for_responses() {
    // B posts no receive: every SEND waits there (RNR). A's 16 MiB sends
    // go out until 64 MiB are in flight; the fifth waits at A, not in B's
    // queue, until responses come back.
    let (mut a, mut b) = pair();
    let big = a.r.alloc(1024);
    a.r.poke(big, &pattern(4 << 20, 6));
    let sges = [(big, 4 << 20, a.dma_key); 4];
    for i in 0..5 {
        a.post_send(i, wr::SEND, 2, 0, 0, 0, &sges);
    }
    std::thread::sleep(Duration::from_millis(300));
    let waiting = |h: &Host| {
        let e = h.r.engine.lock().unwrap();
        let qp = e.rdma().qps.get(h.qp).unwrap();
        (qp.rnr.len(), qp.outstanding.len(), e.rdma().inflight)
    };
    assert_eq!(waiting(&b).0, 4, "four sends wait at B");
    let (_, outstanding, inflight) = waiting(&a);
    assert_eq!(
        (outstanding, inflight),
        (4, 64 << 20),
        "the fifth was not sent"
    );
    // B's receives drain them all, in order, bytes intact.
    let rbuf = b.r.alloc(4096);
    for i in 0..5 {
        b.post_recv(100 + i, &[(rbuf, 16 << 20, b.dma_key)]);
    }
    let got = b.wait(5);
    assert_eq!(
        got.iter().map(|c| (c.0, c.3)).collect::<Vec<_>>(),
        (0..5).map(|i| (100 + i, 16 << 20)).collect::<Vec<_>>()
    );
    assert_eq!(
        a.wait(5).iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(b.r.peek(rbuf + (12 << 20), 4 << 20), pattern(4 << 20, 6));
    assert_eq!(waiting(&a).2, 0, "nothing in flight after");
}

#[test]
fn a_fast_registered_mr_takes_remote_writes_until_a_send_with_invalidate() {
    let (mut a, mut b) = pair();
    // B allocates a fast-register MR of 4 pages, then maps 2 of them at
    // IOVA 0x5000_0100 under a new key (low byte 0x05), as
    // ib_update_fast_reg_key and IB_WR_REG_MR do.
    let m = b.r.ok(
        cmd::CREATE_MR,
        &P::default().u32(24, b.pd).u32(32, 2).u32(36, 4).0,
    );
    let key = (u32_at(&m, 4) & !0xff) | 0x05;
    let (pl, pages) = b.r.page_dir(2);
    let slot = u64::from(b.sq_tail % WR);
    let at = b.qp_base + 4096 + slot * SQ_STRIDE;
    let acc = access::LOCAL_WRITE | access::REMOTE_WRITE;
    let w = P::default()
        .u64(0, 31)
        .u32(16, wr::FAST_REG_MR)
        .u32(20, 2)
        .u64(32, 0x5000_0100)
        .u64(40, pl)
        .u32(48, 12)
        .u32(52, 2)
        .u32(56, 6000)
        .u32(60, acc)
        .u32(64, key);
    b.r.poke(at, &w.0);
    b.sq_tail = (b.sq_tail + 1) % (2 * WR);
    b.r.poke32(b.qp_base, b.sq_tail);
    b.ring(true);
    let got = b.wait(1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].2),
        (31, wc::REG_MR, status::SUCCESS)
    );
    // A writes 6000 bytes at the IOVA: they land across B's two pages.
    let data = pattern(6000, 7);
    a.r.poke(a.buf, &data);
    a.post_send(
        1,
        wr::RDMA_WRITE,
        2,
        0,
        0x5000_0100,
        key,
        &[(a.buf, 6000, a.dma_key)],
    );
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    assert_eq!(b.r.peek(pages + 0x100, 6000), data);
    // The old key no longer works.
    a.post_send(
        2,
        wr::RDMA_WRITE,
        2,
        0,
        0x5000_0100,
        key & !0xff,
        &[(a.buf, 16, a.dma_key)],
    );
    assert_eq!(a.wait(1)[0].2, status::REM_ACCESS_ERR);
}

#[test]
fn send_with_invalidate_kills_the_responders_mr() {
    let wire = Wire::new();
    let mut a = Host::new(&wire, 1, qp_type::RC);
    let mut b = Host::new(&wire, 2, qp_type::RC);
    a.connect(&b);
    b.connect(&a);
    let m = b.r.ok(
        cmd::CREATE_MR,
        &P::default().u32(24, b.pd).u32(32, 2).u32(36, 1).0,
    );
    let key = u32_at(&m, 4) | 0x09;
    let (pl, _) = b.r.page_dir(1);
    let at = b.qp_base + 4096;
    let w = P::default()
        .u64(0, 1)
        .u32(16, wr::FAST_REG_MR)
        .u64(32, 0x6000_0000)
        .u64(40, pl)
        .u32(48, 12)
        .u32(52, 1)
        .u32(56, 4096)
        .u32(60, access::LOCAL_WRITE | access::REMOTE_WRITE)
        .u32(64, key);
    b.r.poke(at, &w.0);
    b.sq_tail = 1;
    b.r.poke32(b.qp_base, 1);
    b.ring(true);
    // The REG_MR is unsignaled: nothing completes, yet the MR is mapped.
    assert!(b.quiet().is_empty());
    b.post_recv(5, &[(b.buf, 64, b.dma_key)]);
    a.post_send(
        3,
        wr::SEND_WITH_INV,
        2,
        key,
        0,
        0,
        &[(a.buf, 64, a.dma_key)],
    );
    assert_eq!(a.wait(1)[0].2, status::SUCCESS);
    let got = b.wait(1);
    assert_eq!(
        (got[0].0, got[0].4),
        (5, key),
        "the invalidated rkey in the CQE"
    );
    assert_eq!(got[0].5 & 4, 4, "WITH_INVALIDATE");
    a.post_send(
        4,
        wr::RDMA_WRITE,
        2,
        0,
        0x6000_0000,
        key,
        &[(a.buf, 16, a.dma_key)],
    );
    assert_eq!(a.wait(1)[0].2, status::REM_ACCESS_ERR, "invalidated");
}
