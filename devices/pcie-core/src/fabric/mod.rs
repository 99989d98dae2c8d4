//! The PCIe fabric: functions as nodes of a physical tree, config routing
//! by bus numbers, CPU memory routing by windows and BARs, and the DMA
//! router that applies bus mastering, ACS and the root complex's
//! peer-to-peer policy.
//!
//! Nodes are identified by [`NodeId`], never by BDF: the guest may
//! renumber buses at any time. Each function sits behind its own lock, so
//! routing locks exactly one device at a time. Routers read an immutable
//! snapshot of the routing registers, swapped after config writes that may
//! change it; they never lock a function to route.
//!
//! Modelling choices:
//! - Decoding is by the request's start address, like hardware; a request
//!   running past the end of the BAR it starts in is a Completer Abort,
//!   past the end of a RAM range an Unsupported Request.
//! - A bridge whose Memory Space Enable is clear decodes no window: from
//!   above nothing passes, from below everything goes upstream.
//! - A request that ACS redirects (RR, EC+RR, UF) leaves the switch
//!   through its upstream port; the next port up applies its own rules, so
//!   it reaches the root complex only when that port does not turn it
//!   around (Linux sets UF with RR on every port). At the root complex,
//!   any address below a root port or in an integrated endpoint's BAR is
//!   peer-to-peer and subject to [`RcP2pPolicy`], the request's own root
//!   port included; a root port's egress control vector applies between
//!   root ports.
//! - Only memory requests are routed: I/O windows and expansion ROMs are
//!   snapshotted or ignored, not routed. Reads are one request whose
//!   completion retraces the path (so Completion Redirect has no effect).
//! - Device models must not hold one function's lock while waiting for
//!   another's: [`DmaHandle`] locks only the target, and refuses (Completer
//!   Abort) a target this thread already holds, the requester included.

mod build;
mod cache;
mod config;
mod counters;
mod dma;
mod errors;
mod inject;
mod intx;
mod link;
mod map;
mod mmio;
mod node;
mod route;
mod snapshot;
mod trace;
mod types;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};

pub use counters::{LinkCounters, RefusedCounters, MAX_PAYLOAD, MAX_READ_REQUEST};
pub use dma::{AcsViolationKind, DmaError, DmaHandle, GuestRam, Iommu};
pub use inject::{InjectedFault, TlpFault};
pub use intx::InterruptSink;
pub use link::LinkState;
pub use map::DmaMap;
pub use route::MAX_REQUEST;
pub use snapshot::{BridgeState, Window};
pub use trace::{TraceRecord, TraceSink};
pub use types::{
    BarMove, ConfigWrite, Dir, DmaRequest, Hop, Hops, NodeId, NodeKind, RcP2pPolicy, Route, Target,
    MAX_DEPTH, MAX_HOPS, MSI_RANGE,
};

use crate::{AcsBits, BarMemory, BarRegion, Bdf, Doorbell, PciFunction, ResetKind};
use cache::RouteCache;
use snapshot::{Reread, Snapshot, Topology};

/// A PCIe hierarchy: the tree of functions below one root complex, with
/// guest RAM at the top. `Sync`: share it as `Arc<Fabric>` between vCPU
/// threads and device DMA.
pub struct Fabric {
    ram: Vec<(u64, u64)>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The stored snapshot's generation, read by the route caches (one
    /// atomic load instead of the lock and the `Arc`).
    generation: AtomicU64,
    /// Every live `DmaHandle`'s route cache, whose pending counts
    /// [`counters`](Self::counters) adds in. Lock it before any cache.
    caches: Mutex<Vec<Weak<RouteCache>>>,
    /// Serialises snapshot rebuilds, so the last one stored is the newest.
    rebuild: Mutex<()>,
    tracing: AtomicBool,
    trace: Mutex<Option<TraceSink>>,
    /// Refused requests ([`RefusedCounters`]).
    refusals: counters::Refusals,
    /// Requests and bytes the IOMMU translated into a peer's BAR.
    iommu_p2p: [AtomicU64; 2],
    /// Armed TLP faults, and whether there are any.
    faults: Mutex<Vec<InjectedFault>>,
    faulting: AtomicBool,
    /// Where interrupt messages reaching the root complex go; set once.
    interrupts: OnceLock<Arc<dyn InterruptSink>>,
    /// The INTx wires driving a GSI, and how many drive each.
    intx: Mutex<intx::IntxWires>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.snapshot();
        let names: Vec<_> = snap.topo.nodes.iter().map(|n| &n.name).collect();
        f.debug_struct("Fabric")
            .field("ram", &self.ram)
            .field("nodes", &names)
            .finish_non_exhaustive()
    }
}

