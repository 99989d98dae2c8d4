//! The unit driven like Linux drives it: the capability registers, the
//! enable sequence, translation through the tables, pass-through, every
//! fault reason, fault recording and the fault event.

mod common;

use common::{Rig, FE_ADDR, FE_DATA, ROOT};
use pcie_core::Iommu;
use vtd::regs::{event, fsts, reg};

const DEV: u16 = 0x0300; // 03:00.0

#[test]
fn capabilities_say_what_linux_needs() {
    let r = Rig::new();
    assert_eq!(r.r32(reg::VER), 0x10);
    let cap = r.r64(reg::CAP);
    // Field by field from the VT-d specification, 11.4.2.
    assert_eq!(cap & 7, 2, "ND: 256 domains");
    assert_eq!(
        cap >> 7 & 1,
        0,
        "CM = 0: not-present entries are not cached"
    );
    assert_eq!(cap >> 8 & 0x1f, 0b00100, "SAGAW: 48-bit 4-level only");
    assert_eq!(cap >> 16 & 0x3f, 47, "MGAW: 48 bits");
    assert_eq!((cap >> 24 & 0x3ff) * 16, 0x300, "FRO");
    assert_eq!(cap >> 34 & 0xf, 0, "no superpages");
    assert_eq!(cap >> 39 & 1, 1, "PSI");
    assert_eq!(cap >> 40 & 0xff, 7, "NFR: 8 records");
    assert_eq!(cap >> 4 & 1, 0, "RWBF = 0");
    assert_eq!(cap >> 5 & 3, 0, "no protected memory regions");
    let ecap = r.r64(reg::ECAP);
    assert_eq!(ecap & 1, 1, "C: coherent");
    assert_eq!(ecap >> 1 & 1, 1, "QI");
    assert_eq!(ecap >> 2 & 1, 0, "DT: no device TLBs (ATS)");
    assert_eq!(ecap >> 3 & 1, 0, "IR: no interrupt remapping");
    assert_eq!(ecap >> 6 & 1, 1, "PT");
    assert_eq!((ecap >> 8 & 0x3ff) * 16, 0x200, "IRO");
    assert_eq!(ecap >> 43 & 1, 0, "SMTS: no scalable mode");
    // The 8-byte registers read the same as two dwords.
    assert_eq!(
        u64::from(r.r32(reg::CAP + 4)) << 32 | u64::from(r.r32(reg::CAP)),
        cap
    );
    // Reset state: everything off.
    assert_eq!(r.r32(reg::GSTS), 0);
    assert_eq!(r.r32(reg::FSTS), 0);
}

#[test]
fn requests_translate_through_root_context_and_four_levels() {
    let mut r = Rig::new();
    // Before TE, requests pass untranslated.
    assert_eq!(r.unit.translate(DEV, 0x1234, 4, true), Some(0x1234));
    r.enable();
    let pgd = r.context(DEV, 1, false);
    r.map(pgd, 0x1_2345_6000, 0x80_0000, 3);
    r.map(pgd, 0x7000, 0x81_0000, 1);
    assert_eq!(
        r.unit.translate(DEV, 0x1_2345_6abc, 4, true),
        Some(0x80_0abc)
    );
    assert_eq!(
        r.unit.translate(DEV, 0x1_2345_6000, 64, false),
        Some(0x80_0000)
    );
    assert_eq!(r.unit.translate(DEV, 0x7010, 4, false), Some(0x81_0010));
    let s = r.unit.stats();
    assert_eq!((s.lookups, s.iotlb_hits, s.faults), (3, 1, 0));
    assert_eq!(r.unit.cached(), (1, 2));
    assert!(r.interrupts().is_empty());
}

#[test]
fn pass_through_contexts_and_disabled_translation_are_identity() {
    let mut r = Rig::new();
    r.enable();
    r.context(DEV, 2, true);
    assert_eq!(
        r.unit.translate(DEV, 0xdead_b000, 4, true),
        Some(0xdead_b000)
    );
    // Translation off again: identity for everyone.
    r.gcmd &= !vtd::regs::gcmd::TE;
    r.w32(reg::GCMD, r.gcmd);
    assert_eq!(r.r32(reg::GSTS) & vtd::regs::gcmd::TE, 0);
    assert_eq!(
        r.unit.translate(0x0500, 0x42_0000, 4, false),
        Some(0x42_0000)
    );
}

