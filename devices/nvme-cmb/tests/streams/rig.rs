//! The fabric: a root port, a switch with two downstream ports,
//! controller 0 (a CMB, two namespaces: 1 MiB of RAM in 512-byte blocks
//! and a 256 KiB file in 4 KiB blocks) and controller 1 (no CMB, only a
//! peer whose BARs commands may point at), over [`GuardRam`]. The test is
//! controller 0's device thread.

use std::path::Path;
use std::sync::{Arc, Mutex};

use nvme_cmb::namespace::{BackingKind, NamespaceConfig};
use nvme_cmb::{CmbConfig, CmbFlags, NvmeConfig, NvmeEngine};
use pcie_core::{
    enumerate, Apertures, DmaHandle, DoorbellControl, Fabric, GuestRam, InterruptSink, NodeKind,
    Notifier, PciFunction, RcP2pPolicy,
};
use pcie_switch::{PciBridge, PortKind};

use super::layout::{GuardRam, RAM_SIZE};

/// Controller 0's CMB.
pub const CMB_SIZE: u64 = 4 << 20;
/// Namespace 1: RAM, 512-byte blocks.
pub const NS1: (u64, u32) = (1 << 20, 512);
/// Namespace 2: a file, 4 KiB blocks.
pub const NS2: (u64, u32) = (256 << 10, 4096);

/// Where enumeration puts BARs and windows.
const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

/// Notifications, doorbell switches and interrupts: accepted, ignored.
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

/// A root, switch upstream or switch downstream port with a device below.
fn port(kind: PortKind, port_number: u8) -> Box<PciBridge> {
    PciBridge::simple(kind, port_number, None)
}

/// The fabric, its RAM and controller 0's engine.
pub struct Rig {
    /// The fabric.
    pub fabric: Arc<Fabric>,
    /// Guest RAM.
    pub ram: Arc<GuardRam>,
    /// Controller 0's engine.
    pub engine: Mutex<NvmeEngine>,
    /// BAR 0, BAR 2 (the CMB) and BAR 4 of controller 0, then BAR 0 and
    /// BAR 4 of controller 1.
    pub bars: [u64; 5],
}

/// Controller `i`'s configuration.
fn config(i: u16, cmb: Option<CmbFlags>, namespaces: Vec<NamespaceConfig>) -> NvmeConfig {
    NvmeConfig {
        serial: format!("STREAM{i}"),
        model: "streams".into(),
        cmb: cmb.map(|flags| CmbConfig {
            size: CMB_SIZE,
            flags,
        }),
        namespaces,
        cntlid: i + 1,
        ..NvmeConfig::default()
    }
}

impl Rig {
    /// The rig; controller 0's CMB advertises `flags`, its namespace 2 is
    /// the file at `ns2`.
    pub fn new(flags: CmbFlags, ns2: &Path) -> Rig {
        use NodeKind::*;
        let fabric = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], RcP2pPolicy::Forward));
        let ram = Arc::new(GuardRam::new());
        let sink = Arc::new(Sink);
        assert!(fabric.set_interrupt_sink(sink.clone()));
        let f = &fabric;
        let rp = port(PortKind::RootPort, 1);
        let rp = f.add(None, 1, 0, "rp", RootPort, rp).unwrap();
        let usp = port(PortKind::SwitchUpstream, 0);
        let usp = f.add(Some(rp), 0, 0, "usp", SwitchUpstream, usp).unwrap();
        let ns = |(size, lba_size), backing| NamespaceConfig {
            size,
            lba_size,
            backing,
        };
        let cfgs = [
            config(
                0,
                Some(flags),
                vec![
                    ns(NS1, BackingKind::Ram),
                    ns(NS2, BackingKind::File(ns2.to_path_buf())),
                ],
            ),
            config(1, None, vec![ns((64 << 10, 512), BackingKind::Ram)]),
        ];
        let (mut ids, mut engines) = (Vec::new(), Vec::new());
        for (d, cfg) in cfgs.iter().enumerate() {
            let p = port(PortKind::SwitchDownstream, d as u8 + 1);
            let dsp = f.add(Some(usp), d as u8, 0, "dsp", SwitchDownstream, p);
            let mut engine = None;
            let id = f
                .add_with(Some(dsp.unwrap()), 0, 0, "nvme", Endpoint, |id| {
                    let r: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, r);
                    let (c, e) = nvme_cmb::new(cfg, dma, sink.clone(), sink.clone())?;
                    engine = Some(e);
                    Ok::<Box<dyn PciFunction>, nvme_cmb::Error>(Box::new(c))
                })
                .unwrap();
            ids.push(id);
            engines.push(engine.unwrap());
        }
        enumerate(&fabric, &APERTURES).unwrap();
        let bar = |c: usize, bar: u8| {
            let regions = fabric.bar_regions(ids[c]);
            regions.iter().find(|r| r.index == bar).unwrap().addr
        };
        let bars = [bar(0, 0), bar(0, 2), bar(0, 4), bar(1, 0), bar(1, 4)];
        Rig {
            engine: Mutex::new(engines.swap_remove(0)),
            fabric,
            ram,
            bars,
        }
    }

    /// Controller 0's CMB (its bus address).
    pub fn cmb(&self) -> u64 {
        self.bars[1]
    }

    /// Runs controller 0's engine.
    pub fn run(&self) {
        self.engine.lock().unwrap().run();
    }

    /// Reads a register of controller 0.
    pub fn read32(&self, off: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.fabric.mmio_read(self.bars[0] + off, &mut b));
        u32::from_le_bytes(b)
    }

    /// Writes `data` at `off` in controller 0's BAR 0.
    pub fn write(&self, off: u64, data: &[u8]) {
        assert!(self.fabric.mmio_write(self.bars[0] + off, data));
    }

    /// Writes a register of controller 0.
    pub fn write32(&self, off: u64, v: u32) {
        self.write(off, &v.to_le_bytes());
    }

    /// The host CPU writes bus address `addr`: RAM, or a BAR by MMIO.
    pub fn host_write(&self, addr: u64, data: &[u8]) {
        if addr < RAM_SIZE {
            self.ram.poke(addr, data);
        } else {
            assert!(self.fabric.mmio_write(addr, data), "MMIO at {addr:#x}");
        }
    }

    /// The host CPU reads bus address `addr`.
    pub fn host_read(&self, addr: u64, len: usize) -> Vec<u8> {
        if addr < RAM_SIZE {
            return self.ram.peek(addr, len);
        }
        let mut v = vec![0; len];
        assert!(self.fabric.mmio_read(addr, &mut v), "MMIO at {addr:#x}");
        v
    }
}
