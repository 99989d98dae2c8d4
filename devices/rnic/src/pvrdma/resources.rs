//! The objects the driver creates through the command channel: protection
//! domains, user contexts, CQs, QPs, memory regions and the GID table,
//! held by the engine (only its thread touches them).

use std::collections::VecDeque;

use super::mem::Pages;
use super::ring::RingMath;
use super::wqe::Sge;
use crate::transport::Msg;

/// A table of objects indexed by handle; handle 0 is never used.
#[derive(Debug, Clone)]
pub struct Table<T> {
    slots: Vec<Option<T>>,
}

impl<T> Table<T> {
    /// A table of handles `1..max`.
    pub fn new(max: u32) -> Self {
        Table {
            slots: (0..max).map(|_| None).collect(),
        }
    }

    /// Stores `v` at the lowest free handle at or above `from`.
    pub fn insert_from(&mut self, from: u32, v: T) -> Option<u32> {
        let i = (from.max(1) as usize..self.slots.len()).find(|&i| self.slots[i].is_none())?;
        self.slots[i] = Some(v);
        Some(i as u32)
    }

    /// Stores `v` at the lowest free handle.
    pub fn insert(&mut self, v: T) -> Option<u32> {
        self.insert_from(1, v)
    }

    /// Stores `v` at handle `h` if it is free.
    pub fn insert_at(&mut self, h: u32, v: T) -> bool {
        match self.slots.get_mut(h as usize) {
            Some(s @ None) if h != 0 => {
                *s = Some(v);
                true
            }
            _ => false,
        }
    }

    /// The object at `h`.
    pub fn get(&self, h: u32) -> Option<&T> {
        self.slots.get(h as usize)?.as_ref()
    }

    /// The object at `h`, to change.
    pub fn get_mut(&mut self, h: u32) -> Option<&mut T> {
        self.slots.get_mut(h as usize)?.as_mut()
    }

    /// Takes the object at `h` out.
    pub fn remove(&mut self, h: u32) -> Option<T> {
        self.slots.get_mut(h as usize)?.take()
    }

    /// Handles and objects in use.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i as u32, v)))
    }
}

/// A protection domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pd {
    /// The user context it belongs to (0: the kernel).
    pub ctx: u32,
}

/// A completion queue: `n` CQEs after its ring-state page.
#[derive(Debug, Clone)]
pub struct Cq {
    /// Leaf pages: page 0 holds the ring state, CQEs follow.
    pub pages: Pages,
    /// Its ring arithmetic.
    pub math: RingMath,
    /// The device's producer index.
    pub tail: u32,
    /// Armed for the next completion (`Some(false)`) or the next
    /// solicited one (`Some(true)`).
    pub armed: Option<bool>,
    /// The CQ overflowed or its ring state went bad: no more CQEs.
    pub broken: bool,
}

/// One of a QP's two work queues.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    /// Its ring arithmetic.
    pub math: RingMath,
    /// Bytes per WQE.
    pub stride: u64,
    /// Scatter/gather entries a WQE may hold.
    pub max_sge: u32,
    /// Offset of WQE 0 in the QP's pages.
    pub base: u64,
    /// The device's consumer index.
    pub head: u32,
    /// Offset of its ring state (producer tail, then consumer head) in
    /// page 0.
    pub state: u64,
}

/// An address vector: where a connected QP sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Av {
    /// Destination GID.
    pub dgid: [u8; 16],
    /// Index of the source GID.
    pub sgid_index: u8,
    /// Destination MAC.
    pub dmac: [u8; 6],
}

