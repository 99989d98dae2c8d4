//! vmxnet3 registers, commands and shared-memory layout: the one
//! definition of each (Linux 6.12 `drivers/net/vmxnet3/vmxnet3_defs.h` is
//! the specification followed).

/// VMware's PCI vendor ID.
pub const VENDOR_ID: u16 = crate::config::VMWARE;
/// vmxnet3's device ID.
pub const DEVICE_ID: u16 = 0x07b0;
/// PCI revision ID.
pub const REVISION_ID: u8 = 1;
/// BAR 0 ("PT": interrupt masks and producer doorbells) and BAR 1 ("VD":
/// everything else) are 4 KiB each.
pub const BAR_SIZE: u64 = 0x1000;
/// Number of interrupt vectors (one MSI message).
pub const VECTORS: usize = 1;
/// Most Tx and Rx queues the driver may configure (for v1 devices Linux
/// uses a power of two up to 8).
pub const MAX_QUEUES: usize = 8;

/// BAR 0 registers, 8 bytes apart.
pub mod pt {
    /// Interrupt Mask Register of vector `i` at `IMR + 8 i`: 1 masks.
    pub const IMR: u64 = 0x000;
    /// Tx producer doorbell of queue `q` at `TXPROD + 8 q`.
    pub const TXPROD: u64 = 0x600;
    /// Rx ring 0 producer of queue `q` (ignored: the device checks the
    /// generation bits instead).
    pub const RXPROD: u64 = 0x800;
    /// Rx ring 1 producer of queue `q` (ignored likewise).
    pub const RXPROD2: u64 = 0xa00;
    /// Registers are this far apart.
    pub const STRIDE: u64 = 8;
}

/// BAR 1 registers.
pub mod vd {
    /// Device revisions supported (bit n: revision n + 1); the driver
    /// writes back the one it picks.
    pub const VRRS: u64 = 0x00;
    /// UPT versions supported, likewise.
    pub const UVRS: u64 = 0x08;
    /// Driver shared area, address bits 31:0.
    pub const DSAL: u64 = 0x10;
    /// Driver shared area, address bits 63:32.
    pub const DSAH: u64 = 0x18;
    /// Command register: a write runs a command, a read returns its result.
    pub const CMD: u64 = 0x20;
    /// MAC address bytes 0..=3.
    pub const MACL: u64 = 0x28;
    /// MAC address bytes 4 and 5.
    pub const MACH: u64 = 0x30;
    /// Interrupt cause (INTx only; this device has no INTx).
    pub const ICR: u64 = 0x38;
    /// Event cause: the driver acknowledges `shared.ecr` bits here.
    pub const ECR: u64 = 0x40;
}

/// Commands written to [`vd::CMD`].
pub mod cmd {
    /// Read the driver shared area and start.
    pub const ACTIVATE_DEV: u32 = 0xcafe_0000;
    /// Stop all DMA and interrupts.
    pub const QUIESCE_DEV: u32 = 0xcafe_0001;
    /// Stop and forget the configuration.
    pub const RESET_DEV: u32 = 0xcafe_0002;
    /// The Rx mode changed (ignored: every frame is delivered).
    pub const UPDATE_RX_MODE: u32 = 0xcafe_0003;
    /// The multicast filter changed (ignored likewise).
    pub const UPDATE_MAC_FILTERS: u32 = 0xcafe_0004;
    /// Queue status: the device writes it into the queue descriptors.
    pub const GET_QUEUE_STATUS: u32 = 0xf00d_0000;
    /// Link state: speed in Mb/s in bits 31:16, bit 0 up.
    pub const GET_LINK: u32 = 0xf00d_0002;
    /// Interrupt configuration: type in bits 1:0, mask mode in bits 3:2.
    pub const GET_CONF_INTR: u32 = 0xf00d_0008;
}

/// [`cmd::GET_LINK`]'s answer: 10 Gb/s, up.
pub const LINK_UP_10G: u32 = (10_000 << 16) | 1;
/// [`cmd::GET_CONF_INTR`]'s answer: MSI (type 2), automatic masking (0).
pub const CONF_INTR_MSI_AUTO: u32 = 2;

/// The driver shared area (`Vmxnet3_DriverShared`), offsets from its base.
pub mod shared {
    /// `magic`: must read [`MAGIC`].
    pub const MAGIC_OFF: u64 = 0x000;
    /// The revision-1 magic.
    pub const MAGIC: u32 = 0xbabe_fee1;
    /// `misc.queueDescPA`: Tx queue descriptors, then Rx queue descriptors.
    pub const QUEUE_DESC_PA: u64 = 0x028;
    /// `misc.queueDescLen`.
    pub const QUEUE_DESC_LEN: u64 = 0x034;
    /// `misc.mtu`.
    pub const MTU: u64 = 0x038;
    /// `misc.numTxQueues` (one byte).
    pub const NUM_TX_QUEUES: u64 = 0x03e;
    /// `misc.numRxQueues` (one byte).
    pub const NUM_RX_QUEUES: u64 = 0x03f;
    /// `intrConf.autoMask` (one byte).
    pub const AUTO_MASK: u64 = 0x050;
    /// `intrConf.numIntrs` (one byte).
    pub const NUM_INTRS: u64 = 0x051;
    /// How much of the area the device reads at activation.
    pub const READ_LEN: usize = 0x60;
}

