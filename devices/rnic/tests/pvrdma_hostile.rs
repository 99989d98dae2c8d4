//! A buggy or hostile PVRDMA driver: one regression test per QEMU pvrdma
//! CVE pattern, and a proptest over the command slot. The device refuses
//! with ERR, keeps its tables consistent, and always answers.

mod rdma;

use proptest::prelude::*;
use rdma::*;
use rnic::pvrdma::regs::{cmd, ctl, dsr, qp_type, reg};

fn pd(r: &Rig) -> u32 {
    u32_at(&r.ok(cmd::CREATE_PD, &[0; 4]), 0)
}

#[test]
fn cve_2021_3582_an_mr_longer_than_its_pages_is_refused() {
    let r = Rig::new();
    r.probe();
    let pd = pd(&r);
    let (pdir, _) = r.page_dir(2);
    let mr = |start: u64, len: u64, n: u32| {
        r.command(
            cmd::CREATE_MR,
            &P::default()
                .u64(0, start)
                .u64(8, len)
                .u64(16, pdir)
                .u32(24, pd)
                .u32(28, 1)
                .u32(36, n)
                .0,
        )
        .0
    };
    assert_ne!(mr(0x1000, 0x2001, 2), 0, "one byte past two pages");
    assert_ne!(
        mr(0x1800, 0x2000, 2),
        0,
        "an offset start needs a third page"
    );
    assert_ne!(mr(0, u64::MAX, 2), 0, "a length that wraps");
    assert_ne!(mr(0, 0, 2), 0, "empty");
    assert_ne!(mr(0, 0x1000, 0), 0, "no pages");
    assert_eq!(mr(0x1000, 0x2000, 2), 0, "exactly two pages");
}

#[test]
fn cve_2021_3607_zero_page_rings_are_refused() {
    // Event rings with no entry pages, and CQs of 0 entries or 0 pages.
    for pages in [0, 1] {
        let r = Rig::new();
        let e = r.load_dsr(|r| r.poke32(DSR + dsr::ASYNC_RING, pages));
        assert_ne!(e, 0, "async ring of {pages} pages");
        r.write(reg::REQUEST, 0);
        assert_ne!(r.read(reg::ERR), 0, "and no commands after it");
    }
    let r = Rig::new();
    r.probe();
    let (pdir, _) = r.page_dir(2);
    for (cqe, n) in [(0, 2), (64, 0), (64, 1), (3, 2)] {
        let p = P::default().u64(0, pdir).u32(12, cqe).u32(16, n);
        assert_ne!(
            r.command(cmd::CREATE_CQ, &p.0).0,
            0,
            "cqe {cqe} over {n} pages"
        );
    }
}

#[test]
fn cve_2021_3608_a_failed_create_leaks_nothing() {
    // A QP whose page directory cannot be read fails; the tables are as
    // before, so every handle can still be created afterwards.
    let r = Rig::new();
    r.probe();
    let pd = pd(&r);
    let (_, cq) = create_cq(&r, 64);
    let bad = P::default()
        .u64(0, 0x7f_0000_0000)
        .u32(8, pd)
        .u32(12, cq)
        .u32(16, cq)
        .u32(24, 16)
        .u32(28, 16)
        .u32(32, 1)
        .u32(36, 1)
        .u16(52, 3)
        .u16(54, 1)
        .u8(59, qp_type::RC);
    for _ in 0..300 {
        assert_ne!(r.command(cmd::CREATE_QP, &bad.0).0, 0);
    }
    let (e, qpn, _) = create_qp(&r, qp_type::RC, pd, cq, 16, 1);
    assert_eq!((e, qpn), (0, 2), "the first RC handle is still free");
    // Likewise for CQs and MRs with unreadable directories.
    let badcq = P::default().u64(0, 0x7f_0000_0000).u32(12, 64).u32(16, 2);
    assert_ne!(r.command(cmd::CREATE_CQ, &badcq.0).0, 0);
    let (e, cq2) = create_cq(&r, 64);
    assert_eq!((e, cq2), (0, cq + 1));
}

#[test]
fn cve_2022_1050_commands_before_the_shared_region_are_refused() {
    let r = Rig::new();
    r.write(reg::REQUEST, 0);
    assert_ne!(r.read(reg::ERR), 0);
    r.write(reg::CTL, ctl::ACTIVATE);
    assert_ne!(r.read(reg::ERR), 0, "nor can it be activated");
    assert_eq!(r.engine.lock().unwrap().stats().commands, 0, "nothing ran");
    assert_eq!(r.irqs(0), 0);
    // A shared region whose slots point nowhere: the command fails.
    let r = Rig::new();
    assert_eq!(
        r.load_dsr(|r| r.poke64(DSR + dsr::CMD_SLOT, 0x7f_0000_0000)),
        0
    );
    r.write(reg::REQUEST, 0);
    assert_ne!(r.read(reg::ERR), 0);
}

