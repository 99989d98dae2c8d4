//! [`CtrlMemory`]: the controller's bus-master view. Addresses inside its
//! own CMB (while Controller Memory Space is enabled) are served
//! internally from the CMB's memory; everything else goes through the
//! fabric router as DMA.

use std::sync::Arc;

use pcie_core::{BarMemory, DmaHandle, DmaMap};

use crate::dptr::Segment;
use crate::mem::{BusMemory, MemError};
use crate::state::Counters;
use crate::Status;

/// The controller's memory for one pass of the engine.
pub(crate) struct CtrlMemory<'a> {
    pub(crate) dma: &'a DmaHandle,
    /// The CMB and its controller base address, when enabled.
    pub(crate) cmb: Option<(&'a Arc<BarMemory>, u64)>,
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

    /// Maps a transfer along `segs` (data to the host when
    /// `device_writes`) for a file job to move with one system call:
    /// segments in the own CMB internally, the rest routed by the fabric
    /// ([`DmaHandle::map`]), counted here. None when some segment cannot be
    /// mapped (a Bit Bucket, a register BAR): copy instead. A refused
    /// request is Data Transfer Error.
    pub(crate) fn map(
        &self,
        segs: &[Segment],
        device_writes: bool,
    ) -> Result<Option<DmaMap>, Status> {
        let mut map = DmaMap::new(device_writes);
        let (mut own, mut routed) = (0u64, 0u64);
        for s in segs {
            if s.bit_bucket {
                return Ok(None);
            }
            let len = usize::try_from(s.len).map_err(|_| Status::DATA_TRANSFER_ERROR)?;
            if let Some(off) = self.in_cmb(s.addr, len) {
                let (m, _) = self.cmb.ok_or(Status::DATA_TRANSFER_ERROR)?;
                if map.push_own(m, off, len).is_none() {
                    return Ok(None);
                }
                own += s.len;
                continue;
            }
            match self.dma.map(s.addr, len, device_writes) {
                Ok(Some(m)) => map.append(m),
                Ok(None) => return Ok(None),
                Err(_) => return Err(Status::DATA_TRANSFER_ERROR),
            }
            routed += s.len;
        }
        Counters::add(&self.counters.cmb_data_bytes, own);
        Counters::add(&self.counters.dma_data_bytes, routed);
        Counters::add(&self.counters.mapped_data_bytes, own + routed);
        Ok(Some(map))
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
