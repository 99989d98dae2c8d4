//! RAM-backed BARs: memory a device owns that peers reach by DMA without
//! taking the device's lock, and that the VMM maps straight into the guest.
//!
//! A [`BarMemory`] is an anonymous private mapping, page-aligned and
//! zero-filled on first touch. It is shared as `Arc<BarMemory>` by the
//! device, the fabric (which serves DMA to it with no device lock: it is
//! plain memory) and whoever maps it into the guest (a KVM memory slot),
//! which keeps its own `Arc` for as long as the slot exists. The guest
//! writes the same bytes through that mapping while devices copy, so every
//! access here is volatile, through vm-memory's `VolatileSlice`, and never
//! through a Rust reference.

use std::ptr::NonNull;
use std::sync::Arc;

use vm_memory::volatile_memory::VolatileSlice;
use vm_memory::Bytes;

use crate::Error;

/// Page size of the mapping's alignment.
const PAGE: u64 = 4096;

/// Memory behind a RAM-backed BAR. See the module documentation.
pub struct BarMemory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `BarMemory` owns its mapping until drop; every access is a
// bounds-checked volatile copy through `VolatileSlice`, which is sound from
// any number of threads (concurrent accesses race on the data only, as on
// hardware).
unsafe impl Send for BarMemory {}
// SAFETY: as above: `&BarMemory` only allows those volatile copies.
unsafe impl Sync for BarMemory {}

impl BarMemory {
    /// `len` bytes of zeroed memory (committed lazily by the host). `len`
    /// must be a non-zero multiple of 4 KiB.
    pub fn new(len: u64) -> Result<Arc<Self>, Error> {
        let bytes = usize::try_from(len).map_err(|_| Error::BarMemory(len))?;
        if len == 0 || !len.is_multiple_of(PAGE) {
            return Err(Error::BarMemory(len));
        }
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::BarMemory(len));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(Error::BarMemory(len))?;
        Ok(Arc::new(BarMemory { ptr, len: bytes }))
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len as u64
    }

    /// Never true: a `BarMemory` has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of the first byte, page-aligned: what a KVM memory
    /// slot maps. Valid while this `BarMemory` lives; a mapping must hold
    /// an `Arc` to it for as long as the slot exists.
    pub fn host_address(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn slice(&self) -> VolatileSlice<'_> {
        // SAFETY: `ptr..ptr + len` is this object's live mapping, valid for
        // the lifetime of `&self`.
        unsafe { VolatileSlice::new(self.ptr.as_ptr(), self.len) }
    }

    /// The in-bounds part of `offset..offset + want`, as (start, length).
    fn clip(&self, offset: u64, want: usize) -> (usize, usize) {
        match usize::try_from(offset) {
            Ok(start) if start < self.len => (start, want.min(self.len - start)),
            _ => (0, 0),
        }
    }

    /// Reads at `offset`; bytes past the end read 0xFF.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        let (start, n) = self.clip(offset, data.len());
        if n > 0 && self.slice().read_slice(&mut data[..n], start).is_err() {
            data[..n].fill(0xff);
        }
        data[n..].fill(0xff);
    }

    /// Writes at `offset`; bytes past the end are dropped.
    pub fn write(&self, offset: u64, data: &[u8]) {
        let (start, n) = self.clip(offset, data.len());
        if n > 0 {
            // Cannot fail: `start + n <= len`.
            let _ = self.slice().write_slice(&data[..n], start);
        }
    }
}

impl Drop for BarMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this length and is
        // unmapped only here; no `Arc` (so no slot) refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl std::fmt::Debug for BarMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarMemory")
            .field("host", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_zeroed_and_bounded() {
        let b = BarMemory::new(3 * PAGE).unwrap();
        assert_eq!(b.host_address() as u64 % PAGE, 0);
        assert_eq!(b.len(), 3 * PAGE);
        let mut buf = [1u8; 8];
        b.read(0, &mut buf);
        assert_eq!(buf, [0; 8]);
        b.write(3 * PAGE - 4, &[1, 2, 3, 4, 5, 6]);
        b.read(3 * PAGE - 4, &mut buf);
        assert_eq!(buf, [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]);
        b.read(u64::MAX, &mut buf);
        assert_eq!(buf, [0xff; 8]);
        b.write(u64::MAX, &buf);
    }

    #[test]
    fn sizes_that_are_not_whole_pages_are_refused() {
        for len in [0, 1, PAGE + 1] {
            assert!(matches!(BarMemory::new(len), Err(Error::BarMemory(l)) if l == len));
        }
    }
}
