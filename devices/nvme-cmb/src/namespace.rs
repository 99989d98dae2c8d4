//! A namespace's blocks: anonymous memory or a file, read and written by
//! byte offset. The controller checks LBA ranges against [`Namespace::blocks`]
//! before calling; the checks here are defence in depth.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::Error;

/// Where a namespace's blocks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackingKind {
    /// Anonymous memory, lost when the namespace is dropped.
    Ram,
    /// A file, created (sparse) if missing.
    File(PathBuf),
}

/// A namespace's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    /// Capacity in bytes: a non-zero multiple of `lba_size`.
    pub size: u64,
    /// Logical block size in bytes: 512 or 4096.
    pub lba_size: u32,
    /// Where the blocks live.
    pub backing: BackingKind,
}

/// A namespace: its blocks and geometry. `Send + Sync`; every method takes
/// `&self` (positional I/O), so several I/O threads may use it at once.
/// As the NVMe specification allows, overlapping commands in flight at the
/// same time see the bytes in an unspecified order.
pub struct Namespace {
    size: u64,
    lba_size: u32,
    lba_shift: u8,
    store: Store,
}

enum Store {
    Ram(RamMap),
    File { file: File, path: PathBuf },
}

/// An anonymous private mapping of `len` bytes, unmapped on drop.
struct RamMap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; it is only
// accessed through bounds-checked byte copies, never through references, so
// moving it to or sharing it with another thread cannot break any invariant.
unsafe impl Send for RamMap {}
// SAFETY: as above; concurrent copies touch only bytes (no invalid values).
unsafe impl Sync for RamMap {}

impl RamMap {
    fn new(len: usize) -> Result<RamMap, Error> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks;
        // it aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::OutOfMemory(len as u64));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(Error::OutOfMemory(len as u64))?;
        Ok(RamMap { ptr, len })
    }

    /// The in-bounds start pointer for `[offset, offset + len)`.
    fn at(&self, offset: u64, len: usize) -> io::Result<*mut u8> {
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        match start.checked_add(len) {
            Some(end) if end <= self.len => {
                // SAFETY: start <= self.len, so the result stays inside (or
                // one past the end of) the mapping.
                Ok(unsafe { self.ptr.as_ptr().add(start) })
            }
            _ => Err(out_of_range()),
        }
    }
}

impl Drop for RamMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `new`, and nothing
        // borrows it any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "offset beyond the namespace")
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

impl Namespace {
    /// Opens (a file) or maps (RAM) the namespace's blocks.
    pub fn open(cfg: &NamespaceConfig) -> Result<Namespace, Error> {
        let lba_shift = match cfg.lba_size {
            512 => 9,
            4096 => 12,
            n => {
                return Err(Error::Config(format!(
                    "namespace LBA size {n} is not 512 or 4096"
                )))
            }
        };
        // lba_size is a power of two, so the mask tests divisibility.
        if cfg.size == 0 || cfg.size & (u64::from(cfg.lba_size) - 1) != 0 {
            return Err(Error::Config(format!(
                "namespace size {} is not a non-zero multiple of the LBA size {}",
                cfg.size, cfg.lba_size
            )));
        }
        let store = match &cfg.backing {
            BackingKind::Ram => {
                let len = usize::try_from(cfg.size).map_err(|_| {
                    Error::Config(format!("namespace size {} is too large", cfg.size))
                })?;
                Store::Ram(RamMap::new(len)?)
            }
            BackingKind::File(path) => Store::File {
                file: open_file(path, cfg.size)?,
                path: path.clone(),
            },
        };
        Ok(Namespace {
            size: cfg.size,
            lba_size: cfg.lba_size,
            lba_shift,
            store,
        })
    }

    /// The logical block size in bytes.
    pub fn lba_size(&self) -> u32 {
        self.lba_size
    }

    /// log2 of the logical block size (9 or 12).
    pub fn lba_shift(&self) -> u8 {
        self.lba_shift
    }

    /// The capacity in logical blocks.
    pub fn blocks(&self) -> u64 {
        self.size >> self.lba_shift
    }

    /// Whether the blocks live in a file (I/O on them may block).
    pub fn is_file(&self) -> bool {
        matches!(self.store, Store::File { .. })
    }

