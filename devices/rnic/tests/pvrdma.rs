//! PVRDMA function 1 driven by the Rust driver in `rdma`: identity, the
//! shared region and caps, and each command as Linux sends it.

mod rdma;

use rdma::*;
use rnic::pvrdma::regs::{caps, cmd, ctl, qp_state, qp_type, reg};

#[test]
fn it_is_a_pvrdma_function_1_with_three_msix_vectors() {
    let r = Rig::new();
    assert_eq!(r.cfg_read(0), 0x0820_15ad);
    assert_eq!(r.cfg_read(8) >> 8, 0x02_8000, "class 02/80/00");
    let mut bars: Vec<(u8, u64)> = r
        .fabric
        .bar_regions(r.id)
        .iter()
        .map(|b| (b.index, b.size))
        .collect();
    bars.sort();
    assert_eq!(bars, vec![(0, 0x2000), (1, 0x1000), (2, 0x10000)]);
    let cap = pcie_core::capabilities(|o| r.cfg_read(o))
        .find(|c| c.id == pcie_core::cap_id::MSIX)
        .unwrap();
    assert_eq!(r.cfg_read(cap.offset) >> 16 & 0x7ff, 2, "table size 3");
    assert_eq!(r.read(reg::VERSION), 20);
    assert_ne!(r.read(reg::ERR), 0, "not ready before the shared region");
}

#[test]
fn dsrhigh_writes_the_caps_linux_requires_before_it_returns() {
    let r = Rig::new();
    assert_eq!(r.load_dsr(|_| {}), 0);
    let c = r.caps();
    let u32c = |o| u32_at(&c, o);
    assert_eq!(c[caps::MODE], 0, "RoCE");
    assert_eq!(c[caps::GID_TYPES], 2, "RoCE v2 only (exactly)");
    assert_eq!(c[caps::BMME_FLAGS], 7, "memory-management extensions");
    assert_eq!(c[caps::PHYS_PORT_CNT], 1);
    assert!(u32c(caps::MAX_UAR).is_power_of_two());
    assert_eq!(
        u32c(caps::MAX_UAR) as u64 * 4096,
        0x10000,
        "BAR 2 holds every UAR"
    );
    assert!(u32c(caps::MAX_QP_WR) >= 512 && u32c(caps::MAX_CQE) >= 1024);
    assert!((2..=128).contains(&u32c(caps::MAX_SGE)) && u32c(caps::MAX_SGE_RD) != 0);
    assert!(u32c(caps::MAX_QP) < 65536 && u32c(caps::MAX_AH) > 0 && u32c(caps::MAX_PD) > 0);
    assert!(u32c(caps::MAX_FAST_REG_PAGE_LIST_LEN) <= 128);
    // EUI-64 of 00:50:56:50:32:07, big-endian.
    assert_eq!(
        c[caps::NODE_GUID..caps::NODE_GUID + 8],
        [0x02, 0x50, 0x56, 0xff, 0xfe, 0x50, 0x32, 0x07]
    );
    r.write(reg::CTL, ctl::ACTIVATE);
    assert_eq!(r.read(reg::ERR), 0);
}

#[test]
fn query_port_and_pkey_answer_an_active_roce_port() {
    let r = Rig::new();
    r.probe();
    let p = r.ok(cmd::QUERY_PORT, &[1]);
    assert_eq!(u32_at(&p, 0), 4, "ACTIVE");
    assert_eq!(u32_at(&p, 4), 5, "max MTU 4096");
    assert_eq!(u32_at(&p, 8), 3, "active MTU 1024");
    assert_eq!(u32_at(&p, 12), 16, "GID table");
    assert_eq!(p[45], 5, "phys state LinkUp");
    let k = r.ok(cmd::QUERY_PKEY, &[1, 0]);
    assert_eq!(u16::from_le_bytes([k[0], k[1]]), 0xffff);
}

#[test]
fn the_mad_stack_objects_linux_creates_in_probe() {
    // ib_register_device: a PD with its DMA MR, a 1024-entry CQ, the GSI
    // QP (128 sends of 2 SGEs, 512 receives of 1), INIT/RTR/RTS.
    let r = Rig::new();
    r.probe();
    let pd = u32_at(&r.ok(cmd::CREATE_PD, &P::default().u32(0, 0).0), 0);
    assert!((1..1 << 24).contains(&pd));
    let mr = r.ok(
        cmd::CREATE_MR,
        &P::default().u32(24, pd).u32(28, 1).u32(32, 1).0,
    );
    let (h, lkey, rkey) = (u32_at(&mr, 0), u32_at(&mr, 4), u32_at(&mr, 8));
    assert!(h != 0 && lkey != 0 && lkey == rkey);
    let (e, cq) = create_cq(&r, 1024);
    assert_eq!(e, 0);
    let (e, qpn, handle) = create_qp(&r, qp_type::GSI, pd, cq, 128, 2);
    assert_eq!((e, qpn, handle), (0, 1, 1), "the GSI QP is QP 1");
    for s in [qp_state::INIT, qp_state::RTR, qp_state::RTS] {
        let (e, _) = r.command(
            cmd::MODIFY_QP,
            &P::default()
                .u32(0, handle)
                .u32(4, 1 | 1 << 6)
                .u32(8, s)
                .u32(8 + 16, 0x8001_0000)
                .0,
        );
        assert_eq!(e, 0);
    }
    let q = r.ok(cmd::QUERY_QP, &P::default().u32(0, handle).u32(4, !0).0);
    assert_eq!(u32_at(&q, 0), qp_state::RTS);
    assert_eq!(u32_at(&q, 16), 0x8001_0000, "qkey");
    // An RC QP gets a number of its own.
    let (e, qpn2, h2) = create_qp(&r, qp_type::RC, pd, cq, 64, 4);
    assert_eq!(e, 0);
    assert!(qpn2 >= 2 && h2 == qpn2);
    // Destroy in Linux's order; destroying a CQ still in use is refused.
    assert_ne!(r.command(cmd::DESTROY_CQ, &P::default().u32(0, cq).0).0, 0);
    for (c, h) in [
        (cmd::DESTROY_QP, h2),
        (cmd::DESTROY_QP, handle),
        (cmd::DESTROY_CQ, cq),
        (cmd::DESTROY_MR, h),
        (cmd::DESTROY_PD, pd),
    ] {
        assert_eq!(r.command(c, &P::default().u32(0, h).0).0, 0, "destroy {c}");
    }
    assert_ne!(
        r.command(cmd::DESTROY_PD, &P::default().u32(0, pd).0).0,
        0,
        "twice"
    );
}

