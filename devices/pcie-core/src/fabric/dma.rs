//! What a device holds to reach memory: a [`DmaHandle`], and the errors
//! real hardware would report for a request.

use std::fmt;
use std::sync::Arc;

use super::route::MAX_REQUEST;
use super::snapshot::Snapshot;
use super::{DmaRequest, Fabric, Hops, NodeId, Target};

/// Which ACS check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcsViolationKind {
    /// SV: the requester ID's bus is not below the port.
    SourceValidation,
    /// TB: a translated request at a port that blocks them.
    TranslationBlocking,
    /// EC: peer-to-peer to an egress port blocked by the port's vector.
    EgressControl,
}

/// Why a request did not complete, as hardware would report it.
/// (A plain enum: `pcie-core`'s one `thiserror` type is [`crate::Error`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmaError {
    /// The requester's Bus Master Enable is clear: nothing was sent.
    BusMasterDisabled,
    /// Unsupported Request: nothing decodes the address, a bridge on the
    /// way does not forward it, or the root complex refuses it (also
    /// malformed requests: empty, or crossing a 4 KiB boundary).
    UnsupportedRequest,
    /// Completer Abort: the completer cannot serve it (past the end of a
    /// BAR, or a function's DMA into itself).
    CompleterAbort,
    /// An ACS check at `port` refused it.
    AcsViolation {
        /// The port that refused it.
        port: NodeId,
        /// Which check.
        kind: AcsViolationKind,
    },
    /// The IOMMU has no translation for it.
    IommuFault,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmaError::BusMasterDisabled => write!(f, "bus mastering disabled"),
            DmaError::UnsupportedRequest => write!(f, "unsupported request"),
            DmaError::CompleterAbort => write!(f, "completer abort"),
            DmaError::AcsViolation { port, kind } => {
                let what = match kind {
                    AcsViolationKind::SourceValidation => "source validation",
                    AcsViolationKind::TranslationBlocking => "translation blocking",
                    AcsViolationKind::EgressControl => "egress control",
                };
                write!(f, "ACS {what} violation at port {port}")
            }
            DmaError::IommuFault => write!(f, "IOMMU fault"),
        }
    }
}

impl std::error::Error for DmaError {}

/// Guest memory, as the VMM provides it to the fabric. Accesses are at
/// guest physical addresses; false when any byte is not backed.
pub trait GuestRam: Send + Sync {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
    /// Writes `buf` at `addr`.
    fn write(&self, addr: u64, buf: &[u8]) -> bool;
}

/// The root complex's address translation for untranslated requests.
pub trait Iommu: Send + Sync {
    /// The guest physical address for `addr` from `requester_id`, or `None`
    /// for a fault. A request never crosses a 4 KiB page.
    fn translate(&self, requester_id: u16, addr: u64, len: u64, write: bool) -> Option<u64>;
}

/// A function's only way to memory: routes its requests through the
/// fabric, counts them, then reads or writes RAM or a peer's BAR.
#[derive(Clone)]
pub struct DmaHandle {
    requester: NodeId,
    fabric: Arc<Fabric>,
    ram: Arc<dyn GuestRam>,
}

impl fmt::Debug for DmaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaHandle")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl DmaHandle {
    /// A handle for the function at node `requester`.
    pub fn new(fabric: Arc<Fabric>, requester: NodeId, ram: Arc<dyn GuestRam>) -> Self {
        DmaHandle {
            requester,
            fabric,
            ram,
        }
    }

    /// The node the requests come from.
    pub fn requester(&self) -> NodeId {
        self.requester
    }

    /// The fabric the requests go through.
    pub fn fabric(&self) -> &Arc<Fabric> {
        &self.fabric
    }

    /// Reads `buf.len()` bytes at bus address `bus_addr`.
    ///
    /// All of the transfer's requests are routed against the routing
    /// snapshot current when the call starts (taken once, not per 4 KiB
    /// request).
    pub fn read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let snap = self.fabric.snapshot();
        let mut hops = Hops::new();
        let mut done = 0;
        while done < buf.len() {
            let chunk = self.chunk(bus_addr, done, buf.len())?;
            let piece = &mut buf[done..done + chunk.len as usize];
            self.transfer(&snap, &mut hops, &chunk, Access::Read(piece))?;
            done += piece.len();
        }
        Ok(())
    }

    /// Writes `buf` at bus address `bus_addr`.
    ///
    /// All of the transfer's requests are routed against the routing
    /// snapshot current when the call starts (taken once, not per 4 KiB
    /// request).
    pub fn write(&self, bus_addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let snap = self.fabric.snapshot();
        let mut hops = Hops::new();
        let mut done = 0;
        while done < buf.len() {
            let chunk = self.chunk(bus_addr, done, buf.len())?;
            let piece = &buf[done..done + chunk.len as usize];
            self.transfer(&snap, &mut hops, &chunk, Access::Write(piece))?;
            done += piece.len();
        }
        Ok(())
    }

    /// The request for bytes `done..` of a `total`-byte transfer: up to the
    /// next 4 KiB boundary.
    fn chunk(&self, bus_addr: u64, done: usize, total: usize) -> Result<DmaRequest, DmaError> {
        let addr = bus_addr
            .checked_add(done as u64)
            .ok_or(DmaError::UnsupportedRequest)?;
        let room = MAX_REQUEST - addr % MAX_REQUEST;
        Ok(DmaRequest {
            requester: self.requester,
            requester_id: None,
            addr,
            len: room.min((total - done) as u64),
            write: false,
            translated: false,
        })
    }

    /// Routes one chunk against `snap` (into `hops`, the call's reused
    /// buffer), counts it, and performs it. Transfers stop at the first
    /// failing chunk; the earlier ones have happened.
    fn transfer(
        &self,
        snap: &Snapshot,
        hops: &mut Hops,
        req: &DmaRequest,
        access: Access<'_>,
    ) -> Result<(), DmaError> {
        let req = DmaRequest {
            write: matches!(access, Access::Write(_)),
            ..*req
        };
        match self.fabric.route_into(snap, &req, hops)? {
            Target::Ram { addr } => {
                self.fabric.record_in(snap, hops, &req);
                let ok = match access {
                    Access::Read(buf) => self.ram.read(addr, buf),
                    Access::Write(buf) => self.ram.write(addr, buf),
                };
                ok.then_some(()).ok_or(DmaError::UnsupportedRequest)
            }
            Target::Bar { node, bar, offset } => {
                // DMA into itself would lock a function its caller holds.
                if node == self.requester {
                    return Err(DmaError::CompleterAbort);
                }
                let mut f = snap.node(node).lock().ok_or(DmaError::CompleterAbort)?;
                self.fabric.record_in(snap, hops, &req);
                match access {
                    Access::Read(buf) => f.bar_read(bar, offset, buf),
                    Access::Write(buf) => f.bar_write(bar, offset, buf),
                }
                Ok(())
            }
        }
    }
}

enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}
