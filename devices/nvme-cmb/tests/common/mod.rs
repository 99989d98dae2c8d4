//! The rig the controller tests share, and a small NVMe host driver in
//! Rust: a root port, a switch with two downstream ports, controller 0
//! (with a CMB) and controller 1 (without) below them, 8 MiB of guest RAM
//! at 0, enumerated by the library firmware. The tests are the device
//! threads: they run each engine themselves.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nvme_cmb::namespace::{BackingKind, NamespaceConfig};
use nvme_cmb::regs::reg;
use nvme_cmb::sqe::{Command, Completion, CQE_SIZE, SQE_SIZE};
use nvme_cmb::{CmbConfig, CmbFlags, NvmeConfig, NvmeEngine};
use pcie_core::{cap_id, capabilities, msix_control};
use pcie_core::{
    enumerate, Apertures, DmaHandle, DoorbellControl, Fabric, GuestRam, InterruptSink, NodeId,
    NodeKind, Notifier, PciFunction, RcP2pPolicy,
};
use pcie_switch::{PciBridge, PortKind};

/// Guest RAM: 8 MiB at 0.
pub const RAM_SIZE: usize = 8 << 20;
/// Where the driver keeps things in RAM.
pub const ASQ: u64 = 0x1_0000;
pub const ACQ: u64 = 0x2_0000;
pub const IOSQ: u64 = 0x3_0000;
pub const IOCQ: u64 = 0x4_0000;
pub const PRP_LISTS: u64 = 0x5_0000;
pub const DATA: u64 = 0x10_0000;
/// The namespace: 16 MiB of RAM, 512-byte blocks.
pub const NS_SIZE: u64 = 16 << 20;
/// Controller 0's CMB.
pub const CMB_SIZE: u64 = 4 << 20;

pub const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

#[derive(Default)]
pub struct Count(pub AtomicUsize);

impl Notifier for Count {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records which doorbells the engine put on their ioeventfd.
#[derive(Default)]
pub struct Bells(pub Mutex<std::collections::BTreeSet<usize>>);

impl DoorbellControl for Bells {
    fn set_eventfd(&self, index: usize, on: bool) {
        let mut s = self.0.lock().unwrap();
        if on {
            s.insert(index);
        } else {
            s.remove(&index);
        }
    }
}

impl Bells {
    /// The function doorbells on an ioeventfd now.
    pub fn on(&self) -> Vec<usize> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

/// Guest RAM over a vector.
pub struct VecRam(pub Mutex<Vec<u8>>);

impl GuestRam for VecRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let mem = self.0.lock().unwrap();
        let at = addr as usize;
        match mem.get(at..at + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let mut mem = self.0.lock().unwrap();
        let at = addr as usize;
        match mem.get_mut(at..at + buf.len()) {
            Some(dst) => {
                dst.copy_from_slice(buf);
                true
            }
            None => false,
        }
    }

    /// The vector never grows or moves, so its buffer serves mapped DMA
    /// (the file pool's `preadv`/`pwritev`) like guest RAM's mmap does.
    fn host_range(&self, addr: u64, len: usize) -> Option<std::ptr::NonNull<u8>> {
        let mut mem = self.0.lock().unwrap();
        let at = usize::try_from(addr).ok()?;
        mem.get_mut(at..at.checked_add(len)?)?;
        std::ptr::NonNull::new(mem.as_mut_ptr().wrapping_add(at))
    }
}

/// Records every interrupt message, and every INTx line change.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<(u64, u32)>>, pub Mutex<Vec<(u32, bool)>>);

impl InterruptSink for Recorder {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((addr, data));
        true
    }

    fn set_level(&self, gsi: u32, level: bool) {
        self.1.lock().unwrap().push((gsi, level));
    }
}

impl Recorder {
    /// The level line `gsi` was last set to (false if never).
    pub fn level(&self, gsi: u32) -> bool {
        let l = self.1.lock().unwrap();
        l.iter()
            .rev()
            .find(|(g, _)| *g == gsi)
            .is_some_and(|(_, v)| *v)
    }
}