#[test]
fn cve_2023_1544_page_counts_beyond_one_table_are_read_or_refused() {
    let r = Rig::new();
    r.probe();
    // One table lists 512 pages; 65536 CQEs take 1025 pages (the state
    // page and 1024 of CQEs), read through three tables.
    let (e, cq) = create_cq(&r, 65536);
    assert_eq!(e, 0, "a directory of three tables");
    assert!(cq >= 1);
    // Beyond one directory (512 tables of 512 pages), and ring page
    // counts beyond what the device accepts, are refused.
    let (pdir, _) = r.page_dir(1);
    let p = P::default().u64(0, pdir).u32(12, 1 << 20).u32(16, 16385);
    assert_ne!(r.command(cmd::CREATE_CQ, &p.0).0, 0, "2^20 CQEs");
    let pd = pd(&r);
    let p = P::default()
        .u64(0, 0)
        .u64(8, 1 << 31)
        .u64(16, pdir)
        .u32(24, pd)
        .u32(36, 1 << 19);
    assert_ne!(r.command(cmd::CREATE_MR, &p.0).0, 0, "2^19 pages");
    let r = Rig::new();
    assert_ne!(r.load_dsr(|r| r.poke32(DSR + dsr::CQ_RING, 1 << 20)), 0);
}

#[test]
fn the_2018_batch_unchecked_counts_and_handles() {
    let r = Rig::new();
    r.probe();
    let pd = pd(&r);
    let (_, cq) = create_cq(&r, 64);
    // Work request counts of 0, 2^32 - 1 and not a power of two; SGE
    // counts beyond the caps; handles that do not exist.
    for (wr, sge, pdh, c) in [
        (0, 1, pd, cq),
        (u32::MAX, 1, pd, cq),
        (100, 1, pd, cq),
        (1 << 20, 1, pd, cq),
        (16, 17, pd, cq),
        (16, 1, 77, cq),
        (16, 1, pd, 77),
        (16, 1, pd, u32::MAX),
    ] {
        let req = P::default()
            .u64(0, r.page_dir(4).0)
            .u32(8, pdh)
            .u32(12, c)
            .u32(16, c)
            .u32(24, wr)
            .u32(28, wr)
            .u32(32, sge)
            .u32(36, sge)
            .u16(52, 4)
            .u16(54, 2)
            .u8(59, qp_type::RC);
        let (e, _) = r.command(cmd::CREATE_QP, &req.0);
        assert_ne!(e, 0, "wr {wr} sge {sge} pd {pdh} cq {c}");
    }
    // Too few pages for what the counts need.
    let short = P::default()
        .u64(0, r.page_dir(2).0)
        .u32(8, pd)
        .u32(12, cq)
        .u32(16, cq)
        .u32(24, 256)
        .u32(28, 256)
        .u32(32, 4)
        .u32(36, 4)
        .u16(52, 2)
        .u16(54, 1)
        .u8(59, qp_type::RC);
    assert_ne!(
        r.command(cmd::CREATE_QP, &short.0).0,
        0,
        "256 WRs in one page"
    );
    // Handles out of range on every destroy and modify.
    for c in [
        cmd::DESTROY_PD,
        cmd::DESTROY_MR,
        cmd::DESTROY_CQ,
        cmd::DESTROY_QP,
        cmd::DESTROY_UC,
    ] {
        for h in [0, 9999, u32::MAX] {
            assert_ne!(r.command(c, &P::default().u32(0, h).0).0, 0);
        }
    }
    let m = P::default().u32(0, 9999).u32(4, 1).u32(8, 3);
    assert_ne!(r.command(cmd::MODIFY_QP, &m.0).0, 0);
    // A CQ doorbell naming no CQ, QP doorbells naming nothing: ignored.
    r.uar(0, 4, 0x00ff_ffff | 1 << 30);
    r.uar(0, 0, 0x00ff_ffff | 1 << 31);
    r.uar(15, 0, 5 | 1 << 30);
    assert_eq!(r.ok(cmd::QUERY_PORT, &[1])[0], 4, "still answers");
}

#[test]
fn tables_fill_up_and_say_so() {
    let r = Rig::new();
    r.probe();
    let mut n = 0;
    loop {
        let (e, _) = r.command(cmd::CREATE_PD, &[0; 4]);
        if e != 0 {
            break;
        }
        n += 1;
        assert!(n < 10_000, "never full");
    }
    assert_eq!(n, 255, "handles 1..256");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any bytes in the command slot: the device answers every one (ack,
    /// vector 0) and keeps working.
    #[test]
    fn garbage_commands_are_answered(reqs in proptest::collection::vec(
        (0u32..20, proptest::collection::vec(any::<u8>(), 168)), 1..12)) {
        let r = Rig::new();
        r.probe();
        for (code, payload) in reqs {
            let _ = r.command(code, &payload);
        }
        prop_assert_eq!(r.ok(cmd::QUERY_PORT, &[1])[0], 4);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// WQEs from any bytes: parsed within their limits, or refused.
    #[test]
    fn wqes_parse_within_their_limits(b in proptest::collection::vec(any::<u8>(), 0..600), max in 0u32..33) {
        use rnic::pvrdma::wqe::{RecvWqe, SendWqe, RQ_HDR, SGE, SQ_HDR};
        if let Some(w) = SendWqe::parse(&b, max) {
            prop_assert!(w.sges.len() as u32 <= max && SQ_HDR + w.sges.len() * SGE <= b.len());
        }
        if let Some(w) = RecvWqe::parse(&b, max) {
            prop_assert!(w.sges.len() as u32 <= max && RQ_HDR + w.sges.len() * SGE <= b.len());
        }
    }
}
