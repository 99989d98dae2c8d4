//! What a device holds to reach memory: a [`DmaHandle`], and the errors
//! real hardware would report for a request.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::cache::{CachedTarget, Entry, RouteCache};
use super::node::Node;
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
    /// The completion (or the written data) came poisoned (EP set).
    Poisoned,
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
            DmaError::Poisoned => write!(f, "poisoned TLP"),
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

    /// The host address of `[addr, addr + len)` when it is one contiguous
    /// host mapping that stays valid (and mapped at the same place) for as
    /// long as this object lives; None otherwise, and by default. Mapped
    /// DMA ([`DmaHandle::map`]) uses it.
    fn host_range(&self, _addr: u64, _len: usize) -> Option<std::ptr::NonNull<u8>> {
        None
    }
}

/// The root complex's address translation for untranslated requests.
pub trait Iommu: Send + Sync {
    /// The guest physical address for `addr` from `requester_id`, or `None`
    /// for a fault. A request never crosses a 4 KiB page.
    fn translate(&self, requester_id: u16, addr: u64, len: u64, write: bool) -> Option<u64>;

    /// The IOMMU's own counters, by name (for the `--counters` file);
    /// none by default.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// A function's only way to memory: routes its requests through the
/// fabric, counts them, then reads or writes RAM or a peer's BAR.
///
/// Each handle caches its last route (see the `cache` module): a request
/// in the same decision range under the same routing generation skips the
/// routing walk, the snapshot and the link atomics. A clone starts with an
/// empty cache of its own.
pub struct DmaHandle {
    requester: NodeId,
    fabric: Arc<Fabric>,
    ram: Arc<dyn GuestRam>,
    cache: Arc<RouteCache>,
}

impl fmt::Debug for DmaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaHandle")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl Clone for DmaHandle {
    fn clone(&self) -> Self {
        DmaHandle::new(self.fabric.clone(), self.requester, self.ram.clone())
    }
}

impl Drop for DmaHandle {
    /// Flushes the pending counts into the link atomics.
    fn drop(&mut self) {
        let mut caches = self.fabric.caches();
        let snap = self.fabric.snapshot();
        self.cache.lock().flush(&snap);
        caches.retain(|w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.cache)));
    }
}

/// Per-call state of a transfer: the routing generation at the start, and
/// the snapshot, taken at the first request the cache does not serve.
struct CallState {
    generation: u64,
    snap: Option<Arc<Snapshot>>,
}

