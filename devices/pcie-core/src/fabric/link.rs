//! Links going down and up below a root or downstream port: a surprise
//! removal and insertion of whatever sits below it.
//!
//! The port's own registers say whether its link is up (Link Status'
//! Data Link Layer Link Active), and the routing snapshot reads them: below
//! a link that is down, config reads return all ones, CPU accesses master
//! abort, and requests to or from there are Unsupported Requests. The
//! functions below lose their state (a hot reset) when the link goes
//! down, so they come back in their power-on state, as a card reinserted.

use std::sync::atomic::Ordering;

use super::{BarMove, Fabric, NodeId};
use crate::ResetKind;

/// What a link looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkState {
    /// Data Link Layer Link Active.
    pub up: bool,
    /// How many times [`Fabric::set_link`] brought it down.
    pub downs: u64,
}

impl Fabric {
    /// Brings the link below port `port` down (`up` false) or up, as a
    /// surprise removal or insertion would. Going down hot-resets every
    /// function below. The port's hot-plug interrupt, if it raises one, is
    /// sent through the router after the snapshot shows the new state.
    /// Returns the watched BARs that moved (those below it stop or start
    /// decoding), or why the port has no such link.
    pub fn set_link(&self, port: NodeId, up: bool) -> Result<Vec<BarMove>, String> {
        let snap = self.snapshot();
        let node = snap.node(port);
        let was_down = snap.state(port).link_down;
        let irq = {
            let mut f = node
                .lock()
                .ok_or("the port is busy on this thread".to_string())?;
            f.set_link(up)?
        };
        let mut reread = vec![port];
        if !up && !was_down {
            node.link_downs.fetch_add(1, Ordering::Relaxed);
            let below = self.reset_below(port, ResetKind::Hot);
            self.intx_forget(&below);
            reread.extend(below);
        }
        let moved = self.refresh_nodes(&reread);
        if let Some(m) = irq {
            // A port that cannot send (Bus Master Enable clear, a bad
            // address) loses its interrupt, as on hardware; software
            // still finds the event in Slot Status.
            let _ = self.interrupt_from(port, m);
        }
        Ok(moved)
    }

    /// The link below a root or downstream port that reports its state
    /// (Data Link Layer Link Active Reporting); `None` for other nodes.
    pub fn link_state(&self, id: NodeId) -> Option<LinkState> {
        let snap = self.snapshot();
        let st = snap.state(id);
        (snap.node(id).kind.is_link_port() && st.link_reporting).then(|| LinkState {
            up: !st.link_down,
            downs: snap.node(id).link_downs.load(Ordering::Relaxed),
        })
    }
}
