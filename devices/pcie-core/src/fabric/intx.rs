//! Interrupts leaving the fabric at the root complex: the sink that takes
//! them, and legacy INTx virtual wires.
//!
//! A function asserts or deasserts its INTx through
//! [`DmaHandle::set_intx`]. The fabric records the level (Status.Interrupt
//! Status shows it), gates it with the function's Command.Interrupt
//! Disable, routes the wire up with the bridge swizzle to a root-bus slot
//! and its GSI ([`crate::intx`], the `_PRT`'s own definition), and ORs
//! all wires reaching a GSI: the sink sees only the GSI's transitions.
//! INTx messages are not memory requests, so Bus Master Enable gates
//! neither the function's nor the bridges' forwarding of them.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use super::node::Node;
use super::snapshot::Snapshot;
use super::{DmaError, DmaHandle, Fabric, NodeId};
use crate::intx::{root_bus_gsi, swizzle};
use crate::{command, reg, status, InterruptPin};

/// The root complex's interrupt controller: where interrupt messages
/// (MSI and MSI-X writes to [`MSI_RANGE`](super::MSI_RANGE)) that reach
/// the root complex are delivered, and where legacy INTx lines end. The
/// VMM's is KVM.
pub trait InterruptSink: Send + Sync {
    /// Delivers the message `data` written at `addr`. False when it cannot
    /// be delivered (the device then sees an Unsupported Request).
    fn deliver(&self, addr: u64, data: u32) -> bool;

    /// Sets the level of interrupt line `gsi` (a root-bus INTx line, see
    /// [`crate::intx`]): true while at least one function's wire asserts
    /// it, whatever polarity the guest programmed for the pin. Called on
    /// transitions only, in order (under the fabric's INTx lock), from
    /// the thread that changed a wire: a device worker, or a vCPU writing
    /// a Command register or a register of a function that deasserts from
    /// its handler. It must not call back into the fabric. The default
    /// ignores INTx.
    fn set_level(&self, _gsi: u32, _level: bool) {}
}

/// The INTx wires that drive a GSI now.
#[derive(Debug, Default)]
pub(crate) struct IntxWires {
    /// The GSI each driving function's wire reaches.
    driving: BTreeMap<NodeId, u32>,
    /// How many wires drive each GSI; only GSIs driven by at least one.
    levels: BTreeMap<u32, u32>,
}

impl Snapshot {
    /// The GSI node `id`'s INTx pin reaches: swizzled at every bridge by
    /// the device number below it, then the root-bus slot's `_PRT` entry.
    /// `None` without a pin.
    fn intx_gsi(&self, id: NodeId) -> Option<u32> {
        let mut node = self.node(id);
        let mut pin = node.intx_pin;
        while let Some(parent) = node.parent {
            pin = swizzle(pin, node.device);
            node = self.node(parent);
        }
        root_bus_gsi(node.device, pin)
    }
}

/// Shows a pending INTx in the Status register bytes of a config read of
/// `node` at `offset` (the fabric, not the function, holds the bit).
pub(crate) fn overlay_status(node: &Node, offset: u16, data: &mut [u8]) {
    if !node.intx_pending.load(Ordering::Acquire) {
        return;
    }
    let byte = reg::STATUS
        .checked_sub(offset)
        .and_then(|i| data.get_mut(usize::from(i)));
    if let Some(b) = byte {
        *b |= status::INTERRUPT_STATUS as u8;
    }
}

impl Fabric {
    fn wires(&self) -> MutexGuard<'_, IntxWires> {
        self.intx.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Function `id` asserts (`true`) or deasserts its INTx wire. Its
    /// Status.Interrupt Status follows `asserted`; the wire is driven only
    /// while its Command.Interrupt Disable is clear (re-enabling it drives
    /// a still pending wire again). Locks no function, so a function may
    /// call it from its own handlers. Unsupported Request, with nothing
    /// recorded, when the function declares no Interrupt Pin.
    pub fn set_intx(&self, id: NodeId, asserted: bool) -> Result<(), DmaError> {
        let snap = self.snapshot();
        let node = snap.node(id);
        if node.intx_pin == InterruptPin::None {
            return Err(DmaError::UnsupportedRequest);
        }
        let mut wires = self.wires();
        node.intx_pending.store(asserted, Ordering::Release);
        self.update_wire(&mut wires, id);
        Ok(())
    }

