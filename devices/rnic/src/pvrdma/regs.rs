//! PVRDMA registers, commands, shared-region and ring layouts: the one
//! definition of each (Linux 6.12 `drivers/infiniband/hw/vmw_pvrdma/
//! pvrdma_dev_api.h` and `include/uapi/rdma/vmw_pvrdma-abi.h`).

/// VMware's PCI vendor ID.
pub const VENDOR_ID: u16 = crate::config::VMWARE;
/// PVRDMA's device ID.
pub const DEVICE_ID: u16 = 0x0820;
/// The device version: 20 (QP handles apart from QP numbers).
pub const VERSION: u32 = 20;

/// BAR 0: the MSI-X table at 0 and its PBA at [`MSIX_PBA`].
pub const BAR0_SIZE: u64 = 0x2000;
/// Offset of the PBA in BAR 0.
pub const MSIX_PBA: u32 = 0x1000;
/// BAR 1: registers.
pub const BAR1_SIZE: u64 = 0x1000;
/// UAR pages (one 4 KiB page each) in BAR 2; a power of two.
pub const MAX_UAR: u32 = 16;
/// BAR 2: the UAR pages.
pub const BAR2_SIZE: u64 = MAX_UAR as u64 * 4096;
/// MSI-X vectors: command response, async events, CQ notifications.
pub const VECTORS: u16 = 3;
/// Vector of command responses.
pub const VEC_CMD: u16 = 0;
/// Vector of the async event ring.
pub const VEC_ASYNC: u16 = 1;
/// Vector of the CQ notification ring.
pub const VEC_CQ: u16 = 2;

/// BAR 1 registers.
pub mod reg {
    /// Device version (read).
    pub const VERSION: u64 = 0x00;
    /// Shared region address bits 31:0.
    pub const DSRLOW: u64 = 0x04;
    /// Shared region address bits 63:32; writing it loads the region.
    pub const DSRHIGH: u64 = 0x08;
    /// Control: activate, unquiesce, reset.
    pub const CTL: u64 = 0x0c;
    /// Any write runs the command in the command slot.
    pub const REQUEST: u64 = 0x10;
    /// Result of the last command or control write: 0 is success.
    pub const ERR: u64 = 0x14;
    /// Interrupt cause (INTx and MSI only).
    pub const ICR: u64 = 0x18;
    /// Interrupt mask.
    pub const IMR: u64 = 0x1c;
    /// MAC bytes 0..=3.
    pub const MACL: u64 = 0x20;
    /// MAC bytes 4 and 5.
    pub const MACH: u64 = 0x24;
}

/// Values written to [`reg::CTL`].
pub mod ctl {
    /// Start.
    pub const ACTIVATE: u32 = 0;
    /// The netdev came up again.
    pub const UNQUIESCE: u32 = 1;
    /// Stop and forget everything.
    pub const RESET: u32 = 2;
}

/// ERR values this device reports.
pub mod err {
    /// Success.
    pub const OK: u32 = 0;
    /// No shared region yet, or the device is not active.
    pub const NOT_READY: u32 = 0xffff;
    /// A command the device does not know or refuses.
    pub const BAD_COMMAND: u32 = 1;
    /// A handle, index or size out of range.
    pub const INVALID: u32 = 2;
    /// A table is full.
    pub const NO_RESOURCES: u32 = 3;
    /// Guest memory the command points to could not be read or written.
    pub const BAD_ADDRESS: u32 = 4;
    /// The device thread did not answer in time.
    pub const TIMEOUT: u32 = 5;
}

/// The device shared region (`pvrdma_device_shared_region`, packed).
pub mod dsr {
    /// `driver_version`.
    pub const DRIVER_VERSION: u64 = 0x00;
    /// `cmd_slot_dma`.
    pub const CMD_SLOT: u64 = 0x10;
    /// `resp_slot_dma`.
    pub const RESP_SLOT: u64 = 0x18;
    /// `async_ring_pages`: num_pages (u32) at +0, pdir_dma (u64) at +8.
    pub const ASYNC_RING: u64 = 0x20;
    /// `cq_ring_pages`, likewise.
    pub const CQ_RING: u64 = 0x30;
    /// `uar_pfn64`.
    pub const UAR_PFN: u64 = 0x40;
    /// `caps`, written by the device.
    pub const CAPS: u64 = 0x48;
    /// Size of `caps`.
    pub const CAPS_LEN: usize = 208;
    /// Size of the region.
    pub const LEN: usize = 0x48 + 208;
}

