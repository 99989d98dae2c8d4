//! A test "driver" for the unit: guest RAM in a vector, page tables built
//! the way Linux's intel-iommu builds them, and the register sequences it
//! uses to enable the unit.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use pcie_core::{GuestRam, InterruptSink};
use vtd::regs::{gcmd, reg};
use vtd::Vtd;

/// Guest RAM of the tests: 16 MiB at 0.
pub const RAM: usize = 16 << 20;
/// The root table.
pub const ROOT: u64 = 0x10_0000;
/// The invalidation queue (one page).
pub const QUEUE: u64 = 0x20_0000;
/// Where page tables are allocated from.
pub const TABLES: u64 = 0x30_0000;
/// The fault event's message.
pub const FE_ADDR: u32 = 0xfee0_0000;
/// The fault event's data (vector 0x40).
pub const FE_DATA: u32 = 0x40;
/// The invalidation event's message address and data.
pub const IE: (u32, u32) = (0xfee0_1000, 0x41);

pub use pcie_core::VecRam;

/// The interrupt controller: what it was sent.
#[derive(Default)]
pub struct Apic(pub Mutex<Vec<(u64, u32)>>);

impl InterruptSink for Apic {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((addr, data));
        true
    }
}

/// A unit, its memory and interrupts, and a table allocator.
pub struct Rig {
    pub unit: Vtd,
    pub ram: Arc<VecRam>,
    pub apic: Arc<Apic>,
    next_table: u64,
    /// Linux's copy of GCMD's enables.
    pub gcmd: u32,
    /// Next free queue slot.
    pub tail: u64,
}

impl Rig {
    /// A unit in its reset state; the fault and invalidation event
    /// registers programmed, unmasked.
    pub fn new() -> Self {
        let ram = VecRam::new(RAM);
        let unit = Vtd::new(ram.clone(), vec![(0, RAM as u64)]);
        let apic = Arc::new(Apic::default());
        assert!(unit.set_interrupt_sink(apic.clone()));
        let r = Rig {
            unit,
            ram,
            apic,
            next_table: TABLES,
            gcmd: 0,
            tail: 0,
        };
        r.w32(reg::FEDATA, FE_DATA);
        r.w32(reg::FEADDR, FE_ADDR);
        r.w32(reg::FECTL, 0);
        r.w32(reg::IEDATA, IE.1);
        r.w32(reg::IEADDR, IE.0);
        r
    }

    pub fn r32(&self, off: u64) -> u32 {
        let mut b = [0; 4];
        self.unit.read(off, &mut b);
        u32::from_le_bytes(b)
    }
    pub fn r64(&self, off: u64) -> u64 {
        let mut b = [0; 8];
        self.unit.read(off, &mut b);
        u64::from_le_bytes(b)
    }
    pub fn w32(&self, off: u64, v: u32) {
        self.unit.write(off, &v.to_le_bytes());
    }
    pub fn w64(&self, off: u64, v: u64) {
        self.unit.write(off, &v.to_le_bytes());
    }
    pub fn poke(&self, addr: u64, v: u64) {
        assert!(self.ram.write(addr, &v.to_le_bytes()));
    }
    pub fn peek(&self, addr: u64) -> u64 {
        let mut b = [0; 8];
        assert!(self.ram.read(addr, &mut b));
        u64::from_le_bytes(b)
    }
    /// A zeroed 4 KiB table.
    pub fn table(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += 4096;
        t
    }
    pub fn interrupts(&self) -> Vec<(u64, u32)> {
        std::mem::take(&mut *self.apic.0.lock().unwrap())
    }

    /// GCMD with `bit` set (one-shot) or added to the enables, as Linux's
    /// `iommu->gcmd | bit`; the status must show it when the write returns.
    pub fn command(&mut self, bit: u32) {
        if bit & gcmd::ENABLES != 0 {
            self.gcmd |= bit;
            self.w32(reg::GCMD, self.gcmd);
        } else {
            self.w32(reg::GCMD, self.gcmd | bit);
        }
        assert_ne!(self.r32(reg::GSTS) & bit, 0, "GSTS shows {bit:#x} at once");
    }

    /// Linux's order: root table, SRTP, global context and IOTLB flush by
    /// register, queued invalidation on, translation on.
    pub fn enable(&mut self) {
        self.w64(reg::RTADDR, ROOT);
        self.command(gcmd::SRTP);
        self.w64(reg::CCMD, 1 << 63 | 1 << 61);
        let c = self.r64(reg::CCMD);
        assert_eq!((c >> 63, (c >> 59) & 3), (0, 1), "ICC clear, CAIG global");
        self.w64(reg::IOTLB, 1 << 63 | 1 << 60);
        let t = self.r64(reg::IOTLB);
        assert_eq!((t >> 63, (t >> 57) & 3), (0, 1), "IVT clear, IAIG global");
        self.w64(reg::IQT, 0);
        self.w64(reg::IQA, QUEUE);
        self.command(gcmd::QIE);
        self.command(gcmd::TE);
    }

    /// A context entry for `rid` in `domain`: translate through a fresh
    /// 4-level table (returned), or pass-through.
    pub fn context(&mut self, rid: u16, domain: u16, pass_through: bool) -> u64 {
        let bus = u64::from(rid >> 8);
        let mut ct = self.peek(ROOT + bus * 16) & !0xfff;
        if ct == 0 {
            ct = self.table();
            self.poke(ROOT + bus * 16, ct | 1);
        }
        let pgd = self.table();
        let tt = if pass_through { 2 << 2 } else { 0 };
        let e = ct + u64::from(rid & 0xff) * 16;
        self.poke(e, pgd | tt | 1);
        self.poke(e + 8, u64::from(domain) << 8 | 2);
        pgd
    }

    /// Maps the page `iova` to `phys` in the table `pgd` with R/W bits
    /// `perm` (bit 0 read, bit 1 write), as Linux's pfn_to_dma_pte does:
    /// intermediate entries are R+W.
    pub fn map(&mut self, pgd: u64, iova: u64, phys: u64, perm: u64) {
        let mut t = pgd;
        for level in (2..=4u32).rev() {
            let e = t + ((iova >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
            let mut next = self.peek(e) & !0xfff;
            if next == 0 {
                next = self.table();
                self.poke(e, next | 3);
            }
            t = next;
        }
        self.poke(t + ((iova >> 12) & 0x1ff) * 8, phys | perm);
    }

    /// Queues descriptors and moves the tail past them.
    pub fn submit(&mut self, descs: &[(u64, u64)]) {
        for &(lo, hi) in descs {
            self.poke(QUEUE + self.tail * 16, lo);
            self.poke(QUEUE + self.tail * 16 + 8, hi);
            self.tail = (self.tail + 1) % 256;
        }
        self.w64(reg::IQT, self.tail << 4);
    }
}
