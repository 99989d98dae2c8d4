//! A rig for the PVRDMA function and a small driver in Rust that does
//! what Linux's `vmw_pvrdma` does: one RNIC slot (vmxnet3 at function 0,
//! PVRDMA at function 1) below a root port, 32 MiB of guest RAM, each
//! engine on a thread of its own (register writes wait for it, as on a
//! real device thread).
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use pcie_core::{
    cap_id, capabilities, enumerate, msix_control, Apertures, DeviceWorker, DmaHandle, Fabric,
    GuestRam, InterruptSink, NodeId, NodeKind, Notifier, PciFunction, RcP2pPolicy, VecRam,
};
use pcie_switch::{PciBridge, PortKind};
use rnic::pvrdma::regs::{cmd, ctl, dsr, reg};
use rnic::pvrdma::{Pvrdma, PvrdmaConfig, PvrdmaEngine};
use rnic::vmxnet3::{Vmxnet3, Vmxnet3Config};
use rnic::Wire;

pub const RAM_SIZE: usize = 64 << 20;
pub const MSI_ADDR: u32 = 0xfee0_0000;
pub const DSR: u64 = 0x10_0000;
pub const CMD_SLOT: u64 = 0x11_0000;
pub const RESP_SLOT: u64 = 0x12_0000;
pub const ASYNC_PDIR: u64 = 0x13_0000;
pub const CQ_PDIR: u64 = 0x14_0000;
/// Free memory for page directories and rings, bumped by `alloc`.
pub const HEAP: u64 = 0x20_0000;
pub const MAC: [u8; 6] = [0x00, 0x50, 0x56, 0x50, 0x32, 0x07];

pub const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

/// Wakes a worker thread.
#[derive(Default)]
pub struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Notifier for Wake {
    fn notify(&self) {
        *self.flag.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl Wake {
    fn wait(&self) {
        let g = self.flag.lock().unwrap();
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, std::time::Duration::from_millis(20), |f| !*f)
            .unwrap();
        *g = false;
    }
}

/// Records every interrupt message.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<(u64, u32)>>);

impl InterruptSink for Recorder {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((addr, data));
        true
    }
    fn set_level(&self, _: u32, _: bool) {}
}

