//! ACPI tables for a direct-boot (firmware-less) x86-64 Linux guest.
//!
//! [`write_tables`] builds the tables and packs them into the legacy BIOS area
//! from [`layout::ACPI_START`], where Linux also finds the RSDP by scanning:
//!
//! ```text
//! RSDP (rev 2) -> XSDT -> FACP (FADT 6.5, hardware-reduced) -> DSDT
//!                      -> APIC (MADT: LAPICs, IOAPIC, LAPIC NMI)
//!                      -> MCFG (ECAM, segment 0)
//!                      -> DMAR (with a VT-d unit: one DRHD, INCLUDE_PCI_ALL)
//! ```
//!
//! The platform is "hardware-reduced" ACPI: no PM1/GPE blocks and no SCI.
//! Power-off goes through the FADT sleep control register (the DSDT's `\_S5_`
//! gives the SLP_TYP value), reset through the FADT reset register; the VMM
//! emulates those I/O ports. Table contents live in `dsdt.rs` and `tables.rs`;
//! this file owns placement and the shared header fields.

mod dsdt;
mod tables;
#[cfg(test)]
mod tests;

use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, Result};
use crate::layout;

/// OEM ID conventionally passed in [`AcpiConfig::oem_id`].
pub const DEFAULT_OEM_ID: [u8; 6] = *b"P2PVM ";
/// OEM table ID written in every table header.
pub const OEM_TABLE_ID: [u8; 8] = *b"P2PVMACP";
/// Creator ID written in every table header.
pub const CREATOR_ID: [u8; 4] = *b"P2PV";
/// OEM revision written in every table header.
const OEM_REVISION: u32 = 1;
/// Creator revision written in every table header.
const CREATOR_REVISION: u32 = 1;
/// Alignment of each table in guest memory (the RSDP needs 16).
const TABLE_ALIGN: u64 = 16;

/// What the ACPI tables describe about the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiConfig {
    /// Number of vCPUs; vCPU `i` has APIC ID and ACPI processor UID `i`.
    pub cpus: u8,
    /// Guest RAM in bytes, used to place the 64-bit PCI MMIO window
    /// (see [`layout::mmio64_aperture`]).
    pub ram_size: u64,
    /// OEM ID of every table, normally [`DEFAULT_OEM_ID`] (`"P2PVM "`).
    pub oem_id: [u8; 6],
    /// The register base of a VT-d unit covering every PCI device, which
    /// a DMAR table then describes.
    pub vtd: Option<u64>,
}

/// Writes RSDP, XSDT, FADT, DSDT, MADT and MCFG into `mem` from
/// [`layout::ACPI_START`], returns the RSDP's guest address.
///
/// Fails with [`Error::Acpi`] if `cfg` has no vCPUs, if the tables do not fit
/// below [`layout::ACPI_END`], or if `mem` does not back that range.
pub fn write_tables(mem: &GuestMemoryMmap, cfg: &AcpiConfig) -> Result<GuestAddress> {
    if cfg.cpus == 0 {
        return Err(Error::Acpi("at least one vCPU is needed".into()));
    }

    // Tables that do not point at other tables are built first; their sizes
    // then fix every address, and the pointing tables are built last.
    let dsdt = dsdt::dsdt(cfg);
    let madt = tables::madt(cfg);
    let mcfg = tables::mcfg(cfg);
    let dmar = cfg.vtd.map(|base| tables::dmar(cfg, base));
    let xsdt_len = tables::xsdt_len(3 + usize::from(dmar.is_some()));

    let mut area = Area::new(layout::ACPI_START, layout::ACPI_END);
    let rsdp_addr = area.alloc("RSDP", Rsdp::len())?;
    let xsdt_addr = area.alloc("XSDT", xsdt_len)?;
    let fadt_addr = area.alloc("FADT", tables::FADT_LEN)?;
    let madt_addr = area.alloc("MADT", madt.len())?;
    let mcfg_addr = area.alloc("MCFG", mcfg.len())?;
    let dsdt_addr = area.alloc("DSDT", dsdt.len())?;
    let dmar_addr = match &dmar {
        Some(d) => Some(area.alloc("DMAR", d.len())?),
        None => None,
    };

    let fadt = tables::fadt(cfg, dsdt_addr);
    let mut pointed = vec![fadt_addr, madt_addr, mcfg_addr];
    pointed.extend(dmar_addr);
    let xsdt = tables::xsdt(cfg, &pointed);
    debug_assert_eq!(xsdt.len(), xsdt_len);
    let mut rsdp = Vec::with_capacity(Rsdp::len());
    Rsdp::new(cfg.oem_id, xsdt_addr).to_aml_bytes(&mut rsdp);

    // Clear the padding between tables, then write the tables.
    let used = usize::try_from(area.next - area.start)
        .map_err(|_| Error::Acpi("table area does not fit in usize".into()))?;
    write(mem, "table area", area.start, &vec![0; used])?;
    for (name, addr, bytes) in [
        ("RSDP", rsdp_addr, &rsdp),
        ("XSDT", xsdt_addr, &xsdt),
        ("FADT", fadt_addr, &fadt),
        ("MADT", madt_addr, &madt),
        ("MCFG", mcfg_addr, &mcfg),
        ("DSDT", dsdt_addr, &dsdt),
    ] {
        write(mem, name, addr, bytes)?;
    }
    if let (Some(addr), Some(bytes)) = (dmar_addr, &dmar) {
        write(mem, "DMAR", addr, bytes)?;
    }
    Ok(GuestAddress(rsdp_addr))
}

/// Writes `bytes` at guest address `addr`.
fn write(mem: &GuestMemoryMmap, what: &str, addr: u64, bytes: &[u8]) -> Result<()> {
    mem.write_slice(bytes, GuestAddress(addr))
        .map_err(|e| Error::Acpi(format!("writing {what} at {addr:#x}: {e}")))
}

/// Bump allocator over the guest range `[start, end)` reserved for tables.
#[derive(Debug)]
struct Area {
    start: u64,
    end: u64,
    next: u64,
}

impl Area {
    fn new(start: u64, end: u64) -> Self {
        Area {
            start,
            end,
            next: start,
        }
    }

    /// Reserves `len` bytes for table `name`, [`TABLE_ALIGN`]-aligned.
    fn alloc(&mut self, name: &str, len: usize) -> Result<u64> {
        let addr = self.next.next_multiple_of(TABLE_ALIGN);
        let end = u64::try_from(len)
            .ok()
            .and_then(|len| addr.checked_add(len))
            .filter(|&end| end <= self.end)
            .ok_or_else(|| {
                Error::Acpi(format!(
                    "{name} ({len} bytes at {addr:#x}) does not fit below {:#x}",
                    self.end
                ))
            })?;
        self.next = end;
        Ok(addr)
    }
}

/// An empty table (header only) with our OEM and creator fields.
///
/// The crate's `Sdt` keeps the length and checksum up to date as data is
/// appended; only its creator fields need replacing.
fn new_sdt(signature: [u8; 4], revision: u8, cfg: &AcpiConfig) -> Sdt {
    let mut sdt = Sdt::new(
        signature,
        36,
        revision,
        cfg.oem_id,
        OEM_TABLE_ID,
        OEM_REVISION,
    );
    sdt.write_bytes(28, &CREATOR_ID);
    sdt.write_bytes(32, &CREATOR_REVISION.to_le_bytes());
    sdt
}
