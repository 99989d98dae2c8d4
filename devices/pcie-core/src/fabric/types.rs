//! The vocabulary of the fabric: node identities and kinds, DMA requests,
//! routes and the hops they cross.

use std::fmt;
use std::ops::Deref;

/// A function's place in the fabric tree: an index handed out by
/// [`Fabric::add`](super::Fabric::add). Stable across bus renumbering, unlike a BDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The index of the node, in the order it was added (0 first).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a node is, which decides where it may sit and how it routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// The root complex's host bridge (Type 0, root bus only).
    HostBridge,
    /// A root port (Type 1, root bus only).
    RootPort,
    /// A switch upstream port (Type 1, below a root or downstream port).
    SwitchUpstream,
    /// A switch downstream port (Type 1, on a switch's internal bus).
    SwitchDownstream,
    /// An endpoint function (Type 0): below a link, on the root bus
    /// (root complex integrated) or on a switch's internal bus.
    Endpoint,
}

impl NodeKind {
    /// Root ports and switch ports: Type 1 functions with a secondary bus.
    pub const fn is_bridge(self) -> bool {
        matches!(
            self,
            NodeKind::RootPort | NodeKind::SwitchUpstream | NodeKind::SwitchDownstream
        )
    }

    /// Root ports and switch downstream ports: a link below, with device 0 only.
    pub const fn is_link_port(self) -> bool {
        matches!(self, NodeKind::RootPort | NodeKind::SwitchDownstream)
    }
}

/// What the root complex does with a peer-to-peer request between two of
/// its ports (or to a root-complex integrated endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RcP2pPolicy {
    /// Route it down to the peer.
    #[default]
    Forward,
    /// Complete it with Unsupported Request.
    UnsupportedRequest,
}

/// One memory request issued by a function, as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaRequest {
    /// The function that issues it.
    pub requester: NodeId,
    /// The requester ID the TLP carries: `None` for the node's real BDF
    /// (bus 0 while its path is unconfigured); `Some` to model a spoofed ID.
    pub requester_id: Option<u16>,
    /// Bus address.
    pub addr: u64,
    /// Length in bytes: 1..=4096, not crossing a 4 KiB boundary.
    pub len: u64,
    /// A memory write (else a memory read).
    pub write: bool,
    /// Address Type = Translated (the address went through ATS already).
    pub translated: bool,
}

/// The root complex's interrupt range (x86: the local APICs'
/// 0xFEE0_0000..=0xFEEF_FFFF). Writes that reach the root complex here are
/// MSI/MSI-X messages, never memory, and are not translated by the IOMMU.
pub const MSI_RANGE: std::ops::RangeInclusive<u64> = 0xfee0_0000..=0xfeef_ffff;

/// Where a routed request completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Guest RAM, at this (IOMMU-translated) address.
    Ram {
        /// Guest physical address.
        addr: u64,
    },
    /// An interrupt message: a posted write into the root complex's
    /// interrupt range ([`MSI_RANGE`]), delivered to the fabric's
    /// [`InterruptSink`](super::InterruptSink).
    Interrupt {
        /// The message address.
        addr: u64,
    },
    /// A function's memory BAR.
    Bar {
        /// The function.
        node: NodeId,
        /// BAR index.
        bar: u8,
        /// Offset from the BAR's base.
        offset: u64,
    },
}

/// Direction a request crosses a link in.
// `repr(u32)`: as wide as a `NodeId`, so a `Hop` has no padding and an
// empty `Hops` (all zeros) is filled by a memset, not by 2 stores per slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Dir {
    /// Toward the root complex.
    Up,
    /// Away from the root complex.
    Down,
}

/// One link crossed: the link directly above `node` (for a root port or a
/// root-bus function, its attachment to the root complex; for a switch
/// downstream port, the switch's internal bus segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The node below the link.
    pub node: NodeId,
    /// The direction of the crossing.
    pub dir: Dir,
}

/// Longest path from a function up to the root complex, in nodes. Deeper
/// trees are rejected by [`Fabric::add`](super::Fabric::add), so that a
/// route fits in [`Hops`] without allocating.
pub const MAX_DEPTH: usize = 16;

/// Most hops a route can have: all the way up, then all the way down.
pub const MAX_HOPS: usize = 2 * MAX_DEPTH;

/// The links a route crosses, in order: an inline array, so that routing
/// does not allocate. Dereferences to `[Hop]`. [`DmaHandle`](super::DmaHandle)
/// routes every request of a transfer into one `Hops`, filled once per call.
#[derive(Clone, Copy)]
pub struct Hops {
    hops: [Hop; MAX_HOPS],
    len: u8,
}

impl Hops {
    /// No hop yet.
    pub const fn new() -> Self {
        Hops {
            hops: [Hop {
                node: NodeId(0),
                dir: Dir::Up,
            }; MAX_HOPS],
            len: 0,
        }
    }

    /// Forgets every hop, so that the array can be routed into again
    /// without being refilled.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends a hop; false (and nothing appended) when full.
    #[inline]
    pub fn push(&mut self, node: NodeId, dir: Dir) -> bool {
        let Some(slot) = self.hops.get_mut(self.len as usize) else {
            return false;
        };
        *slot = Hop { node, dir };
        self.len += 1;
        true
    }
}

impl Default for Hops {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Hops {
    type Target = [Hop];
    #[inline]
    fn deref(&self) -> &[Hop] {
        &self.hops[..self.len as usize]
    }
}

impl fmt::Debug for Hops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Hops {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Hops {}

/// A successfully routed request: where it completes and the links it crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Where it completes.
    pub target: Target,
    /// The links crossed, in order.
    pub hops: Hops,
}

impl Route {
    /// Whether the request crossed the link above `node` (either direction).
    pub fn crosses(&self, node: NodeId) -> bool {
        self.hops.iter().any(|h| h.node == node)
    }
}

/// A BAR that the CPU now reaches somewhere else, or not at all: what a
/// config write (or a refresh) moved, for the VMM to move the memory slot
/// or doorbell ioeventfds that follow it. Only watched BARs are reported:
/// RAM-backed ones and those with doorbells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarMove {
    /// The function.
    pub node: NodeId,
    /// The BAR index.
    pub bar: u8,
    /// Where the CPU reached the whole BAR before; `None` if it did not.
    pub from: Option<u64>,
    /// Where it reaches it now; `None` if it does not.
    pub to: Option<u64>,
}

/// What a config write did: the function it reached, what that function
/// reported, and the BARs that moved as a result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigWrite {
    /// The function written; `None` when nothing answered.
    pub node: Option<NodeId>,
    /// What the function reported changed.
    pub effects: crate::ConfigEffects,
    /// Watched BARs that moved (see [`BarMove`]).
    pub moved: Vec<BarMove>,
}
