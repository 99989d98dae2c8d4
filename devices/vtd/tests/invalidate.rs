//! The caches (CM = 0: only present results are kept) and every way to
//! drop them: registers and queued descriptors, at each granularity; the
//! invalidation queue's wait descriptors and its error handling.

mod common;

use common::{Rig, FE_ADDR, FE_DATA, IE, QUEUE};
use pcie_core::Iommu;
use vtd::regs::{fsts, reg, ICS_IWC};

const A: u16 = 0x0300;
const B: u16 = 0x0400;

/// Two devices in two domains, each with page 0x1000 mapped.
fn two_domains() -> (Rig, u64, u64) {
    let mut r = Rig::new();
    r.enable();
    let (pa, pb) = (r.context(A, 1, false), r.context(B, 2, false));
    r.map(pa, 0x1000, 0x80_0000, 3);
    r.map(pa, 0x2000, 0x80_1000, 3);
    r.map(pb, 0x1000, 0x90_0000, 3);
    for rid in [A, B] {
        assert!(r.unit.translate(rid, 0x1000, 4, true).is_some());
    }
    assert!(r.unit.translate(A, 0x2000, 4, true).is_some());
    (r, pa, pb)
}

/// Remaps both devices' page 0x1000 (and A's 0x2000) behind the caches'
/// back.
fn remap(r: &mut Rig, pa: u64, pb: u64) {
    r.map(pa, 0x1000, 0xa0_0000, 3);
    r.map(pa, 0x2000, 0xa0_1000, 3);
    r.map(pb, 0x1000, 0xb0_0000, 3);
}

fn now(r: &Rig, rid: u16, iova: u64) -> u64 {
    r.unit.translate(rid, iova, 4, false).unwrap()
}

#[test]
fn a_stale_iotlb_is_used_until_invalidated_at_each_granularity() {
    // Page-selective, by register (IVA + IOTLB, IIRG 3).
    let (mut r, pa, pb) = two_domains();
    remap(&mut r, pa, pb);
    assert_eq!(now(&r, A, 0x1000), 0x80_0000, "stale until invalidated");
    r.w64(reg::IVA, 0x1000);
    r.w64(reg::IOTLB, 1 << 63 | 3 << 60 | 1 << 32);
    assert_eq!((r.r64(reg::IOTLB) >> 57) & 3, 3, "IAIG: page");
    assert_eq!(now(&r, A, 0x1000), 0xa0_0000);
    assert_eq!(now(&r, A, 0x2000), 0x80_1000, "the next page stays");
    assert_eq!(now(&r, B, 0x1000), 0x90_0000, "the other domain stays");
    // Domain-selective, by descriptor.
    r.submit(&[(0x22 | 1 << 16, 0)]);
    assert_eq!(now(&r, A, 0x2000), 0xa0_1000);
    assert_eq!(now(&r, B, 0x1000), 0x90_0000);
    // Global, by register.
    r.w64(reg::IOTLB, 1 << 63 | 1 << 60);
    assert_eq!(now(&r, B, 0x1000), 0xb0_0000);

    // Page-selective with an address mask, by descriptor: 2 pages.
    let (mut r, pa, pb) = two_domains();
    remap(&mut r, pa, pb);
    r.submit(&[(0x32 | 1 << 16, 1)]);
    assert_eq!(
        (now(&r, A, 0x1000), now(&r, A, 0x2000)),
        (0xa0_0000, 0x80_1000),
        "0x0-0x1fff only"
    );
    r.submit(&[(0x32 | 1 << 16, 2)]);
    assert_eq!(now(&r, A, 0x2000), 0xa0_1000, "0x0-0x3fff");
    // An unsupported register granularity reports IAIG 0 and drops nothing.
    r.w64(reg::IOTLB, 1 << 63 | 2 << 32);
    assert_eq!((r.r64(reg::IOTLB) >> 57) & 3, 0);
    assert_eq!(now(&r, B, 0x1000), 0x90_0000);
}

#[test]
fn context_entries_are_cached_until_invalidated() {
    let (mut r, _, _) = two_domains();
    // Move A to pass-through behind the cache's back.
    let ct = r.peek(common::ROOT + 3 * 16) & !0xfff;
    let lo = r.peek(ct);
    r.poke(ct, (lo & !0xc) | 2 << 2);
    assert_eq!(
        now(&r, A, 0x1000),
        0x80_0000,
        "the cached context still translates"
    );
    // Device-selective by register: another device's does nothing.
    r.w64(reg::CCMD, 1 << 63 | 3 << 61 | u64::from(B) << 16 | 2);
    assert_eq!((r.r64(reg::CCMD) >> 59) & 3, 3);
    assert_eq!(now(&r, A, 0x1000), 0x80_0000);
    // Function mask 3 covers 03:00.0-03:00.7.
    r.submit(&[(0x31 | 1 << 16 | (u64::from(A) | 5) << 32 | 3 << 48, 0)]);
    assert_eq!(now(&r, A, 0x1234), 0x1234, "now pass-through");
    // Domain-selective: B's domain 2 (B's entry was dropped above and
    // is cached again by this lookup).
    assert!(r.unit.translate(B, 0x1000, 4, false).is_some());
    let ctb = r.peek(common::ROOT + 4 * 16) & !0xfff;
    r.poke(ctb, 0);
    assert!(r.unit.translate(B, 0x1000, 4, false).is_some());
    r.submit(&[(0x21 | 2 << 16, 0)]);
    assert_eq!(r.unit.translate(B, 0x1000, 4, false), None, "context gone");
    assert_eq!(r.r32(reg::FRCD + 12) & 0xff, 2);
}