pub struct Rig {
    pub fabric: Arc<Fabric>,
    pub ram: Arc<VecRam>,
    pub irqs: Arc<Recorder>,
    pub id: NodeId,
    pub engine: Arc<Mutex<PvrdmaEngine>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    heap: Mutex<u64>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Rig {
    pub fn new() -> Rig {
        Rig::on(&Wire::new(), MAC)
    }

    /// An RNIC with `mac` on `wire` (two rigs on one wire are two hosts).
    pub fn on(wire: &Arc<Wire>, mac: [u8; 6]) -> Rig {
        let fabric = Arc::new(Fabric::new(
            vec![(0, RAM_SIZE as u64)],
            RcP2pPolicy::Forward,
        ));
        let ram = VecRam::new(RAM_SIZE);
        let irqs = Arc::new(Recorder::default());
        assert!(fabric.set_interrupt_sink(irqs.clone()));
        let rp = fabric
            .add(
                None,
                1,
                0,
                "rp",
                NodeKind::RootPort,
                PciBridge::simple(PortKind::RootPort, 1, None),
            )
            .unwrap();
        let wake0 = Arc::new(Wake::default());
        fabric
            .add_with(Some(rp), 0, 0, "nic", NodeKind::Endpoint, |id| {
                let r: Arc<dyn GuestRam> = ram.clone();
                let cfg = Vmxnet3Config {
                    mac: MAC,
                    multifunction: true,
                    ..Vmxnet3Config::default()
                };
                let (f, _e) = Vmxnet3::new(
                    &cfg,
                    DmaHandle::new(fabric.clone(), id, r),
                    wake0.clone(),
                    wire,
                )?;
                Ok::<Box<dyn PciFunction>, rnic::Error>(Box::new(f))
            })
            .unwrap();
        let wake = Arc::new(Wake::default());
        let mut engine = None;
        let id = fabric
            .add_with(Some(rp), 0, 1, "rdma", NodeKind::Endpoint, |id| {
                let r: Arc<dyn GuestRam> = ram.clone();
                let cfg = PvrdmaConfig {
                    mac,
                    link_speed: pcie_core::LinkSpeed::Gt8,
                    link_width: 4,
                };
                let (f, e) = Pvrdma::new(
                    &cfg,
                    DmaHandle::new(fabric.clone(), id, r),
                    wake.clone(),
                    wire,
                )?;
                engine = Some(e);
                Ok::<Box<dyn PciFunction>, rnic::Error>(Box::new(f))
            })
            .unwrap();
        enumerate(&fabric, &APERTURES).unwrap();
        let engine = Arc::new(Mutex::new(engine.unwrap()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop, wake) = (engine.clone(), stop.clone(), wake.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    wake.wait();
                    engine.lock().unwrap().notified();
                }
            })
        };
        let rig = Rig {
            fabric,
            ram,
            irqs,
            id,
            engine,
            stop,
            thread: Some(thread),
            heap: Mutex::new(HEAP),
        };
        rig.cfg_write(4, &0x0006u16.to_le_bytes());
        rig.msix_on();
        rig
    }

    pub fn bar(&self, bar: u8) -> u64 {
        let regions = self.fabric.bar_regions(self.id);
        regions.iter().find(|r| r.index == bar).unwrap().addr
    }

    pub fn cfg_read(&self, off: u16) -> u32 {
        let bdf = self.fabric.bdf(self.id).unwrap();
        let mut b = [0; 4];
        self.fabric.config_read(bdf, off, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn cfg_write(&self, off: u16, data: &[u8]) {
        let bdf = self.fabric.bdf(self.id).unwrap();
        self.fabric.config_write(bdf, off, data);
    }

    /// MSI-X on; vector v sends data 0x50 + v.
    fn msix_on(&self) {
        let cap = capabilities(|o| self.cfg_read(o))
            .find(|c| c.id == cap_id::MSIX)
            .unwrap();
        for v in 0..3u64 {
            let e = self.bar(0) + 16 * v;
            for (i, x) in [MSI_ADDR, 0, 0x50 + v as u32, 0].into_iter().enumerate() {
                assert!(self.fabric.mmio_write(e + 4 * i as u64, &x.to_le_bytes()));
            }
        }
        self.cfg_write(cap.offset + 2, &msix_control::ENABLE.to_le_bytes());
    }

    /// Interrupts vector `v` sent so far.
    pub fn irqs(&self, v: u32) -> usize {
        let l = self.irqs.0.lock().unwrap();
        l.iter()
            .filter(|(a, d)| *a == u64::from(MSI_ADDR) && *d == 0x50 + v)
            .count()
    }

    pub fn read(&self, off: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.fabric.mmio_read(self.bar(1) + off, &mut b));
        u32::from_le_bytes(b)
    }

    pub fn write(&self, off: u64, v: u32) {
        assert!(self.fabric.mmio_write(self.bar(1) + off, &v.to_le_bytes()));
    }

    pub fn uar(&self, page: u64, off: u64, v: u32) {
        assert!(self
            .fabric
            .mmio_write(self.bar(2) + page * 4096 + off, &v.to_le_bytes()));
    }

    pub fn poke(&self, addr: u64, data: &[u8]) {
        assert!(self.ram.write(addr, data));
    }
    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.ram.read(addr, &mut v));
        v
    }
    pub fn poke64(&self, addr: u64, v: u64) {
        self.poke(addr, &v.to_le_bytes());
    }
    pub fn poke32(&self, addr: u64, v: u32) {
        self.poke(addr, &v.to_le_bytes());
    }
    pub fn peek32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.peek(addr, 4).try_into().unwrap())
    }

    /// `n` zeroed pages from the heap.
    pub fn alloc(&self, n: u64) -> u64 {
        let mut h = self.heap.lock().unwrap();
        let a = *h;
        *h += n * 4096;
        assert!(*h <= RAM_SIZE as u64, "rig heap exhausted");
        self.poke(a, &vec![0; (n * 4096) as usize]);
        a
    }

    /// A page directory over `n` fresh pages at `pdir` (or a fresh one):
    /// returns (pdir, first page). Pages are contiguous for the test's
    /// convenience; the device only sees the directory.
    pub fn page_dir(&self, n: u64) -> (u64, u64) {
        let pdir = self.alloc(1);
        let ntables = (n - 1) / 512 + 1;
        let tables = self.alloc(ntables);
        let pages = self.alloc(n);
        for t in 0..ntables {
            self.poke64(pdir + 8 * t, tables + 4096 * t);
        }
        for i in 0..n {
            self.poke64(tables + 8 * i, pages + 4096 * i);
        }
        (pdir, pages)
    }

    /// Writes the shared region as Linux does (version 20, slots, two
    /// 4-page event rings) and DSRLOW/DSRHIGH. Returns ERR.
    pub fn load_dsr(&self, tweak: impl FnOnce(&Rig)) -> u32 {
        self.poke(DSR, &[0; dsr::LEN]);
        self.poke32(DSR, 20);
        self.poke64(DSR + dsr::CMD_SLOT, CMD_SLOT);
        self.poke64(DSR + dsr::RESP_SLOT, RESP_SLOT);
        let (a, _) = self.page_dir(4);
        let (c, _) = self.page_dir(4);
        self.poke32(DSR + dsr::ASYNC_RING, 4);
        self.poke64(DSR + dsr::ASYNC_RING + 8, a);
        self.poke32(DSR + dsr::CQ_RING, 4);
        self.poke64(DSR + dsr::CQ_RING + 8, c);
        self.poke64(DSR + dsr::UAR_PFN, self.bar(2) >> 12);
        tweak(self);
        self.write(reg::DSRLOW, DSR as u32);
        self.write(reg::DSRHIGH, (DSR >> 32) as u32);
        self.read(reg::ERR)
    }

    /// Probe as far as Linux goes before its first command: DSR, caps,
    /// IMR 0, ACTIVATE (ERR must read 0).
    pub fn probe(&self) {
        assert_eq!(self.read(reg::VERSION), 20);
        assert_eq!(self.load_dsr(|_| {}), 0);
        self.write(reg::IMR, 0);
        self.write(reg::CTL, ctl::ACTIVATE);
        assert_eq!(self.read(reg::ERR), 0);
    }

    /// The caps the device wrote into the shared region.
    pub fn caps(&self) -> Vec<u8> {
        self.peek(DSR + dsr::CAPS, dsr::CAPS_LEN)
    }

    /// Runs command `code` with `payload` after the header: ERR and the
    /// response payload (after its header). Checks the ack and that
    /// vector 0 fired.
    pub fn command(&self, code: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let mut req = vec![0u8; cmd::REQ_LEN];
        req[8..12].copy_from_slice(&code.to_le_bytes());
        req[16..16 + payload.len()].copy_from_slice(payload);
        self.poke(CMD_SLOT, &req);
        self.poke(RESP_SLOT, &[0xee; cmd::RESP_LEN]);
        let before = self.irqs(0);
        self.write(reg::REQUEST, 0);
        let e = self.read(reg::ERR);
        let resp = self.peek(RESP_SLOT, cmd::RESP_LEN);
        assert_eq!(self.irqs(0), before + 1, "vector 0 after command {code}");
        assert_eq!(
            u32::from_le_bytes(resp[8..12].try_into().unwrap()),
            code | cmd::RESP,
            "ack of command {code}"
        );
        (e, resp[16..].to_vec())
    }

    /// A command that must succeed: its response payload.
    pub fn ok(&self, code: u32, payload: &[u8]) -> Vec<u8> {
        let (e, r) = self.command(code, payload);
        assert_eq!(e, 0, "command {code} failed");
        r
    }
}

