//! I/O commands of the NVM command set (NVMe 1.4 §6).

use std::sync::Arc;

use crate::dptr::{data_segments, gather, scatter, Segment};
use crate::engine::NvmeEngine;
use crate::inflight::Then;
use crate::memory::CtrlMemory;
use crate::namespace::Namespace;
use crate::pool::Op;
use crate::regs::cmb;
use crate::sqe::{io_op, Command};
use crate::Status;

/// Maximum data transfer: 2^MDTS pages of 4 KiB (512 KiB).
pub const MDTS: u8 = 7;

/// The most bytes one command moves.
pub const MAX_TRANSFER: u64 = 4096 << MDTS;

/// Data buffers the engine keeps for reuse, and the largest it keeps: at
/// most 2 MiB stays allocated between commands.
const KEEP_BUFS: usize = 16;
const KEEP_BUF: usize = 128 << 10;

/// Dataset Management: Attribute Deallocate (dword 11 bit 2).
const DSM_DEALLOCATE: u32 = 1 << 2;

impl NvmeEngine {
    /// Namespace `nsid`, if it exists.
    pub(crate) fn namespace(&self, nsid: u32) -> Option<&Arc<Namespace>> {
        let i = usize::try_from(nsid).ok()?.checked_sub(1)?;
        self.ns.get(i)
    }

    /// Runs I/O command `cmd` from SQ `sqid`: its status and dword 0, or
    /// None when a file namespace's work went to the pool (see
    /// [`crate::inflight`]).
    pub(crate) fn io(
        &mut self,
        mem: &CtrlMemory<'_>,
        sqid: u16,
        cmd: &Command,
    ) -> Option<(Status, u32)> {
        let r = if cmd.fuse != 0 {
            Err(Status::INVALID_FIELD)
        } else {
            match cmd.opcode {
                io_op::READ => self.read(mem, cmd),
                io_op::WRITE => self.write(mem, cmd, false),
                io_op::COMPARE => self.write(mem, cmd, true),
                io_op::FLUSH => self.flush(cmd),
                io_op::WRITE_ZEROES => self.write_zeroes(cmd),
                io_op::DATASET_MANAGEMENT => self.dsm(mem, cmd),
                _ => Err(Status::INVALID_OPCODE),
            }
        };
        match r {
            Ok(Async::Done) => Some((Status::SUCCESS, 0)),
            Ok(Async::Queue(op, then)) => self.queue(sqid, cmd, op, then),
            Err(s) => Some((s, 0)),
        }
    }

    /// The namespace and byte range of a Read/Write/Compare/Write Zeroes
    /// command: SLBA in dwords 10-11, NLB (0-based) in dword 12.
    fn range(&self, cmd: &Command) -> Result<(Arc<Namespace>, u64, u64), Status> {
        let ns = self
            .namespace(cmd.nsid)
            .ok_or(Status::INVALID_NAMESPACE)?
            .clone();
        let slba = u64::from(cmd.cdw10) | (u64::from(cmd.cdw11) << 32);
        let nlb = u64::from(cmd.cdw12 & 0xffff) + 1;
        let end = slba.checked_add(nlb).ok_or(Status::LBA_OUT_OF_RANGE)?;
        if end > ns.blocks() {
            return Err(Status::LBA_OUT_OF_RANGE);
        }
        let shift = ns.lba_shift();
        Ok((ns, slba << shift, nlb << shift))
    }

    /// Data in the controller's own CMB is allowed only where CMBSZ says
    /// (RDS for data the controller writes, WDS for data it reads).
    fn check_cmb_data(
        &self,
        mem: &CtrlMemory<'_>,
        segs: &[Segment],
        to_host: bool,
    ) -> Result<(), Status> {
        let need = if to_host { cmb::RDS } else { cmb::WDS };
        if self.cmb_flags & need != 0 {
            return Ok(());
        }
        let hit = segs
            .iter()
            .any(|s| !s.bit_bucket && s.len > 0 && mem.in_cmb(s.addr, 1).is_some());
        if hit {
            return Err(Status::INVALID_USE_OF_CMB);
        }
        Ok(())
    }

    fn segments(
        &self,
        mem: &CtrlMemory<'_>,
        cmd: &Command,
        len: u64,
    ) -> Result<Vec<Segment>, Status> {
        if len > MAX_TRANSFER {
            return Err(Status::INVALID_FIELD);
        }
        data_segments(mem, cmd, len, self.st.page_size, true)
    }

    /// A data buffer of `len` bytes from the free list. Its contents are
    /// stale: every user fills all of it (a read from the namespace, a
    /// gather from the host) before anything reads it, so a reused buffer
    /// is not zeroed again.
    pub(crate) fn take_buf(&mut self, len: u64) -> Vec<u8> {
        let mut buf = self.bufs.pop().unwrap_or_default();
        let len = len as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        buf
    }

    /// Gives a data buffer back to the free list (a bounded number of
    /// them, of at most [`KEEP_BUF`] bytes).
    pub(crate) fn give_buf(&mut self, buf: Vec<u8>) {
        let keep = (1..=KEEP_BUF).contains(&buf.capacity());
        if self.bufs.len() < KEEP_BUFS && keep {
            self.bufs.push(buf);
        }
    }

