//! The controller's config space: header, BARs and capabilities.

use pcie_core::{
    cap_id, BarKind, ClassCode, CommonHeader, InterruptPin, LinkWidth, Msix, MsixPlacement,
    PciExpressCapability, PortType, Type0Config, Type0Header,
};

use crate::config::NvmeConfig;
use crate::regs::{bar4, BAR0_SIZE, MAX_IO_QUEUES};
use crate::Error;

/// Mass storage, Non-Volatile memory controller, NVM Express.
pub const CLASS_CODE: ClassCode = ClassCode {
    base: 0x01,
    sub: 0x08,
    prog_if: 0x02,
};

/// MSI-X vectors: one for the admin queue and one per I/O queue.
pub const MSIX_VECTORS: u16 = MAX_IO_QUEUES + 1;

/// Builds the power-on config space: BAR 0 (64-bit registers and
/// doorbells), BAR 2 (64-bit prefetchable CMB, when there is one), BAR 4
/// (MSI-X table and PBA); Power Management, MSI-X and PCI Express
/// (endpoint, 8 GT/s x4) capabilities, AER at 0x100.
pub(crate) fn build(cfg: &NvmeConfig) -> Result<(Type0Config, Msix), Error> {
    let header = Type0Header {
        common: CommonHeader {
            vendor_id: cfg.pci_id.0,
            device_id: cfg.pci_id.1,
            revision_id: 1,
            class_code: CLASS_CODE,
            multifunction: false,
            // INTx fallback when MSI-X is off (crate::intx).
            interrupt_pin: InterruptPin::IntA,
        },
        subsystem_vendor_id: cfg.pci_id.0,
        subsystem_id: cfg.pci_id.1,
    };
    let mut config = Type0Config::new(&header)?;
    config.add_bar(
        0,
        BarKind::Memory64 {
            prefetchable: false,
        },
        BAR0_SIZE,
    )?;
    if let Some(cmb) = &cfg.cmb {
        config.add_bar(
            crate::CMB_BAR,
            BarKind::Memory64 { prefetchable: true },
            cmb.size,
        )?;
    }
    config.add_bar(
        4,
        BarKind::Memory32 {
            prefetchable: false,
        },
        bar4::SIZE,
    )?;
    let space = config.space_mut();
    space.add_capability(cap_id::POWER_MANAGEMENT, &pm_body(), &[0; 6])?;
    let at = |offset: u64| MsixPlacement {
        bar: 4,
        offset: offset as u32,
    };
    let msix = Msix::add(
        space,
        MSIX_VECTORS,
        at(bar4::MSIX_TABLE),
        at(bar4::MSIX_PBA),
    )?;
    let (speed, lanes) = cfg.link;
    let width = LinkWidth::from_lanes(lanes)
        .ok_or_else(|| Error::Config(format!("link width x{lanes}")))?;
    PciExpressCapability::new(PortType::Endpoint)
        .link(speed, width)
        .add_to(space)?;
    pcie_core::aer::add(space, false)?;
    Ok((config, msix))
}

/// Power Management, version 3, D0 only, No_Soft_Reset: PMC, PMCSR, data.
fn pm_body() -> [u8; 6] {
    let pmc: u16 = 3;
    let pmcsr: u16 = 1 << 3;
    let mut b = [0; 6];
    b[0..2].copy_from_slice(&pmc.to_le_bytes());
    b[2..4].copy_from_slice(&pmcsr.to_le_bytes());
    b
}