#[test]
fn gids_are_bound_and_unbound_by_index() {
    let r = Rig::new();
    r.probe();
    let gid = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 0, 1];
    let bind = P::default()
        .u32(0, 1024)
        .u32(4, 0xfff)
        .u32(8, 1)
        .at(12, &gid)
        .u8(28, 2);
    r.ok(cmd::CREATE_BIND, &bind.0);
    assert_eq!(r.engine.lock().unwrap().rdma().gids[1], Some(gid));
    r.ok(cmd::DESTROY_BIND, &P::default().u32(0, 1).at(4, &gid).0);
    assert_eq!(r.engine.lock().unwrap().rdma().gids[1], None);
    let bad = P::default().u32(8, 16).at(12, &gid);
    assert_ne!(
        r.command(cmd::CREATE_BIND, &bad.0).0,
        0,
        "index beyond the table"
    );
}

#[test]
fn user_contexts_own_a_uar_page() {
    let r = Rig::new();
    r.probe();
    let pfn = r.bar(2) >> 12;
    let uc = u32_at(&r.ok(cmd::CREATE_UC, &P::default().u64(0, pfn + 3).0), 0);
    assert_ne!(uc, 0, "context handles are never 0");
    assert_ne!(
        r.command(cmd::CREATE_UC, &P::default().u64(0, pfn).0).0,
        0,
        "page 0 is the kernel's"
    );
    assert_ne!(
        r.command(cmd::CREATE_UC, &P::default().u64(0, pfn + 16).0)
            .0,
        0,
        "past BAR 2"
    );
    let pd = r.ok(cmd::CREATE_PD, &P::default().u32(0, uc).0);
    assert_ne!(u32_at(&pd, 0), 0);
    assert_ne!(
        r.command(cmd::CREATE_PD, &P::default().u32(0, 99).0).0,
        0,
        "no such context"
    );
    r.ok(cmd::DESTROY_UC, &P::default().u32(0, uc).0);
}

#[test]
fn a_user_mr_translates_inside_its_pages_only() {
    let r = Rig::new();
    r.probe();
    let pd = u32_at(&r.ok(cmd::CREATE_PD, &[0; 4]), 0);
    let (pdir, pages) = r.page_dir(3);
    // 3 pages from VA 0x7000_0100, 0x2000 bytes long.
    let mr = r.ok(
        cmd::CREATE_MR,
        &P::default()
            .u64(0, 0x7000_0100)
            .u64(8, 0x2000)
            .u64(16, pdir)
            .u32(24, pd)
            .u32(28, 7)
            .u32(36, 3)
            .0,
    );
    let h = u32_at(&mr, 0);
    let e = r.engine.lock().unwrap();
    let m = e.rdma().mrs.get(h).unwrap();
    assert_eq!(
        m.translate(0x7000_0100, 16),
        Some(vec![(pages + 0x100, 16)])
    );
    assert_eq!(
        m.translate(0x7000_0f00, 0x200),
        Some(vec![(pages + 0xf00, 0x100), (pages + 0x1000, 0x100)])
    );
    assert_eq!(m.translate(0x7000_00ff, 1), None, "before the start");
    assert_eq!(m.translate(0x7000_2000, 0x101), None, "past the length");
}

#[test]
fn the_cq_doorbell_arms_and_unknown_commands_fail() {
    let r = Rig::new();
    r.probe();
    let (_, cq) = create_cq(&r, 64);
    r.uar(0, 4, cq | 1 << 30);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        r.engine.lock().unwrap().rdma().cqs.get(cq).unwrap().armed,
        Some(false)
    );
    let (e, _) = r.command(99, &[]);
    assert_ne!(e, 0);
    let (e, _) = r.command(cmd::RESIZE_CQ, &P::default().u32(0, cq).u32(4, 128).0);
    assert_ne!(e, 0, "no resize");
}

#[test]
fn ctl_reset_forgets_everything() {
    let r = Rig::new();
    r.probe();
    let pd = u32_at(&r.ok(cmd::CREATE_PD, &[0; 4]), 0);
    r.write(reg::CTL, ctl::RESET);
    assert_ne!(r.read(reg::ERR), 0xdead, "reads");
    // Commands need a shared region again.
    r.write(reg::REQUEST, 0);
    assert_ne!(r.read(reg::ERR), 0);
    r.probe();
    assert_ne!(
        r.command(cmd::DESTROY_PD, &P::default().u32(0, pd).0).0,
        0,
        "gone"
    );
}