    /// The capacity in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn check(&self, offset: u64, len: u64) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(out_of_range()),
        }
    }

    /// Reads `buf.len()` bytes at byte `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len() as u64)?;
        match &self.store {
            Store::Ram(m) => {
                let src = m.at(offset, buf.len())?;
                // SAFETY: `at` checked [offset, offset + len) lies in the
                // mapping; `buf` is a distinct, exclusively borrowed buffer.
                unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
                Ok(())
            }
            Store::File { file, .. } => file.read_exact_at(buf, offset),
        }
    }

    /// Writes `buf` at byte `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.check(offset, buf.len() as u64)?;
        match &self.store {
            Store::Ram(m) => {
                let dst = m.at(offset, buf.len())?;
                // SAFETY: `at` checked the range lies in the mapping, which
                // is writable; `buf` cannot overlap an mmap we own.
                unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
                Ok(())
            }
            Store::File { file, .. } => file.write_all_at(buf, offset),
        }
    }

    /// Zeroes (deallocates) a byte range: for Write Zeroes and Dataset
    /// Management deallocate. A file gets a hole punched (falling back to
    /// writing zeros); RAM gives whole pages back (`MADV_DONTNEED`, so they
    /// read as zero) and zeroes the partial pages at either end.
    pub fn zero(&self, offset: u64, len: u64) -> io::Result<()> {
        self.check(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        match &self.store {
            Store::Ram(m) => zero_ram(m, offset, len),
            Store::File { file, .. } => zero_file(file, offset, len),
        }
    }

    /// Reads `map.len()` bytes at byte `offset` straight into the mapped
    /// memory (a file namespace: one `preadv`; RAM: refused, it copies).
    pub fn read_into(&self, offset: u64, map: &pcie_core::DmaMap) -> io::Result<()> {
        self.check(offset, map.len() as u64)?;
        match &self.store {
            Store::File { file, .. } => map.fill_from_fd(file.as_raw_fd(), offset),
            Store::Ram(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Writes the mapped memory at byte `offset` (a file namespace: one
    /// `pwritev`; RAM: refused).
    pub fn write_from(&self, offset: u64, map: &pcie_core::DmaMap) -> io::Result<()> {
        self.check(offset, map.len() as u64)?;
        match &self.store {
            Store::File { file, .. } => map.drain_to_fd(file.as_raw_fd(), offset),
            Store::Ram(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Makes written data durable: `fdatasync` for a file, nothing for RAM.
    pub fn flush(&self) -> io::Result<()> {
        match &self.store {
            Store::Ram(_) => Ok(()),
            Store::File { file, .. } => file.sync_data(),
        }
    }
}

fn open_file(path: &Path, size: u64) -> Result<File, Error> {
    let backing = |source| Error::Backing {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(backing)?;
    let len = file.metadata().map_err(backing)?.len();
    if len > size {
        return Err(Error::Config(format!(
            "namespace backing file {} is {len} bytes, bigger than the namespace ({size} bytes)",
            path.display()
        )));
    }
    if len < size {
        file.set_len(size).map_err(backing)?;
    }
    Ok(file)
}

fn zero_ram(m: &RamMap, offset: u64, len: u64) -> io::Result<()> {
    let len = usize::try_from(len).map_err(|_| out_of_range())?;
    let start = m.at(offset, len)?;
    let page = page_size();
    // [0, head) and [tail, len) are the partial pages at either end;
    // [head, tail) is whole, page-aligned pages.
    let head = ((page - start as usize % page) % page).min(len);
    let tail = head + (len - head) / page * page;
    // Every range below lies in [start, start + len), which `at` checked is
    // inside the writable mapping ("in bounds" in the SAFETY comments).
    if tail > head {
        // SAFETY: in bounds; page-aligned pages of a private anonymous
        // mapping, which read as zero after MADV_DONTNEED.
        let r = unsafe { libc::madvise(start.add(head).cast(), tail - head, libc::MADV_DONTNEED) };
        if r != 0 {
            // SAFETY: in bounds.
            unsafe { std::ptr::write_bytes(start.add(head), 0, tail - head) };
        }
    }
    // SAFETY: in bounds; the partial head.
    unsafe { std::ptr::write_bytes(start, 0, head) };
    // SAFETY: in bounds; the partial tail.
    unsafe { std::ptr::write_bytes(start.add(tail), 0, len - tail) };
    Ok(())
}

fn zero_file(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if let (Ok(o), Ok(l)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) {
        // SAFETY: fallocate on a descriptor we own; it reads no memory.
        let r = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                o,
                l,
            )
        };
        if r == 0 {
            return Ok(());
        }
    }
    // No hole punching here (filesystem, or an odd range): write zeros.
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    let mut done = 0u64;
    while done < len {
        let n = CHUNK.min(len - done);
        file.write_all_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Namespace");
        d.field("size", &self.size)
            .field("lba_size", &self.lba_size);
        match &self.store {
            Store::Ram(_) => d.field("backing", &"ram"),
            Store::File { path, .. } => d.field("backing", path),
        };
        d.finish()
    }
}