/// Little-endian payload builder.
#[derive(Default)]
pub struct P(pub Vec<u8>);

impl P {
    pub fn at(mut self, off: usize, v: &[u8]) -> Self {
        if self.0.len() < off + v.len() {
            self.0.resize(off + v.len(), 0);
        }
        self.0[off..off + v.len()].copy_from_slice(v);
        self
    }
    pub fn u8(self, off: usize, v: u8) -> Self {
        self.at(off, &[v])
    }
    pub fn u16(self, off: usize, v: u16) -> Self {
        self.at(off, &v.to_le_bytes())
    }
    pub fn u32(self, off: usize, v: u32) -> Self {
        self.at(off, &v.to_le_bytes())
    }
    pub fn u64(self, off: usize, v: u64) -> Self {
        self.at(off, &v.to_le_bytes())
    }
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// CREATE_CQ of `cqe` entries: (err, handle).
pub fn create_cq(r: &Rig, cqe: u32) -> (u32, u32) {
    let n = 1 + (u64::from(cqe) * 64).div_ceil(4096);
    let (pdir, _) = r.page_dir(n);
    let (e, resp) = r.command(
        cmd::CREATE_CQ,
        &P::default()
            .u64(0, pdir)
            .u32(8, 0)
            .u32(12, cqe)
            .u32(16, n as u32)
            .0,
    );
    (e, u32_at(&resp, 0))
}

/// CREATE_QP of `kind` with `wr` work requests and `sge` SGEs each way
/// on `pd` and `cq`: (err, qpn, handle).
pub fn create_qp(r: &Rig, kind: u8, pd: u32, cq: u32, wr: u32, sge: u32) -> (u32, u32, u32) {
    let sq_stride = u64::from(80 + 16 * sge).next_power_of_two();
    let rq_stride = u64::from(16 + 16 * sge).next_power_of_two();
    let sq = (u64::from(wr) * sq_stride).div_ceil(4096);
    let rq = (u64::from(wr) * rq_stride).div_ceil(4096);
    let total = 1 + sq + rq;
    let (pdir, _) = r.page_dir(total);
    let p = P::default()
        .u64(0, pdir)
        .u32(8, pd)
        .u32(12, cq)
        .u32(16, cq)
        .u32(24, wr)
        .u32(28, wr)
        .u32(32, sge)
        .u32(36, sge)
        .u16(52, total as u16)
        .u16(54, sq as u16)
        .u8(59, kind);
    let (e, resp) = r.command(cmd::CREATE_QP, &p.0);
    (e, u32_at(&resp, 0), u32_at(&resp, 4))
}
