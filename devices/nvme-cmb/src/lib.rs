//! An NVMe 1.4 controller with a RAM-backed Controller Memory Buffer (CMB)
//! that Linux publishes as p2pmem. KVM-free: it reaches memory only
//! through the fabric's `DmaHandle` (its own CMB it reads internally), and
//! its [`NvmeEngine`] runs on a device thread.
//!
//! # The function
//! Class 01/08/02 (NVM Express); vendor and device ID from the
//! configuration ([`DEFAULT_PCI_ID`] by default).
//! - BAR 0 (64-bit, 16 KiB): the registers ([`regs::reg`]), then the
//!   doorbells from 0x1000, 4 bytes apart (CAP.DSTRD = 0).
//! - BAR 2 (64-bit prefetchable), when configured: the CMB, RAM
//!   ([`pcie_core::BarMemory`]) that the VMM maps into the guest and peers
//!   reach by DMA. CMBLOC/CMBSZ read 0 until CMBMSC.CRE is set (NVMe 1.4);
//!   the controller treats addresses in CMBMSC.CBA's range as its own
//!   memory once CMBMSC.CMSE is set.
//! - BAR 4 (32-bit, 8 KiB): MSI-X table (65 vectors) at 0, PBA at 0x1000.
//!
//! # Threads and locks
//! vCPUs reach [`NvmeController`]: register and doorbell writes only
//! record the value and notify the engine. [`NvmeEngine`] follows CC
//! (enable, reset, shutdown), fetches commands, moves data, posts
//! completions and raises MSI-X vectors, holding the shared lock only to
//! read or update registers, never across a DMA or namespace access.

mod admin;
mod caps;
mod config;
mod controller;
mod device;
pub mod dptr;
mod engine;
mod error;
pub mod features;
pub mod identify;
mod inflight;
mod intx;
mod io;
pub mod log_page;
pub mod mem;
mod memory;
pub mod namespace;
mod pool;
pub mod prp;
mod queues;
pub mod regs;
pub mod sgl;
mod shadow;
pub mod sqe;
mod state;
pub mod status;

pub use caps::{CLASS_CODE, MSIX_VECTORS};
pub use config::{CmbConfig, CmbFlags, NvmeConfig, DEFAULT_PCI_ID};
pub use controller::NvmeController;
pub use device::{controller_info, new, FIRMWARE};
pub use engine::NvmeEngine;
pub use error::Error;
pub use io::{MAX_TRANSFER, MDTS};
pub use mem::{BusMemory, MemError};
pub use state::Counters;
pub use status::Status;

/// The BAR that holds the CMB.
pub const CMB_BAR: u8 = 2;