impl Fabric {
    /// An empty fabric. `ram` lists guest RAM as (start, length) ranges, the
    /// addresses the root complex completes from memory.
    pub fn new(ram: Vec<(u64, u64)>, policy: RcP2pPolicy) -> Self {
        let topo = Arc::new(Topology {
            nodes: Vec::new(),
            children: Vec::new(),
            roots: Vec::new(),
        });
        Fabric {
            snapshot: RwLock::new(Arc::new(Snapshot::build(
                topo,
                policy,
                None,
                0,
                &ram,
                None,
                Reread::All,
            ))),
            generation: AtomicU64::new(0),
            caches: Mutex::new(Vec::new()),
            rebuild: Mutex::new(()),
            tracing: AtomicBool::new(false),
            trace: Mutex::new(None),
            refusals: Default::default(),
            iommu_p2p: Default::default(),
            faults: Mutex::new(Vec::new()),
            faulting: AtomicBool::new(false),
            interrupts: OnceLock::new(),
            intx: Mutex::default(),
            ram,
        }
    }

    /// The registry of route caches, locked.
    pub(crate) fn caches(&self) -> MutexGuard<'_, Vec<Weak<RouteCache>>> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many DMA handles have a route cache registered (live handles
    /// that have routed at least once): for diagnostics and tests.
    pub fn route_cache_count(&self) -> usize {
        self.caches().len()
    }