fn port(kind: PortKind, port_number: u8) -> Box<PciBridge> {
    PciBridge::simple(kind, port_number, None)
}

/// A queue as the driver sees it.
#[derive(Debug, Clone, Copy)]
pub struct HostQueue {
    pub sq: u64,
    pub cq: u64,
    pub size: u32,
    pub tail: u32,
    pub head: u32,
    pub phase: bool,
    /// SQ entries are written through the CMB mapping, not RAM.
    pub sq_in_cmb: bool,
}

/// One controller and the driver's state for it.
pub struct Ctrl {
    pub id: NodeId,
    pub engine: Mutex<NvmeEngine>,
    pub notified: Arc<Count>,
    pub bells: Arc<Bells>,
    /// The driver's shadow doorbell and EventIdx pages, once configured.
    pub shadow: Mutex<Option<(u64, u64)>>,
    /// I/O doorbell writes that reached the register file (not an
    /// ioeventfd).
    pub mmio_rings: AtomicUsize,
    pub queues: Mutex<Vec<Option<HostQueue>>>,
    next_cid: AtomicUsize,
}

pub struct Rig {
    pub fabric: Arc<Fabric>,
    pub ram: Arc<VecRam>,
    pub irqs: Arc<Recorder>,
    pub ctrls: Vec<Ctrl>,
}

/// The configuration of controller `i` of the rig.
pub fn config(i: u16, cmb: Option<CmbFlags>) -> NvmeConfig {
    NvmeConfig {
        serial: format!("RIG{i}"),
        model: "rig".into(),
        cmb: cmb.map(|flags| CmbConfig {
            size: CMB_SIZE,
            flags,
        }),
        namespaces: vec![NamespaceConfig {
            size: NS_SIZE,
            lba_size: 512,
            backing: BackingKind::Ram,
        }],
        cntlid: i + 1,
        ..NvmeConfig::default()
    }
}

