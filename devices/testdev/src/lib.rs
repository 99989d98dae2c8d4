//! A minimal PCIe test endpoint for fabric tests and KVM guests, before the
//! NVMe and RNIC models exist: scratch registers, a RAM-backed BAR and a
//! DMA engine a guest drives with `setpci` alone (no driver, no /dev/mem).
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
//! ID 0x09) at 0x40, Power Management (v3, D0 only), MSI (64-bit, one
//! vector, nothing delivered yet), PCI Express (endpoint; link speed and
//! width from [`TestEndpointConfig`]).
//!
//! # BARs
//! - BAR 0: 4 KiB, 32-bit non-prefetchable: scratch registers that read
//!   back what was written; the dword at 0 reads [`MAGIC`] (0x50325056,
//!   "P2PV") and ignores writes.
//! - BAR 2 (and 3): 64-bit prefetchable, [`TestEndpointConfig::bar2_size`]
//!   bytes (1 MiB by default) of RAM the device owns; see
//!   [`TestEndpoint::bar_backing`] to map it.
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
//! | 0x04 | 4 | CONTROL: write bit 0 (GO) to run a command; reads 0 | WO |
//! | 0x08 | 4 | SRC_LO: source bus address, bits 31:0 | RW |
//! | 0x0c | 4 | SRC_HI: source bus address, bits 63:32 | RW |
//! | 0x10 | 4 | DST_LO: destination bus address, bits 31:0 | RW |
//! | 0x14 | 4 | DST_HI: destination bus address, bits 63:32 | RW |
//! | 0x18 | 4 | LENGTH: bytes, 1..=0x100000 (1 MiB) | RW |
//! | 0x1c | 4 | STATUS of the last command (below) | RO |
//! | 0x20 | 4 | DONE: bytes the last command wrote to the destination | RO |
//! | 0x24 | 4 | COUNT: commands run since reset (wrapping) | RO |
//!
//! A GO write runs the command before the config write completes: the
//! engine reads LENGTH bytes at SRC through its [`DmaHandle`](pcie_core::DmaHandle)
//! (4 KiB requests), then writes them at DST one request per 4 KiB page,
//! stopping at the first failure. It needs Bus Master Enable like any
//! requester. STATUS codes ([`DmaStatus`]):
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
//! | 0xff | idle: no command since reset |
//!
//! On any failure DONE counts the bytes already written (0 when reading
//! the source failed). A reset returns the registers to their power-on
//! values; BAR 2's RAM keeps its contents.
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
//! setpci -s 01:00.0 CAP_VNDR+1c.L           # STATUS: 00000000 when done
//! setpci -s 01:00.0 CAP_VNDR+20.L           # DONE:   00001000
//! ```
//!
//! One `setpci` call may carry all the writes in order (`setpci -s 01:00.0
//! CAP_VNDR+8.L=... ... CAP_VNDR+4.L=1`); `-d 1b36:0005` selects every test
//! endpoint instead of one address. The capability sits at 0x40, so
//! `48.L`, `4c.L`, ... address the same registers without capability names.
//!
//! # Locking
//! The command runs inside the config write, while the fabric holds this
//! function's lock; [`DmaHandle`](pcie_core::DmaHandle) then locks only the
//! target. Two endpoints started at the same instant from two vCPUs, each
//! copying into the other's BAR, would wait on each other forever: start
//! such crossed copies one after the other.

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
    bar4, dma_reg, DmaStatus, BAR0_SIZE, BAR4_SIZE, CLASS_CODE, COMPLETION_VECTOR, DEFAULT_BAR2_SIZE, DEVICE_ID, DMA_CAP_OFFSET, MAGIC,
    MAX_DMA_LEN, MSIX_VECTORS, REVISION_ID, VENDOR_ID,
};
