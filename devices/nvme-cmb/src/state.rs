//! What the function (on vCPUs) and the engine (on the device thread)
//! share: config space, MSI-X, the register file and the doorbells. The
//! lock is never held across a DMA, an interrupt or a backing-file access.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pcie_core::{MsiMessage, Msix, Type0Config};

use crate::regs::{doorbells, reg};

/// The register file's power-on state and current values (BAR 0 below the
/// doorbells). CAP, VS, CMBLOC and CMBSZ are fixed by the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Regs {
    pub(crate) intms: u32,
    pub(crate) cc: u32,
    pub(crate) csts: u32,
    pub(crate) aqa: u32,
    pub(crate) asq: u64,
    pub(crate) acq: u64,
    pub(crate) cmbmsc: u64,
    pub(crate) cmbsts: u32,
}

/// The state behind the lock.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: Type0Config,
    pub(crate) power_on: Type0Config,
    pub(crate) msix: Msix,
    pub(crate) regs: Regs,
    /// Interrupt messages due (unmasked while pending), for the engine.
    pub(crate) due: Vec<MsiMessage>,
    /// An NVM Subsystem Reset was requested: the engine resets everything.
    pub(crate) subsystem_reset: bool,
    /// Counts function-level resets (config-space resets): the engine
    /// drops all queues when it changes.
    pub(crate) epoch: u64,
}

impl Core {
    /// The CMB's controller base address when Controller Memory Space is
    /// enabled (CMBMSC.CMSE), else `None`.
    pub(crate) fn cmb_base(&self) -> Option<u64> {
        let m = self.regs.cmbmsc;
        (m & crate::regs::cmb::CMSE != 0).then_some(m & crate::regs::cmb::CBA_MASK)
    }
}

/// Counters the controller keeps (exported for tests and reports).
#[derive(Debug, Default)]
pub struct Counters {
    /// Admin submission queue entries fetched (wherever they were).
    pub admin_sqe_fetches: AtomicU64,
    /// I/O submission queue entries fetched from host memory (by DMA).
    pub sqe_fetch_dma: AtomicU64,
    /// I/O submission queue entries read from the controller's own CMB.
    pub sqe_fetch_cmb: AtomicU64,
    /// Data bytes moved to or from the controller's own CMB internally.
    pub cmb_data_bytes: AtomicU64,
    /// Data bytes moved through the fabric router.
    pub dma_data_bytes: AtomicU64,
    /// Of those bytes (both kinds), the ones a file job moved straight
    /// between the namespace file and the mapped target memory, with no
    /// bounce buffer (mapped DMA).
    pub mapped_data_bytes: AtomicU64,
    /// Commands completed.
    pub completions: AtomicU64,
    /// Interrupt messages sent.
    pub interrupts: AtomicU64,
}

impl Counters {
    /// Every counter by name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let v = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("admin_sqe_fetches", v(&self.admin_sqe_fetches)),
            ("sqe_fetch_dma", v(&self.sqe_fetch_dma)),
            ("sqe_fetch_cmb", v(&self.sqe_fetch_cmb)),
            ("cmb_data_bytes", v(&self.cmb_data_bytes)),
            ("dma_data_bytes", v(&self.dma_data_bytes)),
            ("mapped_data_bytes", v(&self.mapped_data_bytes)),
            ("completions", v(&self.completions)),
            ("interrupts", v(&self.interrupts)),
        ]
    }

    /// Adds `n` to `c`.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// [`Core`] behind its lock, and the doorbells beside it.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// The last value written to each doorbell (SQ tails at even indices,
    /// CQ heads at odd ones).
    pub(crate) doorbell: Box<[AtomicU32]>,
    /// Which doorbells were written since the engine last looked.
    rung: Box<[AtomicU64]>,
    /// A write hit the doorbell area past the supported queues.
    pub(crate) stray_doorbell: std::sync::atomic::AtomicBool,
    /// The controller's counters.
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new(config: Type0Config, msix: Msix) -> Self {
        let n = doorbells();
        Shared {
            stray_doorbell: std::sync::atomic::AtomicBool::new(false),
            core: Mutex::new(Core {
                power_on: config.clone(),
                config,
                msix,
                regs: Regs::default(),
                due: Vec::new(),
                subsystem_reset: false,
                epoch: 0,
            }),
            doorbell: (0..n).map(|_| AtomicU32::new(0)).collect(),
            rung: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            counters: Counters::default(),
        }
    }

    /// Locks the state. Never hold the guard across a DMA or file I/O.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A vCPU wrote doorbell `index`.
    pub(crate) fn ring(&self, index: usize, value: u32) {
        if let Some(d) = self.doorbell.get(index) {
            d.store(value, Ordering::Release);
            self.rung[index / 64].fetch_or(1 << (index % 64), Ordering::AcqRel);
        }
    }

    /// The doorbells written since the last call, with their values.
    pub(crate) fn take_rung(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for (w, bits) in self.rung.iter().enumerate() {
            let mut b = bits.swap(0, Ordering::AcqRel);
            while b != 0 {
                let i = w * 64 + b.trailing_zeros() as usize;
                b &= b - 1;
                out.push((i, self.doorbell[i].load(Ordering::Acquire)));
            }
        }
        out
    }

    /// Forgets every doorbell value (controller reset).
    pub(crate) fn clear_doorbells(&self) {
        self.rung.iter().for_each(|r| r.store(0, Ordering::Release));
        self.doorbell
            .iter()
            .for_each(|d| d.store(0, Ordering::Release));
    }
}

/// The offset of a register in [`Regs`] terms, for documentation of what
/// reads return; see [`crate::controller`].
pub(crate) const REG_END: u64 = reg::CMBSTS + 4;
