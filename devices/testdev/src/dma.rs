//! The DMA engine's copy: source to buffer, buffer to destination.

use pcie_core::{DmaHandle, MAX_REQUEST};

use crate::DmaStatus;

/// Copies `len` bytes from bus address `src` to `dst` through `dma`: one
/// read of the whole source (split into 4 KiB requests by the handle),
/// then one write request per destination page, counting the bytes
/// written. Stops at the first failure.
pub(crate) fn copy(dma: &DmaHandle, src: u64, dst: u64, len: usize) -> (DmaStatus, usize) {
    let mut buf = vec![0; len];
    if let Err(e) = dma.read(src, &mut buf) {
        return (e.into(), 0);
    }
    let mut done = 0;
    while done < len {
        let Some(addr) = dst.checked_add(done as u64) else {
            return (DmaStatus::UnsupportedRequest, done);
        };
        let room = (MAX_REQUEST - addr % MAX_REQUEST) as usize;
        let n = room.min(len - done);
        if let Err(e) = dma.write(addr, &buf[done..done + n]) {
            return (e.into(), done);
        }
        done += n;
    }
    (DmaStatus::Done, done)
}
