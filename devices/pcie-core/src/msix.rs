//! MSI-X (PCIe Base, "MSI-X Capability and Table Structure"), for every
//! device: the capability in config space, the vector table and the
//! Pending Bit Array in a BAR, per-vector and function masking.
//!
//! [`Msix`] never sends anything itself. [`Msix::trigger`] and the writes
//! that unmask a vector return the messages that are due, and the device
//! sends them with [`DmaHandle::msi`](crate::DmaHandle::msi) after it has
//! dropped its own lock: an interrupt is a DMA, and no device lock is held
//! while a DMA is routed.

use crate::capability::cap_id;
use crate::{ConfigSpace, Error};

/// Registers of the MSI-X capability, as offsets from its start.
pub mod msix_reg {
    /// Message Control (16 bits).
    pub const CONTROL: u16 = 2;
    /// Table Offset (bits 31:3) and Table BIR (bits 2:0).
    pub const TABLE: u16 = 4;
    /// PBA Offset (bits 31:3) and PBA BIR (bits 2:0).
    pub const PBA: u16 = 8;
}

/// Message Control bits.
pub mod msix_control {
    /// MSI-X Enable.
    pub const ENABLE: u16 = 1 << 15;
    /// Function Mask: every vector masked.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// Table Size, encoded as N - 1.
    pub const TABLE_SIZE: u16 = 0x7ff;
}

/// One table entry: 16 bytes.
pub const MSIX_ENTRY_SIZE: u64 = 16;
/// Offsets inside an entry.
mod entry {
    pub const ADDR_LO: usize = 0;
    pub const ADDR_HI: usize = 1;
    pub const DATA: usize = 2;
    pub const VECTOR_CONTROL: usize = 3;
}
/// Vector Control: Mask Bit.
pub const MSIX_VECTOR_MASKED: u32 = 1;
/// Most vectors a function can have.
pub const MSIX_MAX_VECTORS: u16 = 2048;

/// An interrupt message that is due: write `data` at `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiMessage {
    /// Message address.
    pub addr: u64,
    /// Message data.
    pub data: u32,
}

/// Where a structure lives: BAR index and offset (8-byte aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixPlacement {
    /// BAR index (BIR), 0..=5.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u32,
}

/// A function's MSI-X state: the capability's offset, the table and the
/// pending bits.
#[derive(Debug, Clone)]
pub struct Msix {
    cap: u16,
    table: MsixPlacement,
    pba: MsixPlacement,
    /// Each entry as four DWORDs: address low, address high, data, control.
    entries: Vec<[u32; 4]>,
    pending: Vec<u64>,
}

impl Msix {
    /// Adds an MSI-X capability with `vectors` vectors to `cs`, its table
    /// and PBA at the given places. Every vector starts masked, as after
    /// reset.
    pub fn add(
        cs: &mut ConfigSpace,
        vectors: u16,
        table: MsixPlacement,
        pba: MsixPlacement,
    ) -> Result<Self, Error> {
        let bad = |field, value: u64| Err(Error::FieldOutOfRange { field, value });
        if vectors == 0 || vectors > MSIX_MAX_VECTORS {
            return bad("MSI-X vectors (1..=2048)", vectors.into());
        }
        for p in [table, pba] {
            if p.bar > 5 {
                return bad("MSI-X BIR (0..=5)", p.bar.into());
            }
            if !p.offset.is_multiple_of(8) {
                return bad("MSI-X structure offset (8-byte aligned)", p.offset.into());
            }
        }
        let mut body = [0u8; 10];
        body[0..2].copy_from_slice(&(vectors - 1).to_le_bytes());
        body[2..6].copy_from_slice(&(table.offset | u32::from(table.bar)).to_le_bytes());
        body[6..10].copy_from_slice(&(pba.offset | u32::from(pba.bar)).to_le_bytes());
        let mut writable = [0u8; 10];
        // Enable and Function Mask are the only writable bits.
        writable[1] = ((msix_control::ENABLE | msix_control::FUNCTION_MASK) >> 8) as u8;
        let cap = cs.add_capability(cap_id::MSIX, &body, &writable)?;
        let mut msix = Msix {
            cap,
            table,
            pba,
            entries: vec![[0; 4]; usize::from(vectors)],
            pending: vec![0; usize::from(vectors).div_ceil(64)],
        };
        msix.reset();
        Ok(msix)
    }

    /// The capability's offset in config space.
    pub fn capability(&self) -> u16 {
        self.cap
    }

    /// Number of vectors.
    pub fn vectors(&self) -> u16 {
        self.entries.len() as u16
    }

    /// Where the table lives.
    pub fn table(&self) -> MsixPlacement {
        self.table
    }

    /// Where the PBA lives.
    pub fn pba(&self) -> MsixPlacement {
        self.pba
    }

