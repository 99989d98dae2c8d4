//! Legacy platform devices of the VM: UARTs, the reset and power ports, and
//! the PCI configuration mechanisms in front of the fabric.

pub mod barmap;
pub mod legacy;
pub mod msi;
pub mod pci;
pub mod serial;
pub mod worker;

/// The VT-d unit's register page on the CPU's MMIO bus.
pub struct VtdMmio(pub std::sync::Arc<vtd::Vtd>);

impl vm_device::DeviceMmio for VtdMmio {
    fn mmio_read(
        &self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &mut [u8],
    ) {
        self.0.read(offset, data);
    }

    fn mmio_write(
        &self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &[u8],
    ) {
        self.0.write(offset, data);
    }
}

/// How the guest asked the VM to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// ACPI S5 (soft off).
    PowerOff,
    /// Reset through the ACPI reset register, the i8042, or a triple fault.
    Reboot,
    /// The user pressed the console escape (Ctrl-A x).
    UserQuit,
    /// A vCPU failed.
    Error(String),
}

/// Where devices report that the VM should end.
pub type ExitSender = std::sync::mpsc::Sender<VmExit>;
