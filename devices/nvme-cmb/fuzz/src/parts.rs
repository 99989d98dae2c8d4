//! The rig's parts: sinks for notifications, doorbell switches and
//! interrupts, guest RAM over a vector, and the PCIe ports.

use std::sync::Mutex;

use pcie_core::{DoorbellControl, GuestRam, InterruptSink, Notifier};
use pcie_switch::{PciBridge, PortKind};

/// Notifications, doorbell switches and interrupts all go nowhere.
#[derive(Default)]
pub struct Sink;

impl Notifier for Sink {
    fn notify(&self) {}
}

impl DoorbellControl for Sink {
    fn set_eventfd(&self, _index: usize, _on: bool) {}
}

impl InterruptSink for Sink {
    fn deliver(&self, _addr: u64, _data: u32) -> bool {
        true
    }
}

/// Guest RAM over a vector.
pub struct VecRam(pub Mutex<Vec<u8>>);

impl GuestRam for VecRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let mem = self.0.lock().unwrap();
        let Ok(at) = usize::try_from(addr) else {
            return false;
        };
        match at.checked_add(buf.len()).and_then(|end| mem.get(at..end)) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let mut mem = self.0.lock().unwrap();
        let Ok(at) = usize::try_from(addr) else {
            return false;
        };
        match at
            .checked_add(buf.len())
            .and_then(|end| mem.get_mut(at..end))
        {
            Some(dst) => {
                dst.copy_from_slice(buf);
                true
            }
            None => false,
        }
    }
}

/// A root, switch upstream or switch downstream port with a device below.
pub(crate) fn port(kind: PortKind, port_number: u8) -> Box<PciBridge> {
    PciBridge::simple(kind, port_number, None)
}
