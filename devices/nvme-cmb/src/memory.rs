//! [`CtrlMemory`]: the controller's bus-master view. Addresses inside its
//! own CMB (while Controller Memory Space is enabled) are served
//! internally from the CMB's memory; everything else goes through the
//! fabric router as DMA.

use pcie_core::{BarMemory, DmaHandle};

use crate::mem::{BusMemory, MemError};
use crate::state::Counters;

/// The controller's memory for one pass of the engine.
pub(crate) struct CtrlMemory<'a> {
    pub(crate) dma: &'a DmaHandle,
    /// The CMB and its controller base address, when enabled.
    pub(crate) cmb: Option<(&'a BarMemory, u64)>,
    pub(crate) counters: &'a Counters,
}

impl CtrlMemory<'_> {
    /// The offset in the CMB when `addr..addr+len` lies inside it.
    pub(crate) fn in_cmb(&self, addr: u64, len: usize) -> Option<u64> {
        let (m, base) = self.cmb?;
        let off = addr.checked_sub(base)?;
        let end = off.checked_add(len as u64)?;
        (end <= m.len()).then_some(off)
    }
}

impl BusMemory for CtrlMemory<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        if let Some(off) = self.in_cmb(addr, buf.len()) {
            let (m, _) = self.cmb.ok_or(MemError)?;
            m.read(off, buf);
            Counters::add(&self.counters.cmb_data_bytes, buf.len() as u64);
            return Ok(());
        }
        self.dma.read(addr, buf).map_err(|_| MemError)?;
        Counters::add(&self.counters.dma_data_bytes, buf.len() as u64);
        Ok(())
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        if let Some(off) = self.in_cmb(addr, buf.len()) {
            let (m, _) = self.cmb.ok_or(MemError)?;
            m.write(off, buf);
            Counters::add(&self.counters.cmb_data_bytes, buf.len() as u64);
            return Ok(());
        }
        self.dma.write(addr, buf).map_err(|_| MemError)?;
        Counters::add(&self.counters.dma_data_bytes, buf.len() as u64);
        Ok(())
    }
}
