//! Register-level NVMe for `p2pvm-nvme-raw`: BAR 0 through sysfs
//! `resource0`, DMA memory as mlock'ed anonymous pages whose bus
//! addresses come from `/proc/self/pagemap` (no IOMMU in the guest, so a
//! physical address is a bus address), queue pairs polled on their phase
//! tags, and the controller's reset and enable (NVMe Base 1.4 §7.6.1).

use std::fs::File;
use std::io::{Error, Result};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

/// The host page size the queues and buffers use (CC.MPS = 0).
pub const PAGE: usize = 4096;

/// Controller registers (NVMe Base 1.4 §3.1).
pub mod reg {
    /// Controller Capabilities (64-bit).
    pub const CAP: usize = 0x00;
    /// Controller Configuration.
    pub const CC: usize = 0x14;
    /// Controller Status.
    pub const CSTS: usize = 0x1c;
    /// Admin Queue Attributes.
    pub const AQA: usize = 0x24;
    /// Admin SQ Base Address (64-bit).
    pub const ASQ: usize = 0x28;
    /// Admin CQ Base Address (64-bit).
    pub const ACQ: usize = 0x30;
    /// The first doorbell (SQ 0 tail).
    pub const DOORBELLS: usize = 0x1000;
}

pub use crate::sysfs_bar::{fail, sysfs, Bar};

impl Bar {
    /// The dword register at `off`.
    pub fn r32(&self, off: usize) -> u32 {
        assert!(
            off + 4 <= self.len && off.is_multiple_of(4),
            "register {off:#x}"
        );
        // SAFETY: in bounds and aligned in the live mapping; MMIO wants
        // volatile accesses.
        unsafe { self.ptr.add(off).cast::<u32>().read_volatile() }
    }

    /// Writes the dword register at `off`.
    pub fn w32(&self, off: usize, v: u32) {
        assert!(
            off + 4 <= self.len && off.is_multiple_of(4),
            "register {off:#x}"
        );
        // Queue entries written to RAM before are seen first (x86 keeps
        // stores in order; this keeps the compiler from reordering).
        fence(Ordering::SeqCst);
        // SAFETY: as in `r32`.
        unsafe { self.ptr.add(off).cast::<u32>().write_volatile(v) }
    }

    /// A 64-bit register as two dwords (low first).
    pub fn r64(&self, off: usize) -> u64 {
        u64::from(self.r32(off)) | (u64::from(self.r32(off + 4)) << 32)
    }

    /// Writes a 64-bit register as two dwords (low first).
    pub fn w64(&self, off: usize, v: u64) {
        self.w32(off, v as u32);
        self.w32(off + 4, (v >> 32) as u32);
    }
}

/// One 4 KiB page of DMA memory: where this process sees it and its bus
/// address. It lives as long as the [`Dma`] it came from.
#[derive(Clone, Copy)]
pub struct Page {
    ptr: *mut u8,
    /// The page's bus (physical) address.
    pub phys: u64,
}

impl Page {
    /// The dword at byte `off`.
    pub fn r32(&self, off: usize) -> u32 {
        assert!(off + 4 <= PAGE && off.is_multiple_of(4));
        // SAFETY: in bounds of a live, locked page; the device writes it.
        unsafe { self.ptr.add(off).cast::<u32>().read_volatile() }
    }

    /// Writes the dword at byte `off`.
    pub fn w32(&self, off: usize, v: u32) {
        assert!(off + 4 <= PAGE && off.is_multiple_of(4));
        // SAFETY: as in `r32`.
        unsafe { self.ptr.add(off).cast::<u32>().write_volatile(v) }
    }

    /// The little-endian u64 at byte `off`.
    pub fn r64(&self, off: usize) -> u64 {
        u64::from(self.r32(off)) | (u64::from(self.r32(off + 4)) << 32)
    }

    /// `len` bytes at `off`.
    pub fn bytes(&self, off: usize, len: usize) -> Vec<u8> {
        (off..off + len)
            .map(|i| (self.r32(i & !3) >> (8 * (i & 3))) as u8)
            .collect()
    }

    /// Fills the page with `v` dwords.
    pub fn fill(&self, v: u32) {
        for off in (0..PAGE).step_by(4) {
            self.w32(off, v);
        }
    }
}

/// Anonymous pages locked in RAM, with their physical addresses.
pub struct Dma {
    base: *mut u8,
    len: usize,
    /// The pages, in mapping order (not physically contiguous).
    pub pages: Vec<Page>,
}

