//! The rig the tests share: a root port, a switch with two downstream
//! ports and a test endpoint below each (A and B), 1 MiB of guest RAM at
//! 0, enumerated by the library firmware. Every port implements all of
//! ACS (with an 8-bit egress control vector), all disabled.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use p2pvm_testdev::{dma_reg, TestEndpoint, TestEndpointConfig, TestEngine, DMA_CAP_OFFSET};
use pcie_core::{
    acs_reg, enumerate, ext_cap_id, ext_capabilities, AcsBits, Apertures, BarMemory, Bdf,
    DmaHandle, EnumerationReport, Fabric, GuestRam, NodeId, NodeKind, Notifier, PciFunction,
    RcP2pPolicy,
};
use pcie_switch::{AcsConfig, PciBridge, PortKind};

/// A notifier that counts, standing in for the VMM's eventfd: the tests
/// run the engine themselves, as the device thread would.
#[derive(Default)]
pub struct Count(pub AtomicUsize);

impl Notifier for Count {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Guest RAM: 1 MiB at 0.
pub const RAM_SIZE: usize = 1 << 20;

/// The apertures the rig is enumerated with.
pub const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

/// Guest RAM over a vector.
pub struct VecRam(pub Mutex<Vec<u8>>);

impl GuestRam for VecRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let mem = self.0.lock().unwrap();
        let at = addr as usize;
        let Some(src) = mem.get(at..at + buf.len()) else {
            return false;
        };
        buf.copy_from_slice(src);
        true
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let mut mem = self.0.lock().unwrap();
        let at = addr as usize;
        let Some(dst) = mem.get_mut(at..at + buf.len()) else {
            return false;
        };
        dst.copy_from_slice(buf);
        true
    }
}

/// The enumerated rig.
pub struct Rig {
    pub fabric: Arc<Fabric>,
    pub ram: Arc<VecRam>,
    pub report: EnumerationReport,
    pub rp: NodeId,
    pub usp: NodeId,
    pub dsp1: NodeId,
    pub dsp2: NodeId,
    pub a: NodeId,
    pub b: NodeId,
    /// BAR 2 memory of A and B, from `bar_backing`.
    pub backing: [Arc<BarMemory>; 2],
    /// The engines of A and B: the tests are their device threads.
    pub engines: [Mutex<TestEngine>; 2],
    /// How often A and B notified their engines.
    pub notified: [Arc<Count>; 2],
}

pub fn port(kind: PortKind, port_number: u8) -> Box<PciBridge> {
    let downstream = kind != PortKind::SwitchUpstream;
    let acs = downstream.then_some(AcsConfig {
        capability: AcsBits::ALL,
        control: AcsBits::NONE,
        stuck: AcsBits::NONE,
        egress_vector_size: 8,
        egress_vector: 0,
    });
    PciBridge::simple(kind, port_number, acs)
}

