//! Injected ACS misbehaviour of a port: control bits stuck on while ACS
//! Control reads them clear, and a capability hidden from software while
//! the port keeps redirecting. The fabric's router reads it through
//! [`PciFunction::acs_fault`](pcie_core::PciFunction::acs_fault).

use pcie_core::{acs_reg, aer_reg, AcsBits, AcsFault};

use super::PciBridge;
use crate::{acs, Error};

/// What is injected, and how the capability was unlinked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultState {
    stuck_on: AcsBits,
    /// Hidden: `Some(pred)` as [`acs::unlink`] returned it.
    hidden: Option<Option<u16>>,
}

impl PciBridge {
    /// Makes the port apply `stuck_on` whatever ACS Control says, and,
    /// with `hidden`, takes its ACS capability out of the extended list
    /// while the port goes on applying its control bits. The fault
    /// survives resets. Needs an ACS capability implementing `stuck_on`.
    pub fn set_acs_fault(&mut self, stuck_on: AcsBits, hidden: bool) -> Result<(), Error> {
        let (Some(off), Some(cfg)) = (self.caps.acs, self.config.acs) else {
            return Err(Error::AcsFaultWithoutAcs);
        };
        if !cfg.capability.contains(stuck_on) {
            return Err(Error::AcsStuckNotImplemented {
                stuck: stuck_on.bits(),
                capability: cfg.capability.bits(),
            });
        }
        match (self.fault.hidden, hidden) {
            (None, true) => {
                let pred = acs::unlink(&mut self.space, off);
                acs::unlink(&mut self.power_on, off);
                self.fault.hidden = Some(pred);
            }
            (Some(pred), false) => {
                acs::relink(&mut self.space, off, pred);
                acs::relink(&mut self.power_on, off, pred);
                self.fault.hidden = None;
            }
            _ => {}
        }
        self.fault.stuck_on = stuck_on;
        Ok(())
    }

    /// The injected fault as the router sees it; `None` when healthy.
    pub(crate) fn fault_view(&self) -> Option<AcsFault> {
        if self.fault == FaultState::default() {
            return None;
        }
        let hidden = self.fault.hidden.and_then(|_| {
            let off = self.caps.acs?;
            let regs = self.space.u32_at(off + acs_reg::CAPABILITY);
            Some((
                AcsBits::from_register(regs as u16),
                AcsBits::from_register((regs >> 16) as u16),
            ))
        });
        Some(AcsFault {
            stuck_on: self.fault.stuck_on,
            hidden,
        })
    }

    /// Logs an uncorrectable error the port detected (an injected TLP
    /// fault) in its AER capability: the status bit, and the First Error
    /// Pointer when nothing was logged yet. False without AER or when
    /// the error is masked.
    pub(crate) fn log_uncorrectable(&mut self, status_bit: u32) -> bool {
        let Some(off) = self.caps.aer else {
            return false;
        };
        if self.space.u32_at(off + aer_reg::UNCOR_MASK) & status_bit != 0 {
            return false;
        }
        let status = self.space.u32_at(off + aer_reg::UNCOR_STATUS);
        self.space
            .set_u32(off + aer_reg::UNCOR_STATUS, status | status_bit);
        if status == 0 {
            let ctl = self.space.u32_at(off + aer_reg::CAP_CONTROL);
            self.space.set_u32(
                off + aer_reg::CAP_CONTROL,
                (ctl & !0x1f) | status_bit.trailing_zeros(),
            );
        }
        true
    }
}
