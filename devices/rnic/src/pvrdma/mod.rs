//! Function 1: a VMware PVRDMA device (15ad:0820, version 20, RoCE v2)
//! for Linux's `vmw_pvrdma` driver, which pairs it with the vmxnet3
//! function 0 of the same slot.
//!
//! # What the driver sees
//! - BAR 0: MSI-X (3 vectors: command responses, async events, CQ
//!   notifications), table at 0, PBA at 0x1000. BAR 1: registers. BAR 2:
//!   16 UAR pages (page 0 the kernel's).
//! - DSRHIGH loads the device shared region: the command and response
//!   slots and the async and CQ-notify rings (page directories), and the
//!   caps are written into it before the write returns: 256 QPs and CQs,
//!   4096 WRs, 16 SGEs, RoCE v2 GIDs only, the memory-management
//!   extensions (`bmme_flags` 7), fast-register lists of 128 pages, a node
//!   GUID from the MAC (EUI-64).
//! - REQUEST runs the command in the slot before the write returns: the
//!   response is in its slot, ERR reads its result (0 is success) and
//!   vector 0 fires. Commands before the shared region exists are refused.
//!
//! The function performs no DMA itself: those register writes hand a job
//! to the engine on the device thread and wait for it (bounded), so the
//! driver sees the result as if the write did it.
//!
//! # Checked before use
//! Handles against their tables, ring and queue sizes (powers of two
//! within the limits, no zero-page rings), page counts against one page
//! directory, a user MR's length against the pages it lists, CQ page
//! counts against the CQE count.

mod cmd;
mod engine;
mod function;
pub mod grh;
pub mod mem;
pub mod qp;
pub mod regs;
pub mod resources;
pub mod ring;
mod state;
pub mod wqe;

pub use cmd::{node_guid, Rdma};
pub use engine::{PvrdmaEngine, PvrdmaStats};
pub use function::{Pvrdma, PvrdmaConfig};
