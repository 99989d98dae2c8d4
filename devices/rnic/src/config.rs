//! The config space both RNIC functions share: a VMware Type 0 header,
//! 32-bit memory BARs, Power Management; and the PCI Express capability
//! each adds after its interrupt capability.

use pcie_core::{
    cap_id, BarKind, ClassCode, CommonHeader, ConfigSpace, InterruptPin, LinkSpeed, LinkWidth,
    PciExpressCapability, PortType, Type0Config, Type0Header,
};

use crate::Error;

/// VMware's PCI vendor ID (both functions, and their subsystem IDs).
pub const VMWARE: u16 = 0x15ad;

/// A VMware function `device` (revision `revision`, class `class`),
/// with 32-bit non-prefetchable memory BARs of `bars` sizes from BAR 0,
/// and Power Management (version 3, D0 only).
pub(crate) fn vmware_function(
    device: u16,
    revision: u8,
    class: (u8, u8),
    multifunction: bool,
    bars: &[u64],
) -> Result<Type0Config, Error> {
    let header = Type0Header {
        common: CommonHeader {
            vendor_id: VMWARE,
            device_id: device,
            revision_id: revision,
            class_code: ClassCode {
                base: class.0,
                sub: class.1,
                prog_if: 0,
            },
            multifunction,
            interrupt_pin: InterruptPin::None,
        },
        subsystem_vendor_id: VMWARE,
        subsystem_id: device,
    };
    let mut config = Type0Config::new(&header)?;
    let mmio = BarKind::Memory32 {
        prefetchable: false,
    };
    for (i, size) in bars.iter().enumerate() {
        config.add_bar(i as u8, mmio, *size)?;
    }
    let pm: [u8; 6] = [3, 0, 8, 0, 0, 0];
    config
        .space_mut()
        .add_capability(cap_id::POWER_MANAGEMENT, &pm, &[0; 6])?;
    Ok(config)
}

/// Adds the PCI Express capability (an endpoint at `speed`, `lanes` wide).
pub(crate) fn add_pcie(space: &mut ConfigSpace, speed: LinkSpeed, lanes: u8) -> Result<(), Error> {
    let width = LinkWidth::from_lanes(lanes).ok_or(Error::LinkWidth(lanes))?;
    PciExpressCapability::new(PortType::Endpoint)
        .link(speed, width)
        .add_to(space)?;
    Ok(())
}