#[test]
fn not_present_results_are_never_cached() {
    let mut r = Rig::new();
    r.enable();
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), None);
    let pgd = r.context(A, 1, false);
    // No invalidation: the context entry is found now.
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), None);
    r.map(pgd, 0x1000, 0x80_0000, 1);
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x80_0000));
    // A cached read-only page does not satisfy a write: walked again.
    r.map(pgd, 0x1000, 0x80_0000, 3);
    assert_eq!(r.unit.translate(A, 0x1000, 4, true), Some(0x80_0000));
}

#[test]
fn wait_descriptors_write_their_status_and_signal_completion() {
    let mut r = Rig::new();
    r.enable();
    // Linux's qi_submit_sync: the request, then a wait with status write.
    r.submit(&[(0x11, 0), (0x25 | 1 << 32, 0x8000)]);
    assert_eq!(r.peek(0x8000) as u32, 1, "QI_DONE written");
    assert_eq!(r.r64(reg::IQH), 2 << 4, "head caught up with the tail");
    assert!(r.interrupts().is_empty());
    // With IF: ICS.IWC and the invalidation event.
    r.submit(&[(0x15, 0)]);
    assert_eq!(r.r32(reg::ICS), ICS_IWC);
    assert_eq!(r.interrupts(), [(u64::from(IE.0), IE.1)]);
    r.w32(reg::ICS, ICS_IWC);
    assert_eq!(r.r32(reg::ICS), 0);
    // The queue wraps.
    for _ in 0..300 {
        r.submit(&[(0x25 | 7 << 32, 0x8100)]);
    }
    assert_eq!(r.r64(reg::IQH), r.tail << 4);
    assert_eq!(r.unit.stats().descriptors, 303);
}

#[test]
fn a_bad_descriptor_stops_the_queue_with_iqe_until_cleared() {
    let mut r = Rig::new();
    r.enable();
    // A device-TLB invalidation (type 3): no ATS here.
    r.submit(&[(0x11, 0), (0x03, 0), (0x25 | 1 << 32, 0x8000)]);
    assert_eq!(r.r32(reg::FSTS) & fsts::IQE, fsts::IQE);
    assert_eq!(r.r64(reg::IQH), 1 << 4, "IQH on the bad descriptor");
    assert_eq!(r.peek(0x8000), 0, "nothing after it ran");
    assert_eq!(r.interrupts(), [(u64::from(FE_ADDR), FE_DATA)]);
    // More tail moves do nothing while IQE is set.
    r.submit(&[(0x11, 0)]);
    assert_eq!(r.r64(reg::IQH), 1 << 4);
    // Linux replaces the bad one with the wait (qi_check_fault), clears
    // IQE, and the queue runs on at the next tail write.
    r.poke(QUEUE + 16, 0x11);
    r.w32(reg::FSTS, fsts::IQE);
    r.w64(reg::IQT, r.tail << 4);
    assert_eq!(r.r64(reg::IQH), r.tail << 4);
    assert_eq!(r.peek(0x8000) as u32, 1);
    // A tail beyond the queue (one page: 256 entries), and 256-bit
    // descriptors (DW), are queue errors too.
    r.w32(reg::FSTS, fsts::IQE);
    r.w64(reg::IQT, 300 << 4);
    assert_eq!(r.r32(reg::FSTS) & fsts::IQE, fsts::IQE);
    let mut r = Rig::new();
    r.w64(reg::IQA, QUEUE | 1 << 11);
    r.command(vtd::regs::gcmd::QIE);
    r.submit(&[(0x11, 0)]);
    assert_eq!(r.r32(reg::FSTS) & fsts::IQE, fsts::IQE);
    // A wait whose status address is outside memory.
    let mut r = Rig::new();
    r.enable();
    r.submit(&[(0x25, 0x7000_0000)]);
    assert_eq!(r.r32(reg::FSTS) & fsts::IQE, fsts::IQE);
}

#[test]
fn the_iotlb_is_bounded_however_many_pages_a_guest_maps() {
    use vtd::caches::{Caches, IOTLB_ENTRIES};
    use vtd::walk::Page;
    let mut c = Caches::default();
    let page = |n: u64| Page {
        addr: n << 12,
        read: true,
        write: true,
    };
    for n in 0..IOTLB_ENTRIES as u64 {
        c.put_page(1, n << 12, page(n));
    }
    assert_eq!(c.len().1, IOTLB_ENTRIES);
    assert_eq!(c.page(1, 5 << 12), Some(page(5)));
    // One more empties it first; the newest entry is kept.
    c.put_page(1, 1 << 40, page(7));
    assert_eq!(c.len().1, 1);
    assert_eq!(c.page(1, 1 << 40), Some(page(7)));
    assert_eq!(c.page(1, 5 << 12), None, "evicted: the next use walks");
}
