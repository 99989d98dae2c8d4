//! Running the engine and reaping: every completion checked against the
//! command it completes, and the driver's queues following it.

use nvme_cmb::regs::reg;
use nvme_cmb::sqe::{Command, Completion, CQE_SIZE};

use super::{Cq, Driver, Sq};
use crate::streams::commands::Expect;

impl Driver<'_> {
    /// Submits `cmd` and runs until its completion (or gives up).
    pub fn exec(&mut self, qid: u16, cmd: Command, e: Expect) -> Option<Completion> {
        let cid = if qid == 0 {
            self.admin(cmd, e)?
        } else {
            self.submit(qid, cmd, e)?
        };
        for _ in 0..4 {
            self.run();
            if let Some(c) = self.done.get(&(qid, cid)) {
                return Some(*c);
            }
        }
        None
    }

    /// The engine runs, completions are reaped; a fatal controller status
    /// (CSTS.CFS) is followed by a reset.
    pub fn run(&mut self) {
        for _ in 0..2 {
            self.rig.run();
            self.reap_all();
        }
        if self.rig.read32(reg::CSTS) & 2 != 0 && !self.resetting {
            self.reset();
        }
    }

    /// Reaps every CQ.
    pub fn reap_all(&mut self) {
        let ids: Vec<u16> = self.cqs.keys().copied().collect();
        for qid in ids {
            self.reap(qid);
        }
    }

    fn reap(&mut self, qid: u16) {
        let mut n = 0;
        while let Some(cq) = self.cqs.get(&qid).copied() {
            let at = cq.base + u64::from(cq.head) * CQE_SIZE as u64;
            if n == cq.size || !self.reachable(at) {
                break;
            }
            let raw: [u8; CQE_SIZE] = self.rig.host_read(at, CQE_SIZE).try_into().unwrap();
            let (cqe, phase) = Completion::parse(&raw);
            if phase != cq.phase {
                break;
            }
            let cq = self.cqs.get_mut(&qid).unwrap();
            cq.head = (cq.head + 1) % cq.size;
            cq.phase ^= cq.head == 0;
            n += 1;
            self.complete(qid, cqe);
        }
        if let Some(cq) = self.cqs.get(&qid).filter(|_| n > 0) {
            self.ring(2 * usize::from(qid) + 1, cq.head);
        }
    }

    /// Checks completion `c`, reaped from CQ `cqid`, and follows it.
    fn complete(&mut self, cqid: u16, c: Completion) {
        let Some(p) = self.pending.remove(&(c.sq_id, c.cid)) else {
            let f = format!("CQ {cqid}: completion of no outstanding command: {c:?}");
            return self.failures.push(f);
        };
        if p.cqid != cqid {
            self.failures
                .push(format!("{c:?} posted on CQ {cqid}, not {}", p.cqid));
        }
        if let Some(sq) = self.sqs.get_mut(&c.sq_id) {
            if u32::from(c.sq_head) >= sq.size {
                self.failures.push(format!("{c:?}: SQ head beyond the SQ"));
            }
            sq.head = u32::from(c.sq_head) % sq.size;
        }
        let count = self.counts.entry((c.sq_id == 0, p.cmd.opcode)).or_default();
        count.0 += 1;
        self.done.insert((c.sq_id, c.cid), c);
        if !c.status.is_success() {
            return;
        }
        count.1 += 1;
        if let Some(why) = &p.expect.must_fail {
            self.failures
                .push(format!("{:?} succeeded though {why}", p.cmd));
        }
        let cmd = p.cmd;
        let (qid, size) = ((cmd.cdw10 & 0xffff) as u16, (cmd.cdw10 >> 16) + 1);
        match (c.sq_id, cmd.opcode) {
            (0, 0x05) => {
                let (base, head, phase) = (cmd.prp1(), 0, true);
                self.cqs.insert(
                    qid,
                    Cq {
                        base,
                        size,
                        head,
                        phase,
                    },
                );
            }
            (0, 0x01) => {
                let (base, tail, head, cqid) = (cmd.prp1(), 0, 0, (cmd.cdw11 >> 16) as u16);
                self.sqs.insert(
                    qid,
                    Sq {
                        base,
                        size,
                        tail,
                        head,
                        cqid,
                    },
                );
            }
            (0, 0x00) => {
                self.sqs.remove(&qid);
            }
            (0, 0x04) => {
                self.cqs.remove(&qid);
            }
            (0, 0x0c) => {
                // An asynchronous event: not a reserved type (3 to 5);
                // errors point at the Error Information log.
                let (kind, log) = (c.dw0 & 7, (c.dw0 >> 16) & 0xff);
                if (3..=5).contains(&kind) || (kind == 0 && log != 0x01) {
                    self.failures
                        .push(format!("asynchronous event {:#x}", c.dw0));
                }
            }
            _ => {}
        }
    }
}
