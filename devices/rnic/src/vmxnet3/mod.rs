//! Function 0: a vmxnet3 Ethernet controller (revision 1, UPT 1), the
//! netdev Linux's PVRDMA driver pairs with.
//!
//! # What the driver sees
//! - 15ad:07b0, class 02/00/00, revision 1; BAR 0 and BAR 1, 4 KiB each
//!   (32-bit memory); Power Management, MSI (one vector, no INTx) and PCI
//!   Express capabilities. With a PVRDMA function in the slot the header's
//!   multi-function bit is set.
//! - VRRS and UVRS offer revision 1 only; MACL/MACH hold the MAC.
//! - Commands (BAR 1 CMD): ACTIVATE_DEV reads the driver shared area at
//!   DSAH:DSAL (on the device thread; the command's result reads 0 when
//!   DSA is set), QUIESCE_DEV and RESET_DEV stop all DMA before the write
//!   returns (the driver frees the rings right after), GET_LINK answers
//!   10 Gb/s up, GET_CONF_INTR answers MSI with automatic masking. Other
//!   commands read 0.
//! - Interrupts: IMR (BAR 0) masks the vector; a vector raised while
//!   masked is pending and fires when unmasked; under automatic masking
//!   the device masks it when it fires, and NAPI unmasks it.
//!
//! # Transmit
//! A TXPROD write (an ioeventfd doorbell) wakes the engine, which walks
//! every Tx ring by its generation bits: a packet (SOP..EOP, at most 24
//! descriptors) is gathered through the DMA handle, its checksum inserted
//! (CSUM) or cut into segments (TSO), sent on the [`Wire`](crate::Wire),
//! and completed with one completion naming its EOP descriptor, in ring
//! order; then the queue's vector fires. A packet that is malformed (too
//! long, no EOP within 24 descriptors) or whose buffers cannot be read is
//! completed without being sent. A ring is walked at most once round per
//! pass, so a guest cannot keep the engine in one loop.
//!
//! # Receive
//! Every frame from the wire goes to Rx queue 0's next head buffer, found
//! by its generation bit (the driver refills without a doorbell), with one
//! completion (SOP and EOP, checksum not calculated). A frame that finds
//! no buffer, or a buffer too small, is dropped, as on a real wire.

mod desc;
mod engine;
mod function;
mod offload;
pub mod regs;
mod state;

pub use desc::{rx_completion, tx_completion, Completion, RxDesc, TxDesc};
pub use engine::{Vmxnet3Engine, Vmxnet3Stats};
pub use function::{Vmxnet3, Vmxnet3Config};
pub use offload::{apply as apply_offload, checksum, Malformed, MAX_SEGMENTS};
