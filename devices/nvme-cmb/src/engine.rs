//! [`NvmeEngine`]: the controller's worker, on the device's thread. It
//! follows CC (enable, reset, shutdown), reads doorbells, fetches and runs
//! commands, posts completions and raises interrupts. It takes the shared
//! lock only to read or update registers, never across a DMA, an
//! interrupt or a namespace access.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pcie_core::{BarMemory, DeviceWorker, DmaHandle, DoorbellControl, MsiMessage, Notifier};

use crate::features::Features;
use crate::identify::ControllerInfo;
use crate::inflight::InFlight;
use crate::log_page::{ErrorEntry, ErrorLog, Health};
use crate::memory::CtrlMemory;
use crate::namespace::Namespace;
use crate::queues::{Cq, Sq};
use crate::regs::{aqa, cc, csts, doorbells, FIRST_IO_DOORBELL, MAX_IO_QUEUES, MPS_MAX};
use crate::shadow::ShadowBuffers;
use crate::sqe::{Command, Completion};
use crate::state::{Counters, Shared};
use crate::Status;

/// Commands run from one SQ before the engine looks at the next.
const BURST: usize = 16;

/// An asynchronous event waiting for an Async Event Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// Event type (0 error, 1 SMART/health, 2 notice).
    pub(crate) kind: u8,
    /// Event information.
    pub(crate) info: u8,
    /// The log page that clears it.
    pub(crate) log: u8,
}

/// Asynchronous event information for error events (NVMe 1.4 Fig. 146).
pub(crate) mod aen {
    /// Write to Invalid Doorbell Register.
    pub(crate) const INVALID_DOORBELL_REGISTER: u8 = 0;
    /// Invalid Doorbell Write Value.
    pub(crate) const INVALID_DOORBELL_VALUE: u8 = 1;
}

/// The engine's state: what exists only while the controller is enabled.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) enabled: bool,
    pub(crate) epoch: u64,
    pub(crate) page_size: u64,
    pub(crate) sqs: Vec<Option<Sq>>,
    pub(crate) cqs: Vec<Option<Cq>>,
    pub(crate) features: Features,
    /// Outstanding Async Event Requests (command IDs).
    pub(crate) aer: Vec<u16>,
    pub(crate) events: VecDeque<Event>,
    /// Event types reported and not yet cleared by reading their log.
    pub(crate) masked: u8,
    /// I/O queues granted by Set Features Number of Queues (SQs, CQs).
    pub(crate) queues_granted: (u16, u16),
    pub(crate) cc: u32,
    /// Shadow doorbells, once the host configured them.
    pub(crate) shadow: Option<ShadowBuffers>,
}

impl State {
    fn new() -> Self {
        State {
            enabled: false,
            epoch: 0,
            page_size: 4096,
            sqs: vec![None; usize::from(MAX_IO_QUEUES) + 1],
            cqs: vec![None; usize::from(MAX_IO_QUEUES) + 1],
            features: Features::default(),
            aer: Vec::new(),
            events: VecDeque::new(),
            masked: 0,
            queues_granted: (MAX_IO_QUEUES, MAX_IO_QUEUES),
            cc: 0,
            shadow: None,
        }
    }
}

/// The controller's worker. See the module documentation.
pub struct NvmeEngine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) dma: Arc<DmaHandle>,
    pub(crate) cmb: Option<Arc<BarMemory>>,
    pub(crate) cmb_flags: u32,
    pub(crate) ns: Vec<Arc<Namespace>>,
    pub(crate) info: ControllerInfo,
    pub(crate) uid: u64,
    pub(crate) st: State,
    pub(crate) errors: ErrorLog,
    pub(crate) health: Health,
    pub(crate) started: Instant,
    /// Data buffers commands reuse (see `take_buf`).
    pub(crate) bufs: Vec<Vec<u8>>,
    /// Switches the I/O doorbells' ioeventfds.
    pub(crate) bells: Arc<dyn DoorbellControl>,
    /// Which I/O doorbells are on their ioeventfd now.
    pub(crate) armed: Vec<bool>,
    /// File namespace commands on the I/O pool.
    pub(crate) inflight: InFlight,
    /// CC.SHN was set: finish once nothing is in flight.
    shutdown_pending: bool,
    /// MSI-X is off: completions raise INTx (see crate::intx).
    pub(crate) intx_mode: bool,
    /// The INTx level last sent to the fabric.
    pub(crate) intx_level: bool,
}

impl std::fmt::Debug for NvmeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmeEngine")
            .field("dma", &self.dma)
            .field("st", &self.st)
            .finish_non_exhaustive()
    }
}

/// What one control pass decided, to act on after the lock is released.
#[derive(Default)]
struct Control {
    due: Vec<MsiMessage>,
    flush: bool,
    /// A reset retired a busy file pool: clear CSTS.RDY after joining it.
    ready_low_later: bool,
}

