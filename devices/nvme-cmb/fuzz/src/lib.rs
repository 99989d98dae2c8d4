//! The fuzz targets' rig: a small copy of the controller tests' set-up
//! (`tests/common/mod.rs`). A root port and controller 0 (with a CMB)
//! below it, or a switch below the root port with controller 0 and
//! controller 1 (without a CMB) on its two downstream ports; 1 MiB of
//! guest RAM at 0; enumerated by the library firmware. The fuzz
//! target is the device thread: it runs the engine itself.

use std::sync::{Arc, Mutex};

use nvme_cmb::namespace::{BackingKind, NamespaceConfig};
use nvme_cmb::regs::reg;
use nvme_cmb::sqe::SQE_SIZE;
use nvme_cmb::{CmbConfig, CmbFlags, NvmeConfig, NvmeEngine};
use pcie_core::{DmaHandle, Fabric, GuestRam, NodeId, NodeKind, PciFunction, RcP2pPolicy};
use pcie_switch::PortKind;

mod parts;
mod program;

use parts::port;
pub use parts::{Sink, VecRam};

/// Guest RAM: 1 MiB at 0.
pub const RAM_SIZE: usize = 1 << 20;
/// The admin submission queue's base in RAM.
pub const ASQ: u64 = 0x1000;
/// The admin completion queue's base in RAM.
pub const ACQ: u64 = 0x2000;
/// Controller 0's CMB: the smallest the model allows.
pub const CMB_SIZE: u64 = 2 << 20;
/// Each namespace: 1 MiB of RAM.
pub const NS_SIZE: u64 = 1 << 20;

/// The configuration of controller `i`: two 1 MiB RAM namespaces (512-
/// and 4096-byte blocks) and, when `cmb` is given, a 2 MiB CMB.
pub fn config(i: u16, cmb: Option<CmbFlags>) -> NvmeConfig {
    let ns = |lba_size| NamespaceConfig {
        size: NS_SIZE,
        lba_size,
        backing: BackingKind::Ram,
    };
    NvmeConfig {
        serial: format!("FUZZ{i}"),
        model: "fuzz".into(),
        cmb: cmb.map(|flags| CmbConfig {
            size: CMB_SIZE,
            flags,
        }),
        namespaces: vec![ns(512), ns(4096)],
        cntlid: i + 1,
        ..NvmeConfig::default()
    }
}

/// CMB support bits from the low five bits of `b` (SQS, CQS, LISTS, RDS,
/// WDS).
pub fn cmb_flags(b: u8) -> CmbFlags {
    CmbFlags {
        sqs: b & 1 != 0,
        cqs: b & 2 != 0,
        lists: b & 4 != 0,
        rds: b & 8 != 0,
        wds: b & 16 != 0,
    }
}

/// The fabric, its RAM and the two controllers with their engines.
pub struct Rig {
    /// The fabric the controllers sit on.
    pub fabric: Arc<Fabric>,
    /// Guest RAM.
    pub ram: Arc<VecRam>,
    /// Each controller's node.
    pub ids: Vec<NodeId>,
    /// Each controller's engine (the fuzz target runs them).
    pub engines: Vec<NvmeEngine>,
}

