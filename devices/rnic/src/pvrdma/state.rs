//! What the PVRDMA function (on vCPUs) and its engine (on the device
//! thread) share: registers, MSI-X, doorbells rung, and the one job a
//! register write hands the engine and waits for. The lock is never held
//! across a DMA.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pcie_core::{MsiMessage, Msix, Type0Config};

/// How long a register write waits for the engine to run its job. The
/// driver itself gives a command 10 s; a job that takes longer is
/// reported as failed ([`err::TIMEOUT`](super::regs::err::TIMEOUT)).
pub(crate) const JOB_WAIT: Duration = Duration::from_secs(5);

/// Work a register write hands the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// DSRHIGH was written: load the shared region at this address and
    /// write the caps into it.
    LoadDsr(u64),
    /// REQUEST was written: run the command in the command slot.
    Command,
    /// CTL RESET: drop every resource and the shared region.
    Reset,
}

/// A UAR doorbell: which register and the value written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Bell {
    /// The UAR page (0 is the kernel's).
    pub(crate) page: u32,
    /// Register offset in the page.
    pub(crate) reg: u64,
    /// The value.
    pub(crate) value: u32,
}

/// Most distinct doorbells held between two engine passes (values
/// repeat: a handle and a few bits each).
pub(crate) const MAX_BELLS: usize = 4096;

/// Registers and requests.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: Type0Config,
    pub(crate) power_on: Type0Config,
    pub(crate) msix: Msix,
    /// MSI-X messages due (unmasked while pending), for the engine.
    pub(crate) due: Vec<MsiMessage>,
    /// DSRLOW.
    pub(crate) dsr_low: u32,
    /// The loaded shared region's address (none before DSRHIGH).
    pub(crate) dsr: Option<u64>,
    /// ERR.
    pub(crate) err: u32,
    /// IMR.
    pub(crate) imr: u32,
    /// The MAC (MACL/MACH; the driver never uses them).
    pub(crate) mac: [u8; 6],
    /// ACTIVATE was written (and not reset since).
    pub(crate) active: bool,
    /// The job waiting for the engine, with its number.
    pub(crate) job: Option<(u64, Job)>,
    /// Jobs handed out and jobs done, by number.
    pub(crate) jobs: u64,
    pub(crate) jobs_done: u64,
    /// Doorbells rung since the engine last looked.
    pub(crate) bells: BTreeSet<Bell>,
    /// Doorbells dropped because [`MAX_BELLS`] were waiting.
    pub(crate) bells_dropped: u64,
    /// Counts resets: the engine drops everything when it changes.
    pub(crate) epoch: u64,
}

impl Core {
    /// Triggers MSI-X `vector`: its message if it can be sent now (else
    /// it is pending).
    pub(crate) fn trigger(&mut self, vector: u16) -> Option<MsiMessage> {
        self.msix.trigger(self.config.space(), vector)
    }
}

/// [`Core`] behind its lock, and the condition job waiters wait on.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    done: Condvar,
}

impl Shared {
    pub(crate) fn new(core: Core) -> Self {
        Shared {
            core: Mutex::new(core),
            done: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `job` to the engine (woken by `notify`) and waits until it
    /// is done or [`JOB_WAIT`] passes, holding no lock meanwhile. A job
    /// the engine has not taken by then is withdrawn and ERR reads
    /// TIMEOUT.
    pub(crate) fn run_job(&self, job: Job, notify: &dyn pcie_core::Notifier) {
        let n = {
            let mut c = self.lock();
            c.jobs += 1;
            let n = c.jobs;
            c.job = Some((n, job));
            n
        };
        notify.notify();
        let c = self.lock();
        let (mut c, _) = self
            .done
            .wait_timeout_while(c, JOB_WAIT, |c| c.jobs_done < n)
            .unwrap_or_else(PoisonError::into_inner);
        if c.jobs_done < n {
            if c.job.is_some_and(|(m, _)| m == n) {
                c.job = None;
            }
            c.err = super::regs::err::TIMEOUT;
        }
    }

    /// The engine finished job `n` with ERR `err`.
    pub(crate) fn job_done(&self, n: u64, err: u32) {
        let mut c = self.lock();
        c.err = err;
        c.jobs_done = c.jobs_done.max(n);
        drop(c);
        self.done.notify_all();
    }
}
