//! The wire between RNICs: an in-process Ethernet segment. Every frame a
//! port sends is queued at every other port (a hub; the receiving stack
//! drops what is not addressed to it) and that port's device is woken.
//! A port's queue is bounded: a frame that finds it full is dropped, as a
//! switch drops under congestion. No lock is held while a device is
//! woken, and a device never waits for another.
//!
//! The wire carries whole frames; joining two VMs would carry the same
//! frames over a socket (left for later).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use pcie_core::Notifier;

/// Frames a port holds before it drops.
pub const PORT_QUEUE: usize = 512;

/// One port's receive queue and how to wake its device.
struct Inbox {
    frames: Mutex<VecDeque<Vec<u8>>>,
    notify: Arc<dyn Notifier>,
    dropped: Mutex<u64>,
}

/// An Ethernet segment that ports attach to, and the RDMA fabric its
/// PVRDMA engines share.
#[derive(Default)]
pub struct Wire {
    ports: Mutex<Vec<(u64, Weak<Inbox>)>>,
    next: Mutex<u64>,
    rdma: Arc<crate::transport::RdmaFabric>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Wire").field("ports", &n).finish()
    }
}

/// A device's attachment to a [`Wire`]. Dropping it detaches.
pub struct WirePort {
    id: u64,
    wire: Arc<Wire>,
    inbox: Arc<Inbox>,
}

impl std::fmt::Debug for WirePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WirePort").field("id", &self.id).finish()
    }
}

impl Wire {
    /// A wire with nothing attached.
    pub fn new() -> Arc<Self> {
        Arc::new(Wire::default())
    }

    /// Attaches a PVRDMA engine, which `notify` wakes when a message
    /// arrives (or room frees up at a port it waits for).
    pub fn rdma_attach(&self, notify: Arc<dyn Notifier>) -> crate::transport::RdmaPort {
        self.rdma.attach(notify)
    }

    /// Attaches a port whose device `notify` wakes when a frame arrives.
    pub fn attach(self: &Arc<Self>, notify: Arc<dyn Notifier>) -> WirePort {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            *n += 1;
            *n
        };
        let inbox = Arc::new(Inbox {
            frames: Mutex::new(VecDeque::new()),
            notify,
            dropped: Mutex::new(0),
        });
        let mut ports = self.ports.lock().unwrap_or_else(PoisonError::into_inner);
        ports.retain(|(_, w)| w.strong_count() > 0);
        ports.push((id, Arc::downgrade(&inbox)));
        WirePort {
            id,
            wire: self.clone(),
            inbox,
        }
    }
}

impl WirePort {
    /// Sends `frame` to every other port on the wire.
    pub fn send(&self, frame: &[u8]) {
        let peers: Vec<Arc<Inbox>> = {
            let ports = self
                .wire
                .ports
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            ports
                .iter()
                .filter(|(id, _)| *id != self.id)
                .filter_map(|(_, w)| w.upgrade())
                .collect()
        };
        for p in peers {
            let queued = {
                let mut q = p.frames.lock().unwrap_or_else(PoisonError::into_inner);
                if q.len() < PORT_QUEUE {
                    q.push_back(frame.to_vec());
                    true
                } else {
                    false
                }
            };
            if queued {
                p.notify.notify();
            } else {
                *p.dropped.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            }
        }
    }

    /// The oldest frame that arrived, if any.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut q = self
            .inbox
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.pop_front()
    }

    /// Frames waiting.
    pub fn pending(&self) -> usize {
        let q = self
            .inbox
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.len()
    }

    /// Frames dropped because this port's queue was full.
    pub fn dropped(&self) -> u64 {
        *self
            .inbox
            .dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for WirePort {
    fn drop(&mut self) {
        let mut ports = self
            .wire
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ports.retain(|(id, _)| *id != self.id);
    }
}
