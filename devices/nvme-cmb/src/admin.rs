//! Admin commands (NVMe 1.4 §5).

use crate::dptr::{data_segments, scatter};
use crate::engine::NvmeEngine;
use crate::features::fid;
use crate::log_page::{firmware_slot_page, health_page, log_id, window};
use crate::memory::CtrlMemory;
use crate::queues::{Cq, Sq};
use crate::regs::{cc, cmb, MAX_QUEUE_ENTRIES};
use crate::sqe::{admin_op, Command};
use crate::{identify, Status};

/// Identify CNS values.
mod cns {
    pub(super) const NAMESPACE: u8 = 0x00;
    pub(super) const CONTROLLER: u8 = 0x01;
    pub(super) const ACTIVE_NS_LIST: u8 = 0x02;
    pub(super) const NS_DESCRIPTORS: u8 = 0x03;
}

/// An admin command's result: `None` while it is held (Async Event
/// Request), else its status and completion dword 0.
pub(crate) type AdminResult = Option<(Status, u32)>;

fn done(r: Result<u32, Status>) -> AdminResult {
    Some(match r {
        Ok(dw0) => (Status::SUCCESS, dw0),
        Err(s) => (s, 0),
    })
}

impl NvmeEngine {
    /// Runs admin command `cmd`.
    pub(crate) fn admin(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> AdminResult {
        if cmd.fuse != 0 || cmd.uses_sgl() {
            // Admin commands over PCIe use PRPs and are never fused.
            return done(Err(Status::INVALID_FIELD));
        }
        match cmd.opcode {
            admin_op::IDENTIFY => done(self.identify(mem, cmd)),
            admin_op::GET_LOG_PAGE => done(self.get_log_page(mem, cmd)),
            admin_op::SET_FEATURES => done(self.set_features(cmd)),
            admin_op::GET_FEATURES => done(self.get_features(cmd)),
            admin_op::CREATE_IO_CQ => done(self.create_cq(mem, cmd)),
            admin_op::CREATE_IO_SQ => done(self.create_sq(mem, cmd)),
            admin_op::DELETE_IO_SQ => done(self.delete_sq(cmd)),
            admin_op::DELETE_IO_CQ => done(self.delete_cq(cmd)),
            // Commands run to completion when fetched: nothing is ever
            // outstanding to abort (dword 0 bit 0: not aborted).
            admin_op::DOORBELL_BUFFER_CONFIG => done(self.doorbell_buffer_config(mem, cmd)),
            admin_op::ABORT => done(Ok(1)),
            admin_op::KEEP_ALIVE => done(Ok(0)),
            admin_op::ASYNC_EVENT_REQUEST => {
                if self.st.aer.len() > usize::from(self.info.aerl) {
                    return done(Err(Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED));
                }
                self.st.aer.push(cmd.cid);
                None
            }
            _ => done(Err(Status::INVALID_OPCODE)),
        }
    }

    /// Sends `data` to the host buffer of `cmd` (PRPs).
    fn to_host(&self, mem: &CtrlMemory<'_>, cmd: &Command, data: &[u8]) -> Result<(), Status> {
        let segs = data_segments(mem, cmd, data.len() as u64, self.st.page_size, false)?;
        scatter(mem, &segs, data)
    }

    fn identify(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<u32, Status> {
        let nsid = cmd.nsid;
        let data = match cmd.cdw10 as u8 {
            cns::CONTROLLER => identify::controller(&self.info),
            cns::NAMESPACE => match self.namespace(nsid) {
                Some(ns) => identify::namespace(ns.blocks(), ns.lba_shift(), nsid, self.uid),
                None if nsid == 0xffff_ffff => identify::namespace(0, 9, nsid, self.uid),
                None => return Err(Status::INVALID_NAMESPACE),
            },
            cns::ACTIVE_NS_LIST => {
                if nsid >= 0xffff_fffe {
                    return Err(Status::INVALID_NAMESPACE);
                }
                let ids: Vec<u32> = (1..=self.ns.len() as u32).collect();
                identify::active_ns_list(&ids, nsid)
            }
            cns::NS_DESCRIPTORS => match self.namespace(nsid) {
                Some(_) => identify::ns_descriptors(nsid, self.uid),
                None => return Err(Status::INVALID_NAMESPACE),
            },
            _ => return Err(Status::INVALID_FIELD),
        };
        self.to_host(mem, cmd, &data)?;
        Ok(0)
    }

    fn get_log_page(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<u32, Status> {
        let lid = cmd.cdw10 as u8;
        let rae = cmd.cdw10 & (1 << 15) != 0;
        let numd = u64::from(cmd.cdw10 >> 16) | (u64::from(cmd.cdw11 & 0xffff) << 16);
        let len = (numd + 1) * 4;
        let offset = u64::from(cmd.cdw12) | (u64::from(cmd.cdw13) << 32);
        // Beyond MDTS: Invalid Field (Identify Controller, MDTS).
        if offset % 4 != 0 || len > crate::io::MAX_TRANSFER {
            return Err(Status::INVALID_FIELD);
        }
        let page = match lid {
            log_id::ERROR => self.errors.page(),
            log_id::HEALTH => {
                let mut h = self.health;
                h.power_on_hours = self.started.elapsed().as_secs() / 3600;
                h.error_entries = self.errors.count();
                health_page(&h)
            }
            log_id::FIRMWARE_SLOT => firmware_slot_page(&self.info.firmware),
            _ => return Err(Status::INVALID_LOG_PAGE),
        };
        self.to_host(mem, cmd, &window(&page, offset, len as usize))?;
        if !rae {
            // Reading the log clears (unmasks) the events it reports.
            let kind = match lid {
                log_id::ERROR => 0,
                log_id::HEALTH => 1,
                _ => 2,
            };
            self.st.masked &= !(1 << kind);
        }
        Ok(0)
    }

    fn set_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        if cmd.cdw10 & (1 << 31) != 0 {
            return Err(Status::FEATURE_ID_NOT_SAVEABLE);
        }
        let id = cmd.cdw10 as u8;
        if id == fid::NUMBER_OF_QUEUES {
            let (nsq, ncq) = (cmd.cdw11 & 0xffff, cmd.cdw11 >> 16);
            if nsq == 0xffff || ncq == 0xffff {
                return Err(Status::INVALID_FIELD);
            }
            if self.st.sqs.iter().skip(1).any(Option::is_some)
                || self.st.cqs.iter().skip(1).any(Option::is_some)
            {
                return Err(Status::COMMAND_SEQUENCE_ERROR);
            }
            let max = u32::from(crate::regs::MAX_IO_QUEUES);
            let (s, c) = ((nsq + 1).min(max), (ncq + 1).min(max));
            self.st.queues_granted = (s as u16, c as u16);
            return Ok((s - 1) | ((c - 1) << 16));
        }
        self.st.features.set(id, cmd.cdw11)
    }

    fn get_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        let id = cmd.cdw10 as u8;
        let sel = (cmd.cdw10 >> 8) & 7;
        if sel == 3 {
            // Supported capabilities: changeable, not saveable.
            self.st.features.get(id, cmd.cdw11).or_else(|e| {
                if id == fid::NUMBER_OF_QUEUES {
                    Ok(0)
                } else {
                    Err(e)
                }
            })?;
            return Ok(1 << 2);
        }
        if sel > 3 {
            return Err(Status::INVALID_FIELD);
        }
        if id == fid::NUMBER_OF_QUEUES {
            let (s, c) = self.st.queues_granted;
            return Ok(u32::from(s - 1) | (u32::from(c - 1) << 16));
        }
        if sel == 1 || sel == 2 {
            return crate::features::Features::default().get(id, cmd.cdw11);
        }
        self.st.features.get(id, cmd.cdw11)
    }

    /// Checks a queue ID and size for a Create command. `granted` is how
    /// many such queues Set Features allowed.
    fn check_new_queue(qid: u32, qsize: u32, granted: u16, exists: bool) -> Result<(), Status> {
        if qid == 0 || qid > u32::from(granted) || exists {
            return Err(Status::INVALID_QUEUE_IDENTIFIER);
        }
        if qsize == 0 || qsize >= MAX_QUEUE_ENTRIES {
            return Err(Status::INVALID_QUEUE_SIZE);
        }
        Ok(())
    }

    /// A queue in the CMB is allowed only when CMBSZ says so.
    fn check_cmb_queue(
        &self,
        mem: &CtrlMemory<'_>,
        base: u64,
        bytes: u64,
        allowed: u32,
    ) -> Result<(), Status> {
        let in_cmb = mem.in_cmb(base, bytes as usize).is_some();
        if in_cmb && self.cmb_flags & allowed == 0 {
            return Err(Status::INVALID_USE_OF_CMB);
        }
        Ok(())
    }

    fn create_cq(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10 & 0xffff;
        let qsize = cmd.cdw10 >> 16;
        let exists = self.st.cqs.get(qid as usize).is_some_and(Option::is_some);
        Self::check_new_queue(qid, qsize, self.st.queues_granted.1, exists)?;
        let (pc, ien, iv) = (
            cmd.cdw11 & 1 != 0,
            cmd.cdw11 & 2 != 0,
            (cmd.cdw11 >> 16) as u16,
        );
        let base = cmd.prp1();
        if !pc || (self.st.cc >> cc::IOCQES_SHIFT) & 0xf != 4 {
            return Err(Status::INVALID_FIELD);
        }
        if !base.is_multiple_of(self.st.page_size) {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        if iv >= crate::caps::MSIX_VECTORS {
            return Err(Status::INVALID_INTERRUPT_VECTOR);
        }
        self.check_cmb_queue(mem, base, u64::from(qsize + 1) * 16, cmb::CQS)?;
        self.st.cqs[qid as usize] = Some(Cq::new(base, qsize + 1, iv, ien));
        self.arm(2 * qid as usize + 1, true);
        Ok(0)
    }

    fn create_sq(&mut self, mem: &CtrlMemory<'_>, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10 & 0xffff;
        let qsize = cmd.cdw10 >> 16;
        let exists = self.st.sqs.get(qid as usize).is_some_and(Option::is_some);
        Self::check_new_queue(qid, qsize, self.st.queues_granted.0, exists)?;
        let cqid = (cmd.cdw11 >> 16) as u16;
        if cqid == 0
            || self
                .st
                .cqs
                .get(usize::from(cqid))
                .is_none_or(Option::is_none)
        {
            return Err(Status::COMPLETION_QUEUE_INVALID);
        }
        let base = cmd.prp1();
        if cmd.cdw11 & 1 == 0 || (self.st.cc >> cc::IOSQES_SHIFT) & 0xf != 6 {
            return Err(Status::INVALID_FIELD);
        }
        if !base.is_multiple_of(self.st.page_size) {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        self.check_cmb_queue(mem, base, u64::from(qsize + 1) * 64, cmb::SQS)?;
        self.st.sqs[qid as usize] = Some(Sq::new(base, qsize + 1, cqid));
        self.arm(2 * qid as usize, true);
        Ok(0)
    }

    fn delete_sq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw10 & 0xffff) as usize;
        match self.st.sqs.get_mut(qid) {
            Some(sq @ Some(_)) if qid != 0 => {
                *sq = None;
                self.arm(2 * qid, false);
                self.inflight.forget_sq(qid as u16);
                Ok(0)
            }
            _ => Err(Status::INVALID_QUEUE_IDENTIFIER),
        }
    }

    fn delete_cq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw10 & 0xffff) as usize;
        if qid == 0 || self.st.cqs.get(qid).is_none_or(Option::is_none) {
            return Err(Status::INVALID_QUEUE_IDENTIFIER);
        }
        let used = self
            .st
            .sqs
            .iter()
            .flatten()
            .any(|sq| usize::from(sq.cqid) == qid);
        if used {
            return Err(Status::INVALID_QUEUE_DELETION);
        }
        self.st.cqs[qid] = None;
        self.arm(2 * qid + 1, false);
        Ok(0)
    }
}