impl Dma {
    /// `n` zeroed pages, locked, with their PFNs from `/proc/self/pagemap`
    /// (bits 0-54 PFN, bit 63 present; root sees the PFNs).
    pub fn alloc(n: usize) -> Result<Dma> {
        let len = n * PAGE;
        // SAFETY: a fresh anonymous mapping; nothing else aliases it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(fail(format!("mmap: {}", Error::last_os_error())));
        }
        let mut dma = Dma {
            base: p.cast(),
            len,
            pages: Vec::new(),
        };
        // SAFETY: the mapping just made.
        if unsafe { libc::mlock(p, len) } != 0 {
            return Err(fail(format!("mlock: {}", Error::last_os_error())));
        }
        let pagemap = File::open("/proc/self/pagemap")?;
        let mut pages = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: page i of the mapping.
            let ptr = unsafe { dma.base.add(i * PAGE) };
            let page = Page { ptr, phys: 0 };
            page.fill(0); // touch it: a private anonymous page of its own
            let mut e = [0u8; 8];
            pagemap.read_exact_at(&mut e, (ptr as u64 / PAGE as u64) * 8)?;
            let e = u64::from_le_bytes(e);
            let pfn = e & ((1 << 55) - 1);
            if e >> 63 == 0 || pfn == 0 {
                return Err(fail(format!("pagemap: no PFN for page {i} ({e:#x})")));
            }
            pages.push(Page {
                ptr,
                phys: pfn * PAGE as u64,
            });
        }
        dma.pages = pages;
        Ok(dma)
    }
}

impl Drop for Dma {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `alloc`.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A submission queue entry being built: 16 dwords.
#[derive(Clone, Copy, Default)]
pub struct Cmd(pub [u32; 16]);

impl Cmd {
    /// Opcode `op`, everything else zero.
    pub fn new(op: u8) -> Cmd {
        let mut c = Cmd::default();
        c.0[0] = u32::from(op);
        c
    }
    /// Namespace ID.
    pub fn nsid(mut self, n: u32) -> Cmd {
        self.0[1] = n;
        self
    }
    /// PRP entries 1 and 2.
    pub fn prp(mut self, p1: u64, p2: u64) -> Cmd {
        self.0[6..10].copy_from_slice(&[
            p1 as u32,
            (p1 >> 32) as u32,
            p2 as u32,
            (p2 >> 32) as u32,
        ]);
        self
    }
    /// Command dword `n` (10-15).
    pub fn dw(mut self, n: usize, v: u32) -> Cmd {
        self.0[n] = v;
        self
    }
}

/// A completion queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    /// Dword 0 (command specific).
    pub dw0: u32,
    /// SQ Head Pointer.
    pub sq_head: u16,
    /// SQ Identifier.
    pub sq_id: u16,
    /// Command Identifier.
    pub cid: u16,
    /// The Status Field, bits 15:1 of dword 3's upper half (phase dropped).
    pub status: u16,
}

impl Cqe {
    /// Status Code Type.
    pub fn sct(&self) -> u8 {
        ((self.status >> 8) & 7) as u8
    }
    /// Status Code.
    pub fn sc(&self) -> u8 {
        self.status as u8
    }
    /// `SCT x SC yy`, as the checks print it.
    pub fn st(&self) -> String {
        format!("SCT {} SC {:#04x}", self.sct(), self.sc())
    }
}

/// A queue pair the host drives: SQ and CQ each in one page.
pub struct Queue {
    /// The SQ's page.
    pub sq: Page,
    /// The CQ's page.
    pub cq: Page,
    /// SQ entries.
    pub sq_size: u16,
    /// CQ entries.
    pub cq_size: u16,
    /// The host's SQ tail.
    pub tail: u16,
    /// The host's CQ head.
    pub head: u16,
    /// The phase tag expected at `head`.
    pub phase: bool,
    next_cid: u16,
    /// Completions seen while waiting for another command.
    stash: Vec<Cqe>,
}

impl Queue {
    /// A queue pair in pages `sq` and `cq` (zeroed), command IDs from `cid0`.
    pub fn new(sq: Page, cq: Page, sq_size: u16, cq_size: u16, cid0: u16) -> Queue {
        sq.fill(0);
        cq.fill(0);
        Queue {
            sq,
            cq,
            sq_size,
            cq_size,
            tail: 0,
            head: 0,
            phase: true,
            next_cid: cid0,
            stash: Vec::new(),
        }
    }

    /// Writes `c` at the tail with a fresh command ID and advances the
    /// tail, without ringing. Returns the command ID.
    pub fn put(&mut self, mut c: Cmd) -> u16 {
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        c.0[0] = (c.0[0] & 0xffff) | (u32::from(cid) << 16);
        let at = usize::from(self.tail) * 64;
        for (i, d) in c.0.iter().enumerate() {
            self.sq.w32(at + 4 * i, *d);
        }
        self.tail = (self.tail + 1) % self.sq_size;
        cid
    }

    /// The entry in CQ slot `slot` and its phase tag.
    pub fn slot(&self, slot: u16) -> (Cqe, bool) {
        let at = usize::from(slot) * 16;
        let (dw0, dw2, dw3) = (self.cq.r32(at), self.cq.r32(at + 8), self.cq.r32(at + 12));
        let e = Cqe {
            dw0,
            sq_head: dw2 as u16,
            sq_id: (dw2 >> 16) as u16,
            cid: dw3 as u16,
            status: ((dw3 >> 16) as u16) >> 1,
        };
        (e, dw3 & (1 << 16) != 0)
    }

