//! What a device that does work has besides its registers: a worker that
//! runs on a device thread, never on a vCPU, woken by a notifier or by a
//! doorbell.
//!
//! A vCPU only ever writes a register or rings a doorbell and returns. The
//! function (the [`PciFunction`](crate::PciFunction), behind its fabric
//! lock) records what was asked and calls its [`Notifier`]; the
//! [`DeviceWorker`] then does the work (DMA, interrupts) holding no device
//! lock. In the VMM a notifier is an eventfd and a doorbell an ioeventfd;
//! tests call the worker themselves.

/// A doorbell: a register in a BAR whose writes carry no data the device
/// needs, only "look". The VMM backs it with an ioeventfd that follows
/// the BAR, so the guest's write never leaves the kernel; it wakes the
/// worker with [`DeviceWorker::doorbell`]. Where no ioeventfd is
/// registered, the write reaches the function's `bar_write`, which must
/// then do what the worker's `doorbell` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Doorbell {
    /// The BAR it is in.
    pub bar: u8,
    /// Its offset from the BAR's base.
    pub offset: u64,
    /// Whether it starts backed by its ioeventfd (see [`DoorbellControl`]).
    pub eventfd: bool,
}

/// Switches a function's doorbells between their ioeventfd and a trapped
/// write, at run time. A doorbell whose value the device needs (an NVMe
/// tail before the host set up shadow doorbells) must reach `bar_write`;
/// once the device reads the value elsewhere (the shadow buffer), its
/// ioeventfd can take the write without an exit. Doorbells start as
/// [`Doorbell::eventfd`] says.
pub trait DoorbellControl: Send + Sync {
    /// Backs doorbell `index` (in the order of
    /// [`doorbells`](crate::PciFunction::doorbells)) by its ioeventfd
    /// (`on`) or lets its writes reach `bar_write`. Never blocks on the
    /// device; a write racing with the switch may go either way.
    fn set_eventfd(&self, index: usize, on: bool);
}

/// How a function wakes its worker.
pub trait Notifier: Send + Sync {
    /// Wakes the worker, which then calls [`DeviceWorker::notified`]. Never
    /// blocks; several notifications may be seen as one.
    fn notify(&self);
}

/// The part of a device that does its work, on a thread of its own.
pub trait DeviceWorker: Send {
    /// Doorbell `index` (in the order of the function's
    /// [`doorbells`](crate::PciFunction::doorbells)) was rung.
    fn doorbell(&mut self, index: usize);
    /// The function called its [`Notifier`]: do whatever is due.
    fn notified(&mut self);
}