impl Rig {
    /// The rig: controller 0 with a CMB advertising `flags`, below a root
    /// port; with `peer`, controller 1 (no CMB) too, and both behind a
    /// switch (enumerating the bigger fabric costs about twice as long).
    pub fn new(flags: CmbFlags, peer: bool) -> Rig {
        use NodeKind::*;
        let fabric = Arc::new(Fabric::new(
            vec![(0, RAM_SIZE as u64)],
            RcP2pPolicy::Forward,
        ));
        let ram = Arc::new(VecRam(Mutex::new(vec![0; RAM_SIZE])));
        let sink = Arc::new(Sink);
        assert!(fabric.set_interrupt_sink(sink.clone()));
        let f = &fabric;
        let rp = f
            .add(None, 1, 0, "rp", RootPort, port(PortKind::RootPort, 1))
            .unwrap();
        let mut cfgs = vec![config(0, Some(flags))];
        let mut parents = vec![rp];
        if peer {
            let usp = port(PortKind::SwitchUpstream, 0);
            let usp = f.add(Some(rp), 0, 0, "usp", SwitchUpstream, usp).unwrap();
            cfgs.push(config(1, None));
            parents.clear();
            for d in 0..2u8 {
                let p = port(PortKind::SwitchDownstream, d + 1);
                parents.push(f.add(Some(usp), d, 0, "dsp", SwitchDownstream, p).unwrap());
            }
        }
        let (mut ids, mut engines) = (Vec::new(), Vec::new());
        for (cfg, parent) in cfgs.into_iter().zip(parents) {
            let mut engine = None;
            let id = f
                .add_with(Some(parent), 0, 0, "nvme", Endpoint, |id| {
                    let r: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, r);
                    let (c, e) = nvme_cmb::new(&cfg, dma, sink.clone(), sink.clone())?;
                    engine = Some(e);
                    Ok::<Box<dyn PciFunction>, nvme_cmb::Error>(Box::new(c))
                })
                .unwrap();
            ids.push(id);
            engines.push(engine.unwrap());
        }
        let rig = Rig {
            fabric,
            ram,
            ids,
            engines,
        };
        rig.program(peer);
        rig
    }

    /// The bus address of BAR `bar` of controller `c` (0 when absent).
    pub fn bar(&self, c: usize, bar: u8) -> u64 {
        let Some(&id) = self.ids.get(c) else {
            return 0;
        };
        let regions = self.fabric.bar_regions(id);
        regions
            .iter()
            .find(|r| r.index == bar)
            .map_or(0, |r| r.addr)
    }

    /// A 32-bit register write to controller `c`'s BAR 0.
    pub fn write32(&self, c: usize, off: u64, v: u32) {
        self.fabric
            .mmio_write(self.bar(c, 0) + off, &v.to_le_bytes());
    }

    /// A 64-bit register write as two 32-bit ones.
    pub fn write64(&self, c: usize, off: u64, v: u64) {
        self.write32(c, off, v as u32);
        self.write32(c, off + 4, (v >> 32) as u32);
    }

    /// Runs controller `c`'s engine.
    pub fn run(&mut self, c: usize) {
        self.engines[c].run();
    }

    /// Writes `data` into guest RAM at `addr` (cut at the end of RAM).
    pub fn poke(&self, addr: u64, data: &[u8]) {
        let mut mem = self.ram.0.lock().unwrap();
        let at = (addr as usize) % RAM_SIZE;
        let n = data.len().min(RAM_SIZE - at);
        mem[at..at + n].copy_from_slice(&data[..n]);
    }

    /// Enables controller `c` with `entries`-entry admin queues at
    /// [`ASQ`]/[`ACQ`], memory page size 2^(12+`mps`), 64-byte SQEs and
    /// 16-byte CQEs.
    pub fn enable(&mut self, c: usize, entries: u32, mps: u32) {
        let n = entries - 1;
        self.write32(c, reg::AQA, n | (n << 16));
        self.write64(c, reg::ASQ, ASQ);
        self.write64(c, reg::ACQ, ACQ);
        self.write32(c, reg::CC, 1 | ((mps & 0xf) << 7) | (6 << 16) | (4 << 20));
        self.run(c);
    }

    /// Places the raw entry `sqe` at slot `tail` of the SQ at `sq` (RAM,
    /// or any bus address through the fabric) and rings SQ `qid`'s tail
    /// doorbell with `tail + 1` modulo `size`.
    pub fn submit(&self, c: usize, qid: u16, sq: u64, tail: u32, size: u32, sqe: &[u8; SQE_SIZE]) {
        let at = sq.wrapping_add(u64::from(tail) * SQE_SIZE as u64);
        if at < RAM_SIZE as u64 {
            self.poke(at, sqe);
        } else {
            self.fabric.mmio_write(at, sqe);
        }
        let next = (tail + 1) % size.max(1);
        self.write32(c, reg::DOORBELLS + 8 * u64::from(qid), next);
    }
}