/// Offsets within `pvrdma_device_caps`.
pub mod caps {
    /// `fw_ver`.
    pub const FW_VER: usize = 0x00;
    /// `node_guid`.
    pub const NODE_GUID: usize = 0x08;
    /// `sys_image_guid`.
    pub const SYS_IMAGE_GUID: usize = 0x10;
    /// `max_mr_size`.
    pub const MAX_MR_SIZE: usize = 0x18;
    /// `page_size_cap`.
    pub const PAGE_SIZE_CAP: usize = 0x20;
    /// `vendor_id`.
    pub const VENDOR_ID: usize = 0x40;
    /// `vendor_part_id`.
    pub const VENDOR_PART_ID: usize = 0x44;
    /// `hw_ver`.
    pub const HW_VER: usize = 0x48;
    /// `max_qp`.
    pub const MAX_QP: usize = 0x4c;
    /// `max_qp_wr`.
    pub const MAX_QP_WR: usize = 0x50;
    /// `device_cap_flags`.
    pub const DEVICE_CAP_FLAGS: usize = 0x54;
    /// `max_sge`.
    pub const MAX_SGE: usize = 0x58;
    /// `max_sge_rd`.
    pub const MAX_SGE_RD: usize = 0x5c;
    /// `max_cq`.
    pub const MAX_CQ: usize = 0x60;
    /// `max_cqe`.
    pub const MAX_CQE: usize = 0x64;
    /// `max_mr`.
    pub const MAX_MR: usize = 0x68;
    /// `max_pd`.
    pub const MAX_PD: usize = 0x6c;
    /// `max_qp_rd_atom`.
    pub const MAX_QP_RD_ATOM: usize = 0x70;
    /// `max_qp_init_rd_atom`.
    pub const MAX_QP_INIT_RD_ATOM: usize = 0x7c;
    /// `max_ah`.
    pub const MAX_AH: usize = 0xa4;
    /// `max_srq`.
    pub const MAX_SRQ: usize = 0xb0;
    /// `max_uar`.
    pub const MAX_UAR: usize = 0xbc;
    /// `gid_tbl_len`.
    pub const GID_TBL_LEN: usize = 0xc0;
    /// `max_pkeys`.
    pub const MAX_PKEYS: usize = 0xc4;
    /// `local_ca_ack_delay`.
    pub const LOCAL_CA_ACK_DELAY: usize = 0xc6;
    /// `phys_port_cnt`.
    pub const PHYS_PORT_CNT: usize = 0xc7;
    /// `mode`.
    pub const MODE: usize = 0xc8;
    /// `atomic_ops`.
    pub const ATOMIC_OPS: usize = 0xc9;
    /// `bmme_flags`.
    pub const BMME_FLAGS: usize = 0xca;
    /// `gid_types`.
    pub const GID_TYPES: usize = 0xcb;
    /// `max_fast_reg_page_list_len`.
    pub const MAX_FAST_REG_PAGE_LIST_LEN: usize = 0xcc;
}

/// The device's limits, as advertised in `caps`.
pub mod limit {
    /// QPs (handles 1..MAX_QP; 1 is the GSI QP).
    pub const MAX_QP: u32 = 256;
    /// Work requests per queue.
    pub const MAX_QP_WR: u32 = 4096;
    /// Scatter/gather entries per work request.
    pub const MAX_SGE: u32 = 16;
    /// CQs.
    pub const MAX_CQ: u32 = 256;
    /// Entries per CQ.
    pub const MAX_CQE: u32 = 65536;
    /// Memory regions.
    pub const MAX_MR: u32 = 4096;
    /// Protection domains.
    pub const MAX_PD: u32 = 256;
    /// Address handles (the driver keeps them; only the limit matters).
    pub const MAX_AH: u32 = 4096;
    /// GID table entries.
    pub const GID_TBL_LEN: u32 = 16;
    /// Pages in a fast-register page list.
    pub const MAX_FAST_REG_PAGES: u32 = 128;
    /// Largest memory region: one page directory of 512 tables of 512 pages.
    pub const MAX_MR_SIZE: u64 = 1 << 30;
    /// Most pages one page directory addresses.
    pub const MAX_PDIR_PAGES: u32 = 512 * 512;
    /// Outstanding RDMA READs per QP.
    pub const MAX_RD_ATOM: u32 = 16;
}

/// Commands (`hdr.cmd` in the command slot) and their acks.
pub mod cmd {
    /// `query_port`.
    pub const QUERY_PORT: u32 = 0;
    /// `query_pkey`.
    pub const QUERY_PKEY: u32 = 1;
    /// `create_pd`.
    pub const CREATE_PD: u32 = 2;
    /// `destroy_pd`.
    pub const DESTROY_PD: u32 = 3;
    /// `create_mr`.
    pub const CREATE_MR: u32 = 4;
    /// `destroy_mr`.
    pub const DESTROY_MR: u32 = 5;
    /// `create_cq`.
    pub const CREATE_CQ: u32 = 6;
    /// `resize_cq`.
    pub const RESIZE_CQ: u32 = 7;
    /// `destroy_cq`.
    pub const DESTROY_CQ: u32 = 8;
    /// `create_qp`.
    pub const CREATE_QP: u32 = 9;
    /// `modify_qp`.
    pub const MODIFY_QP: u32 = 10;
    /// `query_qp`.
    pub const QUERY_QP: u32 = 11;
    /// `destroy_qp`.
    pub const DESTROY_QP: u32 = 12;
    /// `create_uc`.
    pub const CREATE_UC: u32 = 13;
    /// `destroy_uc`.
    pub const DESTROY_UC: u32 = 14;
    /// `create_bind`.
    pub const CREATE_BIND: u32 = 15;
    /// `destroy_bind`.
    pub const DESTROY_BIND: u32 = 16;
    /// A response's `ack` is the command with this bit set.
    pub const RESP: u32 = 0x8000_0000;
    /// Size of a request (the largest, MODIFY_QP).
    pub const REQ_LEN: usize = 184;
    /// Size of a response.
    pub const RESP_LEN: usize = 176;
}

