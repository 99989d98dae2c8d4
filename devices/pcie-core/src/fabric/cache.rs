//! The per-[`DmaHandle`](super::DmaHandle) route cache and its pending link
//! counts.
//!
//! A handle remembers its last successful route: where it completes and the
//! links it crosses, valid for the half-open address range between two
//! consecutive decision boundaries of the snapshot it was computed against
//! (see `Snapshot::range_of`), as long as the fabric's generation has not
//! moved. Requests served from the cache are counted into the handle's
//! pending counts (plain integers) instead of the per-link atomics; the
//! fabric sums every registered handle's pending counts into
//! [`Fabric::counters`](super::Fabric::counters), so the counters stay exact,
//! and the pending counts are flushed into the atomics when the cached
//! route changes and when the handle is dropped.
//!
//! Locking: a cache is behind a one-bit try-lock (`busy`) whose release is a
//! plain store. The owner takes it only around the cache check and the
//! pending adds, never while taking another lock. Lock order: the fabric's
//! cache registry, then a cache; the hit path takes the cache alone.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::counters::{DOWN_BYTES, DOWN_TLPS, UP_BYTES, UP_TLPS};
use super::node::Node;
use super::snapshot::Snapshot;
use super::{Dir, DmaRequest, Hops, LinkCounters, NodeId, MAX_PAYLOAD, MAX_READ_REQUEST};

/// Where a cached route completes.
pub(crate) enum CachedTarget {
    /// Guest RAM at the bus address (no IOMMU: routes are not cached then).
    Ram,
    /// BAR `bar` of `node`, based at `base`.
    Bar { node: Arc<Node>, bar: u8, base: u64 },
}

/// One cached route.
pub(crate) struct Entry {
    /// The snapshot generation it was computed against.
    pub(crate) generation: u64,
    /// The address range (half-open) over which it is the route.
    pub(crate) lo: u64,
    pub(crate) hi: u64,
    pub(crate) target: CachedTarget,
}

impl Entry {
    /// Whether the request `[addr, addr + len)` takes this route under
    /// generation `generation`.
    #[inline]
    pub(crate) fn serves(&self, generation: u64, addr: u64, len: u64) -> bool {
        self.generation == generation && addr >= self.lo && addr < self.hi && len <= self.hi - addr
    }
}

/// Payload bytes and TLPs of requests along the cached route, not yet in
/// the link atomics: `fwd` in each hop's direction, `back` against it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) fwd_bytes: u64,
    pub(crate) fwd_tlps: u64,
    pub(crate) back_bytes: u64,
    pub(crate) back_tlps: u64,
}

impl Pending {
    /// Counts one request, as [`Fabric::record`](super::Fabric::record) does per hop.
    #[inline]
    pub(crate) fn add(&mut self, req: &DmaRequest) {
        let data_tlps = req.len.div_ceil(MAX_PAYLOAD);
        if req.write {
            self.fwd_bytes += req.len;
            self.fwd_tlps += data_tlps;
        } else {
            self.fwd_tlps += req.len.div_ceil(MAX_READ_REQUEST);
            self.back_bytes += req.len;
            self.back_tlps += data_tlps;
        }
    }

    /// Takes back one request counted by [`add`](Self::add) (saturating:
    /// the counters may have been reset in between).
    pub(crate) fn sub(&mut self, req: &DmaRequest) {
        let mut one = Pending::default();
        one.add(req);
        self.fwd_bytes = self.fwd_bytes.saturating_sub(one.fwd_bytes);
        self.fwd_tlps = self.fwd_tlps.saturating_sub(one.fwd_tlps);
        self.back_bytes = self.back_bytes.saturating_sub(one.back_bytes);
        self.back_tlps = self.back_tlps.saturating_sub(one.back_tlps);
    }

