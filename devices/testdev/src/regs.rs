//! Identity, BAR layout, and the DMA engine's registers and status codes.

use pcie_core::{ClassCode, DmaError};

/// Vendor ID: Red Hat, Inc., whose 1b36 device range QEMU hands out.
pub const VENDOR_ID: u16 = 0x1b36;
/// Device ID: QEMU's "PCI test device" (see the crate documentation for
/// why this ID).
pub const DEVICE_ID: u16 = 0x0005;
/// Revision ID.
pub const REVISION_ID: u8 = 1;
/// Class code ff/00/00: "unassigned class", which no driver claims.
pub const CLASS_CODE: ClassCode = ClassCode::new(0xff, 0x00, 0x00);

/// BAR 0: 32-bit non-prefetchable scratch registers, this many bytes.
pub const BAR0_SIZE: u64 = 4096;
/// What the dword at BAR 0 offset 0 reads ("P2PV"); writes to it are ignored.
pub const MAGIC: u32 = 0x5032_5056;
/// BAR 4: 32-bit non-prefetchable control registers, this many bytes: the
/// MSI-X table and PBA, and the doorbell.
pub const BAR4_SIZE: u64 = 8192;
/// The control BAR's layout, as offsets into BAR 4.
pub mod bar4 {
    /// The MSI-X table (one 16-byte entry per vector).
    pub const MSIX_TABLE: u32 = 0x000;
    /// The MSI-X Pending Bit Array.
    pub const MSIX_PBA: u32 = 0x800;
    /// The doorbell, alone in its page: any write runs the command in the
    /// DMA registers, like CONTROL's GO (the VMM backs it with an
    /// ioeventfd, so the write never leaves the guest's kernel).
    pub const DOORBELL: u64 = 0x1000;
}
/// MSI-X vectors: vector 0 fires when a command completes (whatever its
/// status).
pub const MSIX_VECTORS: u16 = 1;
/// The MSI-X vector a completed command raises.
pub const COMPLETION_VECTOR: u16 = 0;
/// BAR 2's size when not configured otherwise.
pub const DEFAULT_BAR2_SIZE: u64 = 1 << 20;
/// Longest copy one DMA command may ask for.
pub const MAX_DMA_LEN: u32 = 1 << 20;

/// Where the DMA engine's vendor-specific capability (ID 0x09) sits in
/// config space: the first capability.
pub const DMA_CAP_OFFSET: u16 = 0x40;

/// The DMA engine's registers, as offsets from its capability header.
pub mod dma_reg {
    /// Capability length byte (reads [`LEN`]).
    pub const CAP_LENGTH: u16 = 0x02;
    /// Layout version byte (reads 1).
    pub const VERSION: u16 = 0x03;
    /// Control (32 bits, reads 0): writing bit 0 ([`GO`]) runs a command.
    pub const CONTROL: u16 = 0x04;
    /// Source bus address, bits 31:0 (read-write).
    pub const SRC_LO: u16 = 0x08;
    /// Source bus address, bits 63:32 (read-write).
    pub const SRC_HI: u16 = 0x0c;
    /// Destination bus address, bits 31:0 (read-write).
    pub const DST_LO: u16 = 0x10;
    /// Destination bus address, bits 63:32 (read-write).
    pub const DST_HI: u16 = 0x14;
    /// Length in bytes, 1..=[`MAX_DMA_LEN`](super::MAX_DMA_LEN) (read-write).
    pub const LENGTH: u16 = 0x18;
    /// Status of the last command (read-only): a [`DmaStatus`](super::DmaStatus) code.
    pub const STATUS: u16 = 0x1c;
    /// Bytes the last command wrote to the destination (read-only).
    pub const DONE: u16 = 0x20;
    /// Commands run since reset, wrapping (read-only).
    pub const COUNT: u16 = 0x24;
    /// Length of the capability in bytes.
    pub const LEN: u8 = 0x28;
    /// Control bit 0: run the command now.
    pub const GO: u8 = 1 << 0;
    /// Control bit 1: inject a correctable error: set Receiver Error in
    /// the AER Correctable Error Status and, unless it is masked there or
    /// Device Control disables reporting, send ERR_COR to the root port.
    pub const INJECT_COR: u8 = 1 << 1;
}

/// Outcome of a DMA command, as the STATUS register reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmaStatus {
    /// 0: the copy completed.
    Done,
    /// 1: Bus Master Enable is clear ([`DmaError::BusMasterDisabled`]).
    BusMasterDisabled,
    /// 2: Unsupported Request: nothing decodes an address, or a bridge
    /// or the root complex refused it ([`DmaError::UnsupportedRequest`]).
    UnsupportedRequest,
    /// 3: Completer Abort, e.g. past the end of a BAR or into the
    /// device's own BAR ([`DmaError::CompleterAbort`]).
    CompleterAbort,
    /// 4: an ACS check refused it ([`DmaError::AcsViolation`]).
    AcsViolation,
    /// 5: the IOMMU has no translation ([`DmaError::IommuFault`]).
    IommuFault,
    /// 6: LENGTH was 0; nothing was done.
    ZeroLength,
    /// 7: LENGTH was above [`MAX_DMA_LEN`]; nothing was done.
    TooLong,
    /// 0xfe: a command is running (GO and the doorbell are ignored until it ends).
    Busy,
    /// 0xff: no command since reset.
    Idle,
}

impl DmaStatus {
    /// The STATUS register value.
    pub const fn code(self) -> u32 {
        match self {
            DmaStatus::Done => 0,
            DmaStatus::BusMasterDisabled => 1,
            DmaStatus::UnsupportedRequest => 2,
            DmaStatus::CompleterAbort => 3,
            DmaStatus::AcsViolation => 4,
            DmaStatus::IommuFault => 5,
            DmaStatus::ZeroLength => 6,
            DmaStatus::TooLong => 7,
            DmaStatus::Busy => 0xfe,
            DmaStatus::Idle => 0xff,
        }
    }

    /// The status a STATUS register value stands for.
    pub fn from_code(code: u32) -> Option<Self> {
        use DmaStatus::*;
        [
            Done,
            BusMasterDisabled,
            UnsupportedRequest,
            CompleterAbort,
            AcsViolation,
            IommuFault,
            ZeroLength,
            TooLong,
            Busy,
            Idle,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

impl From<DmaError> for DmaStatus {
    fn from(e: DmaError) -> Self {
        match e {
            DmaError::BusMasterDisabled => DmaStatus::BusMasterDisabled,
            DmaError::UnsupportedRequest => DmaStatus::UnsupportedRequest,
            DmaError::CompleterAbort => DmaStatus::CompleterAbort,
            DmaError::AcsViolation { .. } => DmaStatus::AcsViolation,
            DmaError::IommuFault => DmaStatus::IommuFault,
            DmaError::Poisoned => DmaStatus::CompleterAbort,
        }
    }
}
