//! A small NVMe host driver over the rig that remembers every command it
//! submitted and checks each completion against it: the CID and SQ must
//! be those of an outstanding command, posted on that SQ's CQ, and a
//! command the specification says must fail must not succeed. Queue and
//! shadow doorbell state follows the completions, as a real driver's does.

use std::collections::{BTreeMap, HashMap};

use nvme_cmb::regs::reg;
use nvme_cmb::sqe::{Command, Completion, SQE_SIZE};

use super::commands::Expect;
use super::layout::{cq_slot, ACQ, ADMIN_ENTRIES, ASQ, PAGE, RAM_SIZE};
use super::model::Namespace;
use super::rig::{Rig, CMB_SIZE};

mod admin;
mod completion;

/// A submission queue as the driver sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sq {
    /// Base address.
    pub base: u64,
    /// Entries.
    pub size: u32,
    /// The driver's tail.
    pub tail: u32,
    /// The head, as the last completion from it said.
    pub head: u32,
    /// Its CQ.
    pub cqid: u16,
}

/// A completion queue as the driver sees it.
#[derive(Debug, Clone, Copy)]
pub struct Cq {
    /// Base address.
    pub base: u64,
    /// Entries.
    pub size: u32,
    /// The driver's head.
    pub head: u32,
    /// The phase tag of new entries.
    pub phase: bool,
}

/// A command waiting for its completion.
#[derive(Debug, Clone)]
struct Pending {
    cqid: u16,
    cmd: Command,
    expect: Expect,
}

/// The driver. See the module documentation.
pub struct Driver<'a> {
    /// The rig it drives (controller 0).
    pub rig: &'a Rig,
    /// I/O and admin SQs, by ID.
    pub sqs: BTreeMap<u16, Sq>,
    /// CQs, by ID.
    pub cqs: BTreeMap<u16, Cq>,
    pending: HashMap<(u16, u16), Pending>,
    /// Completions reaped, by (SQ ID, CID).
    pub done: HashMap<(u16, u16), Completion>,
    next_cid: u16,
    /// The shadow doorbell page, once Doorbell Buffer Config succeeded.
    shadow: Option<u64>,
    /// Every rule a completion broke.
    pub failures: Vec<String>,
    /// What namespaces 1 and 2 may hold.
    pub ns: [Namespace; 2],
    /// I/O queue pairs (ID, SQ base; CQs in their slots) created again
    /// after every reset, as a driver does.
    pub pairs: Vec<(u16, u64)>,
    resetting: bool,
    /// Completions reaped and how many succeeded, by (SQ ID is 0, opcode).
    pub counts: BTreeMap<(bool, u8), (usize, usize)>,
}

impl<'a> Driver<'a> {
    /// A driver for `rig` whose namespaces start as `ns`.
    pub fn new(rig: &'a Rig, ns: [Namespace; 2]) -> Self {
        Driver {
            rig,
            sqs: BTreeMap::new(),
            cqs: BTreeMap::new(),
            pending: HashMap::new(),
            done: HashMap::new(),
            next_cid: 1,
            shadow: None,
            failures: Vec::new(),
            ns,
            pairs: Vec::new(),
            resetting: false,
            counts: BTreeMap::new(),
        }
    }

    /// Whether the host CPU can reach `addr` (RAM or the CMB).
    pub fn reachable(&self, addr: u64) -> bool {
        let cmb = self.rig.cmb();
        addr < RAM_SIZE || (cmb..cmb + CMB_SIZE).contains(&addr)
    }

    /// Enables the controller with 32-entry admin queues and 4 KiB pages.
    pub fn enable(&mut self) {
        let r = self.rig;
        r.host_write(ACQ, &[0; PAGE as usize]);
        let n = ADMIN_ENTRIES - 1;
        r.write32(reg::AQA, n | (n << 16));
        r.write(reg::ASQ, &ASQ.to_le_bytes());
        r.write(reg::ACQ, &ACQ.to_le_bytes());
        r.write32(reg::CC, 1 | (6 << 16) | (4 << 20));
        r.run();
        assert_eq!(r.read32(reg::CSTS) & 3, 1, "CSTS after enable: RDY, no CFS");
        let size = ADMIN_ENTRIES;
        let (tail, head, cqid, phase) = (0, 0, 0, true);
        self.sqs.insert(
            0,
            Sq {
                base: ASQ,
                size,
                tail,
                head,
                cqid,
            },
        );
        self.cqs.insert(
            0,
            Cq {
                base: ACQ,
                size,
                head,
                phase,
            },
        );
    }

