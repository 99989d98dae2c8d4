//! Guest memory as the PVRDMA engine sees it: little-endian fields
//! through the function's DMA handle, and page directories.

use pcie_core::DmaHandle;

use super::regs::limit;

/// A DMA access failed (nothing decodes the address, or the fabric
/// refused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// Reads `n` bytes at `addr`.
pub fn read(dma: &DmaHandle, addr: u64, n: usize) -> Result<Vec<u8>, Fault> {
    let mut b = vec![0; n];
    dma.read(addr, &mut b).map_err(|_| Fault)?;
    Ok(b)
}

/// Reads a u32 at `addr`.
pub fn read_u32(dma: &DmaHandle, addr: u64) -> Result<u32, Fault> {
    let mut b = [0; 4];
    dma.read(addr, &mut b).map_err(|_| Fault)?;
    Ok(u32::from_le_bytes(b))
}

/// Writes `data` at `addr`.
pub fn write(dma: &DmaHandle, addr: u64, data: &[u8]) -> Result<(), Fault> {
    dma.write(addr, data).map_err(|_| Fault)
}

/// Writes a u32 at `addr`.
pub fn write_u32(dma: &DmaHandle, addr: u64, v: u32) -> Result<(), Fault> {
    write(dma, addr, &v.to_le_bytes())
}

/// Little-endian field readers over a byte slice; out-of-range reads give 0.
pub trait Fields {
    /// The u8 at `at`.
    fn u8_at(&self, at: usize) -> u8;
    /// The u16 at `at`.
    fn u16_at(&self, at: usize) -> u16;
    /// The u32 at `at`.
    fn u32_at(&self, at: usize) -> u32;
    /// The u64 at `at`.
    fn u64_at(&self, at: usize) -> u64;
}

impl Fields for [u8] {
    fn u8_at(&self, at: usize) -> u8 {
        self.get(at).copied().unwrap_or(0)
    }
    fn u16_at(&self, at: usize) -> u16 {
        u16::from(self.u8_at(at)) | u16::from(self.u8_at(at + 1)) << 8
    }
    fn u32_at(&self, at: usize) -> u32 {
        u32::from(self.u16_at(at)) | u32::from(self.u16_at(at + 2)) << 16
    }
    fn u64_at(&self, at: usize) -> u64 {
        u64::from(self.u32_at(at)) | u64::from(self.u32_at(at + 4)) << 32
    }
}

/// Little-endian field writers over a byte slice; out-of-range writes
/// are dropped.
pub trait FieldsMut {
    /// Stores `v` at `at`.
    fn put(&mut self, at: usize, v: &[u8]);
    /// Stores a u16.
    fn put_u16(&mut self, at: usize, v: u16) {
        self.put(at, &v.to_le_bytes())
    }
    /// Stores a u32.
    fn put_u32(&mut self, at: usize, v: u32) {
        self.put(at, &v.to_le_bytes())
    }
    /// Stores a u64.
    fn put_u64(&mut self, at: usize, v: u64) {
        self.put(at, &v.to_le_bytes())
    }
}

impl FieldsMut for [u8] {
    fn put(&mut self, at: usize, v: &[u8]) {
        if let Some(d) = at.checked_add(v.len()).and_then(|e| self.get_mut(at..e)) {
            d.copy_from_slice(v);
        }
    }
}

/// The leaf pages of the page directory at `pdir` holding `npages`
/// pages: the directory page lists table pages, each table lists 512
/// pages (`pvrdma_page_dir`). `None` when `npages` is 0 or beyond one
/// directory, or a table cannot be read.
pub fn page_dir(dma: &DmaHandle, pdir: u64, npages: u32) -> Option<Vec<u64>> {
    if npages == 0 || npages > limit::MAX_PDIR_PAGES {
        return None;
    }
    let ntables = (npages - 1) / 512 + 1;
    let dir = read(dma, pdir, ntables as usize * 8).ok()?;
    let mut pages = Vec::with_capacity(npages as usize);
    for t in 0..ntables {
        let table = dir.u64_at(t as usize * 8);
        let n = (npages - t * 512).min(512);
        let entries = read(dma, table, n as usize * 8).ok()?;
        pages.extend((0..n as usize).map(|i| entries.u64_at(i * 8)));
    }
    Some(pages)
}

/// A buffer of guest pages treated as one contiguous range (rings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pages(pub Vec<u64>);

impl Pages {
    /// The bus address of byte `offset`, if inside.
    pub fn addr(&self, offset: u64) -> Option<u64> {
        let page = *self.0.get(usize::try_from(offset / 4096).ok()?)?;
        Some(page.wrapping_add(offset % 4096))
    }

    /// Bytes covered.
    pub fn len(&self) -> u64 {
        self.0.len() as u64 * 4096
    }

    /// No pages.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads `n` bytes at `offset` (within one page).
    pub fn read(&self, dma: &DmaHandle, offset: u64, n: usize) -> Result<Vec<u8>, Fault> {
        read(dma, self.addr(offset).ok_or(Fault)?, n)
    }

    /// Writes `data` at `offset` (within one page).
    pub fn write(&self, dma: &DmaHandle, offset: u64, data: &[u8]) -> Result<(), Fault> {
        write(dma, self.addr(offset).ok_or(Fault)?, data)
    }

    /// Reads the u32 at `offset`.
    pub fn read_u32(&self, dma: &DmaHandle, offset: u64) -> Result<u32, Fault> {
        read_u32(dma, self.addr(offset).ok_or(Fault)?)
    }

    /// Writes the u32 at `offset`.
    pub fn write_u32(&self, dma: &DmaHandle, offset: u64, v: u32) -> Result<(), Fault> {
        write_u32(dma, self.addr(offset).ok_or(Fault)?, v)
    }
}
