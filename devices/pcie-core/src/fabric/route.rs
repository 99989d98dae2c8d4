//! The DMA router: where a memory request from a function goes, and every
//! link it crosses on the way (PCIe Base, "Access Control Services"; see
//! DESIGN.md section 8).
//!
//! Up from a node into its port P (root or downstream port, "ingress from
//! below"): with ACS, SV checks the requester ID's bus against P's bus
//! range and TB rejects translated requests. An address inside P's own
//! windows (with P's Memory Space Enable) turns around and goes back down
//! below P, unless UF sends it upstream. Leaving through P's primary side
//! needs P's Bus Master Enable. On a switch's internal bus, a sibling port
//! claiming the address takes it peer-to-peer, unless P's ACS redirects it
//! (RR, or EC with RR) or blocks it (EC); DT lets translated requests
//! through. Unclaimed, it goes up through the upstream port (which needs
//! Bus Master Enable) to the next port, or it is an Unsupported Request
//! when the upstream port's own windows hold it. At the root complex an
//! interrupt message (a one-DWORD write to [`MSI_RANGE`](super::MSI_RANGE))
//! goes to the interrupt sink, untranslated; an
//! untranslated address goes through the IOMMU, then RAM completes it;
//! anything else below the root complex is peer-to-peer, forwarded or
//! refused per [`RcP2pPolicy`](super::RcP2pPolicy). Going down needs each
//! bridge's Memory Space Enable and window and the target's Memory Space
//! Enable and BAR.
//!
//! A port whose link is down (Data Link Layer Link Active clear) passes
//! nothing either way: requests from below and requests for addresses
//! below it are Unsupported Requests.
//!
//! Completion Redirect needs no behaviour: a read is modelled as one routed
//! request whose completion retraces its path.

use std::sync::atomic::Ordering;

use super::snapshot::{AcsState, Snapshot};
use super::{
    AcsViolationKind, Dir, DmaError, DmaRequest, Fabric, Hops, NodeId, NodeKind, RcP2pPolicy,
    Route, Target, MSI_RANGE,
};
use crate::AcsBits;

/// Largest request: a request never crosses a 4 KiB boundary.
pub const MAX_REQUEST: u64 = 4096;

struct Router<'a> {
    s: &'a Snapshot,
    ram: &'a [(u64, u64)],
    req: &'a DmaRequest,
    /// The address being routed (translated by the IOMMU at the root complex).
    addr: u64,
    rid: u16,
    /// The IOMMU translated the address.
    translated: bool,
    /// The caller's buffer, emptied before routing: the hops are written in
    /// place, never copied.
    hops: &'a mut Hops,
}

type Step<T> = Result<T, DmaError>;

impl Fabric {
    /// Routes one request without performing it.
    ///
    /// `len` must be 1..=4096 and the request must not cross a 4 KiB
    /// boundary ([`DmaHandle`](super::DmaHandle) splits transfers), else
    /// `UnsupportedRequest`; so is an unknown requester. A route to the
    /// requester's own BAR is returned as such (the `DmaHandle` refuses it).
    pub fn route(&self, req: &DmaRequest) -> Result<Route, DmaError> {
        let mut hops = Hops::new();
        let target = self.route_into(&self.snapshot(), req, &mut hops)?;
        Ok(Route { target, hops })
    }

    /// [`route`](Self::route) against a given snapshot, into the caller's
    /// `hops` (emptied first; on error it holds the hops up to the refusal).
    /// The hot path: `hops` is reused from request to request, so it is
    /// neither refilled nor copied.
    pub(crate) fn route_into(
        &self,
        snap: &Snapshot,
        req: &DmaRequest,
        hops: &mut Hops,
    ) -> Result<Target, DmaError> {
        hops.clear();
        let mut router = Router {
            s: snap,
            ram: &self.ram,
            req,
            addr: req.addr,
            rid: 0,
            translated: false,
            hops,
        };
        let outcome = match router.run() {
            // Interrupts are never faulted: an injected fault reports
            // itself with one.
            Ok(t) if self.faulting() && !matches!(t, Target::Interrupt { .. }) => {
                match self.fault_for(snap, router.hops, &t) {
                    Some(e) => Err(e),
                    None => Ok(t),
                }
            }
            o => o,
        };
        match outcome {
            Err(e) => self.record_refusal(snap, router.hops, req, e),
            Ok(Target::Bar { .. }) if router.translated => self.record_iommu_p2p(req.len),
            Ok(_) => {}
        }
        let known = req.requester.index() < snap.state.len();
        if known && self.tracing.load(Ordering::Acquire) {
            self.emit_trace(snap, req, router.rid, router.hops, outcome);
        }
        outcome
    }
}

