//! vmxnet3 ring descriptors: parsing what the driver wrote and building
//! what the device writes back. Pure functions over 16-byte arrays, so
//! that a fuzzer can drive them.

use super::regs::{comp, rxd, txd, TX_LEN_ZERO};

/// One 16-byte ring descriptor as it sits in guest memory.
pub type Raw = [u8; 16];

fn dword(raw: &Raw, i: usize) -> u32 {
    u32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]])
}

fn qword(raw: &Raw) -> u64 {
    u64::from(dword(raw, 0)) | u64::from(dword(raw, 1)) << 32
}

/// A Tx descriptor (`Vmxnet3_TxDesc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxDesc {
    /// Guest address of the buffer.
    pub addr: u64,
    /// Buffer length in bytes (1..=16384).
    pub len: usize,
    /// Generation bit.
    pub gen: bool,
    /// Last descriptor of the packet.
    pub eop: bool,
    /// Offload mode (SOP only): [`txd::OM_NONE`], [`txd::OM_CSUM`] or
    /// [`txd::OM_TSO`] (1, encapsulation, is treated as none).
    pub om: u32,
    /// Checksum start (CSUM) or header length (TSO), SOP only.
    pub hlen: usize,
    /// Checksum field offset (CSUM) or MSS (TSO), SOP only.
    pub msscof: usize,
}

impl TxDesc {
    /// Parses `raw`.
    pub fn parse(raw: &Raw) -> Self {
        let (d2, d3) = (dword(raw, 2), dword(raw, 3));
        let len = (d2 & txd::LEN_MASK) as usize;
        TxDesc {
            addr: qword(raw),
            len: if len == 0 { TX_LEN_ZERO } else { len },
            gen: (d2 >> txd::GEN_SHIFT) & 1 != 0,
            eop: d3 & txd::EOP != 0,
            om: (d3 >> txd::OM_SHIFT) & 3,
            hlen: (d3 & txd::HLEN_MASK) as usize,
            msscof: (d2 >> txd::MSSCOF_SHIFT) as usize,
        }
    }

    /// The generation bit alone, from dword 2 (what the device checks
    /// before it trusts the rest).
    pub fn gen_of(raw: &Raw) -> bool {
        (dword(raw, 2) >> txd::GEN_SHIFT) & 1 != 0
    }
}

/// An Rx descriptor (`Vmxnet3_RxDesc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxDesc {
    /// Guest address of the buffer.
    pub addr: u64,
    /// Buffer length in bytes (0..=16383).
    pub len: usize,
    /// A body (page) buffer rather than a head (skb) buffer.
    pub body: bool,
    /// Generation bit.
    pub gen: bool,
}

impl RxDesc {
    /// Parses `raw`.
    pub fn parse(raw: &Raw) -> Self {
        let d2 = dword(raw, 2);
        RxDesc {
            addr: qword(raw),
            len: (d2 & rxd::LEN_MASK) as usize,
            body: d2 & rxd::BTYPE_BODY != 0,
            gen: (d2 >> rxd::GEN_SHIFT) & 1 != 0,
        }
    }
}

/// A completion split in two writes: `body` (dwords 0..=2), then `last`
/// (dword 3, holding the generation bit), so that the driver never sees
/// the generation before the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Dwords 0, 1 and 2.
    pub body: [u8; 12],
    /// Dword 3.
    pub last: [u8; 4],
}

fn completion(d0: u32, d1: u32, d2: u32, d3: u32) -> Completion {
    let mut body = [0; 12];
    body[0..4].copy_from_slice(&d0.to_le_bytes());
    body[4..8].copy_from_slice(&d1.to_le_bytes());
    body[8..12].copy_from_slice(&d2.to_le_bytes());
    Completion {
        body,
        last: d3.to_le_bytes(),
    }
}

/// The Tx completion of the packet whose last descriptor is `eop_idx`.
pub fn tx_completion(eop_idx: u32, gen: bool) -> Completion {
    let g = if gen { comp::GEN } else { 0 };
    completion(eop_idx & comp::IDX_MASK, 0, 0, g)
}

/// The Rx completion of a whole frame of `len` bytes in descriptor `idx`
/// of ring `rq_id`: start and end of packet, checksum not calculated (the
/// stack verifies it).
pub fn rx_completion(idx: u32, rq_id: u32, len: usize, gen: bool) -> Completion {
    let d0 = (idx & comp::IDX_MASK)
        | comp::RX_EOP
        | comp::RX_SOP
        | (rq_id & 0x3ff) << comp::RX_RQID_SHIFT
        | comp::RX_CNC;
    let g = if gen { comp::GEN } else { 0 };
    completion(
        d0,
        0,
        (len as u32) & rxd::LEN_MASK,
        comp::TYPE_RX << comp::TYPE_SHIFT | g,
    )
}
