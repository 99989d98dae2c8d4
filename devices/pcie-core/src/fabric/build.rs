//! Growing the tree: where each kind of node may sit.

use std::sync::{Arc, PoisonError};

use super::node::Node;
use super::snapshot::{Reread, Topology};
use super::{Fabric, NodeId, NodeKind, MAX_DEPTH};
use crate::header::reg;
use crate::{Bdf, Error, HeaderLayout, PciFunction};

impl Fabric {
    /// Adds function `f` at `device`/`function` on the root bus (`parent`
    /// `None`) or on the secondary bus of bridge `parent`.
    ///
    /// Placement rules: host bridges and root ports sit on the root bus;
    /// below a root or downstream port (a link) sit endpoints and switch
    /// upstream ports, at device 0 only; on a switch's internal bus sit
    /// downstream ports and endpoints. Bridge kinds need a Type 1 header,
    /// the others Type 0. Works on a shared fabric too (hot-add).
    pub fn add(
        &self,
        parent: Option<NodeId>,
        device: u8,
        function: u8,
        name: &str,
        kind: NodeKind,
        f: Box<dyn PciFunction>,
    ) -> Result<NodeId, Error> {
        self.add_with(parent, device, function, name, kind, |_| Ok(f))
    }

    /// Like [`add`](Self::add), but builds the function once its id is
    /// known, so that it can be given its [`DmaHandle`](super::DmaHandle)
    /// at construction (the fabric must be in an `Arc` already). `make`
    /// runs while nodes are being added: it must not call into the fabric.
    pub fn add_with<E: From<Error>>(
        &self,
        parent: Option<NodeId>,
        device: u8,
        function: u8,
        name: &str,
        kind: NodeKind,
        make: impl FnOnce(NodeId) -> Result<Box<dyn PciFunction>, E>,
    ) -> Result<NodeId, E> {
        Bdf::new(0, device, function)?;
        let _serial = self.rebuild.lock().unwrap_or_else(PoisonError::into_inner);
        let cur = self.snapshot();
        let topo = &cur.topo;
        let (siblings, depth, parent_name) = match parent {
            None => (&topo.roots, 1, "the root bus".to_owned()),
            Some(p) => {
                let pn = topo.nodes.get(p.index());
                let pn = pn.ok_or(Error::UnknownNode(p))?;
                (&topo.children[p.index()], pn.depth + 1, pn.name.clone())
            }
        };
        let parent_kind = parent.map(|p| topo.nodes[p.index()].kind);
        check_placement(kind, parent_kind, device, &parent_name)?;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep(MAX_DEPTH).into());
        }
        let taken = siblings.iter().any(|s| {
            let s = &topo.nodes[s.index()];
            (s.device, s.function) == (device, function)
        });
        if taken {
            let (parent, device, function) = (parent_name, device, function);
            return Err(Error::DuplicateNode {
                parent,
                device,
                function,
            }
            .into());
        }
        let id = NodeId(topo.nodes.len() as u32);
        let f = make(id)?;
        let expected = if kind.is_bridge() {
            HeaderLayout::Type1
        } else {
            HeaderLayout::Type0
        };
        let mut ht = [0];
        f.config_read(reg::HEADER_TYPE, &mut ht);
        if ht[0] & 0x7f != expected as u8 {
            return Err(Error::HeaderMismatch { kind, expected }.into());
        }
        let mut next = Topology {
            nodes: topo.nodes.clone(),
            children: topo.children.clone(),
            roots: topo.roots.clone(),
        };
        let node = Node::new(name, kind, parent, (device, function), depth, f);
        next.nodes.push(Arc::new(node));
        next.children.push(Vec::new());
        match parent {
            None => next.roots.push(id),
            Some(p) => next.children[p.index()].push(id),
        }
        // Only the new node is read; the others have not changed.
        self.install(
            &cur,
            Arc::new(next),
            cur.policy,
            cur.iommu.clone(),
            Reread::Only(&[]),
        );
        Ok(id)
    }
}

fn check_placement(
    kind: NodeKind,
    parent: Option<NodeKind>,
    device: u8,
    parent_name: &str,
) -> Result<(), Error> {
    use NodeKind::*;
    let allowed = match parent {
        None => matches!(kind, HostBridge | RootPort | Endpoint),
        Some(RootPort | SwitchDownstream) => matches!(kind, Endpoint | SwitchUpstream),
        Some(SwitchUpstream) => matches!(kind, SwitchDownstream | Endpoint),
        Some(HostBridge | Endpoint) => return Err(Error::NotABridge(parent_name.to_owned())),
    };
    if !allowed {
        return Err(Error::Misplaced {
            kind,
            parent: parent_name.to_owned(),
        });
    }
    if parent.is_some_and(NodeKind::is_link_port) && device != 0 {
        return Err(Error::LinkDeviceNotZero {
            parent: parent_name.to_owned(),
            device,
        });
    }
    Ok(())
}