/// CREATE_MR flags.
pub mod mr_flags {
    /// A DMA MR: addresses are bus addresses.
    pub const DMA: u32 = 1;
    /// A fast-register MR (its pages come with a REG_MR work request).
    pub const FRMR: u32 = 2;
}

/// IB access flags (MR and QP).
pub mod access {
    /// `local_write`.
    pub const LOCAL_WRITE: u32 = 1;
    /// `remote_write`.
    pub const REMOTE_WRITE: u32 = 2;
    /// `remote_read`.
    pub const REMOTE_READ: u32 = 4;
}

/// QP types in CREATE_QP.
pub mod qp_type {
    /// `gsi`.
    pub const GSI: u8 = 1;
    /// `rc`.
    pub const RC: u8 = 2;
    /// `ud`.
    pub const UD: u8 = 4;
}

/// QP states (IB values).
pub mod qp_state {
    /// `reset`.
    pub const RESET: u32 = 0;
    /// `init`.
    pub const INIT: u32 = 1;
    /// `rtr`.
    pub const RTR: u32 = 2;
    /// `rts`.
    pub const RTS: u32 = 3;
    /// `sqd`.
    pub const SQD: u32 = 4;
    /// `sqe`.
    pub const SQE: u32 = 5;
    /// `err`.
    pub const ERR: u32 = 6;
}

/// MODIFY_QP attribute mask bits (IB_QP_*).
pub mod qp_attr {
    /// `state`.
    pub const STATE: u32 = 1 << 0;
    /// `access_flags`.
    pub const ACCESS_FLAGS: u32 = 1 << 3;
    /// `qkey`.
    pub const QKEY: u32 = 1 << 6;
    /// `av`.
    pub const AV: u32 = 1 << 7;
    /// `path_mtu`.
    pub const PATH_MTU: u32 = 1 << 8;
    /// `rq_psn`.
    pub const RQ_PSN: u32 = 1 << 12;
    /// `sq_psn`.
    pub const SQ_PSN: u32 = 1 << 16;
    /// `dest_qpn`.
    pub const DEST_QPN: u32 = 1 << 20;
}

/// UAR doorbell registers (offsets in a UAR page) and bits.
pub mod uar {
    /// QP doorbell: handle | SEND or RECV.
    pub const QP: u64 = 0x0;
    /// CQ doorbell: handle | ARM_SOL, ARM or POLL.
    pub const CQ: u64 = 0x4;
    /// Handle bits.
    pub const HANDLE_MASK: u32 = 0x00ff_ffff;
    /// `qp_send`.
    pub const QP_SEND: u32 = 1 << 30;
    /// `qp_recv`.
    pub const QP_RECV: u32 = 1 << 31;
    /// `cq_arm_sol`.
    pub const CQ_ARM_SOL: u32 = 1 << 29;
    /// `cq_arm`.
    pub const CQ_ARM: u32 = 1 << 30;
    /// `cq_poll`.
    pub const CQ_POLL: u32 = 1 << 31;
}

/// Sizes of ring elements.
pub mod ring {
    /// An async event (`pvrdma_eqe`).
    pub const EQE: u64 = 8;
    /// A CQ notification (`pvrdma_cqne`).
    pub const CQNE: u64 = 4;
    /// A completion (`pvrdma_cqe`).
    pub const CQE: u64 = 64;
    /// Ring state (producer tail, consumer head) of the "rx" ring in
    /// page 0 of async, CQ-notify and CQ rings.
    pub const RX_STATE: u64 = 8;
    /// Pages of the async and CQ-notify rings, the state page included,
    /// that the device accepts.
    pub const MAX_EVENT_PAGES: u32 = 64;
}

/// Async event types (`pvrdma_eqe.type`).
pub mod event {
    /// `cq_err`.
    pub const CQ_ERR: u32 = 0;
    /// `qp_fatal`.
    pub const QP_FATAL: u32 = 1;
    /// `qp_access_err`.
    pub const QP_ACCESS_ERR: u32 = 3;
    /// `port_active`.
    pub const PORT_ACTIVE: u32 = 9;
}
