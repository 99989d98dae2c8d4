//! Injected TLP faults: a chosen node completes the requests that cross
//! it with Completer Abort, or poisons their data, logs the error in its
//! own AER capability and reports it (ERR_NONFATAL) to its root port, as
//! a port or function that aborts or poisons a request would.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use super::snapshot::Snapshot;
use super::{DmaError, Fabric, Hop, NodeId, Target};
use crate::ErrorSeverity;

/// What an injected fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlpFault {
    /// The node answers with Completer Abort (AER Uncorrectable Error
    /// Status bit 15, non-fatal by default).
    CompleterAbort,
    /// The data is poisoned (EP set): the requester gets
    /// [`DmaError::Poisoned`] (AER bit 12, Poisoned TLP Received).
    Poisoned,
}

impl TlpFault {
    /// Its bit in AER's Uncorrectable Error Status register.
    pub const fn aer_status_bit(self) -> u32 {
        match self {
            TlpFault::CompleterAbort => 1 << 15,
            TlpFault::Poisoned => 1 << 12,
        }
    }

    fn error(self) -> DmaError {
        match self {
            TlpFault::CompleterAbort => DmaError::CompleterAbort,
            TlpFault::Poisoned => DmaError::Poisoned,
        }
    }
}

/// One armed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    /// Where: requests whose route crosses the link above this node.
    pub node: NodeId,
    /// What happens to them.
    pub fault: TlpFault,
    /// Only peer-to-peer requests (those that complete at a BAR), so a
    /// fault armed at boot waits for the traffic it is about.
    pub p2p_only: bool,
    /// How many more requests it takes (`None`: every one).
    pub remaining: Option<u64>,
}

impl Fabric {
    /// Arms `fault`; [`clear_faults`](Self::clear_faults) disarms all.
    /// While any is armed, the route caches stand aside so that every
    /// request meets the router (mapped DMA routes every request anyway).
    pub fn inject_fault(&self, fault: InjectedFault) {
        let mut f = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        f.push(fault);
        self.faulting.store(true, Ordering::Release);
    }

    /// Disarms every injected fault.
    pub fn clear_faults(&self) {
        let mut f = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        f.clear();
        self.faulting.store(false, Ordering::Release);
    }

    /// The armed faults.
    pub fn faults(&self) -> Vec<InjectedFault> {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether any fault is armed (one atomic load).
    #[inline]
    pub(crate) fn faulting(&self) -> bool {
        self.faulting.load(Ordering::Acquire)
    }

    /// Called by the router for a request that would complete at `target`
    /// after crossing `hops`: the fault it meets, if one is armed there
    /// (and takes one of its requests). The node then logs it and reports
    /// it to its root port.
    pub(crate) fn fault_for(
        &self,
        snap: &Snapshot,
        hops: &[Hop],
        target: &Target,
    ) -> Option<DmaError> {
        let hit = {
            let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
            let bar = matches!(target, Target::Bar { .. });
            let i = faults.iter().position(|f| {
                (bar || !f.p2p_only)
                    && f.remaining != Some(0)
                    && (hops.iter().any(|h| h.node == f.node)
                        || matches!(target, Target::Bar { node, .. } if *node == f.node))
            })?;
            let f = &mut faults[i];
            if let Some(r) = &mut f.remaining {
                *r -= 1;
            }
            *f
        };
        let logged = snap
            .node(hit.node)
            .lock()
            .is_some_and(|mut func| func.record_uncorrectable(hit.fault.aer_status_bit()));
        if logged {
            // Non-fatal by the default severity of both bits.
            let _ = self.report_error(hit.node, ErrorSeverity::NonFatal);
        }
        Some(hit.fault.error())
    }
}