impl NvmeEngine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        dma: DmaHandle,
        cmb: Option<Arc<BarMemory>>,
        cmb_flags: u32,
        ns: Vec<Arc<Namespace>>,
        info: ControllerInfo,
        uid: u64,
        bells: Arc<dyn DoorbellControl>,
        notify: Arc<dyn Notifier>,
    ) -> Self {
        let name = format!("nvme{}", info.cntlid);
        NvmeEngine {
            inflight: InFlight::new(name, notify, usize::from(MAX_IO_QUEUES) + 1),
            shutdown_pending: false,
            intx_mode: false,
            intx_level: false,
            shared,
            dma: Arc::new(dma),
            cmb,
            cmb_flags,
            ns,
            info,
            uid,
            st: State::new(),
            errors: ErrorLog::new(64),
            health: Health {
                power_cycles: 1,
                temperature_kelvin: 310,
                ..Health::default()
            },
            started: Instant::now(),
            bufs: Vec::new(),
            bells,
            armed: vec![false; doorbells() - FIRST_IO_DOORBELL],
        }
    }

    /// The handle its DMA goes through.
    pub fn dma_handle(&self) -> &DmaHandle {
        &self.dma
    }

    /// The controller's counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Commands whose file I/O is still on the pool. The engine's
    /// notifier fires when a job finishes; the engine should then run.
    pub fn in_flight(&self) -> usize {
        self.inflight.on_pool()
    }

    /// Does everything due: control, doorbells, commands, interrupts.
    pub fn run(&mut self) {
        let ctl = self.control();
        // A reset retired the file pool under the lock; wait for its
        // running jobs here, with no lock held.
        self.inflight.drop_retired();
        if ctl.ready_low_later {
            let mut core = self.shared.lock();
            // Unless the host already enabled again (it must not have).
            if core.regs.cc & cc::EN == 0 {
                core.regs.csts &= !(csts::RDY | csts::SHST_MASK | csts::CFS);
            }
        }
        self.refresh_intx_mode();
        self.shutdown_pending |= ctl.flush;
        self.send(ctl.due);
        if !self.st.enabled {
            // Doorbells of a disabled controller are ignored.
            let _ = self.shared.take_rung();
            self.shared.stray_doorbell.store(false, Ordering::Release);
            self.finish_shutdown();
            self.update_intx();
            return;
        }
        self.doorbells();
        let cmb_base = self.shared.lock().cmb_base();
        let (dma, cmb, shared) = (self.dma.clone(), self.cmb.clone(), self.shared.clone());
        let mem = CtrlMemory {
            dma: &dma,
            cmb: cmb.as_ref().zip(cmb_base),
            counters: &shared.counters,
        };
        let vectors = self.process(&mem);
        self.interrupts(vectors);
        self.finish_shutdown();
        self.update_intx();
    }

    /// Shutdown, once nothing is in flight: makes written data durable,
    /// then reports it done (CSTS.SHST).
    fn finish_shutdown(&mut self) {
        if !self.shutdown_pending || self.inflight.len() != 0 {
            return;
        }
        self.shutdown_pending = false;
        for ns in &self.ns {
            let _ = ns.flush();
        }
        let mut core = self.shared.lock();
        if core.regs.csts & csts::SHST_MASK == csts::SHST_OCCURRING {
            core.regs.csts = (core.regs.csts & !csts::SHST_MASK) | csts::SHST_COMPLETE;
        }
    }

    /// Follows CC, resets and NSSR. Runs under the lock, decides only.
    fn control(&mut self) -> Control {
        let mut out = Control::default();
        let shared = self.shared.clone();
        let mut core = shared.lock();
        out.due = std::mem::take(&mut core.due);
        if core.subsystem_reset {
            core.subsystem_reset = false;
            core.regs = crate::state::Regs {
                csts: csts::NSSRO,
                ..Default::default()
            };
            self.st.enabled = false;
        }
        if core.epoch != self.st.epoch {
            self.st.epoch = core.epoch;
            self.st.enabled = false;
        }
        let cc_now = core.regs.cc;
        self.st.cc = cc_now;
        if cc_now & cc::EN == 0 {
            if self.st.enabled || core.regs.csts & (csts::RDY | csts::SHST_MASK) != 0 {
                self.disable();
                if self.inflight.has_retired() {
                    // Jobs may still be moving data: RDY drops once they
                    // are joined, outside the lock (see `run`).
                    out.ready_low_later = true;
                } else {
                    core.regs.csts &= !(csts::RDY | csts::SHST_MASK | csts::CFS);
                }
            }
            return out;
        }
        if !self.st.enabled && core.regs.csts & csts::CFS == 0 {
            let r = core.regs;
            match self.enable(r.cc, r.aqa, r.asq, r.acq) {
                Ok(()) => core.regs.csts |= csts::RDY,
                Err(()) => core.regs.csts |= csts::CFS,
            }
        }
        let shn = (cc_now >> cc::SHN_SHIFT) & 3;
        if shn != 0 && core.regs.csts & csts::SHST_MASK == 0 {
            core.regs.csts |= csts::SHST_OCCURRING;
            out.flush = true;
        }
        out
    }

    /// CC.EN 0 → 1: checks the configuration and creates the admin queues.
    fn enable(&mut self, cc_v: u32, aqa_v: u32, asq: u64, acq: u64) -> Result<(), ()> {
        let mps = (cc_v >> cc::MPS_SHIFT) & 0xf;
        let css = (cc_v >> cc::CSS_SHIFT) & 7;
        let sq_size = (aqa_v & aqa::ASQS_MASK) + 1;
        let cq_size = ((aqa_v >> aqa::ACQS_SHIFT) & aqa::ASQS_MASK) + 1;
        if mps > MPS_MAX || css != 0 || sq_size < 2 || cq_size < 2 {
            return Err(());
        }
        self.disable();
        self.st.page_size = 4096 << mps;
        self.st.sqs[0] = Some(Sq::new(asq, sq_size, 0));
        self.st.cqs[0] = Some(Cq::new(acq, cq_size, 0, true));
        self.st.enabled = true;
        Ok(())
    }

    /// Controller reset: every queue, outstanding request and event goes.
    fn disable(&mut self) {
        self.disarm_all();
        self.inflight.clear();
        self.shutdown_pending = false;
        let epoch = self.st.epoch;
        self.st = State::new();
        self.st.epoch = epoch;
        self.shared.clear_doorbells();
    }

    /// Applies the doorbells written since the last pass.
    fn doorbells(&mut self) {
        if self.shared.stray_doorbell.swap(false, Ordering::AcqRel) {
            self.doorbell_error(aen::INVALID_DOORBELL_REGISTER);
        }
        for (index, value) in self.shared.take_rung() {
            let qid = index / 2;
            if qid != 0 && self.st.shadow.is_some() {
                // The shadow buffer has the value (see crate::shadow).
                continue;
            }
            let ok = if index % 2 == 0 {
                match self.st.sqs.get_mut(qid).and_then(Option::as_mut) {
                    Some(sq) if value < sq.size => {
                        sq.tail = value;
                        Some(true)
                    }
                    Some(_) => Some(false),
                    None => None,
                }
            } else {
                match self.st.cqs.get_mut(qid).and_then(Option::as_mut) {
                    // The head may move only over entries the controller
                    // posted (up to the tail).
                    Some(cq) if value < cq.size && cq.head_ok(value) => {
                        cq.head = value;
                        Some(true)
                    }
                    Some(_) => Some(false),
                    None => None,
                }
            };
            match ok {
                Some(true) => {}
                Some(false) => self.doorbell_error(aen::INVALID_DOORBELL_VALUE),
                None => self.doorbell_error(aen::INVALID_DOORBELL_REGISTER),
            }
        }
    }

    /// A bad doorbell write: an Error Information entry (no command) and
    /// the error asynchronous event `info`.
    fn doorbell_error(&mut self, info: u8) {
        self.errors.record(ErrorEntry {
            sqid: 0xffff,
            cid: 0xffff,
            status_field: crate::log_page::STATUS_NOT_COMMAND,
            param_location: 0xffff,
            ..ErrorEntry::default()
        });
        self.event(Event {
            kind: 0,
            info,
            log: crate::log_page::log_id::ERROR,
        });
    }

    /// Queues an asynchronous event (once). One of a masked type waits
    /// until the host reads the log page that unmasks it.
    pub(crate) fn event(&mut self, e: Event) {
        if !self.st.events.contains(&e) {
            self.st.events.push_back(e);
        }
    }

    /// Runs commands from every SQ, round robin, while their CQs have
    /// room. Returns the CQs that got entries.
    fn process(&mut self, mem: &CtrlMemory<'_>) -> Vec<u16> {
        let mut posted: Vec<u16> = Vec::new();
        loop {
            let mut progress = false;
            progress |= self.complete_events(mem, &mut posted);
            progress |= self.reap_pool(mem, &mut posted);
            for qid in 0..self.st.sqs.len() {
                if self.st.sqs[qid].is_none() {
                    continue;
                }
                self.sync_shadow(mem, qid);
                for _ in 0..BURST {
                    let Some(sq) = self.st.sqs[qid] else { break };
                    if !sq.pending() || !self.st.enabled {
                        break;
                    }
                    if !self.cq_has_room(usize::from(sq.cqid))
                        || (qid != 0 && !self.inflight.has_room())
                    {
                        break;
                    }
                    let in_cmb = mem.in_cmb(sq.head_addr(), crate::sqe::SQE_SIZE).is_some();
                    let mut sq = sq;
                    let fetched = sq.fetch(mem);
                    self.st.sqs[qid] = Some(sq);
                    let counter = if qid == 0 {
                        &mem.counters.admin_sqe_fetches
                    } else if in_cmb {
                        &mem.counters.sqe_fetch_cmb
                    } else {
                        &mem.counters.sqe_fetch_dma
                    };
                    Counters::add(counter, 1);
                    let Ok(cmd) = fetched else {
                        // The entry cannot be read: there is no command ID
                        // to complete; the controller fails (CSTS.CFS).
                        self.shared.lock().regs.csts |= csts::CFS;
                        self.st.enabled = false;
                        return posted;
                    };
                    progress = true;
                    let result = if qid == 0 {
                        self.admin(mem, &cmd)
                    } else {
                        self.io(mem, qid as u16, &cmd)
                    };
                    if let Some((status, dw0)) = result {
                        self.complete(mem, qid as u16, &cmd, status, dw0, &mut posted);
                    }
                }
                progress |= self.settle_shadow(mem, qid);
            }
            if !progress {
                return posted;
            }
        }
    }

    /// Posts the completion of `cmd` from SQ `sqid`.
    pub(crate) fn complete(
        &mut self,
        mem: &CtrlMemory<'_>,
        sqid: u16,
        cmd: &Command,
        status: Status,
        dw0: u32,
        posted: &mut Vec<u16>,
    ) {
        if !status.is_success() {
            self.errors.record(ErrorEntry {
                sqid,
                cid: cmd.cid,
                status_field: status.field(),
                param_location: 0xffff,
                lba: u64::from(cmd.cdw10) | (u64::from(cmd.cdw11) << 32),
                nsid: cmd.nsid,
                ..ErrorEntry::default()
            });
        }
        let Some(sq) = self.st.sqs.get(usize::from(sqid)).copied().flatten() else {
            return;
        };
        let Some(cq) = self.st.cqs[usize::from(sq.cqid)].as_mut() else {
            return;
        };
        let c = Completion {
            dw0,
            dw1: 0,
            sq_head: sq.head as u16,
            sq_id: sqid,
            cid: cmd.cid,
            status,
        };
        if cq.post(mem, &c).is_err() {
            // A CQ that cannot be written: the controller fails.
            self.shared.lock().regs.csts |= csts::CFS;
            self.st.enabled = false;
            return;
        }
        Counters::add(&mem.counters.completions, 1);
        if !posted.contains(&sq.cqid) {
            posted.push(sq.cqid);
        }
    }

    /// Completes Async Event Requests with queued events.
    fn complete_events(&mut self, mem: &CtrlMemory<'_>, posted: &mut Vec<u16>) -> bool {
        let mut any = false;
        while !self.st.aer.is_empty() && !self.st.events.is_empty() {
            if self.st.cqs[0].is_none_or(|cq| cq.full()) {
                break;
            }
            let masked = self.st.masked;
            let Some(at) = self
                .st
                .events
                .iter()
                .position(|e| masked & (1 << e.kind) == 0)
            else {
                break;
            };
            let (Some(cid), Some(e)) = (self.st.aer.pop(), self.st.events.remove(at)) else {
                break;
            };
            self.st.masked |= 1 << e.kind;
            let cmd = Command {
                cid,
                ..Command::default()
            };
            let dw0 = u32::from(e.kind) | (u32::from(e.info) << 8) | (u32::from(e.log) << 16);
            self.complete(mem, 0, &cmd, Status::SUCCESS, dw0, posted);
            any = true;
        }
        any
    }

    /// Raises the vector of every CQ in `cqs` that has interrupts enabled.
    fn interrupts(&mut self, cqs: Vec<u16>) {
        let mut msgs = Vec::new();
        {
            let mut core = self.shared.lock();
            let core = &mut *core;
            for qid in cqs {
                let Some(cq) = self.st.cqs[usize::from(qid)] else {
                    continue;
                };
                if cq.interrupts && !self.intx_mode {
                    msgs.extend(core.msix.trigger(core.config.space(), cq.vector));
                }
            }
        }
        self.send(msgs);
    }

    fn send(&self, msgs: Vec<MsiMessage>) {
        for m in msgs {
            // Refused (bus mastering off, ACS): lost, as on hardware.
            if self.dma.msi(m.addr, m.data).is_ok() {
                Counters::add(&self.shared.counters.interrupts, 1);
            }
        }
    }
}

impl DeviceWorker for NvmeEngine {
    fn doorbell(&mut self, _index: usize) {
        self.run();
    }

    fn notified(&mut self) {
        self.run();
    }
}
