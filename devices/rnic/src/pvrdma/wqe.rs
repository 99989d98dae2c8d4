//! Work queue entries and completions (`vmw_pvrdma-abi.h`): parsing what
//! the driver posts, building the CQEs the device writes. Pure functions
//! over bytes, so that a fuzzer can drive them.

use super::mem::{Fields, FieldsMut};

/// Bytes of a send WQE header; SGEs follow.
pub const SQ_HDR: usize = 80;
/// Bytes of a receive WQE header; SGEs follow.
pub const RQ_HDR: usize = 16;
/// Bytes of an SGE.
pub const SGE: usize = 16;

/// Send opcodes (`pvrdma_wr_opcode`).
pub mod wr {
    /// `RDMA_WRITE`.
    pub const RDMA_WRITE: u32 = 0;
    /// `RDMA_WRITE_WITH_IMM`.
    pub const RDMA_WRITE_WITH_IMM: u32 = 1;
    /// `SEND`.
    pub const SEND: u32 = 2;
    /// `SEND_WITH_IMM`.
    pub const SEND_WITH_IMM: u32 = 3;
    /// `RDMA_READ`.
    pub const RDMA_READ: u32 = 4;
    /// `SEND_WITH_INV`.
    pub const SEND_WITH_INV: u32 = 8;
    /// `LOCAL_INV`.
    pub const LOCAL_INV: u32 = 10;
    /// `FAST_REG_MR`.
    pub const FAST_REG_MR: u32 = 11;
}

/// Send flags.
pub mod flags {
    /// `SIGNALED`.
    pub const SIGNALED: u32 = 2;
    /// `SOLICITED`.
    pub const SOLICITED: u32 = 4;
    /// `INLINE`.
    pub const INLINE: u32 = 8;
}

/// Completion opcodes (`pvrdma_wc_opcode`).
pub mod wc {
    /// `SEND`.
    pub const SEND: u32 = 0;
    /// `RDMA_WRITE`.
    pub const RDMA_WRITE: u32 = 1;
    /// `RDMA_READ`.
    pub const RDMA_READ: u32 = 2;
    /// `LOCAL_INV`.
    pub const LOCAL_INV: u32 = 7;
    /// `REG_MR`.
    pub const REG_MR: u32 = 8;
    /// `RECV`.
    pub const RECV: u32 = 0x80;
    /// `RECV_RDMA_WITH_IMM`.
    pub const RECV_RDMA_WITH_IMM: u32 = 0x81;
}

/// Completion statuses (`ib_wc_status`).
pub mod status {
    /// `SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `LOC_LEN_ERR`.
    pub const LOC_LEN_ERR: u32 = 1;
    /// `LOC_QP_OP_ERR`.
    pub const LOC_QP_OP_ERR: u32 = 2;
    /// `LOC_PROT_ERR`.
    pub const LOC_PROT_ERR: u32 = 4;
    /// `WR_FLUSH_ERR`.
    pub const WR_FLUSH_ERR: u32 = 5;
    /// `REM_INV_REQ_ERR`.
    pub const REM_INV_REQ_ERR: u32 = 9;
    /// `REM_ACCESS_ERR`.
    pub const REM_ACCESS_ERR: u32 = 10;
    /// `REM_OP_ERR`.
    pub const REM_OP_ERR: u32 = 11;
    /// `RETRY_EXC_ERR`.
    pub const RETRY_EXC_ERR: u32 = 12;
}

/// Completion flags (`ib_wc_flags`).
pub mod wc_flags {
    /// `GRH`.
    pub const GRH: u32 = 1;
    /// `WITH_IMM`.
    pub const WITH_IMM: u32 = 2;
    /// `WITH_INVALIDATE`.
    pub const WITH_INVALIDATE: u32 = 4;
    /// `WITH_NETWORK_HDR_TYPE`.
    pub const WITH_NETWORK_HDR_TYPE: u32 = 64;
}

/// A scatter/gather entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sge {
    /// Virtual (or bus, under a DMA MR) address.
    pub addr: u64,
    /// Bytes.
    pub length: u32,
    /// Local key.
    pub lkey: u32,
}

fn sges(b: &[u8], at: usize, n: u32) -> Vec<Sge> {
    (0..n as usize)
        .map(|i| {
            let o = at + i * SGE;
            Sge {
                addr: b.u64_at(o),
                length: b.u32_at(o + 8),
                lkey: b.u32_at(o + 12),
            }
        })
        .collect()
}

