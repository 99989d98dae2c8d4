//! Error messages (ERR_COR, ERR_NONFATAL, ERR_FATAL): a function reports
//! an error to its root port, which logs it and may raise its own
//! interrupt, an MSI routed from the root port like any of its writes.

use super::{DmaError, DmaRequest, Fabric, Hops, NodeId, NodeKind, Target};
use crate::{ErrorMessage, ErrorSeverity, MsiMessage};

impl Fabric {
    /// Function `from` sends an error message of `severity`. Messages are
    /// routed to the root complex: switch ports pass them up, and the root
    /// port above `from` receives them
    /// ([`PciFunction::error_message`](crate::PciFunction::error_message)),
    /// locked only while it logs it. Its interrupt, if it raises one, is
    /// then sent from the root port through the router (Bus Master
    /// Enable, counters, the interrupt sink). Unsupported Request when no
    /// root port is above `from` (root-complex integrated functions: no
    /// event collector is modelled) or the interrupt could not be sent.
    pub fn report_error(&self, from: NodeId, severity: ErrorSeverity) -> Result<(), DmaError> {
        let snap = self.snapshot();
        let source = snap.bdfs[from.index()].map_or(0, |b| b.requester_id());
        let msg = ErrorMessage { severity, source };
        let mut at = snap.node(from).parent;
        while let Some(p) = at {
            let node = snap.node(p);
            if snap.state(p).link_down {
                return Err(DmaError::UnsupportedRequest);
            }
            if node.kind == NodeKind::RootPort {
                let irq = node
                    .lock()
                    .ok_or(DmaError::CompleterAbort)?
                    .error_message(msg);
                return match irq {
                    Some(m) => self.interrupt_from(p, m),
                    None => Ok(()),
                };
            }
            at = node.parent;
        }
        Err(DmaError::UnsupportedRequest)
    }

    /// Sends interrupt message `m` as a posted write from node `from`.
    pub(crate) fn interrupt_from(&self, from: NodeId, m: MsiMessage) -> Result<(), DmaError> {
        let snap = self.snapshot();
        let req = DmaRequest {
            requester: from,
            requester_id: None,
            addr: m.addr,
            len: 4,
            write: true,
            translated: false,
        };
        let mut hops = Hops::new();
        match self.route_into(&snap, &req, &mut hops)? {
            Target::Interrupt { addr } => {
                let sink = self.interrupt_sink().ok_or(DmaError::UnsupportedRequest)?;
                self.record_in(&snap, &hops, &req);
                sink.deliver(addr, m.data)
                    .then_some(())
                    .ok_or(DmaError::UnsupportedRequest)
            }
            // A message address that is not the interrupt range: the
            // port's MSI is misprogrammed, and no memory is written.
            _ => Err(DmaError::UnsupportedRequest),
        }
    }
}