/// A queue pair.
#[derive(Debug, Clone)]
pub struct Qp {
    /// Its number on the wire.
    pub qpn: u32,
    /// GSI, RC or UD (`qp_type`).
    pub kind: u8,
    /// IB state.
    pub state: u32,
    /// Its protection domain.
    pub pd: u32,
    /// CQ handles.
    pub send_cq: u32,
    /// CQ handles.
    pub recv_cq: u32,
    /// Every send completes (`sq_sig_all`).
    pub sig_all: bool,
    /// Leaf pages: page 0 holds both ring states.
    pub pages: Pages,
    /// Send queue.
    pub sq: WorkQueue,
    /// Receive queue (none with an SRQ).
    pub rq: Option<WorkQueue>,
    /// Q_Key (UD and GSI).
    pub qkey: u32,
    /// The remote QP (RC).
    pub dest_qpn: u32,
    /// Where it sends (RC).
    pub av: Av,
    /// Remote access it allows.
    pub access: u32,
    /// Path MTU enum (1: 256 ... 5: 4096).
    pub path_mtu: u32,
    /// Next send PSN and expected receive PSN.
    pub sq_psn: u32,
    /// Next send PSN and expected receive PSN.
    pub rq_psn: u32,
    /// Send-queue index up to which WQEs went out (`sq.head` is where
    /// they are retired, in order).
    pub issued: u32,
    /// Requests sent and not yet answered (or local work not yet
    /// retired), oldest first.
    pub outstanding: VecDeque<Pending>,
    /// Incoming messages waiting for a receive WQE (RNR).
    pub rnr: VecDeque<Msg>,
}

/// A send WQE on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its sequence number on the wire.
    pub seq: u64,
    /// The driver's ID.
    pub wr_id: u64,
    /// The completion's opcode.
    pub wc_opcode: u32,
    /// A completion is wanted on success.
    pub signaled: bool,
    /// Where an RDMA READ's data goes.
    pub read_sges: Vec<Sge>,
    /// Its outcome once known.
    pub status: Option<u32>,
    /// Payload bytes it holds in flight (RC SEND, WRITE and READ).
    pub bytes: u64,
}

/// What a memory region maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MrKind {
    /// Bus addresses, one to one.
    Dma,
    /// User memory: `length` bytes from virtual address `start` over
    /// `pages`.
    User {
        /// Start virtual address.
        start: u64,
        /// Length in bytes.
        length: u64,
        /// The pages.
        pages: Vec<u64>,
    },
    /// A fast-register region of at most `capacity` pages, mapped by a
    /// REG_MR work request (`pages` empty until then, and after a local
    /// invalidate).
    Fast {
        /// Pages it may hold.
        capacity: u32,
        /// Mapped and not invalidated.
        valid: bool,
        /// IO virtual address of its first byte.
        iova: u64,
        /// Length in bytes.
        length: u64,
        /// The pages (4 KiB).
        pages: Vec<u64>,
    },
}

/// A memory region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mr {
    /// Its protection domain.
    pub pd: u32,
    /// Access flags.
    pub access: u32,
    /// The current key (lkey equals rkey); bits 8 and up are the handle.
    pub key: u32,
    /// What it maps.
    pub kind: MrKind,
}

impl Mr {
    /// The bus address of `len` bytes at `va` when they lie inside the
    /// region, split at page boundaries: `(addr, len)` pieces.
    pub fn translate(&self, va: u64, len: u64) -> Option<Vec<(u64, u64)>> {
        let (base, length, pages) = match &self.kind {
            MrKind::Dma => return Some(vec![(va, len)]).filter(|_| va.checked_add(len).is_some()),
            MrKind::User {
                start,
                length,
                pages,
            } => (*start, *length, pages),
            MrKind::Fast {
                valid: true,
                iova,
                length,
                pages,
                ..
            } => (*iova, *length, pages),
            MrKind::Fast { .. } => return None,
        };
        let off = va.checked_sub(base)?;
        if off.checked_add(len)? > length {
            return None;
        }
        let mut out = Vec::new();
        let mut at = off + (base & 0xfff);
        let end = at + len;
        while at < end {
            let page = *pages.get(usize::try_from(at >> 12).ok()?)?;
            let n = (4096 - (at & 0xfff)).min(end - at);
            out.push(((page & !0xfff) + (at & 0xfff), n));
            at += n;
        }
        Some(out)
    }
}
