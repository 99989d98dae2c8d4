//! [`PvrdmaEngine`]: the PVRDMA device thread. It runs the jobs register
//! writes hand it (the shared region, commands, reset), takes the UAR
//! doorbells, and sends the interrupts, holding the shared lock only to
//! take work and to decide interrupts, never across a DMA.

use std::sync::Arc;

use pcie_core::{DeviceWorker, DmaHandle, MsiMessage};

use super::cmd::Rdma;
use super::qp::Ctx;
use super::regs::{err, uar, VEC_CMD, VEC_CQ};
use super::state::{Bell, Job, Shared};
use crate::transport::RdmaPort;

/// Messages taken from the wire per pass.
const MSGS_PER_PASS: usize = 256;

/// What the engine did since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PvrdmaStats {
    /// Commands run.
    pub commands: u64,
    /// Commands that failed (ERR not 0).
    pub failed_commands: u64,
    /// Doorbells taken.
    pub doorbells: u64,
    /// Interrupt messages sent.
    pub interrupts: u64,
    /// CQ notifications written.
    pub cq_notifications: u64,
}

/// The PVRDMA engine: see the module documentation.
pub struct PvrdmaEngine {
    shared: Arc<Shared>,
    dma: DmaHandle,
    rdma: Rdma,
    epoch: u64,
    stats: PvrdmaStats,
    port: RdmaPort,
    notify: Arc<dyn pcie_core::Notifier>,
    seq: u64,
    gids: Vec<[u8; 16]>,
}

impl std::fmt::Debug for PvrdmaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PvrdmaEngine")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PvrdmaEngine {
    pub(crate) fn new(
        shared: Arc<Shared>,
        dma: DmaHandle,
        mac: [u8; 6],
        port: RdmaPort,
        notify: Arc<dyn pcie_core::Notifier>,
    ) -> Self {
        PvrdmaEngine {
            shared,
            dma,
            rdma: Rdma::new(mac),
            epoch: 0,
            stats: PvrdmaStats::default(),
            port,
            notify,
            seq: 0,
            gids: Vec::new(),
        }
    }

    /// Tells the wire which GIDs reach this RNIC, when they changed.
    fn publish_gids(&mut self) {
        let gids: Vec<[u8; 16]> = self.rdma.gids.iter().flatten().copied().collect();
        if gids != self.gids {
            self.port.set_gids(gids.clone());
            self.gids = gids;
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> PvrdmaStats {
        self.stats
    }

    /// The objects the driver created.
    pub fn rdma(&self) -> &Rdma {
        &self.rdma
    }

    fn send(&mut self, msgs: Vec<MsiMessage>) {
        for m in msgs {
            // Refused (bus mastering off): lost, as on hardware.
            let _ = self.dma.msi(m.addr, m.data);
            self.stats.interrupts += 1;
        }
    }

    fn raise(&mut self, vector: u16) {
        let msg = {
            let mut c = self.shared.lock();
            if c.imr & (1 << vector) != 0 {
                None
            } else {
                c.trigger(vector)
            }
        };
        self.send(msg.into_iter().collect());
    }

    fn run_job(&mut self, n: u64, job: Job) {
        let e = match job {
            Job::LoadDsr(addr) => {
                self.rdma.reset();
                let e = self.rdma.load_dsr(&self.dma, addr);
                if e == err::OK {
                    self.shared.lock().dsr = Some(addr);
                }
                e
            }
            Job::Command => {
                let bar2 = self.shared.lock().config.bar_address(2).unwrap_or(0);
                let e = self.rdma.command(&self.dma, bar2 >> 12);
                self.stats.commands += 1;
                if e != err::OK {
                    self.stats.failed_commands += 1;
                }
                e
            }
            Job::Reset => {
                self.rdma.reset();
                err::OK
            }
        };
        if job == Job::Command {
            // Every command completes with vector 0, whatever its result,
            // before the REQUEST write returns.
            self.raise(VEC_CMD);
        }
        self.shared.job_done(n, e);
    }

    /// A UAR doorbell: QP doorbells (from the page the QP's context owns)
    /// name the QPs to look at.
    fn doorbell(&mut self, b: Bell, qps: &mut Vec<u32>) {
        self.stats.doorbells += 1;
        if b.reg == uar::QP {
            let h = b.value & uar::HANDLE_MASK;
            let owner = self
                .rdma
                .qps
                .get(h)
                .and_then(|q| self.rdma.pds.get(q.pd))
                .map(|pd| {
                    if pd.ctx == 0 {
                        0
                    } else {
                        self.rdma.ucs.get(pd.ctx).copied().unwrap_or(u32::MAX)
                    }
                });
            if owner == Some(b.page) && !qps.contains(&h) {
                qps.push(h);
            }
        }
        if b.reg == uar::CQ {
            let h = b.value & uar::HANDLE_MASK;
            if let Some(cq) = self.rdma.cqs.get_mut(h) {
                if b.value & uar::CQ_ARM != 0 {
                    cq.armed = Some(false);
                } else if b.value & uar::CQ_ARM_SOL != 0 && cq.armed.is_none() {
                    cq.armed = Some(true);
                }
            }
        }
    }

    /// Runs the waiting job, the doorbells rung, the messages that
    /// arrived, and the interrupts due.
    pub fn run(&mut self) {
        let (job, bells, due) = {
            let mut c = self.shared.lock();
            if c.epoch != self.epoch {
                self.epoch = c.epoch;
                self.rdma.reset();
            }
            (
                c.job.take(),
                std::mem::take(&mut c.bells),
                std::mem::take(&mut c.due),
            )
        };
        let mut qps = Vec::new();
        if let Some((n, job)) = job {
            self.run_job(n, job);
            self.publish_gids();
            // A MODIFY_QP to ERR flushes; look at every QP.
            qps.extend(self.rdma.qps.iter().map(|(h, _)| h));
        }
        for b in bells {
            self.doorbell(b, &mut qps);
        }
        let mut cx = Ctx {
            dma: &self.dma,
            port: &self.port,
            seq: &mut self.seq,
            raised: Default::default(),
        };
        for _ in 0..MSGS_PER_PASS {
            let Some(m) = self.port.recv() else { break };
            let h = m.dst_qpn;
            self.rdma.on_msg(&mut cx, m);
            if !qps.contains(&h) {
                qps.push(h);
            }
        }
        for h in qps {
            self.rdma.progress(&mut cx, h);
        }
        let raised = cx.raised;
        if raised.blocked {
            // Blocked QPs are retried when a peer's queue drains (it wakes
            // us); look at all of them then.
            let all: Vec<u32> = self.rdma.qps.iter().map(|(h, _)| h).collect();
            let mut cx = Ctx {
                dma: &self.dma,
                port: &self.port,
                seq: &mut self.seq,
                raised: Default::default(),
            };
            for h in all {
                self.rdma.progress(&mut cx, h);
            }
        }
        if raised.cq {
            self.stats.cq_notifications += 1;
            self.raise(VEC_CQ);
        }
        self.send(due);
        if self.port.pending() > 0 {
            self.notify.notify();
        }
    }
}

impl DeviceWorker for PvrdmaEngine {
    fn doorbell(&mut self, _index: usize) {
        self.run();
    }

    fn notified(&mut self) {
        self.run();
    }
}
