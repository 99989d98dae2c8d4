//! The fixed-format tables: XSDT, FADT, MADT and MCFG.

use acpi_tables::fadt::{FADTBuilder, Flags, FADT};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{EnabledStatus, IoApic, ProcessorLocalApic};
use acpi_tables::Aml;

use super::{new_sdt, AcpiConfig, CREATOR_ID, CREATOR_REVISION, OEM_REVISION, OEM_TABLE_ID};
use crate::layout;

/// Size of the (ACPI 6.5) FADT.
pub(super) const FADT_LEN: usize = 276;
const _: () = assert!(FADT_LEN == core::mem::size_of::<FADTBuilder>());

/// IAPC_BOOT_ARCH "CMOS RTC not present". "VGA not present" and "MSI not
/// supported" stay clear: MSI must stay usable.
const IAPC_BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;

/// IOAPIC ID. KVM's IOAPIC resets its ID register to 0 and only keeps 4 bits
/// of it, so no other value is representable for every vCPU count. IOAPIC
/// and local APIC IDs are separate name spaces since the xAPIC (x86-64
/// Linux only requires IOAPIC IDs to differ among IOAPICs), as on QEMU.
const IOAPIC_ID: u8 = 0;
/// KVM's IOAPIC has 24 pins, GSIs 0..=23.
const IOAPIC_GSI_BASE: u32 = 0;

/// MADT flags: PCAT_COMPAT clear. A hardware-reduced x86 Linux never uses
/// the 8259s (it installs the null legacy PIC), so we do not advertise them.
const MADT_FLAGS: u32 = 0;
/// MADT Local APIC NMI structure type.
const MADT_LOCAL_APIC_NMI: u8 = 4;
/// ACPI processor UID meaning "all processors".
const ALL_PROCESSORS: u8 = 0xff;
/// MPS INTI flags: active high (bits 1:0 = 01), edge triggered (bits 3:2 = 01).
const NMI_INTI_FLAGS: u16 = 0x0005;
/// The local APIC pin NMIs arrive on, as on PCs.
const NMI_LINT: u8 = 1;

const _: () = assert!(layout::APIC_START < 1 << 32 && layout::IOAPIC_START < 1 << 32);
const _: () = assert!(layout::ECAM_BUSES >= 1 && layout::ECAM_BUSES <= 256);

/// Length of an XSDT with `entries` pointers.
pub(super) fn xsdt_len(entries: usize) -> usize {
    36 + 8 * entries
}

/// The XSDT pointing at `tables`.
pub(super) fn xsdt(cfg: &AcpiConfig, tables: &[u64]) -> Vec<u8> {
    let mut sdt = new_sdt(*b"XSDT", 1, cfg);
    for addr in tables {
        sdt.append_slice(&addr.to_le_bytes());
    }
    sdt.as_slice().to_vec()
}

/// A one-byte System I/O register at `port`.
fn io_port8(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        port.into(),
    )
}

/// The hardware-reduced FADT, revision 6.5, pointing at the DSDT at `dsdt_addr`.
pub(super) fn fadt(cfg: &AcpiConfig, dsdt_addr: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(cfg.oem_id, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        // No fixed-feature power/sleep buttons (there is no PM1 block).
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    fadt.creator_id = CREATOR_ID;
    fadt.creator_revision = CREATOR_REVISION.to_le_bytes();
    fadt.iapc_boot_arch = IAPC_BOOT_ARCH_NO_CMOS_RTC.into();
    fadt.reset_reg = io_port8(layout::ACPI_RESET_PORT);
    fadt.reset_value = layout::ACPI_RESET_VALUE;
    fadt.sleep_control_reg = io_port8(layout::ACPI_SLEEP_CONTROL_PORT);
    fadt.sleep_status_reg = io_port8(layout::ACPI_SLEEP_STATUS_PORT);

    let mut bytes = Vec::with_capacity(FADT_LEN);
    fadt.finalize().to_aml_bytes(&mut bytes);
    debug_assert_eq!(bytes.len(), FADT::len());
    bytes
}

/// The MADT: one enabled local APIC per vCPU, the IOAPIC and LINT1 NMIs.
///
/// No Interrupt Source Overrides: COM1/COM2 are identity-mapped, edge,
/// active high (the ISA defaults), and the customary IRQ0 -> GSI2 override
/// would be wrong here: KVM's default routing wires the PIT (GSI 0) to
/// IOAPIC pin 0, and hardware-reduced Linux does not use the PIT anyway.
pub(super) fn madt(cfg: &AcpiConfig) -> Vec<u8> {
    let mut sdt = new_sdt(*b"APIC", 5, cfg);
    sdt.append_slice(&(layout::APIC_START as u32).to_le_bytes());
    sdt.append_slice(&MADT_FLAGS.to_le_bytes());

    let mut body = Vec::new();
    for cpu in 0..cfg.cpus {
        ProcessorLocalApic::new(cpu, cpu, EnabledStatus::Enabled).to_aml_bytes(&mut body);
    }
    IoApic::new(IOAPIC_ID, layout::IOAPIC_START as u32, IOAPIC_GSI_BASE).to_aml_bytes(&mut body);
    body.extend_from_slice(&[MADT_LOCAL_APIC_NMI, 6, ALL_PROCESSORS]);
    body.extend_from_slice(&NMI_INTI_FLAGS.to_le_bytes());
    body.push(NMI_LINT);

    sdt.append_slice(&body);
    sdt.as_slice().to_vec()
}

/// The MCFG: one ECAM window for segment 0, buses `0..ECAM_BUSES`.
pub(super) fn mcfg(cfg: &AcpiConfig) -> Vec<u8> {
    let mut sdt = new_sdt(*b"MCFG", 1, cfg);
    sdt.append_slice(&[0; 8]); // reserved
    sdt.append_slice(&layout::ECAM_START.to_le_bytes());
    sdt.append_slice(&0u16.to_le_bytes()); // PCI segment group
    sdt.append_slice(&[0, (layout::ECAM_BUSES - 1) as u8]); // start/end bus
    sdt.append_slice(&[0; 4]); // reserved
    sdt.as_slice().to_vec()
}

/// DMAR (VT-d specification 8.1): host address width 48, no interrupt
/// remapping, and one DRHD with INCLUDE_PCI_ALL for segment 0 whose
/// register page is at `base`.
pub(super) fn dmar(cfg: &AcpiConfig, base: u64) -> Vec<u8> {
    let mut sdt = new_sdt(*b"DMAR", 1, cfg);
    sdt.append_slice(&[vtd::regs::ADDRESS_WIDTH as u8 - 1]); // host address width - 1
    sdt.append_slice(&[0]); // flags: no INTR_REMAP, no X2APIC_OPT_OUT
    sdt.append_slice(&[0; 10]); // reserved
                                // DRHD: type 0, length 16 (no device scopes), INCLUDE_PCI_ALL, size 0
                                // (one 4 KiB page), segment 0, register base.
    sdt.append_slice(&0u16.to_le_bytes());
    sdt.append_slice(&16u16.to_le_bytes());
    sdt.append_slice(&[1, 0]);
    sdt.append_slice(&0u16.to_le_bytes());
    sdt.append_slice(&base.to_le_bytes());
    sdt.as_slice().to_vec()
}