    /// The next completion if its phase tag says it is new; advances the
    /// host's head without ringing.
    pub fn take(&mut self) -> Option<Cqe> {
        let (e, p) = self.slot(self.head);
        if p != self.phase {
            return None;
        }
        self.head += 1;
        if self.head == self.cq_size {
            self.head = 0;
            self.phase = !self.phase;
        }
        Some(e)
    }
}

/// The controller, enabled, with its admin queue.
pub struct Ctrl {
    /// BAR 0.
    pub bar: Bar,
    /// CAP.MQES (0-based).
    pub mqes: u32,
    dstrd: u32,
    timeout: Duration,
    /// The admin queue pair.
    pub admin: Queue,
}

/// Admin queue entries (both queues).
pub const ADMIN_ENTRIES: u16 = 16;

/// How long a command that must complete may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// Polls `f` until it returns `Some` or `limit` passes.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

impl Ctrl {
    /// Resets the controller behind `bar` (CC.EN = 0, CSTS.RDY = 0), then
    /// gives it the admin queue in pages `asq`/`acq` and enables it
    /// (IOSQES 6, IOCQES 4, 4 KiB pages, NVM command set).
    pub fn init(bar: Bar, asq: Page, acq: Page) -> Result<Ctrl> {
        let cap = bar.r64(reg::CAP);
        let timeout = Duration::from_millis(500 * ((cap >> 24) & 0xff).max(1));
        let c = Ctrl {
            mqes: (cap & 0xffff) as u32,
            dstrd: ((cap >> 32) & 0xf) as u32,
            timeout,
            admin: Queue::new(asq, acq, ADMIN_ENTRIES, ADMIN_ENTRIES, 0x10),
            bar,
        };
        c.disable()?;
        let n = u32::from(ADMIN_ENTRIES - 1);
        c.bar.w32(reg::AQA, (n << 16) | n);
        c.bar.w64(reg::ASQ, asq.phys);
        c.bar.w64(reg::ACQ, acq.phys);
        c.bar.w32(reg::CC, 1 | (6 << 16) | (4 << 20));
        c.wait_rdy(true)?;
        Ok(c)
    }

    /// CC.EN = 0 and waits for CSTS.RDY = 0 (CAP.TO).
    pub fn disable(&self) -> Result<()> {
        self.bar.w32(reg::CC, 0);
        self.wait_rdy(false)
    }

    fn wait_rdy(&self, on: bool) -> Result<()> {
        let csts = poll(self.timeout, || {
            let s = self.bar.r32(reg::CSTS);
            (s & 1 == u32::from(on) || s & 2 != 0).then_some(s)
        });
        match csts {
            Some(s) if s & 2 == 0 => Ok(()),
            s => Err(fail(format!(
                "CSTS.RDY did not become {}: CSTS {s:#x?}",
                u8::from(on)
            ))),
        }
    }

    /// CSTS now.
    pub fn csts(&self) -> u32 {
        self.bar.r32(reg::CSTS)
    }

    /// The offset of doorbell `index` (2 qid: SQ tail, 2 qid + 1: CQ head).
    pub fn doorbell(&self, index: usize) -> usize {
        reg::DOORBELLS + index * (4 << self.dstrd)
    }

    /// Writes SQ `qid`'s tail doorbell.
    pub fn ring_sq(&self, qid: u16, v: u32) {
        self.bar.w32(self.doorbell(2 * usize::from(qid)), v);
    }

    /// Writes CQ `qid`'s head doorbell.
    pub fn ring_cq(&self, qid: u16, v: u32) {
        self.bar.w32(self.doorbell(2 * usize::from(qid) + 1), v);
    }

    /// Puts `c` on the admin SQ and rings it. Returns its command ID.
    pub fn submit(&mut self, c: Cmd) -> u16 {
        let cid = self.admin.put(c);
        self.ring_sq(0, u32::from(self.admin.tail));
        cid
    }

    /// Waits up to `limit` for admin command `cid`'s completion; other
    /// completions seen meanwhile are kept for later waits.
    pub fn wait(&mut self, cid: u16, limit: Duration) -> Option<Cqe> {
        if let Some(i) = self.admin.stash.iter().position(|e| e.cid == cid) {
            return Some(self.admin.stash.remove(i));
        }
        poll(limit, || {
            while let Some(e) = self.admin.take() {
                self.ring_cq(0, u32::from(self.admin.head));
                if e.cid == cid {
                    return Some(e);
                }
                self.admin.stash.push(e);
            }
            None
        })
    }

    /// Runs admin command `c` to completion (error after [`WAIT`]).
    pub fn exec(&mut self, c: Cmd) -> Result<Cqe> {
        let op = c.0[0] as u8;
        let cid = self.submit(c);
        self.wait(cid, WAIT).ok_or_else(|| {
            fail(format!(
                "admin opcode {op:#04x} (cid {cid:#x}) never completed"
            ))
        })
    }
}
