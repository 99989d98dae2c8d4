//! Legacy platform devices of the VM: UARTs, the reset and power ports, and
//! the PCI configuration mechanisms in front of the fabric.

pub mod barmap;
pub mod legacy;
pub mod msi;
pub mod pci;
pub mod serial;
pub mod worker;

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
