//! [`Vtd`]: one DMA remapping unit (DRHD): its register page and the
//! translation the root complex asks of it.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use pcie_core::{GuestRam, InterruptSink, Iommu};

use crate::caches::Caches;
use crate::event::{Event, Msi};
use crate::faults::{FaultRecord, Faults};
use crate::inject::Injection;
use crate::qi::{self, Descriptor};
use crate::regs::{self, ccmd, fsts, gcmd, iotlb, iqa, reg, FAULT_RECORDS, ICS_IWC};
use crate::walk::{self, FaultReason};

/// What the unit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VtdStats {
    /// Translation requests while translation was enabled.
    pub lookups: u64,
    /// Of those, answered from the IOTLB.
    pub iotlb_hits: u64,
    /// Faults (recorded or not).
    pub faults: u64,
    /// Invalidation descriptors executed.
    pub descriptors: u64,
    /// IOTLB hits that disagreed with the tables, counted while an
    /// injection that leaves the IOTLB stale is armed (each such hit is
    /// also walked): the use-after-unmap Linux cannot see.
    pub stale_hits: u64,
}

#[derive(Debug, Default)]
struct State {
    /// GSTS's enable bits (TES, QIES) and RTPS.
    gsts: u32,
    rtaddr: u64,
    /// The root table in use (latched by SRTP).
    root: u64,
    ccmd: u64,
    iva: u64,
    iotlb: u64,
    /// The fault event.
    fault_event: Event,
    pmen: u32,
    iqh: u64,
    iqt: u64,
    iqa: u64,
    ics: u32,
    /// The invalidation event.
    inv_event: Event,
    faults: Faults,
    caches: Caches,
    stats: VtdStats,
    injected: Vec<Injection>,
    /// Guest RAM (start, length): where "peer" mappings are not.
    ram_ranges: Vec<(u64, u64)>,
}

/// An Intel VT-d remapping unit in legacy mode (see the crate docs).
pub struct Vtd {
    ram: Arc<dyn GuestRam>,
    irq: OnceLock<Arc<dyn InterruptSink>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Vtd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vtd").finish_non_exhaustive()
    }
}

impl Vtd {
    /// A unit in its reset state (translation and queued invalidation
    /// off) that reads its tables from `ram`, guest RAM being
    /// `ram_ranges` (start, length).
    pub fn new(ram: Arc<dyn GuestRam>, ram_ranges: Vec<(u64, u64)>) -> Self {
        Vtd {
            ram,
            irq: OnceLock::new(),
            state: Mutex::new(State {
                ram_ranges,
                ..State::default()
            }),
        }
    }

    /// Arms an injected fault (see [`Injection`]).
    pub fn inject(&self, i: Injection) {
        self.lock().injected.push(i);
    }

    /// Disarms every injected fault.
    pub fn clear_injections(&self) {
        self.lock().injected.clear();
    }

    /// The armed injections.
    pub fn injections(&self) -> Vec<Injection> {
        self.lock().injected.clone()
    }

    /// Where the fault and invalidation events go; set once.
    pub fn set_interrupt_sink(&self, sink: Arc<dyn InterruptSink>) -> bool {
        self.irq.set(sink).is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, msgs: Vec<Msi>) {
        if let Some(sink) = self.irq.get() {
            for (addr, data) in msgs {
                sink.deliver(addr, data);
            }
        }
    }

    /// What the unit counted.
    pub fn stats(&self) -> VtdStats {
        self.lock().stats
    }

    /// Entries cached: (context entries, IOTLB pages).
    pub fn cached(&self) -> (usize, usize) {
        self.lock().caches.len()
    }

    /// A CPU read of the register page. 4- and 8-byte accesses, naturally
    /// aligned, read registers; anything else reads zero.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if !matches!(data.len(), 4 | 8) || !offset.is_multiple_of(data.len() as u64) {
            return;
        }
        let st = self.lock();
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&st.read32(offset + 4 * i as u64).to_le_bytes());
        }
    }

    /// A CPU write of the register page: 4- and 8-byte aligned accesses
    /// (an 8-byte one as its low dword, then its high dword); others are
    /// dropped. Every status change happens before this returns.
    pub fn write(&self, offset: u64, data: &[u8]) {
        if !matches!(data.len(), 4 | 8) || !offset.is_multiple_of(data.len() as u64) {
            return;
        }
        let mut msgs = Vec::new();
        {
            let mut st = self.lock();
            for (i, chunk) in data.chunks(4).enumerate() {
                let v = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
                st.write32(&*self.ram, offset + 4 * i as u64, v, &mut msgs);
            }
        }
        self.send(msgs);
    }
}

