//! The RDMA side of the wire: PVRDMA engines exchange RC and UD messages,
//! routed by destination GID to the engine that bound it (which may be the
//! sender itself: loopback). Delivery is in order and lossless; a port's
//! queue is bounded, and a sender that finds it full keeps its work
//! request and tries again when the receiver drains (it is woken).
//!
//! The messages carry what RoCE's headers carry (BTH opcode and QPs,
//! RETH, AETH, ImmDt, IETH, DETH), not RoCE's byte layout; joining two VMs
//! over a socket would serialise them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use pcie_core::Notifier;

/// A GID.
pub type Gid = [u8; 16];

/// Messages a port holds before senders must wait.
pub const RDMA_QUEUE: usize = 1024;

/// Why a responder refused a request (the AETH NAK codes that matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nak {
    /// No such QP, or not in a state to receive: the requester's
    /// retries run out.
    NoQp,
    /// A bad rkey, range or permission.
    RemoteAccess,
    /// The receive buffer was too small, or the request malformed.
    InvalidRequest,
    /// An operation the responder does not support.
    RemoteOp,
}

/// What a message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// SEND (RC or UD), with immediate data or an rkey to invalidate.
    Send {
        /// The payload.
        data: Vec<u8>,
        /// Immediate data (wire order).
        imm: Option<u32>,
        /// An rkey the responder invalidates (SEND with invalidate).
        invalidate: Option<u32>,
        /// The solicited-event bit.
        solicited: bool,
        /// UD: the Q_Key.
        qkey: Option<u32>,
    },
    /// RDMA WRITE, with immediate data (consumes a receive).
    Write {
        /// Remote key.
        rkey: u32,
        /// Remote virtual address.
        addr: u64,
        /// The payload.
        data: Vec<u8>,
        /// Immediate data.
        imm: Option<u32>,
    },
    /// RDMA READ request.
    ReadReq {
        /// Remote key.
        rkey: u32,
        /// Remote virtual address.
        addr: u64,
        /// Bytes.
        len: u32,
    },
    /// RDMA READ response.
    ReadResp {
        /// The data.
        data: Vec<u8>,
    },
    /// Positive acknowledgement of request `seq`.
    Ack,
    /// Negative acknowledgement of request `seq`.
    Nak(Nak),
}

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Sender's GID.
    pub sgid: Gid,
    /// Destination GID.
    pub dgid: Gid,
    /// Sender's QP.
    pub src_qpn: u32,
    /// Destination QP.
    pub dst_qpn: u32,
    /// The requester's sequence number of the request (echoed in
    /// responses).
    pub seq: u64,
    /// What it does.
    pub op: Op,
}

struct RdmaInbox {
    msgs: Mutex<VecDeque<Msg>>,
    gids: Mutex<Vec<Gid>>,
    notify: Arc<dyn Notifier>,
}

/// The RDMA half of a [`Wire`](crate::Wire): the ports and the GIDs they
/// bound.
#[derive(Default)]
pub struct RdmaFabric {
    ports: Mutex<Vec<(u64, Weak<RdmaInbox>)>>,
    next: Mutex<u64>,
}

impl std::fmt::Debug for RdmaFabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdmaFabric").finish_non_exhaustive()
    }
}

/// An engine's attachment to the RDMA fabric. Dropping it detaches.
pub struct RdmaPort {
    id: u64,
    fabric: Arc<RdmaFabric>,
    inbox: Arc<RdmaInbox>,
}

impl std::fmt::Debug for RdmaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdmaPort").field("id", &self.id).finish()
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No port has bound the destination GID.
    Unreachable,
    /// The destination's queue is full: try again when woken.
    Full,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RdmaFabric {
    /// Attaches a port whose engine `notify` wakes.
    pub fn attach(self: &Arc<Self>, notify: Arc<dyn Notifier>) -> RdmaPort {
        let id = {
            let mut n = lock(&self.next);
            *n += 1;
            *n
        };
        let inbox = Arc::new(RdmaInbox {
            msgs: Mutex::new(VecDeque::new()),
            gids: Mutex::new(Vec::new()),
            notify,
        });
        let mut ports = lock(&self.ports);
        ports.retain(|(_, w)| w.strong_count() > 0);
        ports.push((id, Arc::downgrade(&inbox)));
        RdmaPort {
            id,
            fabric: self.clone(),
            inbox,
        }
    }

    fn live(&self) -> Vec<Arc<RdmaInbox>> {
        lock(&self.ports)
            .iter()
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    }
}

impl RdmaPort {
    /// The GIDs this port answers to (its GID table).
    pub fn set_gids(&self, gids: Vec<Gid>) {
        *lock(&self.inbox.gids) = gids;
    }

    /// Sends `msg` to the port that bound `msg.dgid`.
    pub fn send(&self, msg: Msg) -> Result<(), SendError> {
        let to = self
            .fabric
            .live()
            .into_iter()
            .find(|p| lock(&p.gids).contains(&msg.dgid))
            .ok_or(SendError::Unreachable)?;
        {
            let mut q = lock(&to.msgs);
            if q.len() >= RDMA_QUEUE {
                return Err(SendError::Full);
            }
            q.push_back(msg);
        }
        to.notify.notify();
        Ok(())
    }

    /// The oldest message that arrived. Taking one from a full queue
    /// wakes every port, so that a sender waiting for room goes on.
    pub fn recv(&self) -> Option<Msg> {
        let (m, was_full) = {
            let mut q = lock(&self.inbox.msgs);
            let full = q.len() >= RDMA_QUEUE;
            (q.pop_front(), full)
        };
        if was_full {
            for p in self.fabric.live() {
                p.notify.notify();
            }
        }
        m
    }

    /// Messages waiting.
    pub fn pending(&self) -> usize {
        lock(&self.inbox.msgs).len()
    }
}

impl Drop for RdmaPort {
    fn drop(&mut self) {
        lock(&self.fabric.ports).retain(|(id, _)| *id != self.id);
    }
}