impl Rig {
    /// The rig: controller 0 with a CMB advertising `flags`, controller 1
    /// without; `cfgs` overrides both configurations when given.
    pub fn with(cfgs: [NvmeConfig; 2]) -> Rig {
        use NodeKind::*;
        let fabric = Arc::new(Fabric::new(
            vec![(0, RAM_SIZE as u64)],
            RcP2pPolicy::Forward,
        ));
        let ram = Arc::new(VecRam(Mutex::new(vec![0; RAM_SIZE])));
        let irqs = Arc::new(Recorder::default());
        assert!(fabric.set_interrupt_sink(irqs.clone()));
        let f = &fabric;
        let rp = f
            .add(None, 1, 0, "rp", RootPort, port(PortKind::RootPort, 1))
            .unwrap();
        let usp = f
            .add(
                Some(rp),
                0,
                0,
                "usp",
                SwitchUpstream,
                port(PortKind::SwitchUpstream, 0),
            )
            .unwrap();
        let mut ctrls = Vec::new();
        for (i, cfg) in cfgs.into_iter().enumerate() {
            let d = i as u8;
            let p = port(PortKind::SwitchDownstream, d + 1);
            let dsp = f.add(Some(usp), d, 0, "dsp", SwitchDownstream, p).unwrap();
            let count = Arc::new(Count::default());
            let bells = Arc::new(Bells::default());
            let mut engine = None;
            let id = f
                .add_with(Some(dsp), 0, 0, "nvme", Endpoint, |id| {
                    let r: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, r);
                    let (c, e) = nvme_cmb::new(&cfg, dma, count.clone(), bells.clone())?;
                    engine = Some(e);
                    Ok::<Box<dyn PciFunction>, nvme_cmb::Error>(Box::new(c))
                })
                .unwrap();
            ctrls.push(Ctrl {
                id,
                engine: Mutex::new(engine.unwrap()),
                notified: count,
                bells,
                shadow: Mutex::new(None),
                mmio_rings: AtomicUsize::new(0),
                queues: Mutex::new(vec![None; 65]),
                next_cid: AtomicUsize::new(1),
            });
        }
        enumerate(&fabric, &APERTURES).unwrap();
        Rig {
            fabric,
            ram,
            irqs,
            ctrls,
        }
    }

    /// Controller 0 with the default CMB, controller 1 without.
    pub fn new() -> Rig {
        Rig::with([config(0, Some(CmbFlags::default())), config(1, None)])
    }

    pub fn bar(&self, c: usize, bar: u8) -> u64 {
        let regions = self.fabric.bar_regions(self.ctrls[c].id);
        regions.iter().find(|r| r.index == bar).unwrap().addr
    }

    pub fn read32(&self, c: usize, off: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.fabric.mmio_read(self.bar(c, 0) + off, &mut b));
        u32::from_le_bytes(b)
    }

    pub fn read64(&self, c: usize, off: u64) -> u64 {
        u64::from(self.read32(c, off)) | (u64::from(self.read32(c, off + 4)) << 32)
    }

    pub fn write32(&self, c: usize, off: u64, v: u32) {
        assert!(self
            .fabric
            .mmio_write(self.bar(c, 0) + off, &v.to_le_bytes()));
    }

    pub fn write64(&self, c: usize, off: u64, v: u64) {
        self.write32(c, off, v as u32);
        self.write32(c, off + 4, (v >> 32) as u32);
    }

    /// The device thread's part: runs the engine, and again while file
    /// I/O is on its pool (as the pool's notifications would make it).
    pub fn run(&self, c: usize) {
        let mut e = self.engine(c);
        e.run();
        let t0 = std::time::Instant::now();
        while e.in_flight() > 0 {
            assert!(t0.elapsed().as_secs() < 20, "file I/O stalled");
            std::thread::sleep(std::time::Duration::from_micros(100));
            e.run();
        }
    }

    pub fn engine(&self, c: usize) -> MutexGuard<'_, NvmeEngine> {
        self.ctrls[c].engine.lock().unwrap()
    }

    pub fn poke(&self, addr: u64, data: &[u8]) {
        assert!(self.ram.write(addr, data));
    }

    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.ram.read(addr, &mut v));
        v
    }

    /// Writes `data` at bus address `addr` the way the host CPU would:
    /// RAM directly, BARs through the fabric's MMIO path.
    pub fn host_write(&self, addr: u64, data: &[u8]) {
        if addr < RAM_SIZE as u64 {
            self.poke(addr, data)
        } else {
            assert!(self.fabric.mmio_write(addr, data));
        }
    }

    pub fn host_read(&self, addr: u64, len: usize) -> Vec<u8> {
        if addr < RAM_SIZE as u64 {
            return self.peek(addr, len);
        }
        let mut v = vec![0; len];
        assert!(self.fabric.mmio_read(addr, &mut v));
        v
    }

    /// Enables controller `c` with `entries`-entry admin queues (page
    /// size 4 KiB, 64-byte SQEs, 16-byte CQEs); returns CSTS.
    pub fn enable_with(&self, c: usize, entries: u32) -> u32 {
        let n = entries - 1;
        self.write32(c, reg::AQA, n | (n << 16));
        self.write64(c, reg::ASQ, ASQ);
        self.write64(c, reg::ACQ, ACQ);
        self.write32(c, reg::CC, 1 | (6 << 16) | (4 << 20));
        self.run(c);
        self.ctrls[c].queues.lock().unwrap()[0] = Some(HostQueue {
            sq: ASQ,
            cq: ACQ,
            size: entries,
            tail: 0,
            head: 0,
            phase: true,
            sq_in_cmb: false,
        });
        self.read32(c, reg::CSTS)
    }

    /// Enables controller `c` with 32-entry admin queues and checks RDY.
    pub fn enable(&self, c: usize) {
        assert_eq!(self.enable_with(c, 32) & 1, 1, "CSTS.RDY");
    }

    /// Places `cmd` in SQ `qid` (giving it a fresh CID) and rings its
    /// doorbell. Returns the CID.
    pub fn submit(&self, c: usize, qid: u16, mut cmd: Command) -> u16 {
        let ctrl = &self.ctrls[c];
        cmd.cid = ctrl.next_cid.fetch_add(1, Ordering::SeqCst) as u16;
        let mut qs = ctrl.queues.lock().unwrap();
        let q = qs[usize::from(qid)].as_mut().expect("queue");
        let at = q.sq + u64::from(q.tail) * SQE_SIZE as u64;
        self.host_write(at, &cmd.to_bytes());
        q.tail = (q.tail + 1) % q.size;
        let (old, tail) = ((q.tail + q.size - 1) % q.size, q.tail);
        drop(qs);
        self.ring(c, 2 * usize::from(qid), old, tail);
        cmd.cid
    }

    /// Rings doorbell `index` (value `new`, previously `old`) the way
    /// Linux does: through the shadow buffer when it is configured (the
    /// register write only when EventIdx asks for it, and then it lands
    /// on the ioeventfd if the engine armed one), else the register.
    pub fn ring(&self, c: usize, index: usize, old: u32, new: u32) {
        let ctrl = &self.ctrls[c];
        let shadow = *ctrl.shadow.lock().unwrap();
        if let (Some((dbs, eis)), true) = (shadow, index >= 2) {
            let at = 4 * index as u64;
            self.poke(dbs + at, &new.to_le_bytes());
            let ei = u32::from_le_bytes(self.peek(eis + at, 4).try_into().unwrap());
            let need =
                (new.wrapping_sub(ei).wrapping_sub(1) as u16) < (new.wrapping_sub(old) as u16);
            if !need {
                return;
            }
            if ctrl.bells.on().contains(&(index - 2)) {
                // The ioeventfd takes it; the test runs the engine.
                return;
            }
        }
        if index >= 2 {
            ctrl.mmio_rings.fetch_add(1, Ordering::SeqCst);
        }
        self.write32(c, reg::DOORBELLS + 4 * index as u64, new);
    }

    /// The next completion on CQ `qid`, if one was posted (phase tag),
    /// and rings the CQ head doorbell.
    pub fn reap(&self, c: usize, qid: u16) -> Option<Completion> {
        let ctrl = &self.ctrls[c];
        let mut qs = ctrl.queues.lock().unwrap();
        let q = qs[usize::from(qid)].as_mut().expect("queue");
        let at = q.cq + u64::from(q.head) * CQE_SIZE as u64;
        let raw: [u8; CQE_SIZE] = self.host_read(at, CQE_SIZE).try_into().unwrap();
        let (cqe, phase) = Completion::parse(&raw);
        if phase != q.phase {
            return None;
        }
        let old = q.head;
        q.head = (q.head + 1) % q.size;
        if q.head == 0 {
            q.phase = !q.phase;
        }
        let head = q.head;
        drop(qs);
        self.ring(c, 2 * usize::from(qid) + 1, old, head);
        Some(cqe)
    }

    /// Submits `cmd` on `qid`, runs the engine, returns its completion.
    pub fn exec(&self, c: usize, qid: u16, cmd: Command) -> Completion {
        let cid = self.submit(c, qid, cmd);
        self.run(c);
        let cqe = self.reap(c, qid).expect("a completion");
        assert_eq!(cqe.cid, cid);
        cqe
    }

    /// Creates I/O queue pair `qid` (`entries` entries, vector `qid`), the
    /// SQ at `sq` (RAM or the CMB's bus address), the CQ in RAM.
    pub fn create_io_queue(&self, c: usize, qid: u16, entries: u32, sq: u64, cq: u64) {
        use nvme_cmb::sqe::admin_op;
        let q = u32::from(qid) | ((entries - 1) << 16);
        let cqe = self.exec(
            c,
            0,
            Command {
                opcode: admin_op::CREATE_IO_CQ,
                dptr: prp(cq, 0),
                cdw10: q,
                cdw11: 1 | 2 | (u32::from(qid) << 16),
                ..Command::default()
            },
        );
        assert!(cqe.status.is_success(), "create CQ: {}", cqe.status);
        let cqe = self.exec(
            c,
            0,
            Command {
                opcode: admin_op::CREATE_IO_SQ,
                dptr: prp(sq, 0),
                cdw10: q,
                cdw11: 1 | (u32::from(qid) << 16),
                ..Command::default()
            },
        );
        assert!(cqe.status.is_success(), "create SQ: {}", cqe.status);
        self.ctrls[c].queues.lock().unwrap()[usize::from(qid)] = Some(HostQueue {
            sq,
            cq,
            size: entries,
            tail: 0,
            head: 0,
            phase: true,
            sq_in_cmb: sq >= RAM_SIZE as u64,
        });
    }

    /// Enables controller `c`, grants queues and creates I/O queue 1 (32
    /// entries) in RAM.
    pub fn ready(&self, c: usize) {
        self.enable(c);
        self.create_io_queue(c, 1, 32, IOSQ, IOCQ);
    }
}

