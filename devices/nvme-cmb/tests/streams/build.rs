//! Resolves generated pointers against the case's BARs and writes PRP
//! lists, SGL segments and range lists, each on fresh pages of its own
//! that nothing else points at until the command has run.

use super::gen::{Align, Desc, Dptr, Prp2, Ptr, QBase, SegLen, Target};
use super::layout::{cq_slot, sq_slot, GuardRam, DATA, DSM_LISTS, LISTS, PAGE, RAM_SIZE, SQ_SLOTS};
use super::rig::CMB_SIZE;

/// Resolves pointers and allocates list pages for one case.
pub struct Builder<'a> {
    /// Guest RAM, for the lists.
    pub ram: &'a GuardRam,
    /// The rig's BARs (see [`super::rig::Rig::bars`]).
    pub bars: [u64; 5],
    next_list: u64,
    next_dsm: u64,
}

/// Where CQs go in the CMB: past the SQs (which start at 0), below the
/// data half.
const CMB_CQS: u64 = 0x10_0000;

/// A fresh page from `zone`: never one handed out before in the case, so
/// no command's lists change before it has run (a case's steps need at
/// most six pages each).
fn take(next: &mut u64, (lo, hi): (u64, u64)) -> u64 {
    assert!(*next < (hi - lo) / PAGE, "list pages exhausted");
    let at = lo + *next * PAGE;
    *next += 1;
    at
}

