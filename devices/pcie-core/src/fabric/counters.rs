//! Traffic counters: bytes and TLPs crossing the link above each node, in
//! each direction.

use std::sync::atomic::Ordering;
use std::sync::Weak;

use super::snapshot::Snapshot;
use super::{Dir, DmaError, DmaRequest, Fabric, Hop, NodeId, Route};

/// Max payload size the counters assume for writes and completions.
pub const MAX_PAYLOAD: u64 = 256;
/// Max read request size the counters assume.
pub const MAX_READ_REQUEST: u64 = 512;

pub(crate) const UP_BYTES: usize = 0;
pub(crate) const UP_TLPS: usize = 1;
pub(crate) const DOWN_BYTES: usize = 2;
pub(crate) const DOWN_TLPS: usize = 3;

/// What crossed the link above one node. Bytes are payload bytes only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LinkCounters {
    /// Payload bytes toward the root complex.
    pub up_bytes: u64,
    /// TLPs toward the root complex.
    pub up_tlps: u64,
    /// Payload bytes away from the root complex.
    pub down_bytes: u64,
    /// TLPs away from the root complex.
    pub down_tlps: u64,
}

impl LinkCounters {
    /// Nothing crossed the link.
    pub fn is_idle(&self) -> bool {
        *self == LinkCounters::default()
    }
}

/// Requests the fabric refused (none of their bytes moved), by what a
/// requester was told, and how many of them reached the root complex
/// before it refused them (its P2P policy, an address nothing decodes,
/// an IOMMU fault).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RefusedCounters {
    /// Bus Master Enable was clear.
    pub bus_master_disabled: u64,
    /// Unsupported Request.
    pub unsupported_request: u64,
    /// Completer Abort.
    pub completer_abort: u64,
    /// ACS violations.
    pub acs_violation: u64,
    /// IOMMU faults.
    pub iommu_fault: u64,
    /// Poisoned completions or data (injected faults).
    pub poisoned: u64,
    /// Of all these, the requests refused at the root complex.
    pub at_root_complex: u64,
    /// The payload bytes those requests asked for.
    pub at_root_complex_bytes: u64,
}

/// The atomics behind [`RefusedCounters`], in its field order.
pub(crate) type Refusals = [std::sync::atomic::AtomicU64; 8];

impl Fabric {
    /// Counts a refused request; `hops` are the links it crossed.
    pub(crate) fn record_refusal(
        &self,
        snap: &Snapshot,
        hops: &[Hop],
        req: &DmaRequest,
        e: DmaError,
    ) {
        let kind = match e {
            DmaError::BusMasterDisabled => 0,
            DmaError::UnsupportedRequest => 1,
            DmaError::CompleterAbort => 2,
            DmaError::AcsViolation { .. } => 3,
            DmaError::IommuFault => 4,
            DmaError::Poisoned => 7,
        };
        self.refusals[kind].fetch_add(1, Ordering::Relaxed);
        for h in hops {
            snap.node(h.node)
                .refused_bytes
                .fetch_add(req.len, Ordering::Relaxed);
        }
        // It reached the root complex when its last crossing was up a
        // link of the root bus.
        let at_rc = hops
            .last()
            .is_some_and(|h| h.dir == Dir::Up && snap.topo.roots.contains(&h.node));
        if at_rc && kind != 2 && kind != 7 {
            self.refusals[5].fetch_add(1, Ordering::Relaxed);
            self.refusals[6].fetch_add(req.len, Ordering::Relaxed);
        }
    }

    /// Counts a request the IOMMU translated into a peer's BAR.
    pub(crate) fn record_iommu_p2p(&self, len: u64) {
        self.iommu_p2p[0].fetch_add(1, Ordering::Relaxed);
        self.iommu_p2p[1].fetch_add(len, Ordering::Relaxed);
    }

    /// Requests, and their payload bytes, that the IOMMU translated into a
    /// peer's BAR (peer-to-peer through the root complex, translated).
    pub fn iommu_p2p(&self) -> (u64, u64) {
        (
            self.iommu_p2p[0].load(Ordering::Relaxed),
            self.iommu_p2p[1].load(Ordering::Relaxed),
        )
    }

