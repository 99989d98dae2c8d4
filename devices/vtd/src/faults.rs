//! Primary fault recording (VT-d 7.2.1) and the fault event (7.3).

use crate::regs::{fsts, FAULT_RECORDS, FRCD_F, FRCD_T_READ};
use crate::walk::FaultReason;

/// One fault record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultRecord {
    /// The faulting page (bits 63:12 of the address).
    pub page: u64,
    /// The requester.
    pub source: u16,
    /// Why.
    pub reason: FaultReason,
    /// A read request (else a write).
    pub read: bool,
}

impl FaultRecord {
    /// The record's four dwords, as software reads them.
    pub fn dwords(&self) -> [u32; 4] {
        let t = if self.read { FRCD_T_READ } else { 0 };
        [
            self.page as u32 & !0xfff,
            (self.page >> 32) as u32,
            u32::from(self.source),
            FRCD_F | t | self.reason as u32,
        ]
    }
}

/// The fault recording registers and the status bits they drive.
#[derive(Debug, Default)]
pub struct Faults {
    records: [Option<FaultRecord>; FAULT_RECORDS],
    /// Where the next fault goes.
    next: usize,
    /// FSTS's write-1-to-clear bits (PFO, IQE, ICE, ITE).
    pub status: u32,
}

impl Faults {
    /// Records `f`. Returns whether a new fault condition arose (the
    /// first pending record, or an overflow): the fault event's cue.
    pub fn record(&mut self, f: FaultRecord) -> bool {
        let had = self.pending();
        if self.records[self.next].is_some() {
            let new = self.status & fsts::PFO == 0;
            self.status |= fsts::PFO;
            return new;
        }
        self.records[self.next] = Some(f);
        self.next = (self.next + 1) % FAULT_RECORDS;
        !had
    }

    /// Some record is pending (FSTS.PPF).
    pub fn pending(&self) -> bool {
        self.records.iter().any(Option::is_some)
    }

    /// FSTS as software reads it: the W1C bits, PPF, and FRI (the oldest
    /// pending record).
    pub fn fsts(&self) -> u32 {
        let oldest = (0..FAULT_RECORDS)
            .map(|i| (self.next + i) % FAULT_RECORDS)
            .find(|&i| self.records[i].is_some());
        match oldest {
            Some(i) => self.status | fsts::PPF | (i as u32) << fsts::FRI_SHIFT,
            None => self.status,
        }
    }

    /// Dword `dw` (0..4) of record `i`.
    pub fn read(&self, i: usize, dw: usize) -> u32 {
        self.records
            .get(i)
            .copied()
            .flatten()
            .map_or(0, |r| r.dwords()[dw])
    }

    /// A write to the record's top dword: F is write-1-to-clear.
    pub fn clear(&mut self, i: usize, value: u32) {
        if value & FRCD_F != 0 {
            if let Some(r) = self.records.get_mut(i) {
                *r = None;
            }
        }
    }

    /// Whether any fault condition is unserviced (what keeps IP set).
    pub fn unserviced(&self) -> bool {
        self.pending() || self.status != 0
    }
}