fn set_lo(r: &mut u64, v: u32) {
    *r = (*r & !0xffff_ffff) | u64::from(v);
}

fn set_hi(r: &mut u64, v: u32) {
    *r = (*r & 0xffff_ffff) | u64::from(v) << 32;
}

impl State {
    fn injected(&self, f: impl Fn(&Injection) -> bool) -> bool {
        self.injected.iter().any(f)
    }

    fn invalidate_contexts(&mut self, s: qi::Scope) {
        if !self.injected(|i| *i == Injection::IgnoreInvalidations) {
            self.caches.invalidate_contexts(s);
        }
    }

    fn invalidate_pages(&mut self, s: qi::Scope) {
        if !self.injected(|i| *i == Injection::IgnoreInvalidations) {
            self.caches.invalidate_pages(s);
        }
    }

    /// Takes one of an armed [`Injection::FailDescriptors`]' descriptors.
    fn fail_descriptor(&mut self) -> bool {
        for i in &mut self.injected {
            if let Injection::FailDescriptors { count } = i {
                if *count > 0 {
                    *count -= 1;
                    return true;
                }
            }
        }
        false
    }

    fn read32(&self, off: u64) -> u32 {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        if (reg::FRCD..reg::FRCD + 16 * FAULT_RECORDS as u64).contains(&off) {
            let rel = off - reg::FRCD;
            return self
                .faults
                .read((rel / 16) as usize, (rel % 16 / 4) as usize);
        }
        match off {
            reg::VER => regs::VERSION,
            o if o == reg::CAP => lo(regs::cap_value()),
            o if o == reg::CAP + 4 => hi(regs::cap_value()),
            o if o == reg::ECAP => lo(regs::ecap_value()),
            o if o == reg::ECAP + 4 => hi(regs::ecap_value()),
            reg::GSTS => self.gsts,
            reg::RTADDR => lo(self.rtaddr),
            o if o == reg::RTADDR + 4 => hi(self.rtaddr),
            reg::CCMD => lo(self.ccmd),
            o if o == reg::CCMD + 4 => hi(self.ccmd),
            reg::FSTS => self.faults.fsts(),
            reg::FECTL => self.fault_event.ctl,
            reg::FEDATA => self.fault_event.data,
            reg::FEADDR => self.fault_event.addr,
            reg::FEUADDR => self.fault_event.uaddr,
            reg::PMEN => self.pmen,
            reg::IQH => lo(self.iqh),
            o if o == reg::IQH + 4 => hi(self.iqh),
            reg::IQT => lo(self.iqt),
            o if o == reg::IQT + 4 => hi(self.iqt),
            reg::IQA => lo(self.iqa),
            o if o == reg::IQA + 4 => hi(self.iqa),
            reg::ICS => self.ics,
            reg::IECTL => self.inv_event.ctl,
            reg::IEDATA => self.inv_event.data,
            reg::IEADDR => self.inv_event.addr,
            reg::IEUADDR => self.inv_event.uaddr,
            reg::IVA => lo(self.iva),
            o if o == reg::IVA + 4 => hi(self.iva),
            reg::IOTLB => lo(self.iotlb),
            o if o == reg::IOTLB + 4 => hi(self.iotlb),
            _ => 0,
        }
    }

