//! Device threads: each device that does work runs its
//! [`DeviceWorker`] on a thread of its own, driven by an event-manager
//! loop over two kinds of eventfd: the notifier the function signals
//! (from a vCPU's register write) and the ioeventfds behind its doorbells
//! (which KVM signals without leaving the kernel). A vCPU never runs a
//! DMA: it writes a register or rings a doorbell and returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use pcie_core::{DeviceWorker, Notifier};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use crate::error::{Error, Result};

/// How often a device thread looks at its stop flag, in milliseconds.
const POLL_MS: i32 = 100;

/// The function's side of the notifier: an eventfd write.
pub struct EventNotifier(EventFd);

impl Notifier for EventNotifier {
    fn notify(&self) {
        // EAGAIN (the counter is saturated) still leaves it readable.
        let _ = self.0.write(1);
    }
}

/// A device's worker and the eventfds that wake it, before its thread runs.
pub struct DeviceThread {
    name: String,
    notify: EventFd,
    doorbells: Vec<EventFd>,
    worker: Box<dyn DeviceWorker>,
}

/// Event data of the notifier; doorbell `i` is `i + 1`.
const NOTIFY: u32 = 0;

impl DeviceThread {
    /// A thread for the worker `make` builds from the notifier (for the
    /// function), with one ioeventfd per doorbell: `make` also says how
    /// many doorbells the function has.
    pub fn new(
        name: &str,
        make: impl FnOnce(Arc<dyn Notifier>) -> Result<(Box<dyn DeviceWorker>, usize)>,
    ) -> Result<Self> {
        let fd = || EventFd::new(libc::EFD_NONBLOCK).map_err(|e| Error::io("eventfd", e));
        let notify = fd()?;
        let notifier = EventNotifier(notify.try_clone().map_err(|e| Error::io("eventfd", e))?);
        let (worker, doorbells) = make(Arc::new(notifier))?;
        let doorbells = (0..doorbells).map(|_| fd()).collect::<Result<_>>()?;
        Ok(DeviceThread {
            name: name.to_owned(),
            notify,
            doorbells,
            worker,
        })
    }

    /// The eventfds behind the doorbells (duplicates), for the VMM to
    /// register as ioeventfds where the doorbells' BAR decodes.
    pub fn doorbell_fds(&self) -> Result<Vec<EventFd>> {
        self.doorbells
            .iter()
            .map(|fd| fd.try_clone().map_err(|e| Error::io("eventfd", e)))
            .collect()
    }

    /// Starts the thread; it runs until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
        let name = format!("dev-{}", self.name);
        let mut em: EventManager<DeviceThread> =
            EventManager::new().map_err(|e| Error::Memory(format!("event manager: {e:?}")))?;
        em.add_subscriber(self);
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if let Err(e) = em.run_with_timeout(POLL_MS) {
                        log::warn!("device thread: {e:?}");
                        return;
                    }
                }
            })
            .map_err(|e| Error::io("spawning a device thread", e))
    }
}

impl MutEventSubscriber for DeviceThread {
    /// Registers the notifier and every doorbell (a device with queues
    /// that come and go would add those on activation instead).
    fn init(&mut self, ops: &mut EventOps) {
        let mut add = |fd: &EventFd, data| {
            if let Err(e) = ops.add(Events::with_data(fd, data, EventSet::IN)) {
                log::warn!("device thread: cannot watch an eventfd: {e:?}");
            }
        };
        add(&self.notify, NOTIFY);
        for (i, fd) in self.doorbells.iter().enumerate() {
            add(fd, i as u32 + 1);
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        match events.data() {
            NOTIFY => {
                let _ = self.notify.read();
                self.worker.notified();
            }
            d => {
                let i = d as usize - 1;
                if let Some(fd) = self.doorbells.get(i) {
                    let _ = fd.read();
                    self.worker.doorbell(i);
                }
            }
        }
    }
}
