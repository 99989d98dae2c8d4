//! [`PvrdmaEngine`]: the PVRDMA device thread. It runs the jobs register
//! writes hand it (the shared region, commands, reset), takes the UAR
//! doorbells, and sends the interrupts, holding the shared lock only to
//! take work and to decide interrupts, never across a DMA.

use std::sync::Arc;

use pcie_core::{DeviceWorker, DmaHandle, MsiMessage};

use super::cmd::Rdma;
use super::regs::{err, uar, VEC_CMD};
use super::state::{Bell, Job, Shared};

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
}

impl std::fmt::Debug for PvrdmaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PvrdmaEngine")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PvrdmaEngine {
    pub(crate) fn new(shared: Arc<Shared>, dma: DmaHandle, mac: [u8; 6]) -> Self {
        PvrdmaEngine {
            shared,
            dma,
            rdma: Rdma::new(mac),
            epoch: 0,
            stats: PvrdmaStats::default(),
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

    /// A UAR doorbell.
    fn doorbell(&mut self, b: Bell) {
        self.stats.doorbells += 1;
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
        // QP doorbells: the QP engine (send and receive queues) comes with
        // the wire's RDMA transport.
    }

    /// Runs the waiting job, the doorbells rung and the interrupts due.
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
        if let Some((n, job)) = job {
            self.run_job(n, job);
        }
        for b in bells {
            self.doorbell(b);
        }
        self.send(due);
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
