//! Injected misbehaviour, each against what the unit must then do.

mod common;

use common::{Rig, FE_ADDR, FE_DATA};
use pcie_core::Iommu;
use vtd::regs::{event, fsts, reg};
use vtd::Injection;

const A: u16 = 0x0300;
const B: u16 = 0x0400;

fn rig() -> (Rig, u64) {
    let mut r = Rig::new();
    r.enable();
    let pgd = r.context(A, 1, false);
    r.context(B, 2, true);
    r.map(pgd, 0x1000, 0x80_0000, 3);
    // A page beyond guest RAM: a peer's BAR.
    r.map(pgd, 0x2000, 0x1_0000_0000, 3);
    (r, pgd)
}

#[test]
fn dropped_mappings_fault_as_not_present_for_their_requester() {
    let (r, _) = rig();
    r.unit.inject(Injection::DropMappings {
        rid: Some(A),
        peer_only: true,
    });
    // RAM still translates; the BAR page faults as a write to a page
    // without write permission (reason 5), and is recorded.
    assert_eq!(r.unit.translate(A, 0x1000, 4, true), Some(0x80_0000));
    assert_eq!(r.unit.translate(A, 0x2010, 4, true), None);
    assert_eq!(r.r32(reg::FRCD + 12) & 0xff, 5);
    assert_eq!(r.r32(reg::FRCD + 8) as u16, A);
    assert_eq!(r.interrupts(), [(u64::from(FE_ADDR), FE_DATA)]);
    // Everything of A's, reads too (reason 6); B (pass-through) untouched.
    r.unit.clear_injections();
    r.unit.inject(Injection::DropMappings {
        rid: None,
        peer_only: false,
    });
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), None);
    assert_eq!(r.r32(reg::FRCD + 16 + 12) & 0xff, 6);
    assert_eq!(r.unit.translate(B, 0x5000, 4, false), Some(0x5000));
    r.unit.clear_injections();
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x80_0000));
}

#[test]
fn poisoned_mappings_alias_odd_pages_onto_even_ones() {
    let (mut r, pgd) = rig();
    // Odd target pages, in RAM and in the peer's BAR.
    r.map(pgd, 0x3000, 0x80_1000, 3);
    r.map(pgd, 0x4000, 0x1_0000_1000, 3);
    r.unit.inject(Injection::PoisonMappings {
        rid: Some(A),
        peer_only: false,
    });
    assert_eq!(r.unit.translate(A, 0x3010, 4, true), Some(0x80_0010));
    assert_eq!(
        r.unit.translate(A, 0x1010, 4, true),
        Some(0x80_0010),
        "the even page keeps its place: two IOVA pages now share it"
    );
    assert_eq!(
        r.unit.translate(B, 0x1010, 4, true),
        Some(0x1010),
        "B passes through"
    );
    assert_eq!(r.r32(reg::FSTS), 0, "no fault: the kernel cannot see it");
    r.unit.clear_injections();
    r.unit.inject(Injection::PoisonMappings {
        rid: None,
        peer_only: true,
    });
    assert_eq!(
        r.unit.translate(A, 0x3010, 4, true),
        Some(0x80_1010),
        "RAM: untouched"
    );
    assert_eq!(r.unit.translate(A, 0x4010, 4, true), Some(0x1_0000_0010));
    assert_eq!(r.unit.translate(A, 0x2010, 4, true), Some(0x1_0000_0010));
}

#[test]
fn contexts_can_vanish_change_type_or_domain() {
    let (mut r, pgd) = rig();
    r.unit.inject(Injection::ContextNotPresent { rid: A });
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), None);
    assert_eq!(r.r32(reg::FRCD + 12) & 0xff, 2);
    r.unit.clear_injections();
    // Forced pass-through: the IOVA goes out as an address.
    r.unit.inject(Injection::ForceType {
        rid: A,
        pass_through: true,
    });
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x1000));
    r.unit.clear_injections();
    // Forced translation of a pass-through context walks its table
    // (the rig left it empty): a fault.
    r.unit.inject(Injection::ForceType {
        rid: B,
        pass_through: false,
    });
    assert_eq!(r.unit.translate(B, 0x1000, 4, false), None);
    r.unit.clear_injections();
    // A wrong domain: A's pages are cached under domain 9, so Linux's
    // domain-1 invalidation misses them.
    r.unit.inject(Injection::WrongDomain { rid: A, domain: 9 });
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x80_0000));
    r.map(pgd, 0x1000, 0x90_0000, 3);
    r.submit(&[(0x22 | 1 << 16, 0)]);
    assert_eq!(
        r.unit.translate(A, 0x1000, 4, false),
        Some(0x80_0000),
        "stale"
    );
    assert_eq!(r.unit.stats().stale_hits, 1, "the stale hit is counted");
    r.submit(&[(0x22 | 9 << 16, 0)]);
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x90_0000));
    assert_eq!(r.unit.stats().stale_hits, 1);
}

#[test]
fn ignored_invalidations_leave_the_iotlb_stale() {
    let (mut r, pgd) = rig();
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x80_0000));
    r.unit.inject(Injection::IgnoreInvalidations);
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x80_0000));
    assert_eq!(
        r.unit.stats().stale_hits,
        0,
        "a hit that agrees is not stale"
    );
    r.map(pgd, 0x1000, 0x90_0000, 3);
    r.submit(&[(0x12, 0), (0x25 | 1 << 32, 0x8000)]);
    r.w64(reg::IOTLB, 1 << 63 | 1 << 60);
    assert_eq!(r.peek(0x8000) as u32, 1, "the wait still completes");
    assert_eq!(
        r.unit.translate(A, 0x1000, 4, false),
        Some(0x80_0000),
        "stale"
    );
    assert_eq!(r.unit.stats().stale_hits, 1);
    r.unit.clear_injections();
    r.submit(&[(0x12, 0)]);
    assert_eq!(r.unit.translate(A, 0x1000, 4, false), Some(0x90_0000));
}

#[test]
fn a_masked_event_overflowing_records_and_failed_descriptors() {
    let (mut r, _) = rig();
    // The event never arrives though FECTL says unmasked.
    r.unit.inject(Injection::MaskFaultEvent);
    assert_eq!(r.unit.translate(A, 0x9000, 4, false), None);
    assert!(r.interrupts().is_empty());
    assert_eq!(r.r32(reg::FECTL), event::IP);
    r.w32(reg::FECTL, 0);
    assert!(r.interrupts().is_empty());
    r.unit.clear_injections();
    r.w32(reg::FRCD + 12, 1 << 31);
    // Full records: the next fault overflows, recorded nowhere.
    r.unit.inject(Injection::OverflowRecords);
    assert_eq!(r.unit.translate(A, 0x9000, 4, false), None);
    assert_eq!(r.r32(reg::FSTS) & (fsts::PFO | fsts::PPF), fsts::PFO);
    r.unit.clear_injections();
    r.w32(reg::FSTS, fsts::PFO);
    // The next descriptor is refused: IQE, then the queue resumes when
    // IQE is cleared.
    r.unit.inject(Injection::FailDescriptors { count: 1 });
    r.submit(&[(0x11, 0), (0x25 | 1 << 32, 0x8000)]);
    assert_eq!(r.r32(reg::FSTS) & fsts::IQE, fsts::IQE);
    assert_eq!(r.peek(0x8000), 0);
    r.w32(reg::FSTS, fsts::IQE);
    assert_eq!(r.peek(0x8000) as u32, 1, "resumed after IQE");
    assert_eq!(r.r64(reg::IQH), r.r64(reg::IQT));
}