    fn read(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<Async, Status> {
        let (ns, off, len) = self.range(cmd)?;
        let segs = self.segments(mem, cmd, len)?;
        self.check_cmb_data(mem, &segs, true)?;
        if ns.is_file() {
            if let Some(map) = mem.map(&segs, true)? {
                let op = Op::ReadInto {
                    ns,
                    offset: off,
                    map,
                };
                return Ok(Async::Queue(op, Then::ReadMapped(len)));
            }
            let op = Op::Read {
                ns,
                offset: off,
                buf: self.take_buf(len),
            };
            return Ok(Async::Queue(op, Then::Scatter(segs)));
        }
        let mut buf = self.take_buf(len);
        let r = ns
            .read_at(off, &mut buf)
            .map_err(|_| Status::INTERNAL_ERROR)
            .and_then(|()| scatter(mem, &segs, &buf));
        self.give_buf(buf);
        r?;
        self.health.count_read(len);
        Ok(Async::Done)
    }

    /// Write, or with `compare`, Compare: the host's data against the
    /// namespace's.
    fn write(
        &mut self,
        mem: &CtrlMemory<'_>,
        cmd: &Command,
        compare: bool,
    ) -> Result<Async, Status> {
        let (ns, off, len) = self.range(cmd)?;
        let segs = self.segments(mem, cmd, len)?;
        self.check_cmb_data(mem, &segs, false)?;
        // Force Unit Access, or no volatile write cache: durable now.
        let sync = cmd.cdw12 & (1 << 30) != 0 || !self.st.features.write_cache;
        if ns.is_file() && !compare {
            if let Some(map) = mem.map(&segs, false)? {
                let op = Op::WriteFrom {
                    ns,
                    offset: off,
                    map,
                    sync,
                };
                return Ok(Async::Queue(op, Then::Written(len)));
            }
        }
        let mut buf = self.take_buf(len);
        if ns.is_file() {
            if let Err(s) = gather(mem, &segs, &mut buf) {
                self.give_buf(buf);
                return Err(s);
            }
            let (op, then) = if compare {
                let op = Op::Read {
                    ns,
                    offset: off,
                    buf: self.take_buf(len),
                };
                (op, Then::Compare(buf))
            } else {
                let op = Op::Write {
                    ns,
                    offset: off,
                    data: buf,
                    sync,
                };
                (op, Then::Written(len))
            };
            return Ok(Async::Queue(op, then));
        }
        let r = gather(mem, &segs, &mut buf).and_then(|()| {
            if compare {
                let mut have = vec![0; buf.len()];
                ns.read_at(off, &mut have)
                    .map_err(|_| Status::INTERNAL_ERROR)?;
                return if have == buf {
                    Ok(())
                } else {
                    Err(Status::COMPARE_FAILURE)
                };
            }
            ns.write_at(off, &buf).map_err(|_| Status::INTERNAL_ERROR)?;
            if sync {
                ns.flush().map_err(|_| Status::INTERNAL_ERROR)?;
            }
            Ok(())
        });
        self.give_buf(buf);
        r?;
        if !compare {
            self.health.count_write(len);
        }
        Ok(Async::Done)
    }

    fn flush(&mut self, cmd: &Command) -> Result<Async, Status> {
        let all: Vec<Arc<Namespace>> = if cmd.nsid == 0xffff_ffff {
            self.ns.clone()
        } else {
            vec![self
                .namespace(cmd.nsid)
                .ok_or(Status::INVALID_NAMESPACE)?
                .clone()]
        };
        let files: Vec<Arc<Namespace>> = all.into_iter().filter(|n| n.is_file()).collect();
        if files.is_empty() {
            return Ok(Async::Done); // RAM is always durable enough
        }
        Ok(Async::Queue(Op::Flush(files), Then::Nothing))
    }

    fn write_zeroes(&mut self, cmd: &Command) -> Result<Async, Status> {
        let (ns, off, len) = self.range(cmd)?;
        zero(ns, vec![(off, len)])
    }

    /// Dataset Management: with Deallocate, every range reads zeroes
    /// afterwards; the other attributes are hints and are ignored.
    fn dsm(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<Async, Status> {
        let ns = self
            .namespace(cmd.nsid)
            .ok_or(Status::INVALID_NAMESPACE)?
            .clone();
        let ranges = (cmd.cdw10 & 0xff) as usize + 1;
        let mut list = vec![0u8; ranges * 16];
        let segs = self.segments(mem, cmd, list.len() as u64)?;
        gather(mem, &segs, &mut list)?;
        if cmd.cdw11 & DSM_DEALLOCATE == 0 {
            return Ok(Async::Done);
        }
        let shift = ns.lba_shift();
        let mut parsed = Vec::with_capacity(ranges);
        for r in list.chunks_exact(16) {
            let nlb = u64::from(u32::from_le_bytes([r[4], r[5], r[6], r[7]]));
            let slba = u64::from_le_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]);
            let end = slba.checked_add(nlb).ok_or(Status::LBA_OUT_OF_RANGE)?;
            if end > ns.blocks() {
                return Err(Status::LBA_OUT_OF_RANGE);
            }
            parsed.push((slba << shift, nlb << shift));
        }
        zero(ns, parsed)
    }
}

/// How an I/O command goes on: done now, or to the pool.
enum Async {
    Done,
    Queue(Op, Then),
}

/// Zeroes `ranges` of `ns`: now for RAM, on the pool for a file.
fn zero(ns: Arc<Namespace>, ranges: Vec<(u64, u64)>) -> Result<Async, Status> {
    if ns.is_file() {
        return Ok(Async::Queue(Op::Zero { ns, ranges }, Then::Nothing));
    }
    for (off, len) in ranges {
        ns.zero(off, len).map_err(|_| Status::INTERNAL_ERROR)?;
    }
    Ok(Async::Done)
}
