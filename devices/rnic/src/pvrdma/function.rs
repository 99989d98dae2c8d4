//! [`Pvrdma`]: function 1 of an RNIC slot (config space, MSI-X in BAR 0,
//! registers in BAR 1, UAR pages in BAR 2), built with its
//! [`PvrdmaEngine`].

use std::collections::BTreeSet;
use std::sync::Arc;

use pcie_core::{
    BarRegion, ConfigEffects, DmaHandle, LinkSpeed, Msix, MsixPlacement, Notifier, PciFunction,
    ResetKind, Type0Config,
};

use super::engine::PvrdmaEngine;
use super::regs::{
    ctl, err, reg, BAR0_SIZE, BAR1_SIZE, BAR2_SIZE, DEVICE_ID, MSIX_PBA, VECTORS, VERSION,
};
use super::state::{Bell, Core, Job, Shared, MAX_BELLS};
use crate::Error;

/// How a PVRDMA function is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvrdmaConfig {
    /// The MAC of the vmxnet3 function it pairs with (its node GUID
    /// derives from it).
    pub mac: [u8; 6],
    /// Link speed.
    pub link_speed: LinkSpeed,
    /// Link width in lanes.
    pub link_width: u8,
}

/// The config space: a network controller (class 02/80) with BAR 0
/// (MSI-X), BAR 1 (registers) and BAR 2 (UAR pages), Power Management,
/// MSI-X (3 vectors) and PCI Express.
fn build_config(cfg: &PvrdmaConfig) -> Result<(Type0Config, Msix), Error> {
    let mut config = crate::config::vmware_function(
        DEVICE_ID,
        0,
        (0x02, 0x80),
        true,
        &[BAR0_SIZE, BAR1_SIZE, BAR2_SIZE],
    )?;
    let at = |offset| MsixPlacement { bar: 0, offset };
    let msix = Msix::add(config.space_mut(), VECTORS, at(0), at(MSIX_PBA))?;
    crate::config::add_pcie(config.space_mut(), cfg.link_speed, cfg.link_width)?;
    Ok((config, msix))
}

/// The PVRDMA function: see the module documentation. Register writes
/// that need guest memory (DSRHIGH, REQUEST, CTL RESET) hand a job to the
/// engine and wait for it; the function itself never performs a DMA.
pub struct Pvrdma {
    shared: Arc<Shared>,
    notify: Arc<dyn Notifier>,
}

impl std::fmt::Debug for Pvrdma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pvrdma").finish_non_exhaustive()
    }
}

impl Pvrdma {
    /// A function in its power-on state and its engine, which reaches
    /// memory through `dma`, is woken by `notify`, and sends and receives
    /// RDMA traffic on `wire`.
    pub fn new(
        cfg: &PvrdmaConfig,
        dma: DmaHandle,
        notify: Arc<dyn Notifier>,
        wire: &Arc<crate::Wire>,
    ) -> Result<(Self, PvrdmaEngine), Error> {
        let (config, msix) = build_config(cfg)?;
        let core = Core {
            power_on: config.clone(),
            config,
            msix,
            due: Vec::new(),
            dsr_low: 0,
            dsr: None,
            err: err::NOT_READY,
            imr: 0,
            mac: cfg.mac,
            active: false,
            job: None,
            jobs: 0,
            jobs_done: 0,
            bells: BTreeSet::new(),
            bells_dropped: 0,
            epoch: 0,
        };
        let shared = Arc::new(Shared::new(core));
        let port = wire.rdma_attach(notify.clone());
        let engine = PvrdmaEngine::new(shared.clone(), dma, cfg.mac, port, notify.clone());
        Ok((Pvrdma { shared, notify }, engine))
    }

    fn reg_read(&self, offset: u64) -> u32 {
        let c = self.shared.lock();
        match offset {
            reg::VERSION => VERSION,
            reg::DSRLOW => c.dsr_low,
            reg::DSRHIGH => c.dsr.map_or(0, |d| (d >> 32) as u32),
            reg::ERR => c.err,
            reg::IMR => c.imr,
            reg::MACL => u32::from_le_bytes([c.mac[0], c.mac[1], c.mac[2], c.mac[3]]),
            reg::MACH => u32::from(c.mac[4]) | u32::from(c.mac[5]) << 8,
            // ICR: with MSI-X every cause has its vector.
            _ => 0,
        }
    }

