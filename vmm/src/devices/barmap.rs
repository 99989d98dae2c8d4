//! RAM-backed BARs (the test endpoint's BAR2, later the NVMe CMB) mapped
//! straight into the guest as KVM memory slots, so CPU accesses never exit.
//! The mapping follows the BAR: after every config write that changes
//! routing, each backed BAR is resolved again through the fabric (BAR
//! address, Memory Space Enable, bridge windows) and its slot is moved,
//! created or removed to match. Device DMA into such a BAR goes through the
//! fabric to the same bytes.

use std::sync::{Arc, Mutex};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use pcie_core::{Fabric, NodeId};

/// A BAR whose contents are host memory the device owns.
#[derive(Debug, Clone, Copy)]
pub struct RamBar {
    /// The device.
    pub node: NodeId,
    /// Which BAR.
    pub bar: u8,
    /// Host address of the backing (valid for the device's lifetime).
    pub host: usize,
    /// Size of the backing in bytes.
    pub size: u64,
}

/// First KVM slot used for BARs (guest RAM uses the ones below).
const FIRST_SLOT: u32 = 16;

/// Keeps one KVM slot per RAM-backed BAR in line with where the BAR decodes.
pub struct BarMapper {
    vm: Arc<VmFd>,
    fabric: Arc<Fabric>,
    bars: Vec<RamBar>,
    /// Guest address each slot is mapped at now.
    mapped: Mutex<Vec<Option<u64>>>,
}

impl BarMapper {
    /// A mapper for `bars`; call [`BarMapper::sync`] to map them.
    pub fn new(vm: Arc<VmFd>, fabric: Arc<Fabric>, bars: Vec<RamBar>) -> Self {
        let mapped = Mutex::new(vec![None; bars.len()]);
        BarMapper {
            vm,
            fabric,
            bars,
            mapped,
        }
    }

    /// Where `b` decodes now from the CPU's side, if it is reachable whole.
    fn target(&self, b: &RamBar) -> Option<u64> {
        let region = self
            .fabric
            .bar_regions(b.node)
            .into_iter()
            .find(|r| r.index == b.bar && r.size == b.size)?;
        let end = region.addr + region.size - 1;
        let decodes = |a| self.fabric.resolve_mmio(a) == Some((b.node, b.bar, a - region.addr));
        (decodes(region.addr) && decodes(end)).then_some(region.addr)
    }

    /// Moves, creates or removes slots so each backed BAR is mapped exactly
    /// where the guest's configuration makes it decode.
    pub fn sync(&self) {
        let mut mapped = self.mapped.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in self.bars.iter().enumerate() {
            let want = self.target(b);
            if mapped[i] == want {
                continue;
            }
            let slot = FIRST_SLOT + i as u32;
            if mapped[i].is_some() {
                self.set(slot, 0, 0, b.host);
            }
            if let Some(addr) = want {
                self.set(slot, addr, b.size, b.host);
            }
            log::debug!(
                "BAR {} of node {:?}: slot {slot} {:?} -> {:?}",
                b.bar,
                b.node,
                mapped[i],
                want
            );
            mapped[i] = want;
        }
    }

    fn set(&self, slot: u32, gpa: u64, size: u64, host: usize) {
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the device's backing, which lives as long as the
        // fabric (and so the VM); size 0 deletes the slot.
        if let Err(e) = unsafe { self.vm.set_user_memory_region(region) } {
            log::warn!("cannot map a RAM-backed BAR at {gpa:#x} (slot {slot}): {e}");
        }
    }
}
