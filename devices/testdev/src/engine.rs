//! [`TestEngine`]: the endpoint's DMA engine, on the device's thread.

use std::sync::Arc;

use pcie_core::{DeviceWorker, DmaHandle, MsiMessage};

use crate::regs::MAX_DMA_LEN;
use crate::state::Shared;
use crate::DmaStatus;

/// The test endpoint's DMA engine: runs the latched command through the
/// endpoint's [`DmaHandle`] and raises the completion vector. It takes the
/// endpoint's state lock only to read the command and to record its end,
/// never across a DMA or an interrupt (which is a DMA too).
pub struct TestEngine {
    shared: Arc<Shared>,
    dma: DmaHandle,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine")
            .field("dma", &self.dma)
            .finish_non_exhaustive()
    }
}

impl TestEngine {
    pub(crate) fn new(shared: Arc<Shared>, dma: DmaHandle) -> Self {
        TestEngine { shared, dma }
    }

    /// The handle its DMA goes through.
    pub fn dma_handle(&self) -> &DmaHandle {
        &self.dma
    }

    /// Sends a queued error message, runs the latched command, if any,
    /// then sends every interrupt due.
    pub fn run(&mut self) {
        let error = self.shared.lock().error.take();
        if let Some(severity) = error {
            // Refused (no root port above): lost, as on hardware.
            let _ = self.dma.error_message(severity);
        }
        let cmd = self.shared.lock().command;
        let mut msgs = self.take_due();
        if let Some(cmd) = cmd {
            let (status, done) = match cmd.len {
                0 => (DmaStatus::ZeroLength, 0),
                len if len > MAX_DMA_LEN => (DmaStatus::TooLong, 0),
                len => crate::dma::copy(&self.dma, cmd.src, cmd.dst, len as usize),
            };
            msgs.extend(self.shared.lock().complete(&cmd, status, done));
        }
        for m in msgs {
            // A message the fabric refuses (bus mastering off, an ACS
            // violation) is lost, as on hardware.
            let _ = self.dma.msi(m.addr, m.data);
        }
    }

    fn take_due(&self) -> Vec<MsiMessage> {
        std::mem::take(&mut self.shared.lock().due)
    }
}

impl DeviceWorker for TestEngine {
    /// The doorbell (BAR 4) was rung: GO, then run.
    fn doorbell(&mut self, _index: usize) {
        self.shared.lock().go();
        self.run();
    }

    fn notified(&mut self) {
        self.run();
    }
}