    fn reg_write(&self, offset: u64, v: u32) {
        match offset {
            reg::DSRLOW => self.shared.lock().dsr_low = v,
            reg::DSRHIGH => {
                let addr = {
                    let c = self.shared.lock();
                    u64::from(v) << 32 | u64::from(c.dsr_low)
                };
                self.shared.run_job(Job::LoadDsr(addr), &*self.notify);
            }
            reg::CTL => match v {
                ctl::ACTIVATE | ctl::UNQUIESCE => {
                    let mut c = self.shared.lock();
                    let ready = c.dsr.is_some();
                    c.active |= ready && v == ctl::ACTIVATE;
                    c.err = if ready && c.active {
                        err::OK
                    } else {
                        err::NOT_READY
                    };
                }
                ctl::RESET => {
                    self.shared.run_job(Job::Reset, &*self.notify);
                    let mut c = self.shared.lock();
                    c.active = false;
                    c.dsr = None;
                }
                _ => self.shared.lock().err = err::BAD_COMMAND,
            },
            reg::REQUEST => {
                // No command before the shared region exists (CVE-2022-1050).
                if self.shared.lock().dsr.is_none() {
                    self.shared.lock().err = err::NOT_READY;
                } else {
                    self.shared.run_job(Job::Command, &*self.notify);
                }
            }
            reg::IMR => self.shared.lock().imr = v,
            reg::MACL => self.shared.lock().mac[..4].copy_from_slice(&v.to_le_bytes()),
            reg::MACH => self.shared.lock().mac[4..].copy_from_slice(&v.to_le_bytes()[..2]),
            _ => {}
        }
    }

    fn uar_write(&self, offset: u64, v: u32) {
        let bell = Bell {
            page: (offset >> 12) as u32,
            reg: offset & 0xfff,
            value: v,
        };
        let mut c = self.shared.lock();
        if c.bells.len() >= MAX_BELLS && !c.bells.contains(&bell) {
            c.bells_dropped += 1;
            return;
        }
        c.bells.insert(bell);
        drop(c);
        self.notify.notify();
    }
}

fn dword(offset: u64, len: usize, size: u64) -> bool {
    len == 4 && offset.is_multiple_of(4) && offset < size
}

impl PciFunction for Pvrdma {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.shared.lock().config.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let (effects, due) = {
            let mut c = self.shared.lock();
            let effects = c.config.write(offset, data);
            let c = &mut *c;
            let due = c.msix.take_due(c.config.space());
            let any = !due.is_empty();
            c.due.extend(due);
            (effects, any)
        };
        if due {
            self.notify.notify();
        }
        effects
    }

    /// BAR 0: MSI-X table and PBA; BAR 1: registers (one aligned dword);
    /// BAR 2 (UAR) reads 0.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            0 => {
                let c = self.shared.lock();
                let pba = u64::from(MSIX_PBA);
                if offset < c.msix.table_len() {
                    c.msix.table_read(offset, data)
                } else if (pba..pba + c.msix.pba_len()).contains(&offset) {
                    c.msix.pba_read(offset - pba, data)
                } else {
                    data.fill(0)
                }
            }
            1 if dword(offset, data.len(), BAR1_SIZE) => {
                data.copy_from_slice(&self.reg_read(offset).to_le_bytes())
            }
            _ => data.fill(0),
        }
    }

    /// BAR 0: the MSI-X table; BAR 1: registers; BAR 2: UAR doorbells.
    /// Writes that are not one aligned dword are dropped (BAR 0 aside).
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let v = <[u8; 4]>::try_from(data).map(u32::from_le_bytes);
        match (bar, v) {
            (0, _) => {
                let mut c = self.shared.lock();
                let c = &mut *c;
                if offset < c.msix.table_len() {
                    let due = c.msix.table_write(c.config.space(), offset, data);
                    if !due.is_empty() {
                        c.due.extend(due);
                        self.notify.notify();
                    }
                }
            }
            (1, Ok(v)) if dword(offset, 4, BAR1_SIZE) => self.reg_write(offset, v),
            (2, Ok(v)) if dword(offset, 4, BAR2_SIZE) => self.uar_write(offset, v),
            _ => {}
        }
    }

    /// Back to power-on; the engine drops every object (as CTL RESET).
    fn reset(&mut self, _kind: ResetKind) {
        {
            let mut c = self.shared.lock();
            c.config = c.power_on.clone();
            c.msix.reset();
            c.due.clear();
            c.dsr = None;
            c.dsr_low = 0;
            c.active = false;
            c.imr = 0;
            c.bells.clear();
            c.epoch += 1;
            c.err = err::NOT_READY;
        }
        self.notify.notify();
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.shared.lock().config.bar_regions()
    }
}
