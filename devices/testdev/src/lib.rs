//! A minimal PCIe test endpoint for fabric tests and KVM guests: scratch
//! registers, a RAM-backed BAR, a DMA engine with a doorbell and an MSI-X
//! completion interrupt, and AER error injection. A guest drives it with
//! `setpci` alone, or from user space through vfio-pci (the guest image's
//! `p2pvm-testdev` tool does).
//!
//! # Identity
//! Vendor 0x1b36 (Red Hat), device 0x0005: the ID QEMU assigned to its
//! "PCI test device", class ff/00/00 (unassigned), subsystem 1b36:0005,
//! revision 1, no INTx pin. No Linux driver claims it on the guests p2pvm
//! boots: the only in-tree matches (Linux 6.12) are the device-tree unit
//! test's driver (`drivers/of/unittest.c`, `CONFIG_OF_UNITTEST`) and a
//! device-tree node fixup (`of_pci_make_dev_node`, quirks.c, effective
//! only with `CONFIG_PCI_DYNAMIC_OF_NODES`), both device-tree only and
//! absent from x86 ACPI guests. The alternative of QEMU's experimental
//! range 1af4:10f0..10ff was rejected: `virtio_pci` matches vendor 1af4
//! with any device ID, and its failed probe would clear Bus Master Enable.
//!
//! # Config space
//! Type 0 header; capabilities from 0x40: the DMA engine (vendor-specific,
//! ID 0x09) at 0x40, Power Management (v3, D0 only), MSI-X (one vector,
//! table and PBA in BAR 4), PCI Express (endpoint; link speed and width
//! from [`TestEndpointConfig`]); AER (v2) at 0x100.
//!
//! # BARs
//! - BAR 0: 4 KiB, 32-bit non-prefetchable: scratch registers that read
//!   back what was written; the dword at 0 reads [`MAGIC`] (0x50325056,
//!   "P2PV") and ignores writes.
//! - BAR 2 (and 3): 64-bit prefetchable, [`TestEndpointConfig::bar2_size`]
//!   bytes (1 MiB by default) of RAM ([`pcie_core::BarMemory`]) that the
//!   VMM maps into the guest and peers reach by DMA with no device lock.
//! - BAR 4: 8 KiB, 32-bit non-prefetchable ([`bar4`]): the MSI-X table at
//!   0, the PBA at 0x800, and at 0x1000, alone in its page, the doorbell:
//!   any write runs the command, like GO. The VMM backs it with an
//!   ioeventfd, so ringing it never leaves the guest's kernel.
//!
//! # DMA engine
//! Registers, as offsets from the capability ([`dma_reg`]):
//!
//! | offset | size | name | access |
//! |---|---|---|---|
//! | 0x00 | 1 | capability ID 0x09 | RO |
//! | 0x01 | 1 | next capability | RO |
//! | 0x02 | 1 | capability length, 0x28 | RO |
//! | 0x03 | 1 | layout version, 1 | RO |
//! | 0x04 | 4 | CONTROL: bit 0 GO runs a command; bit 1 INJECT_COR injects a correctable error; reads 0 | WO |
//! | 0x08 | 4 | SRC_LO: source bus address, bits 31:0 | RW |
//! | 0x0c | 4 | SRC_HI: source bus address, bits 63:32 | RW |
//! | 0x10 | 4 | DST_LO: destination bus address, bits 31:0 | RW |
//! | 0x14 | 4 | DST_HI: destination bus address, bits 63:32 | RW |
//! | 0x18 | 4 | LENGTH: bytes, 1..=0x100000 (1 MiB) | RW |
//! | 0x1c | 4 | STATUS of the last command (below) | RO |
//! | 0x20 | 4 | DONE: bytes the last command wrote to the destination | RO |
//! | 0x24 | 4 | COUNT: commands run since reset (wrapping) | RO |
//!
//! GO (or the doorbell) latches SRC, DST and LENGTH, sets STATUS to Busy
//! (0xfe) and returns: the copy runs on the device's thread
//! ([`TestEngine`]), never on the vCPU that asked. GO while Busy is
//! ignored. The engine reads LENGTH bytes at SRC through its
//! [`DmaHandle`](pcie_core::DmaHandle) (4 KiB requests), then writes them at
//! DST one request per 4 KiB page, stopping at the first failure; it needs
//! Bus Master Enable like any requester. It then records STATUS, DONE and
//! COUNT and raises MSI-X vector 0 ([`COMPLETION_VECTOR`]), a posted write
//! through the fabric (pending while the vector or the function is
//! masked). STATUS codes ([`DmaStatus`]):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | Bus Master Enable clear |
//! | 2 | Unsupported Request (nothing decodes the address, or refused on the way) |
//! | 3 | Completer Abort (past a BAR's end, or the device's own BAR) |
//! | 4 | ACS violation |
//! | 5 | IOMMU fault |
//! | 6 | LENGTH is 0 (nothing done) |
//! | 7 | LENGTH above 1 MiB (nothing done) |
//! | 0xfe | busy: a command is running |
//! | 0xff | idle: no command since reset |
//!
//! On any failure DONE counts the bytes already written (0 when reading
//! the source failed). A reset returns the registers to their power-on
//! values and discards a running command's result; BAR 2's RAM keeps its
//! contents.
//!
//! INJECT_COR sets Receiver Error in AER's Correctable Error Status and,
//! unless it is masked there or Device Control's Correctable Error
//! Reporting Enable is clear, the engine sends ERR_COR to the root port
//! ([`pcie_core::Fabric::report_error`]), which Linux's AER driver handles.
//!
//! From a guest, with pciutils' `setpci` (`CAP_VNDR` is capability 0x09,
//! also spelled `CAP09`), for the device at `01:00.0` copying 0x1000 bytes
//! from bus address 0x1_0000_2000 to 0xc0200000:
//!
//! ```text
//! setpci -s 01:00.0 COMMAND=0x0006:0x0006   # memory space + bus master
//! setpci -s 01:00.0 CAP_VNDR+8.L=00002000   # SRC_LO
//! setpci -s 01:00.0 CAP_VNDR+c.L=00000001   # SRC_HI
//! setpci -s 01:00.0 CAP_VNDR+10.L=c0200000  # DST_LO
//! setpci -s 01:00.0 CAP_VNDR+14.L=00000000  # DST_HI
//! setpci -s 01:00.0 CAP_VNDR+18.L=00001000  # LENGTH
//! setpci -s 01:00.0 CAP_VNDR+4.L=1          # GO
//! setpci -s 01:00.0 CAP_VNDR+1c.L           # STATUS: 000000fe while busy, then 00000000
//! setpci -s 01:00.0 CAP_VNDR+20.L           # DONE:   00001000
//! ```
//!
//! The capability sits at 0x40, so `48.L`, `4c.L`, ... address the same
//! registers without capability names.
//!
//! # Locking
//! The function ([`TestEndpoint`], held by the fabric under its node lock)
//! and the engine share one state lock. The function takes it for a
//! register access; the engine takes it to read the latched command and
//! to record its end, and never holds it (nor any other device lock)
//! across a DMA or an interrupt. BAR 2 is plain memory and needs no lock
//! at all. So endpoints copying into each other's BARs from their own
//! threads cannot deadlock (`tests/stress.rs`).

mod caps;
mod device;
mod dma;
mod engine;
mod error;
mod regs;
mod state;

pub use device::{TestEndpoint, TestEndpointConfig};
pub use engine::TestEngine;
pub use error::Error;
pub use regs::{
    bar4, dma_reg, DmaStatus, BAR0_SIZE, BAR4_SIZE, CLASS_CODE, COMPLETION_VECTOR,
    DEFAULT_BAR2_SIZE, DEVICE_ID, DMA_CAP_OFFSET, MAGIC, MAX_DMA_LEN, MSIX_VECTORS, REVISION_ID,
    VENDOR_ID,
};