/// An SGL descriptor's bytes.
fn enc(addr: u64, len: u32, id: u8) -> [u8; 16] {
    let mut d = [0; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[15] = id;
    d
}

/// An address nothing answers at, in region `r`.
pub fn outside(r: u8, o: u64) -> u64 {
    match r % 3 {
        0 => RAM_SIZE + o % (0xc000_0000 - RAM_SIZE),
        1 => 0x60_0000_0000 + o % 0x1000_0000_0000,
        _ => u64::MAX - o % 0x1_0000,
    }
}

impl<'a> Builder<'a> {
    /// A builder for a case whose rig has `bars`.
    pub fn new(ram: &'a GuardRam, bars: [u64; 5]) -> Self {
        Builder {
            ram,
            bars,
            next_list: 0,
            next_dsm: 0,
        }
    }

    /// A fresh list page.
    pub fn list_page(&mut self) -> u64 {
        take(&mut self.next_list, LISTS)
    }

    /// A fresh Dataset Management range list page.
    pub fn dsm_page(&mut self) -> u64 {
        take(&mut self.next_dsm, DSM_LISTS)
    }

    /// Where `t` points, and the end of its zone.
    fn zone(&self, t: Target) -> (u64, u64) {
        match t {
            Target::Data(o) => (DATA.0 + u64::from(o) % (DATA.1 - DATA.0), DATA.1),
            Target::Cmb(o) => {
                let half = CMB_SIZE / 2;
                let cmb = self.bars[1];
                (cmb + half + u64::from(o) % half, cmb + CMB_SIZE)
            }
            Target::Peer(b4, o) | Target::Own(b4, o) => {
                let i = match (matches!(t, Target::Peer(..)), b4) {
                    (false, false) => 0,
                    (false, true) => 2,
                    (true, false) => 3,
                    (true, true) => 4,
                };
                let size = if b4 { 0x2000 } else { 0x4000 };
                (self.bars[i] + u64::from(o) % size, self.bars[i] + size)
            }
            Target::Outside(r, o) => (outside(r, o), u64::MAX),
        }
    }

    /// The value of pointer `p`.
    pub fn ptr(&self, p: &Ptr) -> u64 {
        let (at, _) = self.zone(p.to);
        match p.align {
            Align::Page => at & !(PAGE - 1),
            Align::Dword => at & !3,
            Align::Odd => (at & !3) | 1,
        }
    }

    /// Three fresh PRP list pages cycling through `entries`, each chained
    /// to the next by its last entry (the third's points nowhere).
    fn prp_list(&mut self, entries: &[Ptr]) -> u64 {
        let pages = [self.list_page(), self.list_page(), self.list_page()];
        for (i, &page) in pages.iter().enumerate() {
            let mut buf = vec![0u8; PAGE as usize];
            for (s, slot) in buf.chunks_exact_mut(8).enumerate() {
                let v = match (s, pages.get(i + 1)) {
                    (511, Some(&next)) => next,
                    (511, None) => outside(0, 0),
                    _ => self.ptr(&entries[(i * 511 + s) % entries.len()]),
                };
                slot.copy_from_slice(&v.to_le_bytes());
            }
            self.ram.poke(page, &buf);
        }
        pages[0]
    }

    /// The bytes of descriptor `d` (segments written to fresh pages).
    fn desc(&mut self, d: &Desc) -> [u8; 16] {
        match d {
            Desc::Data(p, len) => {
                let (_, end) = self.zone(p.to);
                let at = self.ptr(p);
                let len = u64::from(*len).min(end.saturating_sub(at)) as u32;
                enc(at, len, 0x00)
            }
            Desc::Bucket(len) => enc(0, *len, 0x10),
            Desc::Seg { last, descs, len } => {
                let page = self.list_page();
                let mut buf = vec![0u8; PAGE as usize];
                for (i, d) in descs.iter().enumerate() {
                    let b = self.desc(d);
                    buf[16 * i..16 * i + 16].copy_from_slice(&b);
                }
                self.ram.poke(page, &buf);
                let n = 16 * descs.len() as u32;
                let len = match *len {
                    SegLen::Exact => n,
                    SegLen::More(k) => n + 16 * u32::from(k),
                    SegLen::Fewer => n.saturating_sub(16),
                    SegLen::Ragged(r) => n + u32::from(r),
                };
                enc(page, len, if *last { 0x30 } else { 0x20 })
            }
            Desc::Bad(b) => {
                let id = if b >> 4 <= 3 && b & 0xf == 0 {
                    b | 1
                } else {
                    *b
                };
                enc(outside(0, u64::from(*b)), 512, id)
            }
        }
    }

    /// The data pointer's bytes, its PSDT, and whether PRP1 (the first
    /// byte moved) lies outside memory and every BAR.
    pub fn dptr(&mut self, d: &Dptr) -> ([u8; 16], u8, bool) {
        match d {
            Dptr::Prp(p1, p2) => {
                let v1 = self.ptr(p1);
                let v2 = match p2 {
                    Prp2::Outside(o) => outside(1, *o) & !(PAGE - 1),
                    Prp2::List { skip, odd, entries } => {
                        self.prp_list(entries) + 8 * u64::from(skip % 512) + 4 * u64::from(*odd)
                    }
                };
                let mut b = [0; 16];
                b[..8].copy_from_slice(&v1.to_le_bytes());
                b[8..].copy_from_slice(&v2.to_le_bytes());
                (b, 0, matches!(p1.to, Target::Outside(..)))
            }
            Dptr::Sgl(desc) => (self.desc(desc), 1, false),
            Dptr::Raw(psdt, bytes) => {
                let mut b = *bytes;
                b[15] = 0xff;
                (b, *psdt, false)
            }
        }
    }

    /// Where Create I/O queue `qid` puts the queue (`sq`: an SQ).
    pub fn qbase(&self, qid: u32, base: QBase, sq: bool) -> u64 {
        let slot = if sq { sq_slot(qid) } else { cq_slot(qid) };
        match base {
            QBase::Slot => slot,
            QBase::Cmb if sq => self.bars[1] + (slot - SQ_SLOTS.0),
            QBase::Cmb => self.bars[1] + CMB_CQS + (slot - cq_slot(0)),
            QBase::Outside(o) => outside(0, o) & !(PAGE - 1),
            QBase::Unaligned(o) => slot + u64::from(o % 4095) + 1,
        }
    }
}