    fn write32(&mut self, ram: &dyn GuestRam, off: u64, v: u32, msgs: &mut Vec<Msi>) {
        if (reg::FRCD..reg::FRCD + 16 * FAULT_RECORDS as u64).contains(&off) {
            let rel = off - reg::FRCD;
            if rel % 16 == 12 {
                self.faults.clear((rel / 16) as usize, v);
                self.fault_serviced();
            }
            return;
        }
        match off {
            reg::GCMD => self.global_command(ram, v, msgs),
            // Legacy translation table mode (TTM 00b) only: bits 11:0 read 0.
            reg::RTADDR => set_lo(&mut self.rtaddr, v & !0xfff),
            o if o == reg::RTADDR + 4 => set_hi(&mut self.rtaddr, v & 0xffff),
            reg::CCMD => set_lo(&mut self.ccmd, v),
            o if o == reg::CCMD + 4 => {
                set_hi(&mut self.ccmd, v);
                self.context_command();
            }
            reg::FSTS => {
                let iqe = self.faults.status & fsts::IQE != 0;
                self.faults.status &= !(v & fsts::W1C);
                self.fault_serviced();
                // The queue stalled on IQE resumes from IQH.
                if iqe && v & fsts::IQE != 0 {
                    self.run_queue(ram, msgs);
                }
            }
            reg::FECTL => {
                let lost = self.injected(|i| *i == Injection::MaskFaultEvent);
                msgs.extend(self.fault_event.write_ctl(v, lost));
            }
            reg::FEDATA => self.fault_event.data = v,
            reg::FEADDR => self.fault_event.addr = v & !3,
            reg::FEUADDR => self.fault_event.uaddr = v,
            // No protected memory regions: EPM has no effect, PRS reads 0.
            reg::PMEN => self.pmen = v & 1 << 31,
            reg::IQT => {
                self.iqt = u64::from(v & 0x7fff0);
                self.run_queue(ram, msgs);
            }
            reg::IQA => set_lo(&mut self.iqa, v & !(0x7f8)),
            o if o == reg::IQA + 4 => set_hi(&mut self.iqa, v & 0xffff),
            reg::ICS => {
                self.ics &= !(v & ICS_IWC);
                if self.ics == 0 {
                    self.inv_event.serviced();
                }
            }
            reg::IECTL => msgs.extend(self.inv_event.write_ctl(v, false)),
            reg::IEDATA => self.inv_event.data = v,
            reg::IEADDR => self.inv_event.addr = v & !3,
            reg::IEUADDR => self.inv_event.uaddr = v,
            reg::IVA => set_lo(&mut self.iva, v & !0xf80),
            o if o == reg::IVA + 4 => set_hi(&mut self.iva, v & 0xffff),
            reg::IOTLB => set_lo(&mut self.iotlb, v),
            o if o == reg::IOTLB + 4 => {
                set_hi(&mut self.iotlb, v);
                self.iotlb_command();
            }
            _ => {}
        }
    }

    /// GCMD: one-shot SRTP latches the root table; TE and QIE follow the
    /// written value. Status changes at once.
    fn global_command(&mut self, ram: &dyn GuestRam, v: u32, msgs: &mut Vec<Msi>) {
        if v & gcmd::SRTP != 0 {
            self.root = self.rtaddr & !0xfff;
            self.gsts |= gcmd::SRTP;
        }
        let qie_was = self.gsts & gcmd::QIE != 0;
        self.gsts = (self.gsts & !gcmd::ENABLES) | (v & gcmd::ENABLES);
        let qie = self.gsts & gcmd::QIE != 0;
        if qie != qie_was {
            // The queue head starts (and ends) at 0.
            self.iqh = 0;
            if qie {
                self.run_queue(ram, msgs);
            }
        }
    }

    /// CCMD with ICC: register-based context-cache invalidation.
    fn context_command(&mut self) {
        if self.ccmd & ccmd::ICC == 0 {
            return;
        }
        let did = self.ccmd as u16;
        let scope = match (self.ccmd >> ccmd::CIRG_SHIFT) & 3 {
            1 => Some(qi::Scope::Global),
            2 => Some(qi::Scope::Domain(did)),
            3 => Some(qi::Scope::Device {
                domain: did,
                sid: (self.ccmd >> ccmd::SID_SHIFT) as u16,
                mask: ((self.ccmd >> ccmd::FM_SHIFT) & 3) as u8,
            }),
            _ => None,
        };
        let caig = match scope {
            Some(s) => {
                self.invalidate_contexts(s);
                (self.ccmd >> ccmd::CIRG_SHIFT) & 3
            }
            None => 0,
        };
        self.ccmd = (self.ccmd & !(ccmd::ICC | 3 << ccmd::CAIG_SHIFT)) | caig << ccmd::CAIG_SHIFT;
    }