    /// The current snapshot's generation, without taking it.
    #[inline]
    pub(crate) fn current_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current routing snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Builds and stores a snapshot, re-reading the nodes `reread` names;
    /// the caller holds `self.rebuild`. Returns the watched BARs that moved.
    fn install(
        &self,
        cur: &Snapshot,
        topo: Arc<Topology>,
        policy: RcP2pPolicy,
        iommu: Option<Arc<dyn Iommu>>,
        reread: Reread<'_>,
    ) -> Vec<BarMove> {
        let next = Snapshot::build(
            topo,
            policy,
            iommu,
            cur.generation + 1,
            &self.ram,
            Some(cur),
            reread,
        );
        let moved = cur.moves(&next);
        let generation = next.generation;
        let mut slot = self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *slot, Arc::new(next));
        // Under the write lock: whoever sees this generation finds the
        // snapshot that has it (or a newer one).
        self.generation.store(generation, Ordering::Release);
        // The old snapshot goes after the lock: nothing it drops may find
        // the fabric locked.
        drop(slot);
        drop(old);
        moved
    }

    /// Rebuilds the routing snapshot with `change` applied to the policy
    /// and IOMMU. Never call it while holding a function of this fabric.
    fn rebuild_with(
        &self,
        reread: Reread<'_>,
        change: impl FnOnce(&mut RcP2pPolicy, &mut Option<Arc<dyn Iommu>>),
    ) -> Vec<BarMove> {
        let _serial = self.rebuild.lock().unwrap_or_else(PoisonError::into_inner);
        let cur = self.snapshot();
        let (mut policy, mut iommu) = (cur.policy, cur.iommu.clone());
        change(&mut policy, &mut iommu);
        self.install(&cur, cur.topo.clone(), policy, iommu, reread)
    }

    /// Re-reads every function's routing registers (and re-evaluates the
    /// INTx wires against the Command registers) and returns the watched
    /// BARs that moved. Config writes through the fabric re-read what they
    /// touched by themselves; call this after changing a function behind
    /// the fabric's back (e.g. in [`with_function`](Self::with_function)).
    pub fn refresh(&self) -> Vec<BarMove> {
        let moved = self.rebuild_with(Reread::All, |_, _| {});
        self.intx_recheck(None);
        moved
    }

    /// Re-reads the routing registers of `ids` only (and re-evaluates
    /// their INTx wires against their Command registers).
    pub(crate) fn refresh_nodes(&self, ids: &[NodeId]) -> Vec<BarMove> {
        let moved = self.rebuild_with(Reread::Only(ids), |_, _| {});
        self.intx_recheck(Some(ids));
        moved
    }

    /// Every watched BAR (RAM-backed, or with doorbells) as a move from
    /// nowhere to where the CPU reaches it now: what the VMM maps at start.
    pub fn watched_bars(&self) -> Vec<BarMove> {
        let snap = self.snapshot();
        snap.watched
            .iter()
            .map(|&(node, bar, to)| BarMove {
                node,
                bar,
                from: None,
                to,
            })
            .collect()
    }

    /// The memory behind BAR `bar` of node `id`, when it is RAM-backed
    /// (see [`PciFunction::bar_backing`]).
    pub fn bar_backing(&self, id: NodeId, bar: u8) -> Option<Arc<BarMemory>> {
        self.snapshot().node(id).backing(bar).cloned()
    }

    /// Node `id`'s doorbells (see [`PciFunction::doorbells`]).
    pub fn doorbells(&self, id: NodeId) -> Vec<Doorbell> {
        self.snapshot().node(id).doorbells.clone()
    }

    /// How many times the snapshot was rebuilt: when it changes, BARs,
    /// windows or enables may have moved (the VMM re-checks its RAM-backed
    /// BAR mappings).
    pub fn generation(&self) -> u64 {
        self.snapshot().generation
    }

    /// Guest RAM ranges, as (start, length).
    pub fn ram(&self) -> &[(u64, u64)] {
        &self.ram
    }

    /// The root complex's peer-to-peer policy.
    pub fn rc_policy(&self) -> RcP2pPolicy {
        self.snapshot().policy
    }

    /// Changes the root complex's peer-to-peer policy.
    pub fn set_rc_policy(&self, policy: RcP2pPolicy) {
        self.rebuild_with(Reread::Only(&[]), |p, _| *p = policy);
    }

    /// Connects the root complex's interrupt range to `sink` (the VMM's
    /// interrupt controller). Once only: false if a sink was already set.
    /// Until then, interrupt messages complete as Unsupported Requests and
    /// INTx lines change only inside the fabric; the sink is told of the
    /// lines asserted when it is connected.
    pub fn set_interrupt_sink(&self, sink: Arc<dyn InterruptSink>) -> bool {
        self.connect_sink(sink)
    }

    /// The interrupt sink, if one is connected.
    pub(crate) fn interrupt_sink(&self) -> Option<&Arc<dyn InterruptSink>> {
        self.interrupts.get()
    }

    /// Installs (or, with `None`, removes) the IOMMU that translates
    /// untranslated requests reaching the root complex. Without one, bus
    /// addresses are guest physical addresses.
    pub fn set_iommu(&self, iommu: Option<Arc<dyn Iommu>>) {
        self.rebuild_with(Reread::Only(&[]), |_, i| *i = iommu);
    }

    /// The IOMMU's counters, when there is one.
    pub fn iommu_stats(&self) -> Option<Vec<(&'static str, u64)>> {
        self.snapshot().iommu.as_ref().map(|i| i.stats())
    }

    /// All nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<NodeId> {
        (0..self.snapshot().topo.nodes.len() as u32)
            .map(NodeId)
            .collect()
    }

    /// The node's name. Panics (like all accessors taking a `NodeId`) if
    /// `id` was not handed out by this fabric.
    pub fn name(&self, id: NodeId) -> String {
        self.snapshot().node(id).name.clone()
    }

    /// The node's kind.
    pub fn kind(&self, id: NodeId) -> NodeKind {
        self.snapshot().node(id).kind
    }

    /// The bridge the node sits below; `None` on the root bus.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.snapshot().node(id).parent
    }

    /// The nodes on a bridge's secondary bus, in the order they were added.
    pub fn children(&self, id: NodeId) -> Vec<NodeId> {
        self.snapshot().children(id).to_vec()
    }

    /// The device and function number on its bus.
    pub fn slot(&self, id: NodeId) -> (u8, u8) {
        let snap = self.snapshot();
        let node = snap.node(id);
        (node.device, node.function)
    }

    /// The node's address under the current bus numbering; `None` when
    /// config requests cannot reach it (a bridge above it is unconfigured).
    pub fn bdf(&self, id: NodeId) -> Option<Bdf> {
        self.snapshot().bdfs[id.index()]
    }

    /// The node a config request for `bdf` reaches, if any.
    pub fn node_at(&self, bdf: Bdf) -> Option<NodeId> {
        self.snapshot().lookup(bdf)
    }

    /// The node's programmed memory BARs, as last snapshotted.
    pub fn bar_regions(&self, id: NodeId) -> Vec<BarRegion> {
        self.snapshot().state(id).bars.clone()
    }

    /// A bridge's bus numbers and windows, as last snapshotted.
    pub fn bridge(&self, id: NodeId) -> Option<BridgeState> {
        self.snapshot().state(id).bridge
    }

    /// The ACS bits the node implements and has enabled; `None` without an
    /// ACS capability.
    pub fn acs(&self, id: NodeId) -> Option<AcsBits> {
        self.snapshot().state(id).acs.map(|a| a.cap & a.ctrl)
    }

    /// Locks node `id`'s function (only it) and runs `f` on it. Panics if
    /// this thread already holds it. Config changes made here bypass the
    /// snapshot: call [`refresh`](Self::refresh) afterwards.
    pub fn with_function<R>(&self, id: NodeId, f: impl FnOnce(&mut dyn PciFunction) -> R) -> R {
        let snap = self.snapshot();
        let mut guard = snap.node(id).lock_or_panic();
        f(&mut *guard)
    }

    /// Resets node `id`'s function (deasserting its INTx) and refreshes
    /// the snapshot; returns the watched BARs that moved.
    pub fn reset(&self, id: NodeId, kind: ResetKind) -> Vec<BarMove> {
        self.with_function(id, |f| f.reset(kind));
        self.intx_forget(&[id]);
        self.refresh_nodes(&[id])
    }

    /// Resets every function (a platform reset) and refreshes the
    /// snapshot; returns the watched BARs that moved.
    pub fn reset_all(&self, kind: ResetKind) -> Vec<BarMove> {
        let snap = self.snapshot();
        for node in &snap.topo.nodes {
            node.lock_or_panic().reset(kind);
        }
        self.intx_forget(&self.nodes());
        self.refresh()
    }

    /// Installs a trace sink called once per routed request (see
    /// [`TraceRecord`]); `None` stops tracing.
    pub fn set_trace(&self, sink: Option<TraceSink>) {
        let mut t = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
        self.tracing.store(sink.is_some(), Ordering::Release);
        *t = sink;
    }
}
