//! The root complex's interrupt controller in the VMM: KVM's in-kernel
//! local APICs. Interrupt messages that the fabric routed to the root
//! complex arrive here.
//!
//! Each distinct message (address, data) gets a GSI with an MSI route and
//! an irqfd, the first time it is delivered; from then on a delivery is
//! one eventfd write. The routes live in one VM-wide GSI routing table,
//! legacy IOAPIC/PIC routes included, which is replaced whole whenever a
//! route is added (`KVM_SET_GSI_ROUTING` replaces the table). The first
//! delivery of a message, and every delivery once the table is full, goes
//! through `KVM_SIGNAL_MSI` instead.
//!
//! Legacy INTx lines (GSIs 16..=23, see `pcie_core::intx`) arrive as
//! levels, already ORed over every function sharing the line by the
//! fabric, and go to the IOAPIC with `KVM_IRQ_LINE`. KVM takes the level
//! as the asserted state, whatever polarity the guest programmed (the
//! `_PRT` lines are level, active low), and its IOAPIC delivers a
//! level-triggered pin again after the EOI while it stays high, so no
//! resample eventfd is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kvm_bindings::{
    kvm_irq_routing_entry, kvm_msi, KvmIrqRouting, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI,
};
use kvm_ioctls::VmFd;
use pcie_core::InterruptSink;
use vmm_sys_util::eventfd::EventFd;

/// GSIs 0..24 are the IOAPIC's pins (0..16 also the PICs').
const LEGACY_GSIS: u32 = 24;
// The fabric's INTx lines are IOAPIC-only pins (no PIC, no ISA device).
const _: () = assert!(
    pcie_core::intx::GSI_BASE >= 16
        && pcie_core::intx::GSI_BASE + pcie_core::intx::GSI_COUNT <= LEGACY_GSIS
);
/// Most MSI routes: KVM allows 4096 GSIs; guests reprogram vectors, so
/// messages that come after the table is full fall back to
/// `KVM_SIGNAL_MSI`.
pub const MAX_MSI_ROUTES: usize = 1024;

/// KVM's default routes for the legacy GSIs (as `kvm_setup_default_irq_routing`):
/// the IOAPIC pin of the same number, and for 0..16 the PIC pin too.
pub fn legacy_routes() -> Vec<kvm_irq_routing_entry> {
    let chip = |gsi: u32, irqchip: u32, pin: u32| {
        let mut e = kvm_irq_routing_entry {
            gsi,
            type_: KVM_IRQ_ROUTING_IRQCHIP,
            ..Default::default()
        };
        e.u.irqchip.irqchip = irqchip;
        e.u.irqchip.pin = pin;
        e
    };
    let mut v = Vec::new();
    for gsi in 0..LEGACY_GSIS {
        if gsi < 16 {
            let pic = if gsi < 8 {
                KVM_IRQCHIP_PIC_MASTER
            } else {
                KVM_IRQCHIP_PIC_SLAVE
            };
            v.push(chip(gsi, pic, gsi % 8));
        }
        v.push(chip(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    }
    v
}

/// An MSI route for `(addr, data)` at `gsi`.
pub fn msi_route(gsi: u32, addr: u64, data: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u.msi.address_lo = addr as u32;
    e.u.msi.address_hi = (addr >> 32) as u32;
    e.u.msi.data = data;
    e
}

/// The routing table and the irqfd of each message.
struct Routes {
    table: Vec<kvm_irq_routing_entry>,
    fds: HashMap<(u64, u32), EventFd>,
}

/// Delivers MSI/MSI-X messages to the guest's local APICs, and INTx
/// levels to its IOAPIC. Called from device threads and vCPUs alike: the
/// VM fd is shared.
pub struct KvmMsi {
    vm: Arc<VmFd>,
    routes: Mutex<Routes>,
}

impl KvmMsi {
    /// An interrupt sink injecting into `vm`, whose routing table starts
    /// as KVM's default.
    pub fn new(vm: Arc<VmFd>) -> Self {
        KvmMsi {
            vm,
            routes: Mutex::new(Routes {
                table: legacy_routes(),
                fds: HashMap::new(),
            }),
        }
    }

    fn signal(&self, addr: u64, data: u32) -> bool {
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

    /// Gives `(addr, data)` a GSI, a route in a new whole table and an
    /// irqfd. Logged and skipped on failure (deliveries then keep using
    /// `KVM_SIGNAL_MSI`).
    fn add_route(&self, r: &mut Routes, addr: u64, data: u32) {
        if r.fds.len() >= MAX_MSI_ROUTES {
            return;
        }
        let gsi = LEGACY_GSIS + r.fds.len() as u32;
        let mut table = r.table.clone();
        table.push(msi_route(gsi, addr, data));
        let result = KvmIrqRouting::from_entries(&table)
            .map_err(|e| format!("{e:?}"))
            .and_then(|t| self.vm.set_gsi_routing(&t).map_err(|e| e.to_string()))
            .and_then(|()| EventFd::new(libc::EFD_NONBLOCK).map_err(|e| e.to_string()))
            .and_then(|fd| {
                self.vm
                    .register_irqfd(&fd, gsi)
                    .map(|()| fd)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(fd) => {
                r.table = table;
                r.fds.insert((addr, data), fd);
            }
            Err(e) => log::warn!("no irqfd for MSI {addr:#x}/{data:#x}: {e}"),
        }
    }
}

impl InterruptSink for KvmMsi {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        let mut r = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(fd) = r.fds.get(&(addr, data)) {
            return fd.write(1).is_ok();
        }
        // First time: inject now, and route it for the next times.
        let ok = self.signal(addr, data);
        self.add_route(&mut r, addr, data);
        ok
    }

    fn set_level(&self, gsi: u32, level: bool) {
        if gsi >= LEGACY_GSIS {
            log::warn!("INTx on GSI {gsi}: not an IOAPIC pin");
            return;
        }
        if let Err(e) = self.vm.set_irq_line(gsi, level) {
            log::warn!("KVM_IRQ_LINE {gsi} = {level}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_starts_as_kvms_default() {
        let t = legacy_routes();
        // 16 GSIs on both the PIC and the IOAPIC, 8 on the IOAPIC only.
        assert_eq!(t.len(), 16 * 2 + 8);
        let pins: Vec<(u32, u32, u32)> = t
            .iter()
            .map(|e| {
                // SAFETY: every entry is an irqchip route.
                let c = unsafe { e.u.irqchip };
                (e.gsi, c.irqchip, c.pin)
            })
            .collect();
        assert!(pins.contains(&(4, KVM_IRQCHIP_IOAPIC, 4)), "COM1");
        assert!(pins.contains(&(3, KVM_IRQCHIP_PIC_MASTER, 3)), "COM2");
        assert!(pins.contains(&(9, KVM_IRQCHIP_PIC_SLAVE, 1)));
        assert!(pins.contains(&(23, KVM_IRQCHIP_IOAPIC, 23)));
        assert!(!pins.iter().any(|p| p.0 >= 24));
    }

    #[test]
    fn an_msi_route_carries_the_message() {
        let e = msi_route(30, 0x1_fee0_1000, 0x4041);
        assert_eq!((e.gsi, e.type_), (30, KVM_IRQ_ROUTING_MSI));
        // SAFETY: an MSI route.
        let m = unsafe { e.u.msi };
        assert_eq!(
            (m.address_hi, m.address_lo, m.data),
            (1, 0xfee0_1000, 0x4041)
        );
    }
}