    /// IOTLB with IVT: register-based IOTLB invalidation (IVA for pages).
    fn iotlb_command(&mut self) {
        if self.iotlb & iotlb::IVT == 0 {
            return;
        }
        let did = (self.iotlb >> iotlb::DID_SHIFT) as u16;
        let order = (self.iva & iotlb::IVA_AM_MASK) as u8;
        let scope = match (self.iotlb >> iotlb::IIRG_SHIFT) & 3 {
            1 => Some(qi::Scope::Global),
            2 => Some(qi::Scope::Domain(did)),
            3 if u64::from(order) <= regs::cap::MAMV => Some(qi::Scope::Pages {
                domain: did,
                addr: self.iva & !0xfff,
                order,
            }),
            _ => None,
        };
        let iaig = match scope {
            Some(s) => {
                self.invalidate_pages(s);
                (self.iotlb >> iotlb::IIRG_SHIFT) & 3
            }
            None => 0,
        };
        self.iotlb =
            (self.iotlb & !(iotlb::IVT | 3 << iotlb::IAIG_SHIFT)) | iaig << iotlb::IAIG_SHIFT;
    }

    /// Executes descriptors from IQH up to IQT. A bad descriptor (or
    /// queue) sets IQE and stops with IQH on it.
    fn run_queue(&mut self, ram: &dyn GuestRam, msgs: &mut Vec<Msi>) {
        if self.gsts & gcmd::QIE == 0 || self.faults.status & fsts::IQE != 0 {
            return;
        }
        let entries = 256u64 << (self.iqa & iqa::QS_MASK);
        let base = self.iqa & !0xfff & ((1 << 48) - 1);
        let (tail, mut head) = (self.iqt >> 4, self.iqh >> 4);
        let wide = self.iqa & iqa::DW != 0;
        if wide || tail >= entries {
            self.queue_error(msgs);
            return;
        }
        while head != tail {
            let mut d = [0u8; 16];
            if head >= entries || !ram.read(base + head * 16, &mut d) {
                self.queue_error(msgs);
                return;
            }
            let lo = u64::from_le_bytes(d[..8].try_into().expect("8"));
            let hi = u64::from_le_bytes(d[8..].try_into().expect("8"));
            let parsed = qi::parse(lo, hi, regs::cap::MAMV as u8);
            let Some(desc) = parsed.ok().filter(|_| !self.fail_descriptor()) else {
                self.queue_error(msgs);
                return;
            };
            self.stats.descriptors += 1;
            match desc {
                Descriptor::Context(s) => self.invalidate_contexts(s),
                Descriptor::Iotlb(s) => self.invalidate_pages(s),
                Descriptor::Wait {
                    status,
                    interrupt,
                    data,
                    addr,
                } => {
                    if status && !ram.write(addr, &data.to_le_bytes()) {
                        self.queue_error(msgs);
                        return;
                    }
                    if interrupt && self.ics & ICS_IWC == 0 {
                        self.ics |= ICS_IWC;
                        msgs.extend(self.inv_event.raise(false));
                    }
                }
            }
            head = (head + 1) % entries;
            self.iqh = head << 4;
        }
    }

    fn queue_error(&mut self, msgs: &mut Vec<Msi>) {
        let new = self.faults.status & fsts::IQE == 0;
        self.faults.status |= fsts::IQE;
        if new {
            self.fault_event(msgs);
        }
    }

    /// A new fault condition: the fault event's MSI, or IP when masked.
    fn fault_event(&mut self, msgs: &mut Vec<Msi>) {
        let lost = self.injected(|i| *i == Injection::MaskFaultEvent);
        msgs.extend(self.fault_event.raise(lost));
    }

    /// Software serviced a condition: IP drops once none is left.
    fn fault_serviced(&mut self) {
        if !self.faults.unserviced() {
            self.fault_event.serviced();
        }
    }

    fn fault(&mut self, f: FaultRecord, record: bool, msgs: &mut Vec<Msi>) {
        self.stats.faults += 1;
        if !record {
            return;
        }
        let new = if self.injected(|i| *i == Injection::OverflowRecords) {
            let new = self.faults.status & fsts::PFO == 0;
            self.faults.status |= fsts::PFO;
            new
        } else {
            self.faults.record(f)
        };
        if new {
            self.fault_event(msgs);
        }
    }