/// A send WQE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWqe {
    /// The driver's ID, returned in the CQE.
    pub wr_id: u64,
    /// Opcode ([`wr`]).
    pub opcode: u32,
    /// Flags ([`flags`]).
    pub send_flags: u32,
    /// Immediate data (wire order) or the rkey to invalidate.
    pub ex: u32,
    /// RDMA: remote address and key.
    pub remote_addr: u64,
    /// RDMA: remote key.
    pub rkey: u32,
    /// UD: destination QP and Q_Key.
    pub remote_qpn: u32,
    /// UD: Q_Key.
    pub remote_qkey: u32,
    /// UD: destination GID.
    pub dgid: [u8; 16],
    /// UD: source GID index.
    pub sgid_index: u8,
    /// Fast register: IOVA, page list directory, page count, length,
    /// access, key.
    pub fr_iova: u64,
    /// Fast register: the page list's directory.
    pub fr_pdir: u64,
    /// Fast register: page shift.
    pub fr_page_shift: u32,
    /// Fast register: pages.
    pub fr_pages: u32,
    /// Fast register: length.
    pub fr_length: u32,
    /// Fast register: access.
    pub fr_access: u32,
    /// Fast register: the new key.
    pub fr_key: u32,
    /// Its SGEs.
    pub sges: Vec<Sge>,
}

impl SendWqe {
    /// Parses a WQE of `b` (header and SGEs); `None` when it claims more
    /// SGEs than `max_sge` or than `b` holds.
    pub fn parse(b: &[u8], max_sge: u32) -> Option<Self> {
        let n = b.u32_at(8);
        if n > max_sge || SQ_HDR + n as usize * SGE > b.len() {
            return None;
        }
        let mut dgid = [0u8; 16];
        dgid.copy_from_slice(b.get(48..64)?);
        Some(SendWqe {
            wr_id: b.u64_at(0),
            opcode: b.u32_at(16),
            send_flags: b.u32_at(20),
            ex: b.u32_at(24),
            remote_addr: b.u64_at(32),
            rkey: b.u32_at(40),
            remote_qpn: b.u32_at(32),
            remote_qkey: b.u32_at(36),
            dgid,
            sgid_index: b.u8_at(40 + 25),
            fr_iova: b.u64_at(32),
            fr_pdir: b.u64_at(40),
            fr_page_shift: b.u32_at(48),
            fr_pages: b.u32_at(52),
            fr_length: b.u32_at(56),
            fr_access: b.u32_at(60),
            fr_key: b.u32_at(64),
            sges: sges(b, SQ_HDR, n),
        })
    }
}

/// A receive WQE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvWqe {
    /// The driver's ID.
    pub wr_id: u64,
    /// Its SGEs.
    pub sges: Vec<Sge>,
}

impl RecvWqe {
    /// Parses a WQE of `b`; `None` when it claims more SGEs than
    /// `max_sge` or than `b` holds.
    pub fn parse(b: &[u8], max_sge: u32) -> Option<Self> {
        let n = b.u32_at(8);
        if n > max_sge || RQ_HDR + n as usize * SGE > b.len() {
            return None;
        }
        Some(RecvWqe {
            wr_id: b.u64_at(0),
            sges: sges(b, RQ_HDR, n),
        })
    }
}

/// A completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cqe {
    /// From the WQE.
    pub wr_id: u64,
    /// The QP handle.
    pub qp: u32,
    /// [`wc`] opcode.
    pub opcode: u32,
    /// [`status`].
    pub status: u32,
    /// Bytes received.
    pub byte_len: u32,
    /// Immediate data (wire order) or the invalidated rkey.
    pub imm: u32,
    /// The sender's QP (UD).
    pub src_qp: u32,
    /// [`wc_flags`].
    pub wc_flags: u32,
    /// 1 IPv4, 2 IPv6 (with WITH_NETWORK_HDR_TYPE).
    pub network_hdr_type: u8,
}

impl Cqe {
    /// Its 64 bytes (`pvrdma_cqe`).
    pub fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b.put_u64(0, self.wr_id);
        b.put_u64(8, u64::from(self.qp));
        b.put_u32(16, self.opcode);
        b.put_u32(20, self.status);
        b.put_u32(24, self.byte_len);
        b.put_u32(28, self.imm);
        b.put_u32(32, self.src_qp);
        b.put_u32(36, self.wc_flags);
        b[50] = 1; // port
        b[57] = self.network_hdr_type;
        b
    }
}
