//! Generated steps as commands, and what the specification requires of
//! each from its fields alone ([`Expect`]); the driver adds what depends
//! on the queues that exist.

use nvme_cmb::sqe::Command;

use super::build::{outside, Builder};
use super::gen::{Admin, Dptr, Io, Lba, Nsid};
use super::layout::PAGE;
use super::model::Block;
use super::rig::{NS1, NS2};

/// What must hold for a command.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Why it must not complete successfully.
    pub must_fail: Option<String>,
    /// Namespace blocks it may change: NSID, first, count, to what.
    pub marks: Vec<(u32, u64, u64, Block)>,
}

impl Expect {
    /// It must not succeed, because of `why` (the first reason stays).
    pub fn fail(&mut self, why: &str) {
        self.must_fail.get_or_insert_with(|| why.to_string());
    }
}

/// The blocks of namespace `nsid`; namespace 1's for an invalid ID.
fn blocks(nsid: u32) -> u64 {
    let (size, lba) = if nsid == 2 { NS2 } else { NS1 };
    size / u64::from(lba)
}

/// SLBA and 0-based NLB of `l` in a namespace of `b` blocks.
fn lba(l: Lba, b: u64) -> (u64, u16) {
    match l {
        Lba::In(a, n) => {
            let slba = u64::from(a) % b;
            let max = (b - slba).min(256);
            (slba, (u64::from(n) % max) as u16)
        }
        Lba::Straddle(k, n) => {
            let slba = b - 1 - u64::from(k % 16).min(b - 1);
            (slba, (b - slba + u64::from(n % 64)) as u16)
        }
        Lba::Beyond(a, n) => (b + u64::from(a % 4096), n % 256),
        Lba::Overflow(d, n) => (u64::MAX - u64::from(d), n),
        Lba::Huge(a) => (u64::from(a) % b, 0xffff),
    }
}

/// The NSID field for `n`.
fn nsid(n: Nsid) -> u32 {
    match n {
        Nsid::One => 1,
        Nsid::Two => 2,
        Nsid::Other(v) => v,
    }
}

/// Sets the data pointer; true when PRP1 lies outside everything.
fn data(b: &mut Builder<'_>, c: &mut Command, d: &Dptr) -> bool {
    let (dptr, psdt, outside) = b.dptr(d);
    (c.dptr, c.psdt) = (dptr, psdt);
    outside && psdt == 0
}

/// The admin command for `a`, and what its fields alone require.
pub fn admin(b: &mut Builder<'_>, a: &Admin) -> (Command, Expect) {
    let mut e = Expect::default();
    let mut c = Command::default();
    let mut far = false;
    match a {
        Admin::Identify(cns, n, d) => {
            (c.opcode, c.nsid, c.cdw10) = (0x06, nsid(*n), u32::from(*cns));
            far = data(b, &mut c, d);
        }
        Admin::GetLog(lid, numd, off, rae, d) => {
            c.opcode = 0x02;
            c.cdw10 = u32::from(*lid) | (u32::from(*rae) << 15) | (numd << 16);
            (c.cdw11, c.cdw12, c.cdw13) = (numd >> 16, *off as u32, (off >> 32) as u32);
            far = data(b, &mut c, d);
        }
        Admin::SetFeatures(fid, v, sv) => {
            (c.opcode, c.cdw10, c.cdw11) = (0x09, u32::from(*fid) | (u32::from(*sv) << 31), *v);
        }
        Admin::GetFeatures(fid, sel, v) => {
            (c.opcode, c.cdw10, c.cdw11) = (0x0a, u32::from(*fid) | (u32::from(*sel) << 8), *v);
        }
        Admin::CreateCq(q, size, base, pc, ien, iv) => {
            c.opcode = 0x05;
            c.cdw10 = u32::from(*q) | (u32::from(*size) << 16);
            c.cdw11 = u32::from(*pc) | (u32::from(*ien) << 1) | (u32::from(*iv) << 16);
            let at = b.qbase(u32::from(*q), *base, false);
            c.dptr[..8].copy_from_slice(&at.to_le_bytes());
        }
        Admin::CreateSq(q, size, base, cq, pc) => {
            c.opcode = 0x01;
            c.cdw10 = u32::from(*q) | (u32::from(*size) << 16);
            c.cdw11 = u32::from(*pc) | (u32::from(*cq) << 16);
            let at = b.qbase(u32::from(*q), *base, true);
            c.dptr[..8].copy_from_slice(&at.to_le_bytes());
        }
        Admin::DeleteSq(q) => (c.opcode, c.cdw10) = (0x00, u32::from(*q)),
        Admin::DeleteCq(q) => (c.opcode, c.cdw10) = (0x04, u32::from(*q)),
        Admin::Aer => c.opcode = 0x0c,
        Admin::Raw(op, n, cdw, d) => {
            // Queue creation and shadow buffers only with pointers the
            // driver chose: those opcodes become unknown ones.
            c.opcode = if matches!(op, 0x01 | 0x05 | 0x7c) {
                op | 0x80
            } else {
                *op
            };
            c.nsid = *n;
            [c.cdw10, c.cdw11, c.cdw12, c.cdw13, c.cdw14, c.cdw15] = *cdw;
            far = data(b, &mut c, d);
        }
    }
    if far && matches!(c.opcode, 0x02 | 0x06) {
        e.fail("its data pointer is outside memory");
    }
    if matches!(c.opcode, 0x01 | 0x05) {
        // Create I/O queue: CAP.MQES is 1023 and CAP.CQR is set.
        let (qid, qsize) = (c.cdw10 & 0xffff, c.cdw10 >> 16);
        if qid == 0 || qid > 64 {
            e.fail("the queue ID is not one the controller has");
        }
        if qsize == 0 || qsize > 1023 {
            e.fail("the queue size is invalid");
        }
        if c.cdw11 & 1 == 0 {
            e.fail("the controller requires contiguous queues");
        }
        if !c.prp1().is_multiple_of(PAGE) {
            e.fail("the queue is not page aligned");
        }
    }
    (c, e)
}