    fn translate(
        &mut self,
        ram: &dyn GuestRam,
        rid: u16,
        iova: u64,
        write: bool,
        msgs: &mut Vec<Msi>,
    ) -> Option<u64> {
        if self.gsts & gcmd::TE == 0 {
            return Some(iova);
        }
        self.stats.lookups += 1;
        let fault = |reason| FaultRecord {
            page: iova & !0xfff,
            source: rid,
            reason,
            read: !write,
        };
        if self.injected(|i| *i == Injection::ContextNotPresent { rid }) {
            self.fault(fault(FaultReason::ContextNotPresent), true, msgs);
            return None;
        }
        let mut ctx = match self.caches.context(rid) {
            Some(c) => c,
            None => match walk::context(ram, self.root, rid) {
                Ok(c) => {
                    self.caches.put_context(rid, c);
                    c
                }
                Err(reason) => {
                    self.fault(fault(reason), true, msgs);
                    return None;
                }
            },
        };
        for i in &self.injected {
            match *i {
                Injection::ForceType {
                    rid: r,
                    pass_through,
                } if r == rid => {
                    ctx.pass_through = pass_through;
                }
                Injection::WrongDomain { rid: r, domain } if r == rid => ctx.domain = domain,
                _ => {}
            }
        }
        if ctx.pass_through {
            return Some(iova);
        }
        let allowed = |p: &walk::Page| if write { p.write } else { p.read };
        let page = match self.caches.page(ctx.domain, iova).filter(allowed) {
            Some(p) => {
                self.stats.iotlb_hits += 1;
                if self.stale_possible(rid) && walk::walk(ram, ctx.table, iova, write) != Ok(p) {
                    self.stats.stale_hits += 1;
                }
                p
            }
            None => match walk::walk(ram, ctx.table, iova, write) {
                Ok(p) => {
                    self.caches.put_page(ctx.domain, iova, p);
                    p
                }
                Err(reason) => {
                    self.fault(fault(reason), !ctx.fpd, msgs);
                    return None;
                }
            },
        };
        if self.covered(rid, page.addr, true) {
            let reason = if write {
                FaultReason::NoWrite
            } else {
                FaultReason::NoRead
            };
            self.fault(fault(reason), !ctx.fpd, msgs);
            return None;
        }
        // Poison aliases each odd page onto the even one before it, so a
        // round trip through the mapping does not undo it.
        let addr = if self.covered(rid, page.addr, false) {
            page.addr & !0x1000
        } else {
            page.addr
        };
        Some(addr | (iova & 0xfff))
    }

    /// An armed injection can leave `rid`'s IOTLB entries stale.
    fn stale_possible(&self, rid: u16) -> bool {
        self.injected(|i| match *i {
            Injection::IgnoreInvalidations => true,
            Injection::WrongDomain { rid: r, .. } => r == rid,
            _ => false,
        })
    }

    /// An armed [`Injection::DropMappings`] (`drop`) or
    /// [`Injection::PoisonMappings`] covers `rid`'s page at `addr`.
    fn covered(&self, rid: u16, addr: u64, drop: bool) -> bool {
        let in_ram = self
            .ram_ranges
            .iter()
            .any(|&(s, l)| addr >= s && addr - s < l);
        self.injected(|i| {
            let (r, peer_only) = match *i {
                Injection::DropMappings { rid, peer_only } if drop => (rid, peer_only),
                Injection::PoisonMappings { rid, peer_only } if !drop => (rid, peer_only),
                _ => return false,
            };
            r.is_none_or(|r| r == rid) && !(peer_only && in_ram)
        })
    }
}

impl Iommu for Vtd {
    /// Translates through the tables, or faults: the fault is recorded
    /// (unless the context's FPD says not) and the fault event raised.
    fn translate(&self, requester_id: u16, addr: u64, _len: u64, write: bool) -> Option<u64> {
        let mut msgs = Vec::new();
        let out = self
            .lock()
            .translate(&*self.ram, requester_id, addr, write, &mut msgs);
        self.send(msgs);
        out
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let s = self.stats();
        vec![
            ("lookups", s.lookups),
            ("iotlb_hits", s.iotlb_hits),
            ("faults", s.faults),
            ("descriptors", s.descriptors),
            ("stale_hits", s.stale_hits),
        ]
    }
}