    /// Size of the table in bytes.
    pub fn table_len(&self) -> u64 {
        self.entries.len() as u64 * MSIX_ENTRY_SIZE
    }

    /// Size of the PBA in bytes (whole QWORDs).
    pub fn pba_len(&self) -> u64 {
        self.pending.len() as u64 * 8
    }

    /// Back to the reset state: every vector masked, nothing pending. The
    /// config-space bits are reset with the rest of config space.
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            *e = [0, 0, 0, MSIX_VECTOR_MASKED];
        }
        self.pending.iter_mut().for_each(|p| *p = 0);
    }

    fn control(cs: &ConfigSpace, cap: u16) -> u16 {
        cs.u16_at(cap + msix_reg::CONTROL)
    }

    /// True when MSI-X Enable is set in `cs`.
    pub fn enabled(&self, cs: &ConfigSpace) -> bool {
        Self::control(cs, self.cap) & msix_control::ENABLE != 0
    }

    fn masked(&self, cs: &ConfigSpace, v: usize) -> bool {
        Self::control(cs, self.cap) & msix_control::FUNCTION_MASK != 0
            || self.entries[v][entry::VECTOR_CONTROL] & MSIX_VECTOR_MASKED != 0
    }

    fn message(&self, v: usize) -> MsiMessage {
        let e = &self.entries[v];
        MsiMessage {
            addr: u64::from(e[entry::ADDR_LO]) | (u64::from(e[entry::ADDR_HI]) << 32),
            data: e[entry::DATA],
        }
    }

    /// True when `vector`'s pending bit is set.
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        v < self.entries.len() && self.pending[v / 64] & (1 << (v % 64)) != 0
    }

    /// The device signals `vector`. Returns the message to send now; when
    /// the vector or the function is masked, sets its pending bit instead
    /// (the message goes when it is unmasked). Nothing happens while MSI-X
    /// is disabled, or for a vector the table does not have.
    pub fn trigger(&mut self, cs: &ConfigSpace, vector: u16) -> Option<MsiMessage> {
        let v = usize::from(vector);
        if v >= self.entries.len() || !self.enabled(cs) {
            return None;
        }
        if self.masked(cs, v) {
            self.pending[v / 64] |= 1 << (v % 64);
            return None;
        }
        Some(self.message(v))
    }

    /// Messages that became due: pending vectors that are now unmasked,
    /// their pending bits cleared. Call it after a config write to Message
    /// Control (the function mask) and after a table write.
    pub fn take_due(&mut self, cs: &ConfigSpace) -> Vec<MsiMessage> {
        if !self.enabled(cs) {
            return Vec::new();
        }
        let mut due = Vec::new();
        for v in 0..self.entries.len() {
            if self.pending[v / 64] & (1 << (v % 64)) != 0 && !self.masked(cs, v) {
                self.pending[v / 64] &= !(1 << (v % 64));
                due.push(self.message(v));
            }
        }
        due
    }

    /// A read of the table at `offset` (from the table's start). Bytes
    /// past the table read as zero.
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| self.table_byte(o))
                .unwrap_or(0);
        }
    }

    fn table_byte(&self, o: u64) -> Option<u8> {
        let dw = self
            .entries
            .get(usize::try_from(o / MSIX_ENTRY_SIZE).ok()?)?[((o % MSIX_ENTRY_SIZE) / 4) as usize];
        Some(dw.to_le_bytes()[(o % 4) as usize])
    }

    /// A write of the table at `offset`. Returns the messages it made due
    /// (a pending vector unmasked). Writes past the table are dropped; only
    /// the Mask Bit of Vector Control is writable.
    pub fn table_write(&mut self, cs: &ConfigSpace, offset: u64, data: &[u8]) -> Vec<MsiMessage> {
        for (i, &b) in data.iter().enumerate() {
            let Some(o) = offset.checked_add(i as u64) else {
                break;
            };
            let Some(e) = usize::try_from(o / MSIX_ENTRY_SIZE)
                .ok()
                .and_then(|n| self.entries.get_mut(n))
            else {
                continue;
            };
            let dw = ((o % MSIX_ENTRY_SIZE) / 4) as usize;
            let shift = 8 * (o % 4) as u32;
            let mut v = (e[dw] & !(0xff << shift)) | (u32::from(b) << shift);
            match dw {
                entry::ADDR_LO => v &= !0x3, // DWORD aligned
                entry::VECTOR_CONTROL => v &= MSIX_VECTOR_MASKED,
                _ => {}
            }
            e[dw] = v;
        }
        self.take_due(cs)
    }

    /// A read of the PBA at `offset` (from the PBA's start). Bytes past it
    /// read as zero. Writes to the PBA are ignored (it is read-only).
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| {
                    let q = self.pending.get(usize::try_from(o / 8).ok()?)?;
                    Some(q.to_le_bytes()[(o % 8) as usize])
                })
                .unwrap_or(0);
        }
    }
}
