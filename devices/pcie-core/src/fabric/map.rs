//! Mapped DMA: a transfer routed exactly like [`DmaHandle::read`] and
//! [`DmaHandle::write`] (the same router, so the same Bus Master, ACS,
//! IOMMU and root-complex decisions, counters and trace), that hands back
//! the host memory it lands in instead of copying. For a device that moves
//! the bytes with one system call, e.g. `preadv` from a namespace file
//! straight into guest memory, as a real controller's DMA engine would,
//! without a bounce buffer.
//!
//! Only memory maps: guest RAM (where [`GuestRam::host_range`] gives its
//! host address) and RAM-backed BARs ([`BarMemory`]). A transfer with any
//! other target (a register BAR, the interrupt range) is not mapped and
//! nothing of it is counted; the device then copies through
//! [`DmaHandle::read`]/[`write`](DmaHandle::write) as usual.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Arc;

use super::dma::{DmaError, DmaHandle, GuestRam};
use super::route::MAX_REQUEST;
use super::{DmaRequest, Hops, Target};
use crate::BarMemory;

/// Host memory a routed transfer lands in: pieces in transfer order. It
/// keeps the memory alive (the guest RAM and every BAR it touches) for as
/// long as it lives, wherever it is sent.
pub struct DmaMap {
    pieces: Vec<(NonNull<u8>, usize)>,
    /// True when the device writes the memory (a DMA write: data to the
    /// host); false when it reads it.
    device_writes: bool,
    _ram: Option<Arc<dyn GuestRam>>,
    _bars: Vec<Arc<BarMemory>>,
}

// SAFETY: the pointers are into guest RAM or `BarMemory` mappings that the
// map itself keeps alive (`_ram`, `_bars`); they are only ever accessed by
// the kernel through `preadv`/`pwritev` (no Rust references are made), so
// moving the map to, or sharing it with, another thread breaks nothing.
unsafe impl Send for DmaMap {}
// SAFETY: as above; `&DmaMap` allows no access of its own.
unsafe impl Sync for DmaMap {}

impl std::fmt::Debug for DmaMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaMap")
            .field("pieces", &self.pieces.len())
            .field("len", &self.len())
            .field("device_writes", &self.device_writes)
            .finish()
    }
}

impl DmaMap {
    /// An empty map for a transfer in the given direction.
    pub fn new(device_writes: bool) -> Self {
        DmaMap {
            pieces: Vec::new(),
            device_writes,
            _ram: None,
            _bars: Vec::new(),
        }
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.1).sum()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Appends `other` (same direction) after this map's pieces.
    pub fn append(&mut self, mut other: DmaMap) {
        debug_assert_eq!(self.device_writes, other.device_writes);
        for (p, n) in other.pieces.drain(..) {
            self.push(p, n);
        }
        if self._ram.is_none() {
            self._ram = other._ram.take();
        }
        self._bars.append(&mut other._bars);
    }

    /// Appends `[BarMemory + offset, + len)` of the caller's own RAM-backed
    /// BAR, which it reaches without the fabric (a controller's own CMB).
    /// None when out of range.
    pub fn push_own(&mut self, mem: &Arc<BarMemory>, offset: u64, len: usize) -> Option<()> {
        let end = offset.checked_add(len as u64)?;
        if end > mem.len() {
            return None;
        }
        // SAFETY: offset + len <= the mapping's length.
        let p = unsafe { mem.host_address().add(offset as usize) };
        self.push(NonNull::new(p)?, len);
        if !self._bars.last().is_some_and(|b| Arc::ptr_eq(b, mem)) {
            self._bars.push(mem.clone());
        }
        Some(())
    }

    fn push(&mut self, p: NonNull<u8>, n: usize) {
        if let Some(last) = self.pieces.last_mut() {
            // SAFETY: only compares addresses; `add` stays one past the
            // end of the last piece's mapping at most.
            if unsafe { last.0.as_ptr().add(last.1) } == p.as_ptr() {
                last.1 += n;
                return;
            }
        }
        self.pieces.push((p, n));
    }

    fn iovecs(&self) -> Vec<libc::iovec> {
        self.pieces
            .iter()
            .map(|&(p, n)| libc::iovec {
                iov_base: p.as_ptr().cast(),
                iov_len: n,
            })
            .collect()
    }