    /// The (up bytes, up TLPs, down bytes, down TLPs) a hop in `dir` gets.
    fn per_hop(&self, dir: Dir) -> [u64; 4] {
        let mut v = [0; 4];
        let (fwd, back) = match dir {
            Dir::Up => ((UP_BYTES, UP_TLPS), (DOWN_BYTES, DOWN_TLPS)),
            Dir::Down => ((DOWN_BYTES, DOWN_TLPS), (UP_BYTES, UP_TLPS)),
        };
        v[fwd.0] = self.fwd_bytes;
        v[fwd.1] = self.fwd_tlps;
        v[back.0] = self.back_bytes;
        v[back.1] = self.back_tlps;
        v
    }
}

/// What the try-lock protects.
pub(crate) struct CacheState {
    /// False: never cache (tests compare against an uncached handle).
    pub(crate) enabled: bool,
    /// The cached route, whose hops are `pending_hops`.
    pub(crate) entry: Option<Entry>,
    /// Counts of requests along `pending_hops` (kept when `entry` is
    /// replaced by a route over the same hops).
    pub(crate) pending: Pending,
    pub(crate) pending_hops: Hops,
    /// Requests routed (not served by the cache) while caching was enabled.
    pub(crate) routed: u64,
}

impl CacheState {
    /// Adds the pending counts of the link above `id` to `out`.
    pub(crate) fn add_counts(&self, id: NodeId, out: &mut LinkCounters) {
        for hop in self.pending_hops.iter().filter(|h| h.node == id) {
            let v = self.pending.per_hop(hop.dir);
            out.up_bytes += v[UP_BYTES];
            out.up_tlps += v[UP_TLPS];
            out.down_bytes += v[DOWN_BYTES];
            out.down_tlps += v[DOWN_TLPS];
        }
    }

    /// Moves the pending counts into the link atomics. The caller holds the
    /// fabric's cache registry, so that readers see them in one place or
    /// the other, never both or neither.
    pub(crate) fn flush(&mut self, snap: &Snapshot) {
        if self.pending != Pending::default() {
            for hop in self.pending_hops.iter() {
                let c = &snap.node(hop.node).counters;
                for (i, v) in self.pending.per_hop(hop.dir).into_iter().enumerate() {
                    if v != 0 {
                        c[i].fetch_add(v, Ordering::Relaxed);
                    }
                }
            }
        }
        self.pending = Pending::default();
        self.pending_hops.clear();
    }
}

/// A handle's route cache: [`CacheState`] behind a try-lock.
pub(crate) struct RouteCache {
    busy: AtomicBool,
    state: UnsafeCell<CacheState>,
}

// SAFETY: `state` is only reached through a `CacheGuard`, which exists only
// while this thread owns `busy` (taken with an Acquire compare-exchange,
// released with a Release store), so accesses to it never overlap and each
// one happens-after the previous one. `CacheState` is `Send`.
unsafe impl Sync for RouteCache {}

impl RouteCache {
    pub(crate) fn new() -> Self {
        RouteCache {
            busy: AtomicBool::new(false),
            state: UnsafeCell::new(CacheState {
                enabled: true,
                entry: None,
                pending: Pending::default(),
                pending_hops: Hops::new(),
                routed: 0,
            }),
        }
    }

    /// The state, unless someone else holds it (the hit path then takes
    /// the uncached path instead of waiting). One locked instruction.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<CacheGuard<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| CacheGuard { cache: self })
    }

    /// The state, waiting for it: holders keep it for a few instructions.
    pub(crate) fn lock(&self) -> CacheGuard<'_> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            std::thread::yield_now();
        }
    }
}

/// Exclusive access to a [`RouteCache`]'s state; dropping it releases it.
pub(crate) struct CacheGuard<'a> {
    cache: &'a RouteCache,
}

impl Deref for CacheGuard<'_> {
    type Target = CacheState;
    #[inline]
    fn deref(&self) -> &CacheState {
        // SAFETY: this guard owns `busy` (see `unsafe impl Sync`).
        unsafe { &*self.cache.state.get() }
    }
}

impl DerefMut for CacheGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut CacheState {
        // SAFETY: this guard owns `busy`, and `&mut self` makes this the
        // only reference derived from it.
        unsafe { &mut *self.cache.state.get() }
    }
}

impl Drop for CacheGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.cache.busy.store(false, Ordering::Release);
    }
}
