//! The endpoint's config space: header, BARs and capabilities.

use pcie_core::{
    cap_id, BarKind, CommonHeader, InterruptPin, LinkSpeed, LinkWidth, PciExpressCapability,
    PortType, Type0Config, Type0Header,
};

use crate::regs::{dma_reg, CLASS_CODE, DEVICE_ID, REVISION_ID, VENDOR_ID};
use crate::{Error, DMA_CAP_OFFSET};

/// Builds the power-on config space: header, BAR 0 and BAR 2, then the
/// DMA engine's vendor capability (at [`DMA_CAP_OFFSET`]), Power
/// Management, MSI and PCI Express (endpoint) capabilities.
pub(crate) fn build(
    bar2_size: u64,
    speed: LinkSpeed,
    width: LinkWidth,
) -> Result<Type0Config, Error> {
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
    let space = cfg.space_mut();
    let dma = space.add_capability(cap_id::VENDOR_SPECIFIC, &dma_body(), &dma_mask())?;
    debug_assert_eq!(dma, DMA_CAP_OFFSET);
    space.add_capability(cap_id::POWER_MANAGEMENT, &pm_body(), &[0; 6])?;
    let (msi, msi_mask) = msi();
    space.add_capability(cap_id::MSI, &msi, &msi_mask)?;
    PciExpressCapability::new(PortType::Endpoint)
        .link(speed, width)
        .add_to(space)?;
    Ok(cfg)
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

/// MSI, 64-bit, one vector, no masking: control, address, data, and the
/// writable enable, multiple message enable, address and data.
fn msi() -> ([u8; 14], [u8; 14]) {
    let mut body = [0; 14];
    let mut mask = [0; 14];
    body[0..2].copy_from_slice(&(1u16 << 7).to_le_bytes());
    mask[0..2].copy_from_slice(&0x0071u16.to_le_bytes());
    mask[2..6].copy_from_slice(&0xffff_fffcu32.to_le_bytes());
    mask[6..12].fill(0xff);
    (body, mask)
}
