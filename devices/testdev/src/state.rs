//! What the function (on vCPUs) and the engine (on the device thread)
//! share: config space, scratch registers, MSI-X state and the command in
//! flight, behind one lock that is never held across a DMA.

use std::sync::{Mutex, MutexGuard, PoisonError};

use pcie_core::{
    aer_reg, cap_id, capabilities, ext_cap_id, ext_capabilities, pcie_devctl, pcie_reg,
    ErrorSeverity, MsiMessage, Msix, Type0Config,
};

use crate::regs::{dma_reg, BAR0_SIZE, COMPLETION_VECTOR, DMA_CAP_OFFSET, MAGIC};
use crate::DmaStatus;

/// A latched DMA command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) src: u64,
    pub(crate) dst: u64,
    pub(crate) len: u32,
    /// The reset epoch it was latched in: a reset while it runs discards
    /// its result.
    pub(crate) epoch: u64,
}

/// The registers and state of one endpoint.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: Type0Config,
    pub(crate) power_on: Type0Config,
    pub(crate) scratch: Box<[u8]>,
    pub(crate) msix: Msix,
    /// The command the engine is running or about to run.
    pub(crate) command: Option<Command>,
    /// Interrupt messages due (unmasked while pending), for the engine to send.
    pub(crate) due: Vec<MsiMessage>,
    /// Counts resets.
    pub(crate) epoch: u64,
    /// An error message to send, for the engine.
    pub(crate) error: Option<ErrorSeverity>,
    /// Offsets of the PCI Express and AER capabilities.
    pcie: u16,
    aer: u16,
}

/// [`Core`] behind its lock.
#[derive(Debug)]
pub(crate) struct Shared(Mutex<Core>);

impl Shared {
    pub(crate) fn new(config: Type0Config, msix: Msix) -> Self {
        let r32 = |o| config.space().u32_at(o);
        let pcie = capabilities(r32).find(|c| c.id == cap_id::PCI_EXPRESS);
        let aer = ext_capabilities(r32).find(|c| c.id == ext_cap_id::AER);
        Shared(Mutex::new(Core {
            pcie: pcie.map_or(0, |c| c.offset),
            aer: aer.map_or(0, |c| c.offset),
            error: None,
            power_on: config.clone(),
            config,
            scratch: fresh_scratch(),
            msix,
            command: None,
            due: Vec::new(),
            epoch: 0,
        }))
    }

    /// Locks the state. Never hold the guard across a DMA.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Scratch registers after reset: zero, with the magic dword at 0.
pub(crate) fn fresh_scratch() -> Box<[u8]> {
    let mut s = vec![0; BAR0_SIZE as usize].into_boxed_slice();
    s[..4].copy_from_slice(&MAGIC.to_le_bytes());
    s
}

impl Core {
    pub(crate) fn reg(&self, off: u16) -> u32 {
        let mut b = [0; 4];
        self.config.read(DMA_CAP_OFFSET + off, &mut b);
        u32::from_le_bytes(b)
    }

    fn set_reg(&mut self, off: u16, value: u32) {
        self.config.space_mut().set_u32(DMA_CAP_OFFSET + off, value);
    }

    /// GO (or the doorbell): latches SRC, DST and LENGTH into a command and
    /// reports Busy. Ignored while a command runs. True when latched.
    pub(crate) fn go(&mut self) -> bool {
        if self.command.is_some() {
            return false;
        }
        let addr = |lo, hi| u64::from(self.reg(hi)) << 32 | u64::from(self.reg(lo));
        self.command = Some(Command {
            src: addr(dma_reg::SRC_LO, dma_reg::SRC_HI),
            dst: addr(dma_reg::DST_LO, dma_reg::DST_HI),
            len: self.reg(dma_reg::LENGTH),
            epoch: self.epoch,
        });
        self.set_reg(dma_reg::STATUS, DmaStatus::Busy.code());
        true
    }

    /// INJECT_COR: logs a Receiver Error in AER and, when reporting is
    /// enabled and the error unmasked, queues ERR_COR for the engine.
    /// True when a message is queued.
    pub(crate) fn inject_correctable(&mut self) -> bool {
        let space = self.config.space_mut();
        let status = self.aer + aer_reg::COR_STATUS;
        space.set_u32(status, space.u32_at(status) | aer_reg::COR_RECEIVER_ERROR);
        let masked = space.u32_at(self.aer + aer_reg::COR_MASK) & aer_reg::COR_RECEIVER_ERROR != 0;
        let devctl = space.u16_at(self.pcie + pcie_reg::DEVCTL);
        let report = devctl & pcie_devctl::COR_ERR_REPORTING != 0;
        if masked || !report {
            return false;
        }
        self.error = Some(ErrorSeverity::Correctable);
        true
    }

    /// Records how `cmd` ended (STATUS, DONE, COUNT), frees the engine and
    /// returns the completion interrupt if it is due now. Nothing happens
    /// when a reset came in between.
    pub(crate) fn complete(
        &mut self,
        cmd: &Command,
        status: DmaStatus,
        done: usize,
    ) -> Option<MsiMessage> {
        if cmd.epoch != self.epoch {
            return None;
        }
        self.set_reg(dma_reg::STATUS, status.code());
        self.set_reg(dma_reg::DONE, done as u32);
        let count = self.reg(dma_reg::COUNT).wrapping_add(1);
        self.set_reg(dma_reg::COUNT, count);
        self.command = None;
        self.msix.trigger(self.config.space(), COMPLETION_VECTOR)
    }

    /// Back to power-on: config space, scratch, MSI-X; a running command's
    /// result is discarded.
    pub(crate) fn reset(&mut self) {
        self.config = self.power_on.clone();
        self.scratch = fresh_scratch();
        self.msix.reset();
        self.command = None;
        self.due.clear();
        self.error = None;
        self.epoch += 1;
    }

    /// The STATUS register.
    pub(crate) fn status(&self) -> DmaStatus {
        DmaStatus::from_code(self.reg(dma_reg::STATUS)).unwrap_or(DmaStatus::Idle)
    }
}