/// A data pointer of two PRP entries.
pub fn prp(prp1: u64, prp2: u64) -> [u8; 16] {
    let mut d = [0; 16];
    d[..8].copy_from_slice(&prp1.to_le_bytes());
    d[8..].copy_from_slice(&prp2.to_le_bytes());
    d
}

/// A Read (`write` false) or Write of `blocks` 512-byte blocks at `slba`.
pub fn rw(write: bool, slba: u64, blocks: u32, dptr: [u8; 16]) -> Command {
    Command {
        opcode: if write { 0x01 } else { 0x02 },
        nsid: 1,
        dptr,
        cdw10: slba as u32,
        cdw11: (slba >> 32) as u32,
        cdw12: blocks - 1,
        ..Command::default()
    }
}

/// `len` bytes of a recognisable pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 9) as u8)
        .collect()
}

/// Programs MSI-X vector `vector` of controller `c` with `addr`/`data`
/// and enables MSI-X.
pub fn msix_on(r: &Rig, c: usize, vector: u64, addr: u32, data: u32) {
    let bdf = r.fabric.bdf(r.ctrls[c].id).unwrap();
    let rd = |o| {
        let mut b = [0; 4];
        r.fabric.config_read(bdf, o, &mut b);
        u32::from_le_bytes(b)
    };
    let cap = capabilities(rd).find(|c| c.id == cap_id::MSIX).unwrap();
    let table = r.bar(c, 4) + 16 * vector;
    for (i, v) in [addr, 0, data, 0].into_iter().enumerate() {
        assert!(r.fabric.mmio_write(table + 4 * i as u64, &v.to_le_bytes()));
    }
    let on = msix_control::ENABLE;
    r.fabric
        .config_write(bdf, cap.offset + 2, &on.to_le_bytes());
}

/// A file in Cargo's temporary directory for integration tests (on the
/// build's disk, so the page cache can drop it), removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(what: &str) -> TempFile {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let p = dir.join(format!("nvme-{what}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The rig with controller 1's namespace in `file` (controller 0 keeps
/// its RAM namespace and CMB), controller 1 ready.
pub fn file_rig(file: &TempFile) -> Rig {
    let mut c1 = config(1, None);
    c1.namespaces = vec![NamespaceConfig {
        size: NS_SIZE,
        lba_size: 512,
        backing: BackingKind::File(file.0.clone()),
    }];
    let r = Rig::with([config(0, Some(CmbFlags::default())), c1]);
    r.ready(1);
    r
}
