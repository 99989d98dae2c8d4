//! Shadow doorbells (Doorbell Buffer Config, NVMe 1.3+, OACS bit 8).
//!
//! The host keeps each I/O queue's SQ tail and CQ head in a page of its
//! memory (the shadow doorbell buffer) and writes the doorbell register only
//! when the controller's EventIdx (a second page) says it must, the way
//! Linux's `nvme_dbbuf_update_and_check_event` does. Once the buffers are
//! set, the controller reads tails and heads from the shadow, so an I/O
//! doorbell write carries nothing the controller needs: the VMM then backs
//! those doorbells by ioeventfds (see [`pcie_core::DoorbellControl`]) and a
//! ring never leaves the guest's kernel. The admin queue is never shadowed.
//!
//! After the controller has consumed up to tail T, it writes EventIdx = T
//! and reads the shadow again, so a submission that raced with the update
//! is seen either by the re-read or through a doorbell.

use crate::engine::NvmeEngine;
use crate::mem::BusMemory;
use crate::memory::CtrlMemory;
use crate::regs::{DSTRD, FIRST_IO_DOORBELL};
use crate::sqe::Command;
use crate::Status;

/// The two host pages, once Doorbell Buffer Config set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShadowBuffers {
    /// Shadow doorbells: laid out like the doorbell registers.
    pub(crate) dbs: u64,
    /// EventIdx values, same layout.
    pub(crate) eis: u64,
}

impl ShadowBuffers {
    /// Offset of doorbell `index` (SQ y tail: 2y, CQ y head: 2y + 1).
    fn offset(index: usize) -> u64 {
        (index as u64) * (4u64 << DSTRD)
    }

    /// Reads doorbell `index`'s shadow value.
    pub(crate) fn read(&self, mem: &dyn BusMemory, index: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        let addr = self.dbs.wrapping_add(Self::offset(index));
        mem.read(addr, &mut b).ok().map(|_| u32::from_le_bytes(b))
    }

    /// Writes doorbell `index`'s EventIdx.
    pub(crate) fn set_event(&self, mem: &dyn BusMemory, index: usize, value: u32) {
        let addr = self.eis.wrapping_add(Self::offset(index));
        // A host that unmapped its EventIdx page only loses doorbells.
        let _ = mem.write(addr, &value.to_le_bytes());
    }
}

impl NvmeEngine {
    /// Doorbell Buffer Config: PRP1 the shadow doorbells, PRP2 the
    /// EventIdx page, both page aligned. Existing I/O queues start using
    /// them with their current values.
    pub(crate) fn doorbell_buffer_config(
        &mut self,
        mem: &CtrlMemory<'_>,
        cmd: &Command,
    ) -> Result<u32, Status> {
        let (dbs, eis) = (cmd.prp1(), cmd.prp2());
        let page = self.st.page_size;
        if dbs == 0 || eis == 0 || !dbs.is_multiple_of(page) || !eis.is_multiple_of(page) {
            return Err(Status::INVALID_FIELD);
        }
        let sb = ShadowBuffers { dbs, eis };
        for qid in 1..self.st.sqs.len() {
            if let Some(sq) = self.st.sqs[qid] {
                sb.set_event(mem, 2 * qid, sq.tail);
            }
            if let Some(cq) = self.st.cqs[qid] {
                sb.set_event(mem, 2 * qid + 1, cq.head);
            }
        }
        self.st.shadow = Some(sb);
        for qid in 1..self.st.sqs.len() {
            self.arm(2 * qid, self.st.sqs[qid].is_some());
            self.arm(2 * qid + 1, self.st.cqs[qid].is_some());
        }
        Ok(0)
    }

    /// Backs doorbell `index` (an I/O queue's) by its ioeventfd while
    /// shadow doorbells are on and the queue exists.
    pub(crate) fn arm(&mut self, index: usize, exists: bool) {
        let Some(j) = index.checked_sub(FIRST_IO_DOORBELL) else {
            return;
        };
        let on = exists && self.st.shadow.is_some();
        if self.armed.get(j).copied() != Some(on) {
            if let Some(a) = self.armed.get_mut(j) {
                *a = on;
                self.bells.set_eventfd(j, on);
            }
        }
    }

    /// Takes every I/O doorbell back from its ioeventfd (reset).
    pub(crate) fn disarm_all(&mut self) {
        for j in 0..self.armed.len() {
            if self.armed[j] {
                self.armed[j] = false;
                self.bells.set_eventfd(j, false);
            }
        }
    }

    /// Reads the shadow tail of SQ `qid` and the shadow head of its CQ.
    /// A value beyond the queue is ignored (the host's own memory is
    /// corrupt; the register path raises the event for bad writes).
    pub(crate) fn sync_shadow(&mut self, mem: &CtrlMemory<'_>, qid: usize) {
        let Some(sb) = self.st.shadow.filter(|_| qid != 0) else {
            return;
        };
        if let Some(sq) = self.st.sqs[qid].as_mut() {
            match sb.read(mem, 2 * qid) {
                Some(t) if t < sq.size => sq.tail = t,
                _ => {}
            }
            let cqid = usize::from(sq.cqid);
            if let Some(cq) = self.st.cqs[cqid].as_mut() {
                match sb.read(mem, 2 * cqid + 1) {
                    Some(h) if h < cq.size && cq.head_ok(h) => cq.head = h,
                    _ => {}
                }
            }
        }
    }

    /// With shadow doorbells, asks the host to ring CQ `cqid`'s head
    /// doorbell on its next update (the CQ has no room).
    pub(crate) fn ask_head(&self, mem: &CtrlMemory<'_>, cqid: usize) {
        let sb = self.st.shadow.filter(|_| cqid != 0);
        if let (Some(sb), Some(Some(cq))) = (sb, self.st.cqs.get(cqid)) {
            sb.set_event(mem, 2 * cqid + 1, cq.head);
        }
    }

    /// After SQ `qid` was drained (or its CQ filled): asks for a doorbell
    /// on the next submission (and, if the CQ is full, on the next head
    /// update), then looks again. True
    /// when the re-read found more work or room.
    pub(crate) fn settle_shadow(&mut self, mem: &CtrlMemory<'_>, qid: usize) -> bool {
        let Some(sb) = self.st.shadow.filter(|_| qid != 0) else {
            return false;
        };
        let Some(sq) = self.st.sqs[qid] else {
            return false;
        };
        let cqid = usize::from(sq.cqid);
        sb.set_event(mem, 2 * qid, sq.tail);
        // Head updates matter only to a full CQ: ask for one then (the
        // host otherwise rings once per wrap of the queue).
        // With INTx the level follows the head: ask for every update.
        if !self.cq_has_room(cqid) || self.intx_mode {
            self.ask_head(mem, cqid);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        let before = (sq.tail, self.st.cqs[cqid].map(|c| c.head));
        self.sync_shadow(mem, qid);
        let after = (
            self.st.sqs[qid].map_or(sq.tail, |s| s.tail),
            self.st.cqs[cqid].map(|c| c.head),
        );
        before != after
    }
}