impl DmaHandle {
    /// A handle for the function at node `requester`.
    pub fn new(fabric: Arc<Fabric>, requester: NodeId, ram: Arc<dyn GuestRam>) -> Self {
        let cache = Arc::new(RouteCache::new());
        {
            let mut caches = fabric.caches();
            caches.retain(|w| w.strong_count() > 0);
            caches.push(Arc::downgrade(&cache));
        }
        DmaHandle {
            requester,
            fabric,
            ram,
            cache,
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

    /// The guest memory RAM targets are in.
    pub(crate) fn ram(&self) -> &Arc<dyn GuestRam> {
        &self.ram
    }

    /// Turns this handle's route cache off (flushing it) or on: for tests
    /// and debugging that compare cached and uncached routing.
    pub fn set_route_cache(&self, enabled: bool) {
        let _caches = self.fabric.caches();
        let snap = self.fabric.snapshot();
        let mut g = self.cache.lock();
        g.flush(&snap);
        g.entry = None;
        g.enabled = enabled;
    }

    /// How many requests were routed (not served from the cache) while
    /// caching was on, and the bus-address range the cached route covers.
    pub fn cache_stats(&self) -> (u64, Option<(u64, u64)>) {
        let g = self.cache.lock();
        (g.routed, g.entry.as_ref().map(|e| (e.lo, e.hi)))
    }

    fn call_state(&self) -> CallState {
        CallState {
            generation: self.fabric.current_generation(),
            snap: None,
        }
    }

    /// Reads `buf.len()` bytes at bus address `bus_addr`.
    ///
    /// All of the transfer's requests are routed against the routing
    /// state current when the call starts (its generation is read once,
    /// not per 4 KiB request; a request the route cache cannot serve is
    /// routed against the snapshot current at the first such request).
    pub fn read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let mut call = self.call_state();
        let mut done = 0;
        while done < buf.len() {
            let chunk = self.chunk(bus_addr, done, buf.len(), false)?;
            let piece = &mut buf[done..done + chunk.len as usize];
            self.transfer(&mut call, &chunk, Access::Read(piece))?;
            done += piece.len();
        }
        Ok(())
    }

    /// Writes `buf` at bus address `bus_addr`.
    ///
    /// All of the transfer's requests are routed against the routing
    /// state current when the call starts (see [`read`](Self::read)).
    pub fn write(&self, bus_addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let mut call = self.call_state();
        let mut done = 0;
        while done < buf.len() {
            let chunk = self.chunk(bus_addr, done, buf.len(), true)?;
            let piece = &buf[done..done + chunk.len as usize];
            self.transfer(&mut call, &chunk, Access::Write(piece))?;
            done += piece.len();
        }
        Ok(())
    }

    /// Raises an MSI or MSI-X message: a posted one-DWORD write of `data`
    /// at `addr`, routed like any write (Bus Master Enable, ACS, counters),
    /// which the root complex delivers to its interrupt sink when `addr` is
    /// in its interrupt range.
    pub fn msi(&self, addr: u64, data: u32) -> Result<(), DmaError> {
        self.write(addr, &data.to_le_bytes())
    }

    /// Sends an error message (ERR_COR, ERR_NONFATAL, ERR_FATAL) to the
    /// root port above (see [`Fabric::report_error`]).
    pub fn error_message(&self, severity: crate::ErrorSeverity) -> Result<(), DmaError> {
        self.fabric.report_error(self.requester, severity)
    }

    /// The request for bytes `done..` of a `total`-byte transfer: up to the
    /// next 4 KiB boundary.
    #[inline]
    fn chunk(
        &self,
        bus_addr: u64,
        done: usize,
        total: usize,
        write: bool,
    ) -> Result<DmaRequest, DmaError> {
        let addr = bus_addr
            .checked_add(done as u64)
            .ok_or(DmaError::UnsupportedRequest)?;
        let room = MAX_REQUEST - addr % MAX_REQUEST;
        Ok(DmaRequest {
            requester: self.requester,
            requester_id: None,
            addr,
            len: room.min((total - done) as u64),
            write,
            translated: false,
        })
    }

    /// Performs one chunk: from the route cache when it serves it, else
    /// routed (and cached when it may be). Transfers stop at the first
    /// failing chunk; the earlier ones have happened.
    #[inline]
    fn transfer(
        &self,
        call: &mut CallState,
        req: &DmaRequest,
        access: Access<'_>,
    ) -> Result<(), DmaError> {
        // The trace sink and injected faults need every request routed.
        if !self.fabric.tracing.load(Ordering::Relaxed) && !self.fabric.faulting() {
            if let Some(mut g) = self.cache.try_lock() {
                let hit = match &g.entry {
                    Some(e) if e.serves(call.generation, req.addr, req.len) => match &e.target {
                        CachedTarget::Ram => Some(None),
                        CachedTarget::Bar {
                            node, bar, base, ..
                        } => Some(Some((node.clone(), *bar, req.addr - base))),
                    },
                    _ => None,
                };
                if let Some(hit) = hit {
                    g.pending.add(req);
                    drop(g);
                    return match hit {
                        None => self.ram_access(req.addr, access),
                        Some((node, bar, offset)) => {
                            let r = node_bar_access(&node, bar, offset, access);
                            if r.is_err() {
                                self.cache.lock().pending.sub(req);
                            }
                            r
                        }
                    };
                }
            }
        }
        self.transfer_routed(call, req, access)
    }

    /// [`transfer`](Self::transfer) by the router.
    #[cold]
    #[inline(never)]
    fn transfer_routed(
        &self,
        call: &mut CallState,
        req: &DmaRequest,
        access: Access<'_>,
    ) -> Result<(), DmaError> {
        let snap = call
            .snap
            .get_or_insert_with(|| self.fabric.snapshot())
            .clone();
        // Filled here only: a cache hit does not pay for clearing it.
        let mut hops = Hops::new();
        let hops = &mut hops;
        let target = self.fabric.route_into(&snap, req, hops)?;
        let cacheable = snap.iommu.is_none()
            && !self.fabric.tracing.load(Ordering::Relaxed)
            && !self.fabric.faulting();
        match target {
            Target::Ram { addr } => {
                self.count(&snap, hops, req, cacheable.then_some(CachedTarget::Ram));
                self.ram_access(addr, access)
            }
            Target::Interrupt { addr } => {
                let (Some(sink), Access::Write(buf)) = (self.fabric.interrupt_sink(), access)
                else {
                    return Err(DmaError::UnsupportedRequest);
                };
                let data =
                    u32::from_le_bytes(buf.try_into().map_err(|_| DmaError::UnsupportedRequest)?);
                // Counted on every link it crossed, never cached.
                self.fabric.record_in(&snap, hops, req);
                sink.deliver(addr, data)
                    .then_some(())
                    .ok_or(DmaError::UnsupportedRequest)
            }
            Target::Bar { node, bar, offset } => {
                // DMA into itself would lock a function its caller holds.
                let n = &snap.topo.nodes[node.index()];
                let done = if node == self.requester {
                    Err(DmaError::CompleterAbort)
                } else {
                    node_bar_access(n, bar, offset, access)
                };
                if let Err(e) = done {
                    self.fabric.record_refusal(&snap, hops, req, e);
                    return Err(e);
                }
                let cached = cacheable.then(|| CachedTarget::Bar {
                    node: n.clone(),
                    bar,
                    base: req.addr - offset,
                });
                self.count(&snap, hops, req, cached);
                Ok(())
            }
        }
    }

    /// Counts a routed request: into the cache's pending counts (caching
    /// its route) when it may be cached, else into the link atomics.
    fn count(&self, snap: &Snapshot, hops: &Hops, req: &DmaRequest, cached: Option<CachedTarget>) {
        let Some(target) = cached else {
            return self.fabric.record_in(snap, hops, req);
        };
        let caches = self.fabric.caches();
        let mut g = self.cache.lock();
        if !g.enabled {
            drop(g);
            drop(caches);
            return self.fabric.record_in(snap, hops, req);
        }
        if *g.pending_hops != **hops {
            g.flush(snap);
            g.pending_hops = *hops;
        }
        drop(caches);
        g.routed += 1;
        let (lo, hi) = snap.range_of(req.addr);
        g.entry = Some(Entry {
            generation: snap.generation,
            lo,
            hi,
            target,
        });
        g.pending.add(req);
    }

    #[inline]
    fn ram_access(&self, addr: u64, access: Access<'_>) -> Result<(), DmaError> {
        let ok = match access {
            Access::Read(buf) => self.ram.read(addr, buf),
            Access::Write(buf) => self.ram.write(addr, buf),
        };
        ok.then_some(()).ok_or(DmaError::UnsupportedRequest)
    }
}

/// Reads or writes BAR `bar` of node `n` at `offset` (see
/// [`Node::bar_read`]): a function this thread holds already (a device
/// DMAing into its own registers from its handler) answers Completer Abort.
fn node_bar_access(n: &Node, bar: u8, offset: u64, access: Access<'_>) -> Result<(), DmaError> {
    let done = match access {
        Access::Read(buf) => n.bar_read(bar, offset, buf),
        Access::Write(buf) => n.bar_write(bar, offset, buf),
    };
    done.then_some(()).ok_or(DmaError::CompleterAbort)
}

enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}