impl Router<'_> {
    fn ur<T>() -> Step<T> {
        Err(DmaError::UnsupportedRequest)
    }

    fn hop(&mut self, node: NodeId, dir: Dir) -> Step<()> {
        if self.hops.push(node, dir) {
            Ok(())
        } else {
            Self::ur()
        }
    }

    fn violation<T>(port: NodeId, kind: AcsViolationKind) -> Step<T> {
        Err(DmaError::AcsViolation { port, kind })
    }

    fn run(&mut self) -> Step<Target> {
        let (req, s) = (self.req, self.s);
        let page_off = req.addr % MAX_REQUEST;
        if req.len == 0 || req.len > MAX_REQUEST - page_off {
            return Self::ur();
        }
        let r = req.requester;
        if r.index() >= s.state.len() {
            return Self::ur();
        }
        // A function below a link that is down sends nothing at all.
        if s.node(r).parent.is_some_and(|p| s.state(p).link_down) {
            return Self::ur();
        }
        if !s.state(r).bus_master() {
            return Err(DmaError::BusMasterDisabled);
        }
        let own = s.bdfs[r.index()].map_or(0, |b| b.requester_id());
        self.rid = req.requester_id.unwrap_or(own);
        self.hop(r, Dir::Up)?;
        let mut from = r;
        loop {
            let Some(p) = s.node(from).parent else {
                return self.root_complex(from);
            };
            // Nothing leaves a link that is down.
            if s.state(p).link_down {
                return Self::ur();
            }
            // The switch whose internal bus the request is now on, the node
            // on that bus it came through, and whether ACS forces it upstream.
            let (switch, via, forced) = if s.node(p).kind.is_link_port() {
                let forced = match self.ingress(p)? {
                    Some(target) => return Ok(target),
                    None => s.state(p).acs_on(AcsBits::UF) && s.state(p).window_hit(self.addr),
                };
                self.hop(p, Dir::Up)?;
                let Some(u) = s.node(p).parent else {
                    return self.root_complex(p);
                };
                (u, p, forced)
            } else {
                (p, from, false)
            };
            if let Some(target) = self.internal_bus(switch, via, forced)? {
                return Ok(target);
            }
            if !s.state(switch).bus_master() {
                return Self::ur();
            }
            self.hop(switch, Dir::Up)?;
            from = switch;
        }
    }

    /// A request entering port `p` from below. `Some` when it turns around
    /// below `p`; `None` when it leaves through `p`'s primary side.
    fn ingress(&mut self, p: NodeId) -> Step<Option<Target>> {
        let st = self.s.state(p);
        if st.acs_on(AcsBits::SV) {
            let bus = (self.rid >> 8) as u8;
            if !st.bridge.is_some_and(|b| b.claims_bus(bus)) {
                return Self::violation(p, AcsViolationKind::SourceValidation);
            }
        }
        if self.req.translated && st.acs_on(AcsBits::TB) {
            return Self::violation(p, AcsViolationKind::TranslationBlocking);
        }
        if st.window_hit(self.addr) && !st.acs_on(AcsBits::UF) {
            return self.children_down(p).map(Some);
        }
        // Bus Master Enable gates forwarding upstream, not turning around.
        if !st.bus_master() {
            return Self::ur();
        }
        Ok(None)
    }

    /// On switch `u`'s internal bus, arrived through `via`: a peer port or
    /// function claims it (`Some`), or it goes up through `u` (`None`).
    fn internal_bus(&mut self, u: NodeId, via: NodeId, forced: bool) -> Step<Option<Target>> {
        if forced {
            return Ok(None);
        }
        let s = self.s;
        let peer = s
            .children(u)
            .iter()
            .copied()
            .find(|&d| d != via && s.state(d).claims(self.addr));
        let Some(d) = peer else {
            return match s.state(u).window_hit(self.addr) {
                true => Self::ur(),
                false => Ok(None),
            };
        };
        let redirect = match s.state(via).acs.filter(|_| s.node(via).kind.is_link_port()) {
            Some(acs) => self.egress(via, &acs, s.state(d).port)?,
            None => false,
        };
        if redirect {
            return Ok(None);
        }
        self.down(d).map(Some)
    }

    /// ACS at port `p` for a peer-to-peer request to port number `dest`:
    /// true to redirect it upstream, false to let it through.
    fn egress(&self, p: NodeId, acs: &AcsState, dest: u8) -> Step<bool> {
        if self.req.translated && acs.on(AcsBits::DT) {
            return Ok(false);
        }
        let rr = acs.on(AcsBits::RR);
        if acs.on(AcsBits::EC) && acs.egress_blocked(dest) && !rr {
            return Self::violation(p, AcsViolationKind::EgressControl);
        }
        Ok(rr)
    }

    /// At the root complex, entered from root-bus node `entry`.
    fn root_complex(&mut self, entry: NodeId) -> Step<Target> {
        let (s, req) = (self.s, self.req);
        // Interrupt messages: DWORD-aligned posted writes of one DWORD,
        // never translated. Reads of the range are Unsupported Requests.
        if MSI_RANGE.contains(&self.addr) {
            if !req.write || req.len != 4 || !self.addr.is_multiple_of(4) {
                return Self::ur();
            }
            return Ok(Target::Interrupt { addr: self.addr });
        }
        if !req.translated {
            if let Some(iommu) = &s.iommu {
                self.addr = iommu
                    .translate(self.rid, self.addr, req.len, req.write)
                    .ok_or(DmaError::IommuFault)?;
                self.translated = true;
            }
        }
        let addr = self.addr;
        if let Some(&(start, size)) = self.ram.iter().find(|(b, l)| addr >= *b && addr - b < *l) {
            if addr - start + req.len > size {
                return Self::ur();
            }
            return Ok(Target::Ram { addr });
        }
        let Some(dest) = s
            .topo
            .roots
            .iter()
            .copied()
            .find(|&n| s.state(n).claims(addr))
        else {
            return Self::ur();
        };
        if s.policy == RcP2pPolicy::UnsupportedRequest {
            return Self::ur();
        }
        let ports = |n: NodeId| s.node(n).kind == NodeKind::RootPort;
        if ports(entry) && ports(dest) && dest != entry {
            if let Some(acs) = s.state(entry).acs {
                // Redirected (RR) is where it already is: at the root complex.
                self.egress(entry, &acs, s.state(dest).port)?;
            }
        }
        self.down(dest)
    }

    /// Down into `n` from the bus above it.
    fn down(&mut self, n: NodeId) -> Step<Target> {
        self.hop(n, Dir::Down)?;
        let (st, addr, len) = (self.s.state(n), self.addr, self.req.len);
        if let Some(bar) = st.bar_hit(addr) {
            let offset = addr - bar.addr;
            if offset + len > bar.size {
                return Err(DmaError::CompleterAbort);
            }
            return Ok(Target::Bar {
                node: n,
                bar: bar.index,
                offset,
            });
        }
        if st.window_hit(addr) {
            return self.children_down(n);
        }
        Self::ur()
    }

    /// Down from bridge `p`'s secondary bus to the child claiming the address.
    fn children_down(&mut self, p: NodeId) -> Step<Target> {
        let s = self.s;
        if s.state(p).link_down {
            return Self::ur();
        }
        match s
            .children(p)
            .iter()
            .find(|&&c| s.state(c).claims(self.addr))
        {
            Some(&c) => self.down(c),
            None => Self::ur(),
        }
    }
}
