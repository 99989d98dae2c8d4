//! Guest physical and I/O port layout shared by boot, ACPI and the fabric.
//!
//! ```text
//! 0x0000_0500  GDT            0x0000_7000  boot_params (zero page)
//! 0x0000_9000  PML4 / PDPT / PD page tables (identity map of the first 1 GiB)
//! 0x0002_0000  kernel command line
//! 0x000E_0000  ACPI tables (RSDP first)
//! 0x0010_0000  kernel
//! ...          RAM (below MMIO32_START), initramfs at its top
//! 0xC000_0000  32-bit PCI MMIO aperture (512 MiB)
//! 0xE000_0000  PCIe ECAM (256 buses x 1 MiB)
//! 0xFEC0_0000  IOAPIC           0xFEE0_0000  LAPIC
//! 0x1_0000_0000 RAM above 4 GiB, then the 64-bit PCI MMIO aperture (1 GiB aligned)
//! ```

/// GDT address used for the 64-bit entry.
pub const GDT_START: u64 = 0x500;
/// IDT address (empty IDT).
pub const IDT_START: u64 = 0x520;
/// Linux boot_params ("zero page").
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer for the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// PML4 of the boot page tables; PDPT follows at +0x1000 and PD at +0x2000.
pub const PML4_START: u64 = 0x9000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// Largest command line we accept, including the NUL.
pub const CMDLINE_MAX_SIZE: usize = 0x10000;
/// Start of the EBDA/BIOS hole; RAM below this is usable.
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables live here (inside the legacy BIOS area Linux scans for the RSDP).
pub const ACPI_START: u64 = 0xE0000;
/// End of the ACPI table area.
pub const ACPI_END: u64 = 0x100000;
/// Kernel load address (1 MiB).
pub const HIMEM_START: u64 = 0x100000;

/// Start of the 32-bit MMIO hole: RAM beyond this moves above 4 GiB.
pub const MMIO32_START: u64 = 0xC000_0000;
/// Size of the 32-bit PCI MMIO aperture.
pub const MMIO32_SIZE: u64 = 0x2000_0000;
/// PCIe ECAM base (MCFG).
pub const ECAM_START: u64 = 0xE000_0000;
/// Number of buses ECAM covers.
pub const ECAM_BUSES: u64 = 256;
/// ECAM size: 1 MiB per bus.
pub const ECAM_SIZE: u64 = ECAM_BUSES << 20;
/// IOAPIC MMIO base.
pub const IOAPIC_START: u64 = 0xFEC0_0000;
/// Local APIC MMIO base.
pub const APIC_START: u64 = 0xFEE0_0000;
/// The VT-d remapping unit's register page (4 KiB), when the topology has
/// `[iommu] kind = "vt-d"`.
pub const VTD_START: u64 = 0xFED9_0000;
/// First address above the 32-bit hole.
pub const RAM_64BIT_START: u64 = 0x1_0000_0000;
/// Size of the 64-bit PCI MMIO aperture.
pub const MMIO64_SIZE: u64 = 64 << 30;
/// Alignment of the 64-bit aperture's base.
pub const MMIO64_ALIGN: u64 = 1 << 30;

/// PCI I/O port window handed to the host bridge (below it: legacy ports).
pub const PCI_IO_START: u16 = 0x1000;
/// Last port of the PCI I/O window.
pub const PCI_IO_END: u16 = 0xFFFF;
/// Legacy PCI configuration address port.
pub const PCI_CONFIG_ADDRESS: u16 = 0xCF8;
/// Legacy PCI configuration data port (4 bytes).
pub const PCI_CONFIG_DATA: u16 = 0xCFC;

/// COM1: the guest console (ttyS0).
pub const COM1_PORT: u16 = 0x3f8;
/// IRQ (GSI) of COM1.
pub const COM1_IRQ: u32 = 4;
/// COM2: the guest agent's channel (ttyS1).
pub const COM2_PORT: u16 = 0x2f8;
/// IRQ (GSI) of COM2.
pub const COM2_IRQ: u32 = 3;
/// i8042 command port; writing 0xFE resets the machine.
pub const I8042_PORT: u16 = 0x64;
/// ACPI sleep control register (hardware-reduced FADT), one byte.
pub const ACPI_SLEEP_CONTROL_PORT: u16 = 0x3c0;
/// ACPI sleep status register (hardware-reduced FADT), one byte.
pub const ACPI_SLEEP_STATUS_PORT: u16 = 0x3c1;
/// ACPI reset register (FADT RESET_REG), one byte.
pub const ACPI_RESET_PORT: u16 = 0x3c2;
/// Value the guest writes to [`ACPI_RESET_PORT`] to reset.
pub const ACPI_RESET_VALUE: u8 = 0x0f;
/// SLP_TYP value of \_S5 (soft off) in the DSDT.
pub const S5_SLEEP_TYPE: u8 = 5;

/// Smallest guest RAM we accept.
pub const MIN_MEMORY: u64 = 64 << 20;

/// The 64-bit MMIO aperture `(base, size)` for a guest with `ram_size` bytes of RAM.
pub fn mmio64_aperture(ram_size: u64) -> (u64, u64) {
    let ram_end = if ram_size > MMIO32_START {
        RAM_64BIT_START + (ram_size - MMIO32_START)
    } else {
        RAM_64BIT_START
    };
    let base = ram_end.div_ceil(MMIO64_ALIGN) * MMIO64_ALIGN;
    (base, MMIO64_SIZE)
}

/// Guest RAM regions `(start, size)` for `ram_size` bytes of RAM.
pub fn ram_regions(ram_size: u64) -> Vec<(u64, u64)> {
    if ram_size <= MMIO32_START {
        vec![(0, ram_size)]
    } else {
        vec![
            (0, MMIO32_START),
            (RAM_64BIT_START, ram_size - MMIO32_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest_has_one_region_and_aperture_above_4g() {
        assert_eq!(ram_regions(512 << 20), vec![(0, 512 << 20)]);
        assert_eq!(mmio64_aperture(512 << 20).0, RAM_64BIT_START);
    }

    #[test]
    fn large_guest_splits_around_the_hole() {
        let r = ram_regions(4 << 30);
        assert_eq!(r, vec![(0, MMIO32_START), (RAM_64BIT_START, 1 << 30)]);
        assert_eq!(mmio64_aperture(4 << 30).0, 5 << 30);
    }

    // The 32-bit hole: aperture, then ECAM, then the APICs.
    const _: () = assert!(MMIO32_START + MMIO32_SIZE == ECAM_START);
    const _: () = assert!(ECAM_START + ECAM_SIZE <= IOAPIC_START);
    const _: () = assert!(IOAPIC_START + 0x1000 <= VTD_START && VTD_START + 0x1000 <= APIC_START);

    #[test]
    fn aperture_starts_on_a_gib_boundary() {
        assert_eq!(mmio64_aperture(3 << 30).0 % MMIO64_ALIGN, 0);
    }
}