/// The fault record Linux reads (dmar_fault_do_one): reason, type, source
/// ID and page.
fn record(r: &Rig, i: u64) -> (u32, bool, u16, u64) {
    let base = reg::FRCD + 16 * i;
    let top = r.r32(base + 12);
    assert_ne!(top & 1 << 31, 0, "F set");
    (
        top & 0xff,
        top >> 30 & 1 == 1,
        r.r32(base + 8) as u16,
        r.r64(base) & !0xfff,
    )
}

/// What a fault case does first, then the request (requester, address,
/// write) and the fault reason it must record.
type Case = (&'static str, Box<dyn Fn(&mut Rig)>, u16, u64, bool, u32);

#[test]
fn every_fault_reason_is_recorded_with_its_source_and_page() {
    let mut r = Rig::new();
    r.enable();
    let pgd = r.context(DEV, 1, false);
    r.map(pgd, 0x5000, 0x80_0000, 1); // read-only
    let ct = r.peek(ROOT + 3 * 16) & !0xfff;
    let cases: Vec<Case> = vec![
        (
            "write to a read-only page",
            Box::new(|_| {}),
            DEV,
            0x5000,
            true,
            0x05,
        ),
        (
            "read of an unmapped page",
            Box::new(|_| {}),
            DEV,
            0x9000,
            false,
            0x06,
        ),
        (
            "write to an unmapped page",
            Box::new(|_| {}),
            DEV,
            0x9000,
            true,
            0x05,
        ),
        (
            "beyond the 48-bit width",
            Box::new(|_| {}),
            DEV,
            1 << 48,
            false,
            0x04,
        ),
        (
            "no root entry for bus 9",
            Box::new(|_| {}),
            0x0900,
            0,
            false,
            0x01,
        ),
        (
            "no context entry for 03:01.0",
            Box::new(|_| {}),
            0x0308,
            0,
            false,
            0x02,
        ),
        (
            "context address width 3-level",
            Box::new(move |r: &mut Rig| {
                r.poke(ct + 0x10 * 16 + 8, 1 << 8 | 1);
                r.poke(ct + 0x10 * 16, 0x40_0000 | 1);
            }),
            0x0310,
            0,
            false,
            0x03,
        ),
        (
            "TT 01b (device TLB) is not supported",
            Box::new(move |r: &mut Rig| {
                r.poke(ct + 0x18 * 16 + 8, 1 << 8 | 2);
                r.poke(ct + 0x18 * 16, 0x40_0000 | 1 << 2 | 1);
            }),
            0x0318,
            0,
            false,
            0x0d,
        ),
        (
            "reserved bits in a context entry",
            Box::new(move |r: &mut Rig| {
                r.poke(ct + 0x20 * 16 + 8, 1 << 40 | 2);
                r.poke(ct + 0x20 * 16, 0x40_0000 | 1);
            }),
            0x0320,
            0,
            false,
            0x0b,
        ),
    ];
    for (n, (what, setup, rid, iova, write, reason)) in cases.iter().enumerate() {
        let n = n as u64;
        setup(&mut r);
        assert_eq!(r.unit.translate(*rid, *iova, 4, *write), None, "{what}");
        assert_eq!(
            r.interrupts(),
            [(u64::from(FE_ADDR), FE_DATA)],
            "{what}: one fault event"
        );
        let fs = r.r32(reg::FSTS);
        assert_eq!(fs & fsts::PPF, fsts::PPF, "{what}");
        let fri = u64::from(fs >> 8 & 0xff);
        assert_eq!(fri, n % 8, "{what}: FRI");
        assert_eq!(
            record(&r, fri),
            (*reason, !*write, *rid, *iova & !0xfff & ((1 << 52) - 1)),
            "{what}"
        );
        // Linux clears F, then PFO|PPF in FSTS.
        r.w32(reg::FRCD + 16 * fri + 12, 1 << 31);
        r.w32(reg::FSTS, fsts::PFO | fsts::PPF);
        assert_eq!(r.r32(reg::FSTS), 0, "{what}");
    }
    assert_eq!(r.unit.stats().faults, cases.len() as u64);
}

#[test]
fn tables_outside_memory_and_reserved_bits_fault() {
    let mut r = Rig::new();
    r.enable();
    // A root entry pointing past RAM (16 MiB): context table invalid.
    r.poke(ROOT + 0x40 * 16, 0x7000_0000 | 1);
    assert_eq!(r.unit.translate(0x4000, 0, 4, false), None);
    assert_eq!(record(&r, 0).0, 0x09);
    // Reserved bits in a root entry.
    r.poke(ROOT + 0x41 * 16, 0x40_0000 | 1 << 4 | 1);
    assert_eq!(r.unit.translate(0x4100, 0, 4, false), None);
    assert_eq!(record(&r, 1).0, 0x0a);
    // A next-level pointer past RAM.
    let pgd = r.context(DEV, 1, false);
    r.poke(pgd, 0x7000_0000 | 3);
    assert_eq!(r.unit.translate(DEV, 0x1000, 4, false), None);
    assert_eq!(record(&r, 2).0, 0x07);
    // A superpage bit (no SLLPS) is reserved.
    r.poke(pgd + 8, 0x50_0000 | 1 << 7 | 3);
    assert_eq!(r.unit.translate(DEV, 1 << 39, 4, false), None);
    assert_eq!(record(&r, 3).0, 0x0c);
    // The root table itself outside memory.
    r.w64(reg::RTADDR, 0x7000_0000);
    r.command(vtd::regs::gcmd::SRTP);
    r.w64(reg::CCMD, 1 << 63 | 1 << 61);
    assert_eq!(r.unit.translate(0x0700, 0, 4, false), None);
    assert_eq!(record(&r, 4).0, 0x08);
}

#[test]
fn fpd_suppresses_recording_and_the_records_overflow() {
    let mut r = Rig::new();
    r.enable();
    let pgd = r.context(DEV, 1, false);
    let _ = pgd;
    // FPD on 03:00.0's context: faults fail the request, unrecorded.
    let ct = r.peek(ROOT + 3 * 16) & !0xfff;
    let lo = r.peek(ct);
    r.poke(ct, lo | 2);
    assert_eq!(r.unit.translate(DEV, 0x1000, 4, false), None);
    assert_eq!(r.r32(reg::FSTS), 0);
    assert!(r.interrupts().is_empty());
    // Nine faults from another device: eight records, then PFO. One
    // event for the first record; the overflow is a new condition too.
    let pgd2 = r.context(0x0400, 2, false);
    let _ = pgd2;
    for i in 0..9u64 {
        assert_eq!(r.unit.translate(0x0400, i << 12, 4, true), None);
    }
    let fs = r.r32(reg::FSTS);
    assert_eq!(fs & (fsts::PFO | fsts::PPF), fsts::PFO | fsts::PPF);
    assert_eq!(fs >> 8 & 0xff, 0, "FRI: the oldest");
    assert_eq!(r.interrupts().len(), 2);
    // Records 0..8 hold pages 0..8; the ninth was dropped.
    for i in 0..8 {
        assert_eq!(record(&r, i).3, i << 12);
    }
}

#[test]
fn a_masked_fault_event_is_pending_until_unmasked() {
    let mut r = Rig::new();
    r.enable();
    r.w32(reg::FECTL, event::IM);
    assert_eq!(r.unit.translate(0x0900, 0, 4, false), None);
    assert!(r.interrupts().is_empty());
    assert_eq!(r.r32(reg::FECTL), event::IM | event::IP);
    r.w32(reg::FECTL, 0);
    assert_eq!(r.interrupts(), [(u64::from(FE_ADDR), FE_DATA)]);
    assert_eq!(r.r32(reg::FECTL), 0);
    // Masked again with the fault unserviced: no new event for the next.
    r.w32(reg::FECTL, event::IM);
    assert_eq!(r.unit.translate(0x0900, 0x1000, 4, false), None);
    assert_eq!(
        r.r32(reg::FECTL),
        event::IM,
        "no new condition: PPF was set"
    );
    // Serviced while masked: IP stays clear.
    for i in 0..2 {
        r.w32(reg::FRCD + 16 * i + 12, 1 << 31);
    }
    assert_eq!(r.r32(reg::FSTS), 0);
    r.w32(reg::FECTL, 0);
    assert!(r.interrupts().is_empty());
}