    /// Payload bytes of refused requests that crossed the link above `id`
    /// before they were refused.
    pub fn refused_bytes(&self, id: NodeId) -> u64 {
        self.snapshot()
            .node(id)
            .refused_bytes
            .load(Ordering::Relaxed)
    }

    /// Requests refused since the start (or the last
    /// [`reset_counters`](Self::reset_counters)).
    pub fn refused(&self) -> RefusedCounters {
        let g = |i: usize| self.refusals[i].load(Ordering::Relaxed);
        RefusedCounters {
            bus_master_disabled: g(0),
            unsupported_request: g(1),
            completer_abort: g(2),
            acs_violation: g(3),
            iommu_fault: g(4),
            poisoned: g(7),
            at_root_complex: g(5),
            at_root_complex_bytes: g(6),
        }
    }

    /// The counters of the link above node `id`: exact for every request
    /// whose DMA call has returned (the link's atomics plus what the
    /// handles' route caches have not flushed into them yet).
    pub fn counters(&self, id: NodeId) -> LinkCounters {
        let caches = self.caches();
        let snap = self.snapshot();
        let c = &snap.node(id).counters;
        let get = |i: usize| c[i].load(Ordering::Relaxed);
        let mut out = LinkCounters {
            up_bytes: get(UP_BYTES),
            up_tlps: get(UP_TLPS),
            down_bytes: get(DOWN_BYTES),
            down_tlps: get(DOWN_TLPS),
        };
        for cache in caches.iter().filter_map(Weak::upgrade) {
            cache.lock().add_counts(id, &mut out);
        }
        out
    }

    /// Zeroes every node's counters.
    pub fn reset_counters(&self) {
        let caches = self.caches();
        for node in &self.snapshot().topo.nodes {
            for c in &node.counters {
                c.store(0, Ordering::Relaxed);
            }
        }
        for c in self.refusals.iter().chain(&self.iommu_p2p) {
            c.store(0, Ordering::Relaxed);
        }
        for node in &self.snapshot().topo.nodes {
            node.refused_bytes.store(0, Ordering::Relaxed);
        }
        for cache in caches.iter().filter_map(Weak::upgrade) {
            cache.lock().pending = Default::default();
        }
    }

    /// Counts a routed request on every link of its route. A write carries
    /// `len` bytes in ceil(len / 256) TLPs along the route. A read sends
    /// ceil(len / 512) request TLPs (no payload) along the route, and its
    /// completions bring `len` bytes in ceil(len / 256) TLPs back along it.
    /// [`DmaHandle`](super::DmaHandle) calls this for every request it performs.
    pub fn record(&self, route: &Route, req: &DmaRequest) {
        self.record_in(&self.snapshot(), &route.hops, req);
    }

    /// [`record`](Self::record) of the route crossing `hops`, against a
    /// given snapshot. The TLP counts are worked out once per request (the
    /// divisions by the power-of-two sizes compile to shifts), then each hop
    /// costs one atomic add per counter it changes: two for a write, three
    /// for a read.
    pub(crate) fn record_in(&self, snap: &Snapshot, hops: &[Hop], req: &DmaRequest) {
        let data_tlps = req.len.div_ceil(MAX_PAYLOAD);
        let request_tlps = req.len.div_ceil(MAX_READ_REQUEST);
        for hop in hops {
            let c = &snap.node(hop.node).counters;
            let add = |i: usize, v: u64| c[i].fetch_add(v, Ordering::Relaxed);
            let (fwd, back) = match hop.dir {
                Dir::Up => ((UP_BYTES, UP_TLPS), (DOWN_BYTES, DOWN_TLPS)),
                Dir::Down => ((DOWN_BYTES, DOWN_TLPS), (UP_BYTES, UP_TLPS)),
            };
            if req.write {
                add(fwd.0, req.len);
                add(fwd.1, data_tlps);
            } else {
                add(fwd.1, request_tlps);
                add(back.0, req.len);
                add(back.1, data_tlps);
            }
        }
    }
}
