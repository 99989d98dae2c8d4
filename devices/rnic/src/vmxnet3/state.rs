//! What the vmxnet3 function (on vCPUs) and its engine (on the device
//! thread) share, behind one lock that is never held across a DMA.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pcie_core::{msi_message, MsiMessage, Type0Config};

use super::regs::{MAX_QUEUES, VECTORS};

/// How long a quiesce or reset waits for the engine to finish the batch
/// it is in (a batch is bounded by the ring sizes; a peer that never
/// answers is the only way to reach this).
pub(crate) const QUIESCE_WAIT: Duration = Duration::from_millis(500);

/// Registers and requests.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: Type0Config,
    pub(crate) power_on: Type0Config,
    /// Offset of the MSI capability.
    pub(crate) msi: u16,
    /// The station address (MACL/MACH).
    pub(crate) mac: [u8; 6],
    /// The power-on station address.
    pub(crate) perm_mac: [u8; 6],
    /// DSAL and DSAH.
    pub(crate) dsa: u64,
    /// What a CMD read returns.
    pub(crate) cmd_result: u32,
    /// Interrupt vectors masked (IMR) and pending (raised while masked).
    pub(crate) masked: [bool; VECTORS],
    pub(crate) pending: [bool; VECTORS],
    /// The driver asked for automatic masking (`intrConf.autoMask`).
    pub(crate) auto_mask: bool,
    /// Last values written to TXPROD, RXPROD and RXPROD2 (read back).
    pub(crate) prod: [[u32; MAX_QUEUES]; 3],
    /// ACTIVATE_DEV was written with this shared-area address: for the
    /// engine.
    pub(crate) activate: Option<u64>,
    /// Tx doorbells rung since the engine last looked.
    pub(crate) kicked: bool,
    /// An unmasked vector was pending: the engine sends it.
    pub(crate) due: bool,
    /// Between ACTIVATE_DEV and QUIESCE_DEV/RESET_DEV (or a reset).
    pub(crate) active: bool,
    /// Counts quiesces and resets: the engine drops its rings when it
    /// changes.
    pub(crate) epoch: u64,
    /// The engine is in a batch (between taking its work and finishing
    /// its DMA).
    pub(crate) busy: bool,
}

impl Core {
    /// Stops the device: no DMA after the engine's current batch.
    pub(crate) fn stop(&mut self) {
        self.active = false;
        self.activate = None;
        self.kicked = false;
        self.epoch += 1;
        self.masked = [true; VECTORS];
        self.pending = [false; VECTORS];
    }

    /// Vector `v` fires: the message to send now, if it is unmasked (and
    /// then masked, under automatic masking), or nothing (it is pending).
    pub(crate) fn raise(&mut self, v: usize) -> Option<MsiMessage> {
        // Queues naming a vector this device lacks share vector 0.
        let v = if v < VECTORS { v } else { 0 };
        if self.masked[v] {
            self.pending[v] = true;
            return None;
        }
        let Some(m) = msi_message(self.config.space(), self.msi) else {
            self.pending[v] = true;
            return None;
        };
        if self.auto_mask {
            self.masked[v] = true;
        }
        Some(m)
    }
}

/// [`Core`] behind its lock, and the condition a quiesce waits on.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    idle: Condvar,
}

impl Shared {
    pub(crate) fn new(core: Core) -> Self {
        Shared {
            core: Mutex::new(core),
            idle: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the device and waits (bounded by [`QUIESCE_WAIT`]) until the
    /// engine is out of its batch, so that no DMA follows the register
    /// write that asked (the driver frees the rings right after it). The
    /// caller holds no engine state: the engine's DMA needs no lock this
    /// function holds (a function's DMA into itself is refused).
    pub(crate) fn stop_and_wait(&self, mut core: MutexGuard<'_, Core>) {
        core.stop();
        let (core, _) = self
            .idle
            .wait_timeout_while(core, QUIESCE_WAIT, |c| c.busy)
            .unwrap_or_else(PoisonError::into_inner);
        drop(core);
    }

    /// The engine left its batch.
    pub(crate) fn done(&self) {
        self.lock().busy = false;
        self.idle.notify_all();
    }
}
