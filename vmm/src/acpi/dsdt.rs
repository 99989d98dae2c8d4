//! The DSDT: PCIe host bridge, motherboard resources, serial ports and `\_S5_`.
//!
//! In ASL terms (addresses from [`crate::layout`]):
//!
//! ```text
//! Scope (\_SB) {
//!     Device (PCI0) {            // PNP0A08 / PNP0A03, segment 0, bus 0, coherent DMA
//!         Name (_CRS, ...)       // buses, CF8-CFF, I/O windows, MMIO32 and MMIO64 windows
//!         Name (_PRT, ...)       // INTx of bus-0 slots to GSIs 16-23 (pcie_core::intx)
//!         Method (_OSC, 4) {     // grant the OS everything it asks for
//!             CreateDWordField (Arg3, 0, CDW1)
//!             If (Arg0 == ToUUID ("33db4d5b-1ff7-401c-9657-7441c03dd766")) { Return (Arg3) }
//!             Else { CDW1 |= 4; Return (Arg3) }   // unrecognized UUID
//!         }
//!     }
//!     Device (MBRS) { PNP0C02: ECAM and the ACPI sleep/reset ports }
//!     Device (COM1) { PNP0501 } Device (COM2) { PNP0501 }
//! }
//! Name (\_S5, Package () { S5_SLEEP_TYPE, 0, 0, 0 })
//! ```

use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, Arg, CreateDWordField, Device, EISAName, Else, Equal, If,
    Memory32Fixed, Method, Name, Or, Package, Path, ResourceTemplate, Return, Scope, Uuid, IO, ONE,
    ZERO,
};
use acpi_tables::{Aml, AmlSink};

use super::{new_sdt, AcpiConfig};
use crate::layout;

/// `_OSC` UUID of PCI (Express) host bridges.
const PCI_HOST_BRIDGE_UUID: &str = "33DB4D5B-1FF7-401C-9657-7441C03DD766";
/// `_OSC` status (first DWORD) bit: "Unrecognized UUID".
const OSC_UNRECOGNIZED_UUID: u8 = 1 << 2;

const _: () = assert!(layout::MMIO32_START + layout::MMIO32_SIZE <= 1 << 32);
const _: () = assert!(layout::ECAM_START + layout::ECAM_SIZE <= 1 << 32);
const _: () = assert!(layout::COM1_IRQ < 16 && layout::COM2_IRQ < 16);

/// The complete DSDT (header included) for `cfg`.
pub(super) fn dsdt(cfg: &AcpiConfig) -> Vec<u8> {
    let pci0 = pci_host_bridge(cfg.ram_size);
    let mbrs = motherboard_resources();
    let com1 = serial_port("COM1", 0, layout::COM1_PORT, layout::COM1_IRQ);
    let com2 = serial_port("COM2", 1, layout::COM2_PORT, layout::COM2_IRQ);
    let s5 = Name::new(
        Path::new("\\_S5_"),
        &Package::new(vec![&layout::S5_SLEEP_TYPE, &ZERO, &ZERO, &ZERO]),
    );

    let sb = Scope::new(Path::new("\\_SB_"), vec![&pci0, &mbrs, &com1, &com2]);

    // Revision 2: 64-bit AML integers.
    let mut sdt = new_sdt(*b"DSDT", 2, cfg);
    sdt.append_slice(&encode(&sb).0);
    sdt.append_slice(&encode(&s5).0);
    sdt.as_slice().to_vec()
}

/// Already encoded AML, so that builders can hand back finished objects
/// (the crate's objects borrow their children).
struct Encoded(Vec<u8>);

impl Aml for Encoded {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

/// The AML encoding of `obj`.
fn encode(obj: &dyn Aml) -> Encoded {
    let mut bytes = Vec::new();
    obj.to_aml_bytes(&mut bytes);
    Encoded(bytes)
}

/// `IRQNoFlags () { irq }`: the short IRQ descriptor (ISA: edge, active high,
/// exclusive), which the crate does not provide.
struct IrqNoFlags(u32);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.byte(0x22); // small item, type 4 (IRQ), 2 data bytes
        sink.word(1 << self.0);
    }
}

