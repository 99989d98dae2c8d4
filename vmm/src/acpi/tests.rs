//! Unit tests: write the tables into plain guest memory and parse them back.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::layout::{self, ACPI_END, ACPI_START};

fn guest_memory(size: usize) -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).unwrap()
}

fn config(cpus: u8, ram_size: u64) -> AcpiConfig {
    AcpiConfig {
        cpus,
        ram_size,
        oem_id: DEFAULT_OEM_ID,
        vtd: None,
    }
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

fn u16_at(bytes: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(bytes[off..off + 2].try_into().unwrap())
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The tables as found by following pointers from the RSDP.
struct Parsed {
    /// `(address, length)` of every structure, RSDP included.
    ranges: Vec<(u64, usize)>,
    fadt: Vec<u8>,
    madt: Vec<u8>,
    mcfg: Vec<u8>,
    dsdt: Vec<u8>,
}

/// Reads the table at `addr`, checking its bounds, checksum and header IDs.
fn read_table(mem: &GuestMemoryMmap, addr: u64, ranges: &mut Vec<(u64, usize)>) -> Vec<u8> {
    let mut header = [0u8; 36];
    mem.read_slice(&mut header, GuestAddress(addr)).unwrap();
    let len = u32_at(&header, 4) as usize;
    let sig = String::from_utf8_lossy(&header[..4]).into_owned();
    assert!(len >= 36, "{sig}: length {len}");
    assert!(addr >= ACPI_START && addr + len as u64 <= ACPI_END, "{sig}");
    let mut table = vec![0u8; len];
    mem.read_slice(&mut table, GuestAddress(addr)).unwrap();
    assert_eq!(sum(&table), 0, "{sig}: checksum");
    assert_eq!(&table[10..16], &DEFAULT_OEM_ID, "{sig}: OEM ID");
    assert_eq!(&table[16..24], &OEM_TABLE_ID, "{sig}: OEM table ID");
    assert_eq!(&table[28..32], &CREATOR_ID, "{sig}: creator ID");
    ranges.push((addr, len));
    table
}

fn write_and_parse(mem: &GuestMemoryMmap, cfg: &AcpiConfig) -> Parsed {
    let rsdp_addr = write_tables(mem, cfg).unwrap();
    assert_eq!(rsdp_addr, GuestAddress(ACPI_START));

    let mut rsdp = [0u8; 36];
    mem.read_slice(&mut rsdp, rsdp_addr).unwrap();
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!(sum(&rsdp[..20]), 0, "RSDP checksum");
    assert_eq!(sum(&rsdp), 0, "RSDP extended checksum");
    assert_eq!(&rsdp[9..15], &DEFAULT_OEM_ID);
    assert_eq!(rsdp[15], 2, "RSDP revision");
    assert_eq!(u32_at(&rsdp, 20), 36, "RSDP length");
    let mut ranges = vec![(ACPI_START, rsdp.len())];

    let xsdt = read_table(mem, u64_at(&rsdp, 24), &mut ranges);
    assert_eq!(&xsdt[..4], b"XSDT");
    let (mut fadt, mut madt, mut mcfg) = (None, None, None);
    for entry in xsdt[36..].chunks(8) {
        let table = read_table(mem, u64_at(entry, 0), &mut ranges);
        let slot = match &table[..4] {
            b"FACP" => &mut fadt,
            b"APIC" => &mut madt,
            b"MCFG" => &mut mcfg,
            sig => panic!("unexpected table {:?}", String::from_utf8_lossy(sig)),
        };
        assert!(slot.replace(table).is_none(), "duplicate XSDT entry");
    }
    let fadt = fadt.expect("FACP");
    let dsdt = read_table(mem, u64_at(&fadt, 140), &mut ranges);
    assert_eq!(&dsdt[..4], b"DSDT");

    Parsed {
        ranges,
        fadt,
        madt: madt.expect("APIC"),
        mcfg: mcfg.expect("MCFG"),
        dsdt,
    }
}

#[test]
fn rsdp_leads_to_every_table_without_overlap() {
    let mem = guest_memory(2 << 20);
    let mut parsed = write_and_parse(&mem, &config(4, 512 << 20));
    assert_eq!(parsed.ranges.len(), 6);
    parsed.ranges.sort();
    for pair in parsed.ranges.windows(2) {
        assert!(pair[0].0 + pair[0].1 as u64 <= pair[1].0, "{pair:x?}");
    }
}

#[test]
fn fadt_is_hardware_reduced_with_sleep_and_reset_registers() {
    let fadt = write_and_parse(&guest_memory(2 << 20), &config(2, 512 << 20)).fadt;
    assert_eq!(fadt.len(), 276);
    assert_eq!(fadt[8], 6, "FADT major revision");
    assert_eq!(u32_at(&fadt, 40), 0, "32-bit DSDT pointer unused");

    let flags = u32_at(&fadt, 112);
    assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
    assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");

    let boot_arch = u16_at(&fadt, 109);
    assert_ne!(boot_arch & (1 << 5), 0, "CMOS RTC not present");
    assert_eq!(boot_arch & (1 << 2), 0, "VGA not present must be clear");
    assert_eq!(boot_arch & (1 << 3), 0, "MSI not supported must be clear");

    let io8 = |port: u16| {
        let mut gas = vec![1, 8, 0, 1];
        gas.extend_from_slice(&u64::from(port).to_le_bytes());
        gas
    };
    assert_eq!(&fadt[116..128], io8(layout::ACPI_RESET_PORT), "RESET_REG");
    assert_eq!(fadt[128], layout::ACPI_RESET_VALUE);
    assert_eq!(&fadt[244..256], io8(layout::ACPI_SLEEP_CONTROL_PORT));
    assert_eq!(&fadt[256..268], io8(layout::ACPI_SLEEP_STATUS_PORT));
}

#[test]
fn madt_lists_every_cpu_the_ioapic_and_lint1_nmi() {
    let cpus = 6;
    let madt = write_and_parse(&guest_memory(2 << 20), &config(cpus, 512 << 20)).madt;
    assert_eq!(u32_at(&madt, 36) as u64, layout::APIC_START);
    assert_eq!(u32_at(&madt, 40) & 1, 0, "PCAT_COMPAT");

    let (mut lapics, mut ioapics, mut nmis) = (Vec::new(), 0, 0);
    let mut off = 44;
    while off < madt.len() {
        let (kind, len) = (madt[off], madt[off + 1] as usize);
        let entry = &madt[off..off + len];
        match kind {
            0 => {
                assert_eq!(len, 8);
                assert_eq!(u32_at(entry, 4), 1, "LAPIC enabled");
                assert_eq!(entry[2], entry[3], "UID = APIC ID");
                lapics.push(entry[3]);
            }
            1 => {
                assert_eq!(len, 12);
                assert_eq!(u32_at(entry, 4) as u64, layout::IOAPIC_START);
                assert_eq!(u32_at(entry, 8), 0, "GSI base");
                ioapics += 1;
            }
            4 => {
                assert_eq!(entry, [4, 6, 0xff, 5, 0, 1]);
                nmis += 1;
            }
            _ => panic!("unexpected MADT entry type {kind}"),
        }
        off += len;
    }
    assert_eq!(off, madt.len());
    assert_eq!(lapics, (0..cpus).collect::<Vec<_>>());
    assert_eq!((ioapics, nmis), (1, 1));
}

#[test]
fn mcfg_covers_every_ecam_bus() {
    let mcfg = write_and_parse(&guest_memory(2 << 20), &config(1, 512 << 20)).mcfg;
    assert_eq!(mcfg.len(), 44 + 16);
    assert_eq!(u64_at(&mcfg, 44), layout::ECAM_START);
    assert_eq!(u16_at(&mcfg, 52), 0, "segment");
    assert_eq!(mcfg[54], 0, "start bus");
    assert_eq!(u64::from(mcfg[55]), layout::ECAM_BUSES - 1, "end bus");
}

#[test]
fn dsdt_describes_host_bridge_devices_and_s5() {
    let dsdt = write_and_parse(&guest_memory(2 << 20), &config(1, 512 << 20)).dsdt;
    assert_eq!(dsdt[8], 2, "DSDT revision (64-bit integers)");
    // DWordPrefix + EISAID("PNP0A08") = 0x41D00A08, stored byte-swapped.
    assert!(contains(&dsdt, &[0x0c, 0x41, 0xd0, 0x0a, 0x08]), "PNP0A08");
    assert!(contains(&dsdt, &[0x0c, 0x41, 0xd0, 0x0a, 0x03]), "PNP0A03");
    assert!(contains(&dsdt, &[0x0c, 0x41, 0xd0, 0x0c, 0x02]), "PNP0C02");
    assert!(contains(&dsdt, &[0x0c, 0x41, 0xd0, 0x05, 0x01]), "PNP0501");
    // Name (\_S5_, Package (4) { S5_SLEEP_TYPE, ...
    assert!(contains(&dsdt, b"\x08\\_S5_\x12"));
    assert!(contains(
        &dsdt,
        &[0x0a, layout::S5_SLEEP_TYPE, 0x00, 0x00, 0x00]
    ));
    // _OSC, and the host bridge UUID in its binary (mixed-endian) form.
    assert!(contains(&dsdt, b"_OSC"));
    assert!(contains(
        &dsdt,
        &[
            0x5b, 0x4d, 0xdb, 0x33, 0xf7, 0x1f, 0x1c, 0x40, 0x96, 0x57, 0x74, 0x41, 0xc0, 0x3d,
            0xd7, 0x66
        ]
    ));
    // COM1/COM2: IO (Decode16, port, port, 8, 8) then IRQNoFlags () {irq}.
    for (port, irq) in [
        (layout::COM1_PORT, layout::COM1_IRQ),
        (layout::COM2_PORT, layout::COM2_IRQ),
    ] {
        let mut crs = vec![0x47, 1];
        crs.extend_from_slice(&port.to_le_bytes());
        crs.extend_from_slice(&port.to_le_bytes());
        crs.extend_from_slice(&[8, 8, 0x22]);
        crs.extend_from_slice(&(1u16 << irq).to_le_bytes());
        assert!(contains(&dsdt, &crs), "serial port {port:#x}");
    }
    // ECAM reserved as a motherboard resource: Memory32Fixed (ReadWrite, ...).
    let mut ecam = vec![0x86, 9, 0, 1];
    ecam.extend_from_slice(&(layout::ECAM_START as u32).to_le_bytes());
    ecam.extend_from_slice(&(layout::ECAM_SIZE as u32).to_le_bytes());
    assert!(contains(&dsdt, &ecam));
}

/// The AML of one `_PRT` entry, `Package () { device << 16 | 0xFFFF,
/// pin, Zero, gsi }`, in the smallest integer encodings.
fn prt_entry(device: u8, pin: u8, gsi: u8) -> Vec<u8> {
    let mut body = vec![4];
    if device == 0 {
        body.extend_from_slice(&[0x0b, 0xff, 0xff]);
    } else {
        body.extend_from_slice(&[0x0c, 0xff, 0xff, device, 0]);
    }
    match pin {
        0 | 1 => body.push(pin),
        _ => body.extend_from_slice(&[0x0a, pin]),
    }
    body.extend_from_slice(&[0x00, 0x0a, gsi]);
    let mut entry = vec![0x12, body.len() as u8 + 1];
    entry.extend_from_slice(&body);
    entry
}

#[test]
fn dsdt_routes_root_bus_intx_to_gsis_16_to_23() {
    let dsdt = write_and_parse(&guest_memory(2 << 20), &config(1, 512 << 20)).dsdt;
    assert!(contains(&dsdt, b"_PRT"));
    // GSI = 16 + (device + pin) % 8, pin 0 = INTA: worked out by hand.
    for (device, pin, gsi) in [(0, 2, 18), (1, 0, 17), (5, 1, 22), (7, 3, 18), (31, 0, 23)] {
        let entry = prt_entry(device, pin, gsi);
        assert!(contains(&dsdt, &entry), "device {device} pin {pin}");
    }
}

#[test]
fn dsdt_64bit_window_follows_ram_size() {
    // The 64-bit aperture: 64 GiB on the first GiB boundary above RAM,
    // where RAM beyond 3 GiB continues at 4 GiB. Worked out by hand.
    for (ram_size, base) in [
        (512u64 << 20, 0x1_0000_0000u64), // all RAM below 3 GiB
        (8 << 30, 0x2_4000_0000),         // 5 GiB above 4 GiB: ends at 9 GiB
        (0x2_2000_0000, 0x2_8000_0000),   // ends at 9.5 GiB: rounds up to 10
        (100 << 30, 0x19_4000_0000),      // ends at 101 GiB
    ] {
        let size = 64u64 << 30;
        let cfg = config(2, ram_size);
        let dsdt = write_and_parse(&guest_memory(2 << 20), &cfg).dsdt;
        // QWordMemory: min, max, translation 0, length.
        let mut range = base.to_le_bytes().to_vec();
        range.extend_from_slice(&(base + size - 1).to_le_bytes());
        range.extend_from_slice(&0u64.to_le_bytes());
        range.extend_from_slice(&size.to_le_bytes());
        assert!(contains(&dsdt, &range), "ram {ram_size:#x}");
    }
}

#[test]
fn many_cpus_fit() {
    for cpus in [64, 255] {
        let madt = write_and_parse(&guest_memory(2 << 20), &config(cpus, 1 << 30)).madt;
        let lapics = madt[44..].chunks(8).take_while(|e| e[0] == 0).count();
        assert_eq!(lapics, cpus as usize);
    }
}

#[test]
fn zero_cpus_is_an_error() {
    let err = write_tables(&guest_memory(2 << 20), &config(0, 512 << 20)).unwrap_err();
    assert!(matches!(err, Error::Acpi(_)), "{err}");
}

#[test]
fn memory_without_the_acpi_area_is_an_error() {
    let err = write_tables(&guest_memory(512 << 10), &config(1, 512 << 20)).unwrap_err();
    assert!(matches!(err, Error::Acpi(_)), "{err}");
}

#[test]
fn area_aligns_and_refuses_to_overflow() {
    let mut area = Area::new(0x1000, 0x1040);
    assert_eq!(area.alloc("A", 36).unwrap(), 0x1000);
    assert_eq!(area.alloc("B", 16).unwrap(), 0x1030);
    assert!(matches!(area.alloc("C", 1), Err(Error::Acpi(_))));
    assert_eq!(area.alloc("D", 0).unwrap(), 0x1040);
}
