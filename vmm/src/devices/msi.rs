//! The root complex's interrupt controller in the VMM: KVM's in-kernel
//! local APICs. Interrupt messages that the fabric routed to the root
//! complex arrive here and are injected with `KVM_SIGNAL_MSI`.

use std::sync::Arc;

use kvm_bindings::kvm_msi;
use kvm_ioctls::VmFd;
use pcie_core::InterruptSink;

/// Delivers MSI/MSI-X messages to the guest's local APICs.
pub struct KvmMsi {
    vm: Arc<VmFd>,
}

impl KvmMsi {
    /// An interrupt sink injecting into `vm`.
    pub fn new(vm: Arc<VmFd>) -> Self {
        KvmMsi { vm }
    }
}

impl InterruptSink for KvmMsi {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        let msi = kvm_msi {
            address_lo: addr as u32,
            address_hi: (addr >> 32) as u32,
            data,
            ..Default::default()
        };
        // 0 means the guest's APIC blocked it (e.g. masked): the posted
        // write itself completed, as on hardware.
        match self.vm.signal_msi(msi) {
            Ok(_) => true,
            Err(e) => {
                log::warn!("KVM_SIGNAL_MSI {addr:#x}/{data:#x}: {e}");
                false
            }
        }
    }
}