/// `Device (\_SB.PCI0)`: the PCIe root complex.
///
/// No `_ADR`: a device must not have both `_HID` and `_ADR` (iasl warning
/// 3073); `_SEG` and `_BBN` identify the root bridge.
fn pci_host_bridge(ram_size: u64) -> Encoded {
    let (mmio64_base, mmio64_size) = layout::mmio64_aperture(ram_size);
    let crs = Name::new(
        Path::new("_CRS"),
        &ResourceTemplate::new(vec![
            &AddressSpace::new_bus_number(0u16, (layout::ECAM_BUSES - 1) as u16),
            &IO::new(layout::PCI_CONFIG_ADDRESS, layout::PCI_CONFIG_ADDRESS, 1, 8),
            &AddressSpace::new_io(0u16, layout::PCI_CONFIG_ADDRESS - 1, None),
            &AddressSpace::new_io(layout::PCI_IO_START, layout::PCI_IO_END, None),
            &AddressSpace::new_memory(
                AddressSpaceCacheable::NotCacheable,
                true,
                layout::MMIO32_START as u32,
                (layout::MMIO32_START + layout::MMIO32_SIZE - 1) as u32,
                None,
            ),
            // "Cacheable" (not "Prefetchable") so Linux does not flag the window
            // IORESOURCE_PREFETCH, which would keep non-prefetchable BARs out.
            &AddressSpace::new_memory(
                AddressSpaceCacheable::Cacheable,
                true,
                mmio64_base,
                mmio64_base + mmio64_size - 1,
                None,
            ),
        ]),
    );

    let cdw1 = Path::new("CDW1");
    let host_bridge_uuid = Uuid::new(PCI_HOST_BRIDGE_UUID);
    let return_arg3 = Return::new(&Arg(3));
    let osc = encode(&Method::new(
        Path::new("_OSC"),
        4,
        false,
        vec![
            &CreateDWordField::new(&cdw1, &Arg(3), &ZERO),
            &If::new(&Equal::new(&Arg(0), &host_bridge_uuid), vec![&return_arg3]),
            &Else::new(vec![
                &Or::new(&cdw1, &cdw1, &OSC_UNRECOGNIZED_UUID),
                &return_arg3,
            ]),
        ],
    ));

    // _PRT: INTx of every bus-0 slot to IOAPIC pins 16..23 (swizzled), so
    // Linux can route legacy interrupts of ports and devices below them.
    // The formula is the fabric's own (`pcie_core::intx`), which drives
    // those lines; the _PRT pin field counts from 0 for INTA.
    let routes: Vec<(u32, u8, u32)> = pcie_core::intx::prt()
        .filter_map(|e| {
            let addr = (u32::from(e.device) << 16) | 0xffff;
            Some((addr, e.pin.index()?, e.gsi))
        })
        .collect();
    let entries: Vec<Package> = routes
        .iter()
        .map(|(addr, pin, gsi)| Package::new(vec![addr, pin, &ZERO, gsi]))
        .collect();
    let prt = encode(&Name::new(
        Path::new("_PRT"),
        &Package::new(entries.iter().map(|p| p as &dyn Aml).collect()),
    ));

    encode(&Device::new(
        Path::new("PCI0"),
        vec![
            &Name::new(Path::new("_HID"), &EISAName::new("PNP0A08")),
            &Name::new(Path::new("_CID"), &EISAName::new("PNP0A03")),
            &Name::new(Path::new("_SEG"), &ZERO),
            &Name::new(Path::new("_UID"), &ZERO),
            &Name::new(Path::new("_BBN"), &ZERO),
            &Name::new(Path::new("_CCA"), &ONE),
            &crs,
            &prt,
            &osc,
        ],
    ))
}

/// `Device (\_SB.MBRS)`: PNP0C02 claiming ECAM (Linux only trusts MCFG if
/// its region is reserved here or in the E820 map) and the ACPI ports.
fn motherboard_resources() -> Encoded {
    let port = |p: u16| IO::new(p, p, 1, 1);
    let crs = Name::new(
        Path::new("_CRS"),
        &ResourceTemplate::new(vec![
            &Memory32Fixed::new(true, layout::ECAM_START as u32, layout::ECAM_SIZE as u32),
            &port(layout::ACPI_SLEEP_CONTROL_PORT),
            &port(layout::ACPI_SLEEP_STATUS_PORT),
            &port(layout::ACPI_RESET_PORT),
        ]),
    );
    encode(&Device::new(
        Path::new("MBRS"),
        vec![
            &Name::new(Path::new("_HID"), &EISAName::new("PNP0C02")),
            &Name::new(Path::new("_UID"), &ZERO),
            &crs,
        ],
    ))
}

/// A 16550 UART `Device (\_SB.<name>)` at I/O `port` with ISA `irq`.
fn serial_port(name: &str, uid: u8, port: u16, irq: u32) -> Encoded {
    let crs = Name::new(
        Path::new("_CRS"),
        &ResourceTemplate::new(vec![&IO::new(port, port, 8, 8), &IrqNoFlags(irq)]),
    );
    encode(&Device::new(
        Path::new(name),
        vec![
            &Name::new(Path::new("_HID"), &EISAName::new("PNP0501")),
            &Name::new(Path::new("_UID"), &uid),
            &crs,
        ],
    ))
}