/// A Tx queue descriptor (`Vmxnet3_TxQueueDesc`), 256 bytes.
pub mod txq {
    /// `conf.txRingBasePA`.
    pub const RING: u64 = 0x10;
    /// `conf.dataRingBasePA` (the driver points SOP descriptors into it;
    /// the device needs nothing from it).
    pub const DATA_RING: u64 = 0x18;
    /// `conf.compRingBasePA`.
    pub const COMP_RING: u64 = 0x20;
    /// `conf.txRingSize`.
    pub const RING_SIZE: u64 = 0x38;
    /// `conf.compRingSize`.
    pub const COMP_RING_SIZE: u64 = 0x40;
    /// `conf.intrIdx` (one byte).
    pub const INTR_IDX: u64 = 0x48;
    /// `status.stopped` (one byte), written on GET_QUEUE_STATUS.
    pub const STOPPED: u64 = 0x50;
    /// `status.error`.
    pub const ERROR: u64 = 0x54;
}

/// An Rx queue descriptor (`Vmxnet3_RxQueueDesc`), 256 bytes, after all Tx
/// queue descriptors.
pub mod rxq {
    /// `conf.rxRingBasePA[0]` (ring 1 in the driver's words, head buffers).
    pub const RING0: u64 = 0x10;
    /// `conf.rxRingBasePA[1]` (body buffers).
    pub const RING1: u64 = 0x18;
    /// `conf.compRingBasePA`.
    pub const COMP_RING: u64 = 0x20;
    /// `conf.rxRingSize[0]`.
    pub const RING0_SIZE: u64 = 0x38;
    /// `conf.rxRingSize[1]`.
    pub const RING1_SIZE: u64 = 0x3c;
    /// `conf.compRingSize`.
    pub const COMP_RING_SIZE: u64 = 0x40;
    /// `conf.intrIdx` (one byte).
    pub const INTR_IDX: u64 = 0x48;
}

/// Size of a Tx or Rx queue descriptor.
pub const QUEUE_DESC_SIZE: u64 = 256;
/// Size of every ring descriptor (Tx, Tx completion, Rx, Rx completion).
pub const DESC_SIZE: u64 = 16;
/// Largest ring the device accepts (the driver's own limit is 4096).
pub const MAX_RING_SIZE: u32 = 4096;
/// Most descriptors one packet may use (TSO's limit; 16 otherwise).
pub const MAX_TX_DESCS_PER_PKT: usize = 24;
/// A Tx descriptor's length 0 means this many bytes.
pub const TX_LEN_ZERO: usize = 16384;
/// Largest frame the device sends (a TSO packet's limit).
pub const MAX_TX_FRAME: usize = 65536 + 256;

/// Tx descriptor fields (`Vmxnet3_TxDesc`), dword 2 and dword 3.
pub mod txd {
    /// dword 2 bits 13:0: buffer length (0 means 16384).
    pub const LEN_MASK: u32 = 0x3fff;
    /// dword 2 bit 14: generation.
    pub const GEN_SHIFT: u32 = 14;
    /// dword 2 bits 31:18: MSS (TSO) or checksum offset (CSUM).
    pub const MSSCOF_SHIFT: u32 = 18;
    /// dword 3 bits 9:0: header length (TSO) or checksum start (CSUM).
    pub const HLEN_MASK: u32 = 0x3ff;
    /// dword 3 bits 11:10: offload mode.
    pub const OM_SHIFT: u32 = 10;
    /// dword 3 bit 12: end of packet.
    pub const EOP: u32 = 1 << 12;
    /// Offload mode: none.
    pub const OM_NONE: u32 = 0;
    /// Offload mode: checksum (insert the one's complement sum).
    pub const OM_CSUM: u32 = 2;
    /// Offload mode: TCP segmentation.
    pub const OM_TSO: u32 = 3;
}

/// Rx descriptor fields (`Vmxnet3_RxDesc`), dword 2.
pub mod rxd {
    /// Bits 13:0: buffer length.
    pub const LEN_MASK: u32 = 0x3fff;
    /// Bit 14: buffer type, 0 head (skb), 1 body (page).
    pub const BTYPE_BODY: u32 = 1 << 14;
    /// Bit 31: generation.
    pub const GEN_SHIFT: u32 = 31;
}

/// Completion descriptor fields (`Vmxnet3_TxCompDesc`,
/// `Vmxnet3_RxCompDesc`).
pub mod comp {
    /// dword 3 bit 31: generation (both kinds).
    pub const GEN: u32 = 1 << 31;
    /// dword 3 bits 30:24: completion type.
    pub const TYPE_SHIFT: u32 = 24;
    /// Type of an Rx completion.
    pub const TYPE_RX: u32 = 3;
    /// Rx dword 0 bit 14: end of packet.
    pub const RX_EOP: u32 = 1 << 14;
    /// Rx dword 0 bit 15: start of packet.
    pub const RX_SOP: u32 = 1 << 15;
    /// Rx dword 0 bits 25:16: the ring (`rqID`).
    pub const RX_RQID_SHIFT: u32 = 16;
    /// Rx dword 0 bit 30: checksum not calculated.
    pub const RX_CNC: u32 = 1 << 30;
    /// Tx dword 0 bits 11:0 and Rx dword 0 bits 11:0: descriptor index.
    pub const IDX_MASK: u32 = 0xfff;
}
