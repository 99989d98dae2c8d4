//! A node of the fabric tree: one function behind its own lock, its
//! link counters, and the lock discipline that turns re-entry into an error
//! instead of a deadlock.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{NodeId, NodeKind};
use crate::{reg, BarMemory, Doorbell, InterruptPin, PciFunction};

/// BAR registers of a Type 0 header (a Type 1 header has fewer).
const BARS: u8 = 6;

/// One function in the tree. Immutable but for the function (behind its
/// own lock) and the counters.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parent: Option<NodeId>,
    pub(crate) device: u8,
    pub(crate) function: u8,
    pub(crate) depth: usize,
    cell: Mutex<Box<dyn PciFunction>>,
    /// The memory behind each RAM-backed BAR, by BAR index: DMA to these
    /// takes no lock (see [`PciFunction::bar_backing`]).
    pub(crate) backings: [Option<Arc<BarMemory>>; BARS as usize],
    /// The function's doorbells.
    pub(crate) doorbells: Vec<Doorbell>,
    /// Up bytes, up TLPs, down bytes, down TLPs of the link above.
    pub(crate) counters: [AtomicU64; 4],
    /// Payload bytes of refused requests that crossed the link above
    /// before they were refused.
    pub(crate) refused_bytes: AtomicU64,
    /// How many times the link below this port was brought down.
    pub(crate) link_downs: AtomicU64,
    /// The Interrupt Pin the function declares (read once, it is fixed).
    pub(crate) intx_pin: InterruptPin,
    /// The function asks for its INTx: its Status.Interrupt Status.
    /// Written under the fabric's INTx lock.
    pub(crate) intx_pending: AtomicBool,
    /// How many times its INTx wire started driving its GSI.
    pub(crate) intx_assertions: AtomicU64,
}

thread_local! {
    /// Functions this thread has locked through the fabric, by address.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A locked function. Dropping it unlocks.
pub(crate) struct FunctionGuard<'a> {
    guard: MutexGuard<'a, Box<dyn PciFunction>>,
    key: usize,
}

impl Node {
    pub(crate) fn new(
        name: &str,
        kind: NodeKind,
        parent: Option<NodeId>,
        (device, function): (u8, u8),
        depth: usize,
        f: Box<dyn PciFunction>,
    ) -> Self {
        let backings = std::array::from_fn(|i| f.bar_backing(i as u8));
        let doorbells = f.doorbells();
        let mut pin = [0];
        f.config_read(reg::INTERRUPT_PIN, &mut pin);
        Node {
            intx_pin: InterruptPin::from_register(pin[0]).unwrap_or_default(),
            intx_pending: AtomicBool::new(false),
            intx_assertions: AtomicU64::new(0),
            backings,
            doorbells,
            name: name.to_owned(),
            kind,
            parent,
            device,
            function,
            depth,
            cell: Mutex::new(f),
            counters: Default::default(),
            refused_bytes: Default::default(),
            link_downs: Default::default(),
        }
    }

    /// The memory behind BAR `bar`, when it is RAM-backed.
    pub(crate) fn backing(&self, bar: u8) -> Option<&Arc<BarMemory>> {
        self.backings.get(usize::from(bar))?.as_ref()
    }

    /// Reads BAR `bar` at `offset`. A RAM-backed BAR is plain memory, read
    /// with no lock at all; any other BAR is read by the function under its
    /// lock, released before this returns. False, with nothing read, when
    /// this thread holds the function already (re-entry from its own
    /// handler), which locking again would deadlock.
    pub(crate) fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) -> bool {
        if let Some(mem) = self.backing(bar) {
            mem.read(offset, data);
            return true;
        }
        let Some(mut f) = self.lock() else {
            return false;
        };
        f.bar_read(bar, offset, data);
        true
    }

    /// Writes BAR `bar` at `offset`, as [`bar_read`](Self::bar_read) reads.
    pub(crate) fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> bool {
        if let Some(mem) = self.backing(bar) {
            mem.write(offset, data);
            return true;
        }
        let Some(mut f) = self.lock() else {
            return false;
        };
        f.bar_write(bar, offset, data);
        true
    }

    /// The BARs the VMM must follow: RAM-backed ones and those with
    /// doorbells, each once, in index order.
    pub(crate) fn watched_bars(&self) -> impl Iterator<Item = u8> + '_ {
        (0..BARS)
            .filter(|&b| self.backing(b).is_some() || self.doorbells.iter().any(|d| d.bar == b))
    }

    /// Locks the function, or `None` when this very thread holds it
    /// already (a device DMAing into itself, directly or through a peer):
    /// locking again would deadlock.
    pub(crate) fn lock(&self) -> Option<FunctionGuard<'_>> {
        let key = self as *const Node as usize;
        let fresh = HELD.with(|h| {
            let mut h = h.borrow_mut();
            if h.contains(&key) {
                return false;
            }
            h.push(key);
            true
        });
        if !fresh {
            return None;
        }
        let guard = self.cell.lock().unwrap_or_else(PoisonError::into_inner);
        Some(FunctionGuard { guard, key })
    }

    /// Locks the function; panics on re-entry from the same thread, which
    /// would otherwise deadlock.
    pub(crate) fn lock_or_panic(&self) -> FunctionGuard<'_> {
        self.lock().unwrap_or_else(|| {
            panic!(
                "fabric: function {} locked again by the thread that holds it",
                self.name
            )
        })
    }
}

impl Drop for FunctionGuard<'_> {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|&k| k == self.key) {
                h.swap_remove(i);
            }
        });
    }
}

impl Deref for FunctionGuard<'_> {
    type Target = dyn PciFunction;
    fn deref(&self) -> &(dyn PciFunction + 'static) {
        &**self.guard
    }
}

impl DerefMut for FunctionGuard<'_> {
    fn deref_mut(&mut self) -> &mut (dyn PciFunction + 'static) {
        &mut **self.guard
    }
}