impl Rig {
    /// The rig, with `bar2_size`-byte BAR 2s.
    pub fn with_bar2(bar2_size: u64) -> Rig {
        use NodeKind::*;
        let fabric = Arc::new(Fabric::new(
            vec![(0, RAM_SIZE as u64)],
            RcP2pPolicy::Forward,
        ));
        let ram = Arc::new(VecRam(Mutex::new(vec![0; RAM_SIZE])));
        let f = &fabric;
        let rp = f.add(None, 1, 0, "rp", RootPort, port(PortKind::RootPort, 1));
        let rp = rp.unwrap();
        let usp = f.add(
            Some(rp),
            0,
            0,
            "usp",
            SwitchUpstream,
            port(PortKind::SwitchUpstream, 0),
        );
        let usp = usp.unwrap();
        let dsp = |d: u8, name| {
            let p = port(PortKind::SwitchDownstream, d + 1);
            f.add(Some(usp), d, 0, name, SwitchDownstream, p).unwrap()
        };
        let (dsp1, dsp2) = (dsp(0, "dsp1"), dsp(1, "dsp2"));
        let cfg = TestEndpointConfig {
            bar2_size,
            ..TestEndpointConfig::default()
        };
        let ep = |parent, name| {
            let count = Arc::new(Count::default());
            let mut engine = None;
            let id = f
                .add_with(Some(parent), 0, 0, name, Endpoint, |id| {
                    let ram: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, ram);
                    let (ep, eng) = TestEndpoint::new(cfg, dma, count.clone())?;
                    engine = Some(eng);
                    Ok::<Box<dyn PciFunction>, p2pvm_testdev::Error>(Box::new(ep))
                })
                .unwrap();
            (id, Mutex::new(engine.unwrap()), count)
        };
        let (a, ea, ca) = ep(dsp1, "a");
        let (b, eb, cb) = ep(dsp2, "b");
        let backing = [a, b].map(|id| fabric.bar_backing(id, 2).unwrap());
        let report = enumerate(&fabric, &APERTURES).unwrap();
        Rig {
            fabric,
            ram,
            report,
            rp,
            usp,
            dsp1,
            dsp2,
            a,
            b,
            backing,
            engines: [ea, eb],
            notified: [ca, cb],
        }
    }

    /// The engine of endpoint `id` (A or B).
    pub fn engine(&self, id: NodeId) -> std::sync::MutexGuard<'_, TestEngine> {
        let i = if id == self.a { 0 } else { 1 };
        self.engines[i].lock().unwrap()
    }

    /// The rig with the default 1 MiB BAR 2s.
    pub fn new() -> Rig {
        Rig::with_bar2(p2pvm_testdev::DEFAULT_BAR2_SIZE)
    }

    pub fn bdf(&self, id: NodeId) -> Bdf {
        self.fabric.bdf(id).unwrap()
    }

    /// The bus address of BAR `bar` of `id`.
    pub fn bar(&self, id: NodeId, bar: u8) -> u64 {
        let regions = self.fabric.bar_regions(id);
        regions.iter().find(|r| r.index == bar).unwrap().addr
    }

    pub fn read32(&self, id: NodeId, off: u16) -> u32 {
        let mut b = [0; 4];
        self.fabric.config_read(self.bdf(id), off, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn write32(&self, id: NodeId, off: u16, v: u32) {
        self.fabric
            .config_write(self.bdf(id), off, &v.to_le_bytes());
    }

    /// Programs `id`'s DMA engine and sets GO, through config writes as
    /// setpci would; returns (STATUS, DONE).
    pub fn dma(&self, id: NodeId, src: u64, dst: u64, len: u32) -> (u32, u32) {
        let reg = |off| DMA_CAP_OFFSET + off;
        self.write32(id, reg(dma_reg::SRC_LO), src as u32);
        self.write32(id, reg(dma_reg::SRC_HI), (src >> 32) as u32);
        self.write32(id, reg(dma_reg::DST_LO), dst as u32);
        self.write32(id, reg(dma_reg::DST_HI), (dst >> 32) as u32);
        self.write32(id, reg(dma_reg::LENGTH), len);
        self.write32(id, reg(dma_reg::CONTROL), 1);
        // The device thread's part.
        self.engine(id).run();
        let status = self.read32(id, reg(dma_reg::STATUS));
        (status, self.read32(id, reg(dma_reg::DONE)))
    }

    /// Writes ACS control of port `id`, found by walking its extended capabilities.
    pub fn set_acs(&self, id: NodeId, control: AcsBits) {
        let control = control.bits();
        let cap = ext_capabilities(|o| self.read32(id, o))
            .find(|c| c.id == ext_cap_id::ACS)
            .unwrap();
        let at = self.bdf(id);
        let off = cap.offset + acs_reg::CONTROL;
        self.fabric.config_write(at, off, &control.to_le_bytes());
    }

    /// `len` bytes of endpoint `which` (0 = A, 1 = B)'s BAR 2 memory at `offset`.
    pub fn peek(&self, which: usize, offset: usize, len: usize) -> Vec<u8> {
        let mem = &self.backing[which];
        assert!((offset + len) as u64 <= mem.len());
        let mut v = vec![0; len];
        mem.read(offset as u64, &mut v);
        v
    }
}

/// `len` bytes of a recognisable pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}
