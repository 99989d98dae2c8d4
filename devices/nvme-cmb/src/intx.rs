//! Pin-based interrupts (NVMe 1.4 §7.5.1.1), the fallback when MSI-X is
//! off. The controller's INTA is a level: asserted while any completion
//! queue with interrupts enabled holds entries the host has not consumed
//! (its tail is not its head) and INTMS bit 0 does not mask it. The
//! engine re-evaluates it after every pass (a post moves a tail; a head
//! doorbell, an INTMS/INTMC write or a reset wakes the engine), and the
//! fabric routes the wire to the IOAPIC (`pcie_core::DmaHandle::set_intx`).
//! With shadow doorbells, the engine asks for every CQ head update so the
//! level can follow it.

use crate::engine::NvmeEngine;

impl NvmeEngine {
    /// Whether completions should use INTx now: MSI-X is off.
    pub(crate) fn refresh_intx_mode(&mut self) {
        let core = self.shared.lock();
        self.intx_mode = !core.msix.enabled(core.config.space());
    }

    /// The level INTA should have.
    fn intx_wanted(&self) -> bool {
        if !self.intx_mode || !self.st.enabled {
            return false;
        }
        let masked = self.shared.lock().regs.intms & 1 != 0;
        !masked
            && self
                .st
                .cqs
                .iter()
                .flatten()
                .any(|cq| cq.interrupts && cq.head != cq.tail)
    }

    /// Sends the INTx level to the fabric when it changed. A refused
    /// level (no route) is tried again on the next pass.
    pub(crate) fn update_intx(&mut self) {
        self.refresh_intx_mode();
        let want = self.intx_wanted();
        if want != self.intx_level && self.dma.set_intx(want).is_ok() {
            self.intx_level = want;
            if want {
                crate::state::Counters::add(&self.shared.counters.interrupts, 1);
            }
        }
    }
}
