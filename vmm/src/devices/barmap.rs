//! What follows a BAR when the guest moves it: RAM-backed BARs (the test
//! endpoint's BAR 2, later the NVMe CMB) mapped straight into the guest as
//! KVM memory slots, so CPU accesses never exit, and doorbells backed by
//! ioeventfds, so ringing one never leaves the guest's kernel.
//!
//! The fabric says what moved: every config write returns the watched
//! BARs whose CPU address changed ([`pcie_core::BarMove`]), and
//! [`BarFollower::apply`] moves the slot or the ioeventfds to match. There
//! is no rescan. Device DMA into a RAM-backed BAR goes through the fabric
//! to the same bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use pcie_core::{BarMemory, BarMove, DoorbellControl, Fabric, NodeId};
use vmm_sys_util::eventfd::EventFd;

/// First KVM slot used for BARs (guest RAM uses the ones below).
const FIRST_SLOT: u32 = 16;

/// A RAM-backed BAR's slot.
struct Slot {
    slot: u32,
    /// Holds the memory for as long as the slot may exist.
    memory: Arc<BarMemory>,
    /// Where it is mapped now.
    at: Option<u64>,
}

/// A doorbell's ioeventfd.
struct Bell {
    bar: u8,
    offset: u64,
    fd: EventFd,
    /// Where its BAR decodes now.
    base: Option<u64>,
    /// The BAR base it is registered at.
    at: Option<u64>,
    /// Whether the device wants the ioeventfd (see [`DoorbellControl`]).
    on: bool,
}

#[derive(Default)]
struct State {
    slots: HashMap<(NodeId, u8), Slot>,
    /// Each node's doorbells, in the function's order.
    bells: HashMap<NodeId, Vec<Bell>>,
}

/// Where device threads find the follower once the VM has one, to switch
/// their doorbells.
#[derive(Default, Clone)]
pub struct FollowerSlot(Arc<OnceLock<Arc<BarFollower>>>);

impl FollowerSlot {
    /// Installs the follower (once).
    pub fn set(&self, f: Arc<BarFollower>) {
        let _ = self.0.set(f);
    }

    /// The [`DoorbellControl`] of `node`'s doorbells.
    pub fn control(&self, node: NodeId) -> Arc<dyn DoorbellControl> {
        Arc::new(BellSwitch {
            node,
            slot: self.clone(),
        })
    }
}

/// One node's [`DoorbellControl`].
struct BellSwitch {
    node: NodeId,
    slot: FollowerSlot,
}

impl DoorbellControl for BellSwitch {
    fn set_eventfd(&self, index: usize, on: bool) {
        match self.slot.0.get() {
            Some(f) => f.set_eventfd(self.node, index, on),
            None => log::warn!("doorbell {index} of node {}: no VM yet", self.node),
        }
    }
}

/// Keeps each RAM-backed BAR's memory slot and each doorbell's ioeventfd
/// where the guest's configuration makes its BAR decode.
pub struct BarFollower {
    vm: Arc<VmFd>,
    state: Mutex<State>,
}

impl BarFollower {
    /// A follower for the RAM-backed BARs of `fabric` and the doorbells
    /// in `doorbells` (node, and the ioeventfd of each of its doorbells in
    /// the function's order). Nothing is mapped until
    /// [`apply`](Self::apply) is given moves
    /// ([`Fabric::watched_bars`] at start).
    pub fn new(vm: Arc<VmFd>, fabric: &Fabric, doorbells: Vec<(NodeId, Vec<EventFd>)>) -> Self {
        let mut state = State::default();
        let mut next = FIRST_SLOT;
        for m in fabric.watched_bars() {
            if let Some(memory) = fabric.bar_backing(m.node, m.bar) {
                let slot = Slot {
                    slot: next,
                    memory,
                    at: None,
                };
                state.slots.insert((m.node, m.bar), slot);
                next += 1;
            }
        }
        for (node, fds) in doorbells {
            for (db, fd) in fabric.doorbells(node).into_iter().zip(fds) {
                let bell = Bell {
                    bar: db.bar,
                    offset: db.offset,
                    fd,
                    base: None,
                    at: None,
                    on: db.eventfd,
                };
                state.bells.entry(node).or_default().push(bell);
            }
        }
        BarFollower {
            vm,
            state: Mutex::new(state),
        }
    }

    /// Moves slots and ioeventfds as `moves` say.
    pub fn apply(&self, moves: &[BarMove]) {
        if moves.is_empty() {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = &mut *st;
        for m in moves {
            log::debug!(
                "BAR {} of node {}: {:x?} -> {:x?}",
                m.bar,
                m.node,
                m.from,
                m.to
            );
            if let Some(s) = st.slots.get_mut(&(m.node, m.bar)) {
                self.move_slot(s, m.to);
            }
            for b in st.bells.get_mut(&m.node).into_iter().flatten() {
                if b.bar == m.bar {
                    b.base = m.to;
                    self.sync_bell(b);
                }
            }
        }
    }

    /// Backs doorbell `index` of `node` by its ioeventfd, or not.
    pub fn set_eventfd(&self, node: NodeId, index: usize, on: bool) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = st.bells.get_mut(&node).and_then(|v| v.get_mut(index)) {
            b.on = on;
            self.sync_bell(b);
        }
    }

    fn move_slot(&self, s: &mut Slot, to: Option<u64>) {
        if s.at.is_some() && self.set(s.slot, 0, 0, &s.memory) {
            s.at = None;
        }
        if let Some(gpa) = to {
            if self.set(s.slot, gpa, s.memory.len(), &s.memory) {
                s.at = Some(gpa);
            }
        }
    }

    /// Registers the ioeventfd where the BAR decodes, if it is on; removes
    /// it from anywhere else.
    fn sync_bell(&self, b: &mut Bell) {
        let want = b.base.filter(|_| b.on);
        if b.at == want {
            return;
        }
        if let Some(old) = b.at.take() {
            let addr = IoEventAddress::Mmio(old + b.offset);
            if let Err(e) = self.vm.unregister_ioevent(&b.fd, &addr, NoDatamatch) {
                log::warn!("cannot remove the doorbell at {:#x}: {e}", old + b.offset);
            }
        }
        if let Some(base) = want {
            let addr = IoEventAddress::Mmio(base + b.offset);
            match self.vm.register_ioevent(&b.fd, &addr, NoDatamatch) {
                Ok(()) => b.at = Some(base),
                Err(e) => log::warn!("cannot place a doorbell at {:#x}: {e}", base + b.offset),
            }
        }
    }

    /// Sets (size > 0) or deletes (size 0) a slot; false when KVM refused.
    fn set(&self, slot: u32, gpa: u64, size: u64, memory: &BarMemory) -> bool {
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: memory.host_address() as u64,
        };
        // SAFETY: the slot maps `memory`, whose `Arc` this follower holds
        // for as long as the slot can exist (it is deleted in `drop` at the
        // latest, before the `Arc` goes); size 0 deletes the slot.
        match unsafe { self.vm.set_user_memory_region(region) } {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot map a RAM-backed BAR at {gpa:#x} (slot {slot}): {e}");
                false
            }
        }
    }
}

impl Drop for BarFollower {
    /// Deletes every slot before the memory it maps can go.
    fn drop(&mut self) {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for s in st.slots.values() {
            if s.at.is_some() {
                self.set(s.slot, 0, 0, &s.memory);
            }
        }
    }
}