    /// The GSI node `id`'s INTx reaches; `None` without an Interrupt Pin.
    pub fn intx_gsi(&self, id: NodeId) -> Option<u32> {
        self.snapshot().intx_gsi(id)
    }

    /// Whether node `id` has its INTx pending (its Interrupt Status).
    pub fn intx_pending(&self, id: NodeId) -> bool {
        self.snapshot()
            .node(id)
            .intx_pending
            .load(Ordering::Acquire)
    }

    /// Whether node `id`'s wire drives its GSI now: pending and not
    /// disabled.
    pub fn intx_driving(&self, id: NodeId) -> bool {
        self.wires().driving.contains_key(&id)
    }

    /// How many times node `id`'s wire went from idle to driving its GSI.
    pub fn intx_assertions(&self, id: NodeId) -> u64 {
        let snap = self.snapshot();
        snap.node(id).intx_assertions.load(Ordering::Relaxed)
    }

    /// Connects `sink` under the INTx lock, telling it the GSIs already
    /// asserted; false (and nothing told) if a sink was set already.
    pub(crate) fn connect_sink(&self, sink: Arc<dyn InterruptSink>) -> bool {
        let wires = self.wires();
        if self.interrupts.set(sink.clone()).is_err() {
            return false;
        }
        for &gsi in wires.levels.keys() {
            sink.set_level(gsi, true);
        }
        true
    }

    /// Re-evaluates the wires of `ids` (of every node for `None`) after
    /// their Command registers may have changed.
    pub(crate) fn intx_recheck(&self, ids: Option<&[NodeId]>) {
        let snap = self.snapshot();
        let mut wires = self.wires();
        let all: Vec<NodeId>;
        let ids = match ids {
            Some(ids) => ids,
            None => {
                all = (0..snap.topo.nodes.len() as u32).map(NodeId).collect();
                &all
            }
        };
        for &id in ids {
            let pending = snap.node(id).intx_pending.load(Ordering::Acquire);
            if pending || wires.driving.contains_key(&id) {
                self.update_wire(&mut wires, id);
            }
        }
    }

    /// Deasserts the wires of `ids`: the functions were reset.
    pub(crate) fn intx_forget(&self, ids: &[NodeId]) {
        let snap = self.snapshot();
        let mut wires = self.wires();
        for &id in ids {
            snap.node(id).intx_pending.store(false, Ordering::Release);
            self.update_wire(&mut wires, id);
        }
    }

    /// Makes node `id`'s wire drive what its pending level and Interrupt
    /// Disable say, against the current snapshot, and tells the sink of
    /// any GSI transition. Called with the INTx lock held.
    fn update_wire(&self, wires: &mut IntxWires, id: NodeId) {
        let snap = self.snapshot();
        let node = snap.node(id);
        let enabled = snap.state(id).command & command::INTX_DISABLE == 0;
        let pending = node.intx_pending.load(Ordering::Acquire);
        let want = if pending && enabled {
            snap.intx_gsi(id)
        } else {
            None
        };
        let have = wires.driving.get(&id).copied();
        if want == have {
            return;
        }
        let sink = self.interrupt_sink();
        if let Some(gsi) = have {
            wires.driving.remove(&id);
            let count = wires.levels.entry(gsi).or_insert(1);
            *count -= 1;
            if *count == 0 {
                wires.levels.remove(&gsi);
                if let Some(s) = sink {
                    s.set_level(gsi, false);
                }
            }
        }
        if let Some(gsi) = want {
            wires.driving.insert(id, gsi);
            let count = wires.levels.entry(gsi).or_insert(0);
            *count += 1;
            if *count == 1 {
                if let Some(s) = sink {
                    s.set_level(gsi, true);
                }
            }
            node.intx_assertions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl DmaHandle {
    /// Asserts (`true`) or deasserts this function's legacy INTx: what a
    /// device falls back to when MSI and MSI-X are off. Call it with the
    /// level the device wants (asserting twice is harmless); see
    /// [`Fabric::set_intx`]. The function must declare an Interrupt Pin
    /// ([`CommonHeader::interrupt_pin`](crate::CommonHeader)), else
    /// Unsupported Request.
    pub fn set_intx(&self, asserted: bool) -> Result<(), DmaError> {
        self.fabric().set_intx(self.requester(), asserted)
    }
}
