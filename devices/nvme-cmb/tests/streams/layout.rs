//! Guest RAM's zones and [`GuardRam`], which polices device accesses.
//!
//! Every address a generated command can make the controller touch in RAM
//! lies in a zone that allows it: data pages (read and written), the
//! host's PRP list and SGL segment pages (written by the host only, fresh
//! for each command; the controller reads them, and writes one only when
//! it is a command's second data page), SQs (read), CQs (written), the
//! shadow doorbell (read) and EventIdx (written) pages, and Dataset
//! Management range lists (read). Everything else in RAM is a canary,
//! and the vector behind RAM goes on past RAM's end as a guard that the
//! fabric must never reach (it routes only `0..RAM_SIZE` to RAM).
//! [`GuardRam`] gives no host mapping (`GuestRam::host_range`), so mapped
//! DMA into RAM falls back to its policed copies.

use std::sync::{Mutex, OnceLock};

use pcie_core::GuestRam;

/// Guest RAM as the fabric knows it: 8 MiB at 0.
pub const RAM_SIZE: u64 = 8 << 20;
/// Bytes of the vector past RAM's end.
pub const GUARD: u64 = 64 << 10;
/// A memory page (CC.MPS is 0 throughout).
pub const PAGE: u64 = 4096;

/// Data pages: any data pointer's RAM target.
pub const DATA: (u64, u64) = (0, 0x20_0000);
/// PRP list and SGL segment pages, one set per command.
pub const LISTS: (u64, u64) = (0x20_0000, 0x40_0000);
/// The admin SQ.
pub const ASQ: u64 = 0x40_0000;
/// The admin CQ.
pub const ACQ: u64 = 0x40_1000;
/// Admin queue entries.
pub const ADMIN_ENTRIES: u32 = 32;
/// I/O SQ slots, one per queue ID 0..=64 (0 for invalid IDs).
pub const SQ_SLOTS: (u64, u64) = (0x41_0000, 0x41_0000 + 65 * SQ_SLOT);
/// Bytes of an SQ slot: more entries than a case ever submits.
pub const SQ_SLOT: u64 = 0x2000;
/// I/O CQ slots, as SQ slots.
pub const CQ_SLOTS: (u64, u64) = (0x4a_0000, 0x4a_0000 + 65 * CQ_SLOT);
/// Bytes of a CQ slot.
pub const CQ_SLOT: u64 = 0x1000;
/// Two shadow doorbell pages, each followed by its EventIdx page.
pub const SHADOW: u64 = 0x50_0000;
/// Dataset Management range lists, a page per command.
pub const DSM_LISTS: (u64, u64) = (0x51_0000, 0x55_0000);

/// The RAM no device access may touch, filled with the canary.
pub const FORBIDDEN: [(u64, u64); 5] = [
    (ACQ + PAGE, SQ_SLOTS.0),
    (SQ_SLOTS.1, CQ_SLOTS.0),
    (CQ_SLOTS.1, SHADOW),
    (SHADOW + 4 * PAGE, DSM_LISTS.0),
    (DSM_LISTS.1, RAM_SIZE),
];

/// The slot of SQ `qid` (slot 0 for an invalid ID).
pub fn sq_slot(qid: u32) -> u64 {
    let i = if (1..=64).contains(&qid) { qid } else { 0 };
    SQ_SLOTS.0 + u64::from(i) * SQ_SLOT
}

/// The slot of CQ `qid`.
pub fn cq_slot(qid: u32) -> u64 {
    let i = if (1..=64).contains(&qid) { qid } else { 0 };
    CQ_SLOTS.0 + u64::from(i) * CQ_SLOT
}

/// Shadow doorbell page `pair` (0 or 1); its EventIdx page follows it.
pub fn shadow_dbs(pair: u8) -> u64 {
    SHADOW + 2 * PAGE * u64::from(pair & 1)
}

