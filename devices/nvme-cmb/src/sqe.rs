//! Submission and completion queue entries (NVMe Base 1.4, §4.2, §4.6)
//! and opcodes.

use crate::Status;

/// Bytes in a submission queue entry.
pub const SQE_SIZE: usize = 64;
/// Bytes in a completion queue entry.
pub const CQE_SIZE: usize = 16;

/// Admin command opcodes.
pub mod admin_op {
    /// Delete I/O Submission Queue.
    pub const DELETE_IO_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_IO_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_IO_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_IO_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0a;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0c;
    /// Keep Alive.
    pub const KEEP_ALIVE: u8 = 0x18;
    /// Doorbell Buffer Config.
    pub const DOORBELL_BUFFER_CONFIG: u8 = 0x7c;
}

/// NVM command set I/O opcodes.
pub mod io_op {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Compare.
    pub const COMPARE: u8 = 0x05;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DATASET_MANAGEMENT: u8 = 0x09;
}

/// A submission queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Command {
    /// Opcode (CDW0 bits 7:0).
    pub opcode: u8,
    /// Fused operation (CDW0 bits 9:8).
    pub fuse: u8,
    /// PRP or SGL for Data Transfer (CDW0 bits 15:14).
    pub psdt: u8,
    /// Command Identifier (CDW0 bits 31:16).
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Metadata Pointer.
    pub mptr: u64,
    /// Data Pointer: PRP1 and PRP2, or SGL1.
    pub dptr: [u8; 16],
    /// Command dword 10.
    pub cdw10: u32,
    /// Command dword 11.
    pub cdw11: u32,
    /// Command dword 12.
    pub cdw12: u32,
    /// Command dword 13.
    pub cdw13: u32,
    /// Command dword 14.
    pub cdw14: u32,
    /// Command dword 15.
    pub cdw15: u32,
}

fn dw(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

impl Command {
    /// Decodes an entry (little endian).
    pub fn parse(b: &[u8; SQE_SIZE]) -> Command {
        let cdw0 = dw(b, 0);
        let mut dptr = [0; 16];
        dptr.copy_from_slice(&b[24..40]);
        Command {
            opcode: cdw0 as u8,
            fuse: ((cdw0 >> 8) & 3) as u8,
            psdt: ((cdw0 >> 14) & 3) as u8,
            cid: (cdw0 >> 16) as u16,
            nsid: dw(b, 1),
            mptr: u64::from(dw(b, 4)) | (u64::from(dw(b, 5)) << 32),
            dptr,
            cdw10: dw(b, 10),
            cdw11: dw(b, 11),
            cdw12: dw(b, 12),
            cdw13: dw(b, 13),
            cdw14: dw(b, 14),
            cdw15: dw(b, 15),
        }
    }

    /// Encodes the entry (what a host driver writes).
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        let mut b = [0; SQE_SIZE];
        let cdw0 = u32::from(self.opcode)
            | (u32::from(self.fuse & 3) << 8)
            | (u32::from(self.psdt & 3) << 14)
            | (u32::from(self.cid) << 16);
        let dws = [
            (0, cdw0),
            (1, self.nsid),
            (4, self.mptr as u32),
            (5, (self.mptr >> 32) as u32),
            (10, self.cdw10),
            (11, self.cdw11),
            (12, self.cdw12),
            (13, self.cdw13),
            (14, self.cdw14),
            (15, self.cdw15),
        ];
        for (i, v) in dws {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[24..40].copy_from_slice(&self.dptr);
        b
    }

    /// PRP Entry 1.
    pub fn prp1(&self) -> u64 {
        u64::from_le_bytes([
            self.dptr[0],
            self.dptr[1],
            self.dptr[2],
            self.dptr[3],
            self.dptr[4],
            self.dptr[5],
            self.dptr[6],
            self.dptr[7],
        ])
    }

    /// PRP Entry 2.
    pub fn prp2(&self) -> u64 {
        u64::from_le_bytes([
            self.dptr[8],
            self.dptr[9],
            self.dptr[10],
            self.dptr[11],
            self.dptr[12],
            self.dptr[13],
            self.dptr[14],
            self.dptr[15],
        ])
    }

    /// True when the data pointer is an SGL (PSDT non-zero).
    pub fn uses_sgl(&self) -> bool {
        self.psdt != 0
    }
}

/// A completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Command-specific dword 0.
    pub dw0: u32,
    /// Dword 1 (reserved for most commands).
    pub dw1: u32,
    /// SQ Head Pointer.
    pub sq_head: u16,
    /// SQ Identifier.
    pub sq_id: u16,
    /// Command Identifier.
    pub cid: u16,
    /// Status.
    pub status: Status,
}

impl Completion {
    /// Encodes the entry with phase tag `phase`.
    pub fn to_bytes(&self, phase: bool) -> [u8; CQE_SIZE] {
        let mut b = [0; CQE_SIZE];
        let dw2 = u32::from(self.sq_head) | (u32::from(self.sq_id) << 16);
        let dw3 = u32::from(self.cid) | (u32::from(self.status.field() | u16::from(phase)) << 16);
        for (i, v) in [self.dw0, self.dw1, dw2, dw3].into_iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes an entry and its phase tag.
    pub fn parse(b: &[u8; CQE_SIZE]) -> (Completion, bool) {
        let dw3 = dw(b, 3);
        let field = (dw3 >> 16) as u16;
        let c = Completion {
            dw0: dw(b, 0),
            dw1: dw(b, 1),
            sq_head: dw(b, 2) as u16,
            sq_id: (dw(b, 2) >> 16) as u16,
            cid: dw3 as u16,
            status: Status::from_field(field),
        };
        (c, field & 1 != 0)
    }
}
