//! The CPU's ways into the PCIe fabric: the ECAM window (MCFG), the legacy
//! 0xCF8/0xCFC mechanism, and the MMIO apertures. All forward to the
//! fabric, which answers all ones where nothing decodes.
//!
//! None of them takes a lock of its own: they are registered with
//! vm-device as shared (`&self`) devices, so vCPUs reach the fabric in
//! parallel, and the fabric locks only the one function an access reaches.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pcie_core::{cf8_decode, ecam_decode, Bdf, Fabric};

use super::barmap::BarFollower;
use vm_device::bus::{MmioAddress, MmioAddressOffset, PioAddress, PioAddressOffset};
use vm_device::{DeviceMmio, DevicePio};

/// The fabric, shared by the access mechanisms and the devices' DMA.
pub type SharedConfigBus = Arc<Fabric>;

fn access(
    bus: &SharedConfigBus,
    bars: &BarFollower,
    target: Option<(Bdf, u16)>,
    data: &mut [u8],
    write: Option<&[u8]>,
) {
    let Some((bdf, reg)) = target else {
        data.fill(0xff);
        return;
    };
    match write {
        Some(w) => {
            let done = bus.config_write_node(bdf, reg, w);
            if !done.moved.is_empty() {
                log::trace!("config write {bdf} {reg:#x}: {:?}", done.moved);
            }
            bars.apply(&done.moved);
        }
        None => bus.config_read(bdf, reg, data),
    }
}

/// Valid config accesses are 1, 2 or 4 bytes and naturally aligned.
fn aligned(offset: u64, len: usize) -> bool {
    matches!(len, 1 | 2 | 4) && offset.is_multiple_of(len as u64)
}

/// The memory-mapped enhanced configuration access mechanism.
pub struct Ecam {
    bus: SharedConfigBus,
    bars: Arc<BarFollower>,
}

impl Ecam {
    /// ECAM in front of `bus`; `bars` follows BAR moves.
    pub fn new(bus: SharedConfigBus, bars: Arc<BarFollower>) -> Self {
        Ecam { bus, bars }
    }
}

impl DeviceMmio for Ecam {
    fn mmio_read(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        if !aligned(offset, data.len()) {
            data.fill(0xff);
            return;
        }
        access(&self.bus, &self.bars, ecam_decode(offset), data, None);
    }

    fn mmio_write(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        if aligned(offset, data.len()) {
            access(
                &self.bus,
                &self.bars,
                ecam_decode(offset),
                &mut [],
                Some(data),
            );
        }
    }
}

/// Configuration mechanism #1: address latch at 0xCF8, data window at
/// 0xCFC. The latch is one platform-wide register, as on hardware (an
/// atomic, not a lock: the OS serialises its users itself).
pub struct ConfigIo {
    bus: SharedConfigBus,
    bars: Arc<BarFollower>,
    address: AtomicU32,
}

impl ConfigIo {
    /// 0xCF8/0xCFC in front of `bus`; registered over ports 0xCF8..=0xCFF.
    pub fn new(bus: SharedConfigBus, bars: Arc<BarFollower>) -> Self {
        ConfigIo {
            bus,
            bars,
            address: AtomicU32::new(0),
        }
    }

    fn target(&self, byte: u16) -> Option<(Bdf, u16)> {
        cf8_decode(self.address.load(Ordering::Acquire)).map(|(bdf, reg)| (bdf, reg + byte))
    }
}

impl DevicePio for ConfigIo {
    fn pio_read(&self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        match offset {
            0..=3 => {
                let bytes = self.address.load(Ordering::Acquire).to_le_bytes();
                for (i, d) in data.iter_mut().enumerate() {
                    *d = bytes.get(offset as usize + i).copied().unwrap_or(0xff);
                }
            }
            4..=7 if aligned(u64::from(offset - 4), data.len()) => {
                let t = self.target(offset - 4);
                access(&self.bus, &self.bars, t, data, None);
            }
            _ => data.fill(0xff),
        }
    }

    fn pio_write(&self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        match offset {
            0..=3 => {
                let update = |old: u32| {
                    let mut bytes = old.to_le_bytes();
                    for (i, d) in data.iter().enumerate() {
                        if let Some(b) = bytes.get_mut(offset as usize + i) {
                            *b = *d;
                        }
                    }
                    Some(u32::from_le_bytes(bytes))
                };
                let _ = self
                    .address
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, update);
            }
            4..=7 if aligned(u64::from(offset - 4), data.len()) => {
                let t = self.target(offset - 4);
                access(&self.bus, &self.bars, t, &mut [], Some(data));
            }
            _ => {}
        }
    }
}

/// A CPU MMIO aperture (32- or 64-bit) of the host bridge: accesses are
/// routed by bridge windows and BARs; undecoded ones master-abort.
pub struct Aperture {
    fabric: SharedConfigBus,
    base: u64,
}

impl Aperture {
    /// The aperture starting at guest physical `base`.
    pub fn new(fabric: SharedConfigBus, base: u64) -> Self {
        Aperture { fabric, base }
    }
}

impl DeviceMmio for Aperture {
    fn mmio_read(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.fabric.mmio_read(self.base + offset, data);
    }

    fn mmio_write(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.fabric.mmio_write(self.base + offset, data);
    }
}
