//! [`NvmeController`]: the function the fabric holds. vCPUs reach it for
//! config space, the register file, doorbells and the MSI-X table; it
//! never performs a DMA or touches a namespace. Register writes that need
//! work (CC, NSSR, doorbells, unmasked vectors) notify the engine.

use std::sync::Arc;

use pcie_core::{BarMemory, BarRegion, ConfigEffects, Doorbell, Notifier, PciFunction, ResetKind};

use crate::config::NvmeConfig;
use crate::regs::{
    bar4, cap_value, cc, cmb, csts, doorbell_index, doorbells, reg, DSTRD, FIRST_IO_DOORBELL,
    NSSR_RESET, VERSION,
};
use crate::state::{Regs, Shared, REG_END};
use crate::CMB_BAR;

/// The NVMe controller's PCI function. See the crate documentation.
pub struct NvmeController {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmb: Option<Arc<BarMemory>>,
    notify: Arc<dyn Notifier>,
    cap: u64,
    cmbloc: u32,
    cmbsz: u32,
}

impl std::fmt::Debug for NvmeController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmeController")
            .field("cap", &self.cap)
            .field("cmb", &self.cmb)
            .finish_non_exhaustive()
    }
}

impl NvmeController {
    pub(crate) fn new(
        cfg: &NvmeConfig,
        shared: Arc<Shared>,
        cmb: Option<Arc<BarMemory>>,
        notify: Arc<dyn Notifier>,
    ) -> Self {
        NvmeController {
            shared,
            cap: cap_value(cmb.is_some(), true),
            cmb,
            notify,
            cmbloc: cfg.cmbloc(),
            cmbsz: cfg.cmbsz(),
        }
    }

    /// The dword of the register file at `off` (4-byte aligned).
    fn reg_read(&self, r: &Regs, off: u64) -> u32 {
        // CMBLOC and CMBSZ read 0 until the host enables them (CMBMSC.CRE).
        let cre = r.cmbmsc & cmb::CRE != 0;
        let q = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        match off {
            o if o == reg::CAP || o == reg::CAP + 4 => q(self.cap, o != reg::CAP),
            reg::VS => VERSION,
            reg::INTMS | reg::INTMC => r.intms,
            reg::CC => r.cc,
            reg::CSTS => r.csts,
            reg::AQA => r.aqa,
            o if o == reg::ASQ || o == reg::ASQ + 4 => q(r.asq, o != reg::ASQ),
            o if o == reg::ACQ || o == reg::ACQ + 4 => q(r.acq, o != reg::ACQ),
            reg::CMBLOC if cre => self.cmbloc,
            reg::CMBSZ if cre => self.cmbsz,
            o if self.cmb.is_some() && (o == reg::CMBMSC || o == reg::CMBMSC + 4) => {
                q(r.cmbmsc, o != reg::CMBMSC)
            }
            reg::CMBSTS => r.cmbsts,
            _ => 0,
        }
    }

    /// Writes `v` to the dword at `off`. Returns true when the engine must
    /// look (CC, NSSR or the interrupt mask changed).
    fn reg_write(&self, r: &mut Regs, off: u64, v: u32) -> (bool, bool) {
        let set_lo = |x: &mut u64, v: u32| *x = (*x & !0xffff_ffff) | u64::from(v);
        let set_hi = |x: &mut u64, v: u32| *x = (*x & 0xffff_ffff) | (u64::from(v) << 32);
        match off {
            // The engine re-evaluates the INTx level on a mask change.
            reg::INTMS => {
                r.intms |= v;
                return (true, false);
            }
            reg::INTMC => {
                r.intms &= !v;
                return (true, false);
            }
            reg::CC => {
                let old = r.cc;
                r.cc = v & cc::WRITABLE;
                return (old != r.cc, false);
            }
            reg::CSTS => r.csts &= !(v & csts::NSSRO),
            reg::NSSR if v == NSSR_RESET && self.cap & crate::regs::cap::NSSRS != 0 => {
                return (true, true);
            }
            reg::AQA => r.aqa = v & 0x0fff_0fff,
            reg::ASQ => set_lo(&mut r.asq, v & !0xfff),
            o if o == reg::ASQ + 4 => set_hi(&mut r.asq, v),
            reg::ACQ => set_lo(&mut r.acq, v & !0xfff),
            o if o == reg::ACQ + 4 => set_hi(&mut r.acq, v),
            reg::CMBMSC if self.cmb.is_some() => {
                set_lo(
                    &mut r.cmbmsc,
                    v & (cmb::CRE as u32 | cmb::CMSE as u32 | 0xffff_f000),
                );
                // Controller Memory Space needs the registers enabled.
                if r.cmbmsc & cmb::CRE == 0 {
                    r.cmbmsc &= !cmb::CMSE;
                }
            }
            o if self.cmb.is_some() && o == reg::CMBMSC + 4 => set_hi(&mut r.cmbmsc, v),
            _ => {}
        }
        (false, false)
    }

