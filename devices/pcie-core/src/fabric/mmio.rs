//! CPU-side memory routing: a guest access in an MMIO aperture goes down
//! from the root complex through bridge windows to one BAR.

use super::snapshot::Snapshot;
use super::{Fabric, NodeId};

impl Snapshot {
    /// The function and BAR a CPU memory access at `addr` reaches: root-bus
    /// functions' BARs (with Memory Space Enable), then down every bridge
    /// whose Memory Space Enable is set and whose memory or prefetchable
    /// window holds `addr`, to a BAR of a function with Memory Space Enable.
    pub(crate) fn resolve_down(&self, addr: u64) -> Option<(NodeId, u8, u64)> {
        let mut bus = &self.topo.roots[..];
        'bus: loop {
            for &n in bus {
                let st = self.state(n);
                if let Some(bar) = st.bar_hit(addr) {
                    return Some((n, bar.index, addr - bar.addr));
                }
                if st.window_hit(addr) {
                    if st.link_down {
                        return None;
                    }
                    bus = self.children(n);
                    continue 'bus;
                }
            }
            return None;
        }
    }
}

impl Fabric {
    /// Which function, BAR and offset a CPU access at `addr` reaches; `None`
    /// for a master abort. The VMM uses it to map RAM-backed BARs itself.
    pub fn resolve_mmio(&self, addr: u64) -> Option<(NodeId, u8, u64)> {
        self.snapshot().resolve_down(addr)
    }

    /// CPU read at `addr`: a RAM-backed BAR is read from its memory with no
    /// lock; otherwise the one function decoding it is locked and reads its
    /// BAR. Nothing decodes → master abort: all ones, and false.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        let snap = self.snapshot();
        match snap.resolve_down(addr) {
            Some((id, bar, offset)) => {
                // A function calling the fabric from its own handler
                // reads all ones rather than deadlocking.
                if !snap.node(id).bar_read(bar, offset, data) {
                    data.fill(0xff);
                }
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// CPU write at `addr` to the one function decoding it. Nothing
    /// decodes → master abort: dropped, and false.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        let snap = self.snapshot();
        match snap.resolve_down(addr) {
            Some((id, bar, offset)) => {
                // Dropped when re-entered from the function's own handler.
                snap.node(id).bar_write(bar, offset, data);
                true
            }
            None => false,
        }
    }
}