/// May a device read (or, with `write`, write) `len` bytes at `addr`?
pub fn device_may(addr: u64, len: u64, write: bool) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    let inside = |(lo, hi): (u64, u64)| lo <= addr && end <= hi;
    let page = |at: u64| (at, at + PAGE);
    if inside(DATA) || inside(LISTS) {
        return true;
    }
    if write {
        inside(page(ACQ))
            || inside(CQ_SLOTS)
            || inside(page(shadow_dbs(0) + PAGE))
            || inside(page(shadow_dbs(1) + PAGE))
    } else {
        inside(page(ASQ))
            || inside(SQ_SLOTS)
            || inside(page(shadow_dbs(0)))
            || inside(page(shadow_dbs(1)))
            || inside(DSM_LISTS)
    }
}

/// RAM's first contents: zeros, the canary in the forbidden zones and the
/// guard (built once; every case starts from a copy).
fn image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut v = vec![0u8; (RAM_SIZE + GUARD) as usize];
        let canary = FORBIDDEN
            .iter()
            .copied()
            .chain([(RAM_SIZE, RAM_SIZE + GUARD)]);
        for (lo, hi) in canary {
            for a in lo..hi {
                v[a as usize] = (a.wrapping_mul(0x9e37_79b9) >> 11) as u8 ^ 0xa5;
            }
        }
        v
    })
}

/// Guest RAM that records every device access outside the zones that
/// allow it. The host side ([`poke`](Self::poke), [`peek`](Self::peek))
/// is not policed.
pub struct GuardRam {
    mem: Mutex<Vec<u8>>,
    violations: Mutex<Vec<String>>,
}

impl GuardRam {
    /// RAM in its first state.
    pub fn new() -> GuardRam {
        GuardRam {
            mem: Mutex::new(image().to_vec()),
            violations: Mutex::new(Vec::new()),
        }
    }

    /// The host writes `data` at `addr` (inside RAM).
    pub fn poke(&self, addr: u64, data: &[u8]) {
        assert!(addr + data.len() as u64 <= RAM_SIZE, "host poke {addr:#x}");
        let at = addr as usize;
        self.mem.lock().unwrap()[at..at + data.len()].copy_from_slice(data);
    }

    /// The host reads `len` bytes at `addr` (inside RAM).
    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        assert!(addr + len as u64 <= RAM_SIZE, "host peek {addr:#x}");
        let at = addr as usize;
        self.mem.lock().unwrap()[at..at + len].to_vec()
    }

    /// Device accesses that broke the zone map.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// The first forbidden or guard byte that changed, if any.
    pub fn canary_damage(&self) -> Option<u64> {
        let mem = self.mem.lock().unwrap();
        let img = image();
        let canary = FORBIDDEN
            .iter()
            .copied()
            .chain([(RAM_SIZE, RAM_SIZE + GUARD)]);
        for (lo, hi) in canary {
            let (lo, hi) = (lo as usize, hi as usize);
            if mem[lo..hi] != img[lo..hi] {
                let at = (lo..hi).find(|&i| mem[i] != img[i]).unwrap();
                return Some(at as u64);
            }
        }
        None
    }

    /// Records the access unless the zones allow it; true when the vector
    /// holds the bytes (the guard past RAM included, so that a misrouted
    /// write shows in the canary too).
    fn police(&self, addr: u64, len: usize, write: bool) -> Option<usize> {
        let what = if write { "write" } else { "read" };
        let end = addr.checked_add(len as u64);
        if end.is_none_or(|e| e > RAM_SIZE) {
            self.violations.lock().unwrap().push(format!(
                "device {what} of {len} bytes at {addr:#x}: beyond RAM"
            ));
        } else if !device_may(addr, len as u64, write) {
            self.violations.lock().unwrap().push(format!(
                "device {what} of {len} bytes at {addr:#x}: forbidden zone"
            ));
        }
        end.filter(|&e| e <= RAM_SIZE + GUARD)
            .map(|_| addr as usize)
    }
}

impl GuestRam for GuardRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(at) = self.police(addr, buf.len(), false) else {
            return false;
        };
        buf.copy_from_slice(&self.mem.lock().unwrap()[at..at + buf.len()]);
        true
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let Some(at) = self.police(addr, buf.len(), true) else {
            return false;
        };
        self.mem.lock().unwrap()[at..at + buf.len()].copy_from_slice(buf);
        true
    }
}