    fn bar0_read(&self, offset: u64, data: &mut [u8]) {
        if offset >= REG_END {
            // Doorbells and reserved space read 0.
            data.fill(0);
            return;
        }
        let core = self.shared.lock();
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset.saturating_add(i as u64);
            let dw = self.reg_read(&core.regs, at & !3);
            *b = (dw >> (8 * (at & 3))) as u8;
        }
    }

    fn bar0_write(&self, offset: u64, data: &[u8]) {
        if let Some(index) = doorbell_index(offset) {
            let mut v = [0u8; 4];
            let n = data.len().min(4);
            v[..n].copy_from_slice(&data[..n]);
            self.shared.ring(index, u32::from_le_bytes(v));
            self.notify.notify();
            return;
        }
        if offset >= reg::DOORBELLS {
            // A doorbell of a queue this controller cannot have.
            self.shared
                .stray_doorbell
                .store(true, std::sync::atomic::Ordering::Release);
            self.notify.notify();
            return;
        }
        if offset >= REG_END {
            return;
        }
        let (mut look, mut nssr) = (false, false);
        {
            let mut core = self.shared.lock();
            let end = offset.saturating_add(data.len() as u64);
            let mut dw = offset & !3;
            while dw < end.min(REG_END) {
                let mut cur = self.reg_read(&core.regs, dw).to_le_bytes();
                // Write-only and RW1C registers merge from 0, not from what
                // they read.
                if matches!(dw, reg::INTMS | reg::INTMC | reg::CSTS | reg::NSSR) {
                    cur = [0; 4];
                }
                for (k, byte) in cur.iter_mut().enumerate() {
                    let at = dw + k as u64;
                    if (offset..end).contains(&at) {
                        *byte = data[(at - offset) as usize];
                    }
                }
                let (l, n) = self.reg_write(&mut core.regs, dw, u32::from_le_bytes(cur));
                look |= l;
                nssr |= n;
                dw += 4;
            }
            if nssr {
                core.subsystem_reset = true;
            }
        }
        if look {
            self.notify.notify();
        }
    }

    fn bar4_read(&self, offset: u64, data: &mut [u8]) {
        let core = self.shared.lock();
        if offset < core.msix.table_len() {
            core.msix.table_read(offset - bar4::MSIX_TABLE, data)
        } else if (bar4::MSIX_PBA..bar4::MSIX_PBA + core.msix.pba_len()).contains(&offset) {
            core.msix.pba_read(offset - bar4::MSIX_PBA, data)
        } else {
            data.fill(0)
        }
    }

    fn bar4_write(&self, offset: u64, data: &[u8]) {
        let mut core = self.shared.lock();
        let core = &mut *core;
        if offset < core.msix.table_len() {
            let due = core.msix.table_write(core.config.space(), offset, data);
            if !due.is_empty() {
                core.due.extend(due);
                self.notify.notify();
            }
        }
    }
}

impl PciFunction for NvmeController {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.shared.lock().config.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let (effects, due) = {
            let mut core = self.shared.lock();
            let effects = core.config.write(offset, data);
            let core = &mut *core;
            let due = core.msix.take_due(core.config.space());
            let any = !due.is_empty();
            core.due.extend(due);
            (effects, any)
        };
        if due {
            self.notify.notify();
        }
        effects
    }

    /// BAR 0: registers and doorbells; BAR 2: the CMB; BAR 4: MSI-X.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            0 => self.bar0_read(offset, data),
            CMB_BAR => match &self.cmb {
                Some(m) => m.read(offset, data),
                None => data.fill(0xff),
            },
            4 => self.bar4_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            0 => self.bar0_write(offset, data),
            CMB_BAR => {
                if let Some(m) = &self.cmb {
                    m.write(offset, data)
                }
            }
            4 => self.bar4_write(offset, data),
            _ => {}
        }
    }

    /// A conventional or function-level reset: config space and MSI-X
    /// back to power-on, the controller reset (queues dropped by the
    /// engine). The CMB keeps its contents, like device memory.
    fn reset(&mut self, _kind: ResetKind) {
        {
            let mut core = self.shared.lock();
            core.config = core.power_on.clone();
            core.msix.reset();
            core.regs = Regs::default();
            core.due.clear();
            core.epoch += 1;
        }
        self.shared.clear_doorbells();
        self.notify.notify();
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.shared.lock().config.bar_regions()
    }

    fn bar_backing(&self, bar: u8) -> Option<Arc<BarMemory>> {
        (bar == CMB_BAR).then(|| self.cmb.clone()).flatten()
    }

    /// The I/O queues' doorbells, trapped until the host sets up shadow
    /// doorbells (then the engine puts them on ioeventfds).
    fn doorbells(&self) -> Vec<Doorbell> {
        (FIRST_IO_DOORBELL..doorbells())
            .map(|i| Doorbell {
                bar: 0,
                offset: reg::DOORBELLS + (i as u64) * (4 << DSTRD),
                eventfd: false,
            })
            .collect()
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.shared.counters.snapshot()
    }
}
