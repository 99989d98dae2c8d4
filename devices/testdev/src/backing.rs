//! BAR 2's memory: a page-aligned, zero-initialised allocation the device
//! owns and the VMM may map into the guest.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

const PAGE: usize = 4096;

/// Memory that device models and a guest mapping share. It is only ever
/// accessed through raw pointers (never through Rust references), so a
/// guest writing through a mapping while the device copies is a race on
/// the data only, as on real hardware.
pub(crate) struct Backing {
    /// The allocation, as returned by the allocator.
    raw: NonNull<u8>,
    layout: Layout,
    /// The first page boundary inside it: where the memory starts.
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: `Backing` owns its allocation; all access goes through raw-pointer
// copies bounded by `len`, which are sound from any thread.
unsafe impl Send for Backing {}
// SAFETY: as above; `&Backing` only allows those bounded raw copies.
unsafe impl Sync for Backing {}

impl Backing {
    /// `len` zero bytes (lazily committed by the host for large sizes: the
    /// allocator's calloc path), starting on a page boundary.
    pub(crate) fn new(len: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.checked_add(PAGE)?, 16).ok()?;
        // SAFETY: the layout has a non-zero size.
        let raw = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        let skip = raw.as_ptr().align_offset(PAGE);
        // SAFETY: `skip` < PAGE, so `base` and the `len` bytes after it lie
        // inside the `len + PAGE`-byte allocation.
        let base = unsafe { NonNull::new_unchecked(raw.as_ptr().add(skip)) };
        Some(Backing {
            raw,
            layout,
            base,
            len,
        })
    }

    /// Start and length of the memory.
    pub(crate) fn region(&self) -> (*mut u8, usize) {
        (self.base.as_ptr(), self.len)
    }

    /// The in-bounds part of `offset..offset + want`, as (start, length).
    fn clip(&self, offset: u64, want: usize) -> (usize, usize) {
        match usize::try_from(offset) {
            Ok(start) if start < self.len => (start, want.min(self.len - start)),
            _ => (0, 0),
        }
    }

    /// Reads at `offset`; bytes past the end read 0xFF.
    pub(crate) fn read(&self, offset: u64, data: &mut [u8]) {
        let (start, n) = self.clip(offset, data.len());
        // SAFETY: `start + n <= len`, and `data` is a distinct buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.as_ptr().add(start), data.as_mut_ptr(), n)
        };
        data[n..].fill(0xff);
    }

    /// Writes at `offset`; bytes past the end are dropped.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) {
        let (start, n) = self.clip(offset, data.len());
        // SAFETY: `start + n <= len`, and `data` is a distinct buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.as_ptr().add(start), n) };
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        // SAFETY: `raw` was allocated with `layout` and is freed only here.
        unsafe { alloc::dealloc(self.raw.as_ptr(), self.layout) };
    }
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backing")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_zeroed_and_bounded() {
        let b = Backing::new(3 * PAGE).unwrap();
        let (ptr, len) = b.region();
        assert_eq!(ptr as usize % PAGE, 0);
        assert_eq!(len, 3 * PAGE);
        let mut buf = [1u8; 8];
        b.read(0, &mut buf);
        assert_eq!(buf, [0; 8]);
        b.write(3 * PAGE as u64 - 4, &[1, 2, 3, 4, 5, 6]);
        b.read(3 * PAGE as u64 - 4, &mut buf);
        assert_eq!(buf, [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]);
        b.read(u64::MAX, &mut buf);
        assert_eq!(buf, [0xff; 8]);
        b.write(u64::MAX, &buf);
    }
}