/// The I/O command for `io`, and what its fields alone require.
pub fn io(b: &mut Builder<'_>, io: &Io) -> (Command, Expect) {
    let mut c = Command::default();
    let mut far = false;
    let mut ranges = None;
    let set = |c: &mut Command, n: Nsid, l: Lba, hi: u16| {
        c.nsid = nsid(n);
        let (slba, nlb) = lba(l, blocks(c.nsid));
        (c.cdw10, c.cdw11) = (slba as u32, (slba >> 32) as u32);
        c.cdw12 = u32::from(nlb) | (u32::from(hi) << 16);
    };
    match io {
        Io::Rw(k, n, l, hi, fuse, d) => {
            c.opcode = [0x02, 0x01, 0x05][usize::from(k % 3)];
            set(&mut c, *n, *l, *hi);
            c.fuse = *fuse;
            far = data(b, &mut c, d);
        }
        Io::WriteZeroes(n, l, hi) => {
            c.opcode = 0x08;
            set(&mut c, *n, *l, *hi);
        }
        Io::Flush(n) => c.nsid = nsid(*n),
        Io::Dsm(n, list, extra, attr) => {
            (c.opcode, c.nsid, c.cdw11) = (0x09, nsid(*n), *attr);
            let page = b.dsm_page();
            let mut buf = vec![0u8; PAGE as usize];
            let mut rs = Vec::new();
            for (r, (len, l)) in buf.chunks_exact_mut(16).zip(list) {
                let (slba, _) = lba(*l, blocks(c.nsid));
                r[4..8].copy_from_slice(&len.to_le_bytes());
                r[8..].copy_from_slice(&slba.to_le_bytes());
                rs.push((slba, u64::from(*len)));
            }
            b.ram.poke(page, &buf);
            c.cdw10 = (list.len() as u32 - 1 + u32::from(*extra)) & 0xff;
            c.dptr[..8].copy_from_slice(&page.to_le_bytes());
            c.dptr[8..].copy_from_slice(&(outside(1, 0) & !(PAGE - 1)).to_le_bytes());
            rs.truncate(c.cdw10 as usize + 1);
            ranges = Some(rs);
        }
        Io::DsmWild(n, nr, attr, d) => {
            (c.opcode, c.nsid, c.cdw10, c.cdw11) = (0x09, nsid(*n), u32::from(*nr), *attr);
            far = data(b, &mut c, d);
        }
        Io::Raw(op, n, cdw, d) => {
            (c.opcode, c.nsid) = (*op, *n);
            [c.cdw10, c.cdw11, c.cdw12, c.cdw13, c.cdw14, c.cdw15] = *cdw;
            far = data(b, &mut c, d);
        }
    }
    let e = io_expect(&c, ranges.as_deref(), far);
    (c, e)
}

/// What an I/O command requires: `ranges` are the Dataset Management
/// ranges the test wrote (`None`: unknown), `outside` that PRP1 points at
/// nothing.
fn io_expect(c: &Command, ranges: Option<&[(u64, u64)]>, outside: bool) -> Expect {
    let mut e = Expect::default();
    let known = matches!(c.nsid, 1 | 2);
    let b = blocks(c.nsid);
    let slba = u64::from(c.cdw10) | (u64::from(c.cdw11) << 32);
    let nlb = u64::from(c.cdw12 & 0xffff) + 1;
    match c.opcode {
        0x01 | 0x02 | 0x05 | 0x08 => {
            if !known {
                e.fail("the namespace does not exist");
            } else if slba.checked_add(nlb).is_none_or(|end| end > b) {
                e.fail("the LBA range runs past the namespace");
            } else if c.opcode == 0x01 {
                e.marks.push((c.nsid, slba, nlb, Block::Any));
            } else if c.opcode == 0x08 {
                e.marks.push((c.nsid, slba, nlb, Block::PatternOrZero));
            }
        }
        0x00 if !known && c.nsid != u32::MAX => e.fail("the namespace does not exist"),
        0x09 if !known => e.fail("the namespace does not exist"),
        0x09 if c.cdw11 & (1 << 2) != 0 => match ranges {
            Some(rs) => {
                for &(slba, n) in rs {
                    e.marks.push((c.nsid, slba, n, Block::PatternOrZero));
                }
            }
            None => e.marks.push((c.nsid, 0, b, Block::PatternOrZero)),
        },
        _ => {}
    }
    if outside && matches!(c.opcode, 0x01 | 0x02 | 0x05 | 0x09) {
        e.fail("its data pointer is outside memory");
    }
    e
}
