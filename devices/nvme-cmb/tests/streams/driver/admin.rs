//! Admin commands with what the queues that exist require of them, and
//! Doorbell Buffer Config.

use nvme_cmb::sqe::Command;

use super::Driver;
use crate::streams::commands::Expect;
use crate::streams::layout::{PAGE, RAM_SIZE};

impl Driver<'_> {
    /// Submits admin command `cmd`, adding what the queues that exist
    /// require of it.
    pub fn admin(&mut self, cmd: Command, mut e: Expect) -> Option<u16> {
        let (qid, cqid) = (cmd.cdw10 & 0xffff, cmd.cdw11 >> 16);
        let settled = |d: &Self, q: u32| !d.busy(q);
        if matches!(cmd.opcode, 0x01 | 0x05) && self.busy(qid) {
            // Like a real driver, no queue is created again before the
            // command deleting (or creating) it has completed.
            return None;
        }
        if let (0x01 | 0x05, 1..=64) = (cmd.opcode, qid) {
            let sq = cmd.opcode == 0x01;
            if !self.maybe_exists(qid, sq) {
                // A new queue's shadow doorbell starts at 0 (not the value
                // of an earlier queue with its ID), as Linux clears it.
                self.set_shadow(2 * qid as usize + usize::from(!sq), 0);
            }
        }
        match cmd.opcode {
            0x05 if self.cqs.contains_key(&(qid as u16)) && settled(self, qid) => {
                e.fail("the CQ exists")
            }
            // A new CQ starts zeroed (no stale phase tags).
            0x05 if !self.maybe_exists(qid, false)
                && cmd.prp1().is_multiple_of(PAGE)
                && self.reachable(cmd.prp1()) =>
            {
                self.rig.host_write(cmd.prp1(), &[0; PAGE as usize]);
            }
            0x01 if self.sqs.contains_key(&(qid as u16)) && settled(self, qid) => {
                e.fail("the SQ exists")
            }
            0x01 if cqid == 0 || !self.maybe_exists(cqid, false) => e.fail("its CQ does not exist"),
            0x00 | 0x04 if qid == 0 => e.fail("the admin queue cannot be deleted"),
            0x00 if !self.maybe_exists(qid, true) => e.fail("the SQ does not exist"),
            0x04 if !self.maybe_exists(qid, false) => e.fail("the CQ does not exist"),
            0x04 if settled(self, qid) => {
                let used = self
                    .sqs
                    .iter()
                    .any(|(&s, q)| s != 0 && u32::from(q.cqid) == qid);
                let moving = self.sqs.keys().any(|&s| self.busy(u32::from(s)));
                if used && !moving {
                    e.fail("an SQ still uses the CQ");
                }
            }
            _ => {}
        }
        self.submit(0, cmd, e)
    }

    /// Doorbell Buffer Config with shadow page `dbs` and EventIdx page
    /// `eis`, run at once: the shadow first holds every queue's current
    /// value, as the controller will read it from then on.
    pub fn shadow_config(&mut self, dbs: u64, eis: u64, mut e: Expect) {
        if !dbs.is_multiple_of(PAGE) || !eis.is_multiple_of(PAGE) {
            e.fail("its pages are not page aligned");
        }
        if dbs < RAM_SIZE && dbs.is_multiple_of(PAGE) {
            let mut page = vec![0u8; PAGE as usize];
            let mut put =
                |i: usize, v: u32| page[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
            self.sqs
                .iter()
                .for_each(|(&q, s)| put(2 * usize::from(q), s.tail));
            self.cqs
                .iter()
                .for_each(|(&q, c)| put(2 * usize::from(q) + 1, c.head));
            self.rig.ram.poke(dbs, &page);
        }
        let mut cmd = Command {
            opcode: 0x7c,
            ..Command::default()
        };
        cmd.dptr[..8].copy_from_slice(&dbs.to_le_bytes());
        cmd.dptr[8..].copy_from_slice(&eis.to_le_bytes());
        if let Some(c) = self.exec(0, cmd, e) {
            if c.status.is_success() {
                self.shadow = Some(dbs);
            }
        }
    }
}