    /// Controller reset (CC.EN 0, then enabled again): every queue and
    /// outstanding command is gone.
    pub fn reset(&mut self) {
        self.rig.write32(reg::CC, 0);
        self.rig.run();
        assert_eq!(self.rig.read32(reg::CSTS) & 1, 0, "CSTS.RDY after reset");
        self.sqs.clear();
        self.cqs.clear();
        self.pending.clear();
        self.shadow = None;
        self.enable();
        self.resetting = true;
        for (qid, sq) in self.pairs.clone() {
            self.create_pair(qid, sq);
        }
        self.resetting = false;
    }

    /// Creates I/O queue pair `qid` (32 entries), the CQ in its slot and
    /// the SQ at `sq`, and checks both succeed.
    pub fn create_pair(&mut self, qid: u16, sq: u64) {
        let q = u32::from(qid);
        for (opcode, base, cdw11) in [(0x05, cq_slot(q), 1), (0x01, sq, 1 | (q << 16))] {
            let mut cmd = Command {
                opcode,
                cdw10: q | (31 << 16),
                cdw11,
                ..Command::default()
            };
            cmd.dptr[..8].copy_from_slice(&base.to_le_bytes());
            let c = self.exec(0, cmd, Expect::default());
            let c = c.expect("a completion");
            assert!(
                c.status.is_success(),
                "create {opcode:#x} {qid}: {}",
                c.status
            );
        }
    }

    /// Whether a create or delete of queue `qid` is outstanding.
    fn busy(&self, qid: u32) -> bool {
        self.pending.iter().any(|(&(sq, _), p)| {
            sq == 0
                && matches!(p.cmd.opcode, 0x00 | 0x01 | 0x04 | 0x05)
                && p.cmd.cdw10 & 0xffff == qid
        })
    }

    /// Whether queue `qid`'s doorbell (`tail`: the SQ's) may reach a queue
    /// that exists or is being created or deleted.
    pub fn maybe_exists(&self, qid: u32, tail: bool) -> bool {
        let q = qid as u16;
        self.busy(qid)
            || if tail {
                self.sqs.contains_key(&q)
            } else {
                self.cqs.contains_key(&q)
            }
    }

    /// Writes doorbell `index`'s shadow, once configured (I/O queues).
    pub fn set_shadow(&mut self, index: usize, value: u32) {
        if let Some(dbs) = self.shadow.filter(|&d| index >= 2 && d < RAM_SIZE) {
            let at = dbs + 4 * index as u64;
            self.rig.ram.poke(at, &value.to_le_bytes());
        }
    }

    /// Writes doorbell `index`: the shadow too once configured (I/O
    /// queues), then the register.
    pub fn ring(&mut self, index: usize, value: u32) {
        self.set_shadow(index, value);
        self.rig.write32(reg::DOORBELLS + 4 * index as u64, value);
    }

    /// Places `cmd` on SQ `qid` with a fresh CID and rings; `None` when
    /// the SQ is full (nothing submitted).
    pub fn submit(&mut self, qid: u16, mut cmd: Command, expect: Expect) -> Option<u16> {
        let sq = self.sqs.get(&qid).copied()?;
        if (sq.tail + 1) % sq.size == sq.head {
            return None;
        }
        cmd.cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        let at = sq.base + u64::from(sq.tail) * SQE_SIZE as u64;
        if self.reachable(at) {
            self.rig.host_write(at, &cmd.to_bytes());
        }
        for &(nsid, slba, nlb, to) in &expect.marks {
            self.ns[nsid as usize - 1].mark(slba, nlb, to);
        }
        let tail = (sq.tail + 1) % sq.size;
        self.sqs.get_mut(&qid).unwrap().tail = tail;
        let cqid = sq.cqid;
        self.pending
            .insert((qid, cmd.cid), Pending { cqid, cmd, expect });
        self.ring(2 * usize::from(qid), tail);
        Some(cmd.cid)
    }
}
