//! An interrupt the unit raises (the fault event and the invalidation
//! event, VT-d 7.3 and 6.5.2.7): a control register with Interrupt Mask
//! and Interrupt Pending, and its message's data, address and upper
//! address.

use crate::regs::event::{IM, IP};

/// An interrupt message: (address, data).
pub(crate) type Msi = (u64, u32);

/// One event's registers.
#[derive(Debug, Default)]
pub(crate) struct Event {
    /// Control: IM (writable) and IP (read-only).
    pub(crate) ctl: u32,
    /// Data.
    pub(crate) data: u32,
    /// Address (bits 1:0 read 0).
    pub(crate) addr: u32,
    /// Upper address.
    pub(crate) uaddr: u32,
}

impl Event {
    fn message(&self) -> Msi {
        (
            u64::from(self.uaddr) << 32 | u64::from(self.addr),
            self.data,
        )
    }

    /// A new condition: the message, or IP when masked (by IM, or `lost`:
    /// an injected mask that FECTL does not show). Nothing while one is
    /// already pending.
    pub(crate) fn raise(&mut self, lost: bool) -> Option<Msi> {
        if self.ctl & IP != 0 {
            return None;
        }
        if self.ctl & IM != 0 || lost {
            self.ctl |= IP;
            return None;
        }
        Some(self.message())
    }

    /// A write of the control register: unmasking with IP set sends the
    /// pending message (unless `lost`).
    pub(crate) fn write_ctl(&mut self, v: u32, lost: bool) -> Option<Msi> {
        self.ctl = (self.ctl & IP) | (v & IM);
        if self.ctl & (IM | IP) == IP && !lost {
            self.ctl &= !IP;
            return Some(self.message());
        }
        None
    }

    /// Software serviced every condition: nothing is pending any more.
    pub(crate) fn serviced(&mut self) {
        self.ctl &= !IP;
    }
}