    /// Fills the mapped memory from file `fd` at byte `offset`
    /// (`preadv`, until every byte is read): the device's DMA write.
    /// An end of file before the end is an error.
    pub fn fill_from_fd(&self, fd: RawFd, offset: u64) -> io::Result<()> {
        if !self.device_writes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "map is for reads",
            ));
        }
        self.io_fd(fd, offset, true)
    }

    /// Writes the mapped memory to file `fd` at byte `offset` (`pwritev`,
    /// until every byte is written): the device's DMA read.
    pub fn drain_to_fd(&self, fd: RawFd, offset: u64) -> io::Result<()> {
        if self.device_writes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "map is for writes",
            ));
        }
        self.io_fd(fd, offset, false)
    }

    fn io_fd(&self, fd: RawFd, offset: u64, read_file: bool) -> io::Result<()> {
        let mut iov = self.iovecs();
        let mut first = 0usize;
        let mut off = offset;
        while first < iov.len() {
            let n = iov.len() - first;
            let cnt = libc::c_int::try_from(n.min(1024)).unwrap_or(1024);
            let at = libc::off_t::try_from(off)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset"))?;
            // SAFETY: every iovec is a piece of live guest RAM or BAR
            // memory (kept alive by this map), writable for a preadv and
            // readable for a pwritev; the kernel checks the rest.
            let r = unsafe {
                if read_file {
                    libc::preadv(fd, iov[first..].as_ptr(), cnt, at)
                } else {
                    libc::pwritev(fd, iov[first..].as_ptr(), cnt, at)
                }
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut done = r as usize;
            off += done as u64;
            while done > 0 && first < iov.len() {
                let v = &mut iov[first];
                if done >= v.iov_len {
                    done -= v.iov_len;
                    first += 1;
                } else {
                    // SAFETY: advances within the same piece.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(done).cast() };
                    v.iov_len -= done;
                    done = 0;
                }
            }
        }
        Ok(())
    }
}

impl DmaHandle {
    /// Routes a `len`-byte transfer at `bus_addr` (a DMA write into memory
    /// when `device_writes`, else a DMA read) request by request, as
    /// [`read`](Self::read)/[`write`](Self::write) do, and maps it. `Ok(None)`
    /// when some request lands elsewhere than memory: nothing was counted.
    /// A refused request is its error, as for a copy, and nothing of the
    /// transfer is counted either. The bytes are then moved by the caller
    /// (see [`DmaMap`]); counters and trace record the transfer here.
    pub fn map(
        &self,
        bus_addr: u64,
        len: usize,
        device_writes: bool,
    ) -> Result<Option<DmaMap>, DmaError> {
        let fabric = self.fabric();
        // The trace records each routed request once: traced transfers copy.
        if fabric.tracing.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        let snap = fabric.snapshot();
        let mut routed: Vec<(DmaRequest, Hops)> = Vec::new();
        let mut map = DmaMap::new(device_writes);
        let mut done = 0usize;
        while done < len {
            let addr = bus_addr
                .checked_add(done as u64)
                .ok_or(DmaError::UnsupportedRequest)?;
            let room = MAX_REQUEST - addr % MAX_REQUEST;
            let req = DmaRequest {
                requester: self.requester(),
                requester_id: None,
                addr,
                len: room.min((len - done) as u64),
                write: device_writes,
                translated: false,
            };
            let mut hops = Hops::new();
            let n = req.len as usize;
            match fabric.route_into(&snap, &req, &mut hops)? {
                Target::Ram { addr } => {
                    let Some(p) = self.ram().host_range(addr, n) else {
                        return Ok(None);
                    };
                    map.push(p, n);
                }
                Target::Bar { node, bar, offset } => {
                    if node == self.requester() {
                        return Err(DmaError::CompleterAbort);
                    }
                    let Some(mem) = snap.topo.nodes[node.index()].backing(bar) else {
                        return Ok(None);
                    };
                    if map.push_own(mem, offset, n).is_none() {
                        return Ok(None);
                    }
                }
                Target::Interrupt { .. } => return Ok(None),
            }
            routed.push((req, hops));
            done += n;
        }
        for (req, hops) in &routed {
            fabric.record_in(&snap, hops, req);
        }
        map._ram = Some(self.ram().clone());
        Ok(Some(map))
    }
}
