//! The endpoint's config space: header, BARs and capabilities.

use pcie_core::{
    cap_id, BarKind, CommonHeader, InterruptPin, LinkSpeed, LinkWidth, Msix, MsixPlacement,
    PciExpressCapability, PortType, Type0Config, Type0Header,
};

use crate::regs::{bar4, dma_reg, CLASS_CODE, DEVICE_ID, MSIX_VECTORS, REVISION_ID, VENDOR_ID};
use crate::{Error, DMA_CAP_OFFSET};

/// Builds the power-on config space: header, BARs 0, 2 and 4, then the
/// DMA engine's vendor capability (at [`DMA_CAP_OFFSET`]), Power
/// Management, MSI-X (table and PBA in BAR 4) and PCI Express (endpoint)
/// capabilities, and AER at 0x100.
pub(crate) fn build(
    bar2_size: u64,
    speed: LinkSpeed,
    width: LinkWidth,
) -> Result<(Type0Config, Msix), Error> {
    let header = Type0Header {
        common: CommonHeader {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: REVISION_ID,
            class_code: CLASS_CODE,
            multifunction: false,
            interrupt_pin: InterruptPin::None,
        },
        subsystem_vendor_id: VENDOR_ID,
        subsystem_id: DEVICE_ID,
    };
    let mut cfg = Type0Config::new(&header)?;
    let mmio = BarKind::Memory32 {
        prefetchable: false,
    };
    cfg.add_bar(0, mmio, crate::BAR0_SIZE)?;
    cfg.add_bar(2, BarKind::Memory64 { prefetchable: true }, bar2_size)?;
    cfg.add_bar(4, mmio, crate::BAR4_SIZE)?;
    let space = cfg.space_mut();
    let dma = space.add_capability(cap_id::VENDOR_SPECIFIC, &dma_body(), &dma_mask())?;
    debug_assert_eq!(dma, DMA_CAP_OFFSET);
    space.add_capability(cap_id::POWER_MANAGEMENT, &pm_body(), &[0; 6])?;
    let at = |offset| MsixPlacement { bar: 4, offset };
    let msix = Msix::add(
        space,
        MSIX_VECTORS,
        at(bar4::MSIX_TABLE),
        at(bar4::MSIX_PBA),
    )?;
    PciExpressCapability::new(PortType::Endpoint)
        .link(speed, width)
        .add_to(space)?;
    pcie_core::aer::add(space, false)?;
    Ok((cfg, msix))
}

/// The DMA capability after its ID and next pointer: length, version,
/// registers (all zero but STATUS, which reads Idle).
fn dma_body() -> Vec<u8> {
    let mut body = vec![0; usize::from(dma_reg::LEN) - 2];
    body[0] = dma_reg::LEN;
    body[1] = 1;
    let status = usize::from(dma_reg::STATUS) - 2;
    body[status..status + 4].copy_from_slice(&crate::DmaStatus::Idle.code().to_le_bytes());
    body
}

/// Source, destination and length are writable; the rest is read-only
/// (CONTROL's GO is acted upon, never stored).
fn dma_mask() -> Vec<u8> {
    let mut mask = vec![0; usize::from(dma_reg::LEN) - 2];
    let at = usize::from(dma_reg::SRC_LO) - 2;
    mask[at..at + 20].fill(0xff);
    mask
}

/// Power Management, version 3, D0 only, No_Soft_Reset: PMC, PMCSR, data.
fn pm_body() -> [u8; 6] {
    let pmc: u16 = 3;
    let pmcsr: u16 = 1 << 3;
    let mut body = [0; 6];
    body[0..2].copy_from_slice(&pmc.to_le_bytes());
    body[2..4].copy_from_slice(&pmcsr.to_le_bytes());
    body
}
