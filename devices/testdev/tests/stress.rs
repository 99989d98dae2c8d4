//! The lock discipline under load: endpoints DMAing into each other's
//! BARs (RAM-backed BAR 2 and register BAR 0 alike) from their own device
//! threads, each completion an MSI-X message through the fabric, while
//! vCPU-like threads hammer config space and MMIO. Under the old design
//! (DMA inside the config write, under the requester's lock) two
//! endpoints writing into each other's BAR 0 deadlocked; here every copy
//! must finish, within a deadline, with its bytes intact.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::{pattern, port, VecRam, APERTURES, RAM_SIZE};
use p2pvm_testdev::{bar4, dma_reg, DmaStatus, TestEndpoint, TestEndpointConfig, DMA_CAP_OFFSET};
use pcie_core::{
    command, enumerate, msix_control, reg, Bdf, DeviceWorker, DmaHandle, Fabric, GuestRam,
    InterruptSink, NodeId, NodeKind, Notifier, PciFunction, RcP2pPolicy, MSI_RANGE,
};
use pcie_switch::PortKind;

/// Endpoints below the switch.
const N: usize = 4;
/// Copies per endpoint.
const ROUNDS: usize = 200;
/// Bytes per copy into the peer's BAR 2 (crossing several pages).
const BIG: usize = 0x5000;
/// Bytes per copy into the peer's BAR 0 scratch registers.
const SMALL: usize = 0x200;

/// A notifier that wakes a device thread.
#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Notifier for Wake {
    fn notify(&self) {
        *self.flag.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

impl Wake {
    /// Waits for a notification; false when `stop` is set.
    fn wait(&self, stop: &AtomicBool) -> bool {
        let mut f = self.flag.lock().unwrap();
        while !*f {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            f = self
                .cv
                .wait_timeout(f, Duration::from_millis(20))
                .unwrap()
                .0;
        }
        *f = false;
        true
    }
}

/// The interrupt controller: routes each message data to its waiter.
struct Apic(Mutex<HashMap<u32, Sender<u64>>>);

impl InterruptSink for Apic {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        match self.0.lock().unwrap().get(&data) {
            Some(tx) => tx.send(addr).is_ok(),
            None => false,
        }
    }
}

struct Wide {
    fabric: Arc<Fabric>,
    ram: Arc<VecRam>,
    eps: Vec<NodeId>,
    ports: Vec<NodeId>,
}

fn build() -> (Wide, Vec<(p2pvm_testdev::TestEngine, Arc<Wake>)>) {
    let fabric = Arc::new(Fabric::new(
        vec![(0, RAM_SIZE as u64)],
        RcP2pPolicy::Forward,
    ));
    let ram = Arc::new(VecRam(Mutex::new(vec![0; RAM_SIZE])));
    let f = &fabric;
    let rp = f
        .add(
            None,
            1,
            0,
            "rp",
            NodeKind::RootPort,
            port(PortKind::RootPort, 1),
        )
        .unwrap();
    let usp = f
        .add(
            Some(rp),
            0,
            0,
            "usp",
            NodeKind::SwitchUpstream,
            port(PortKind::SwitchUpstream, 0),
        )
        .unwrap();
    let mut eps = Vec::new();
    let mut ports = vec![rp, usp];
    let mut engines = Vec::new();
    for d in 0..N as u8 {
        let p = port(PortKind::SwitchDownstream, d + 1);
        let dsp = f
            .add(
                Some(usp),
                d,
                0,
                &format!("dsp{d}"),
                NodeKind::SwitchDownstream,
                p,
            )
            .unwrap();
        ports.push(dsp);
        let wake = Arc::new(Wake::default());
        let mut engine = None;
        let id = f
            .add_with(
                Some(dsp),
                0,
                0,
                &format!("ep{d}"),
                NodeKind::Endpoint,
                |id| {
                    let ram: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, ram);
                    let cfg = TestEndpointConfig::default();
                    let (ep, eng) = TestEndpoint::new(cfg, dma, wake.clone())?;
                    engine = Some(eng);
                    Ok::<Box<dyn PciFunction>, p2pvm_testdev::Error>(Box::new(ep))
                },
            )
            .unwrap();
        eps.push(id);
        engines.push((engine.unwrap(), wake));
    }
    enumerate(&fabric, &APERTURES).unwrap();
    (
        Wide {
            fabric,
            ram,
            eps,
            ports,
        },
        engines,
    )
}

impl Wide {
    fn bdf(&self, id: NodeId) -> Bdf {
        self.fabric.bdf(id).unwrap()
    }
    fn bar(&self, id: NodeId, bar: u8) -> u64 {
        let r = self.fabric.bar_regions(id);
        r.iter().find(|r| r.index == bar).unwrap().addr
    }
    fn write32(&self, id: NodeId, off: u16, v: u32) {
        self.fabric
            .config_write(self.bdf(id), off, &v.to_le_bytes());
    }
    fn read32(&self, id: NodeId, off: u16) -> u32 {
        let mut b = [0; 4];
        self.fabric.config_read(self.bdf(id), off, &mut b);
        u32::from_le_bytes(b)
    }
    fn msix_cap(&self, id: NodeId) -> u16 {
        pcie_core::capabilities(|o| self.read32(id, o))
            .find(|c| c.id == pcie_core::cap_id::MSIX)
            .unwrap()
            .offset
    }
    /// Points vector 0 of `id` at the APIC with data `data`, unmasked,
    /// and enables MSI-X, as a driver would.
    fn enable_msix(&self, id: NodeId, data: u32) {
        let table = self.bar(id, 4) + u64::from(bar4::MSIX_TABLE);
        let entry = [*MSI_RANGE.start() as u32, 0, data, 0];
        for (i, v) in entry.iter().enumerate() {
            assert!(self
                .fabric
                .mmio_write(table + 4 * i as u64, &v.to_le_bytes()));
        }
        let ctl = self.msix_cap(id) + 2;
        self.fabric
            .config_write(self.bdf(id), ctl, &msix_control::ENABLE.to_le_bytes());
    }
    /// Programs a copy and rings the doorbell (or sets GO).
    fn start(&self, id: NodeId, src: u64, dst: u64, len: usize, doorbell: bool) {
        let reg = |off| DMA_CAP_OFFSET + off;
        self.write32(id, reg(dma_reg::SRC_LO), src as u32);
        self.write32(id, reg(dma_reg::SRC_HI), (src >> 32) as u32);
        self.write32(id, reg(dma_reg::DST_LO), dst as u32);
        self.write32(id, reg(dma_reg::DST_HI), (dst >> 32) as u32);
        self.write32(id, reg(dma_reg::LENGTH), len as u32);
        if doorbell {
            let at = self.bar(id, 4) + bar4::DOORBELL;
            assert!(self.fabric.mmio_write(at, &1u32.to_le_bytes()));
        } else {
            self.write32(id, reg(dma_reg::CONTROL), 1);
        }
    }
}

/// One endpoint's driver: `ROUNDS` times, a RAM → peer BAR 2 copy and a
/// peer BAR 2 → next peer's BAR 0 copy, each waited for by its MSI-X
/// message and checked byte for byte through the CPU's view.
fn drive(w: &Wide, i: usize, irq: &Receiver<u64>) {
    let me = w.eps[i];
    let peer = w.eps[(i + 1) % N];
    let next = w.eps[(i + 2) % N];
    let src = (i * BIG) as u64;
    let big_dst = w.bar(peer, 2) + (i * BIG) as u64;
    let small_dst = w.bar(next, 0) + 0x800 + (i * SMALL) as u64;
    let wait = |what: &str| {
        let addr = irq
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("ep{i}: no interrupt for {what}"));
        assert_eq!(addr, *MSI_RANGE.start());
        let status = w.read32(me, DMA_CAP_OFFSET + dma_reg::STATUS);
        assert_eq!(status, DmaStatus::Done.code(), "ep{i} {what}");
    };
    for round in 0..ROUNDS {
        let data = pattern(BIG, (i * 37 + round) as u8);
        w.ram.0.lock().unwrap()[src as usize..src as usize + BIG].copy_from_slice(&data);
        w.start(me, src, big_dst, BIG, round % 2 == 0);
        wait("RAM to BAR 2");
        let mut got = vec![0; BIG];
        assert!(w.fabric.mmio_read(big_dst, &mut got));
        assert!(got == data, "ep{i} round {round}: BAR 2 copy differs");
        // Peer BAR 2 into the next peer's registers: the target's lock.
        w.start(me, big_dst, small_dst, SMALL, round % 2 == 1);
        wait("BAR 2 to BAR 0");
        let mut got = vec![0; SMALL];
        assert!(w.fabric.mmio_read(small_dst, &mut got));
        assert!(
            got == data[..SMALL],
            "ep{i} round {round}: BAR 0 copy differs"
        );
    }
}

#[test]
fn crossed_dma_with_interrupts_finishes_and_the_data_matches() {
    let (w, engines) = build();
    let w = Arc::new(w);
    let apic = Arc::new(Apic(Mutex::new(HashMap::new())));
    assert!(w.fabric.set_interrupt_sink(apic.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut irqs = Vec::new();
    for (i, &ep) in w.eps.iter().enumerate() {
        let (tx, rx) = channel();
        apic.0.lock().unwrap().insert(i as u32 + 0x40, tx);
        irqs.push(rx);
        w.enable_msix(ep, i as u32 + 0x40);
    }
    // Device threads.
    let mut devices = Vec::new();
    for (mut engine, wake) in engines {
        let stop = stop.clone();
        devices.push(thread::spawn(move || {
            while wake.wait(&stop) {
                engine.notified();
            }
        }));
    }
    // vCPU-like hammering: config reads everywhere, BAR 0 writes outside
    // the copies' ranges, BAR 2 reads, command rewrites (snapshot rebuilds).
    let mut hammers = Vec::new();
    for h in 0..2 {
        let (w, stop) = (w.clone(), stop.clone());
        hammers.push(thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for &id in w.ports.iter().chain(&w.eps) {
                    let _ = w.read32(id, (n % 64) as u16 * 4);
                }
                let ep = w.eps[(n as usize + h) % N];
                let at = w.bar(ep, 0) + 0x100 + 8 * h as u64;
                assert!(w.fabric.mmio_write(at, &n.to_le_bytes()));
                let mut b = [0; 8];
                assert!(w.fabric.mmio_read(at, &mut b));
                assert_eq!(u64::from_le_bytes(b), n);
                assert!(w.fabric.mmio_read(w.bar(ep, 2), &mut b));
                let cmd = (command::MEMORY_SPACE | command::BUS_MASTER).to_le_bytes();
                w.fabric.config_write(w.bdf(ep), reg::COMMAND, &cmd);
                n += 1;
            }
            n
        }));
    }
    let (done_tx, done_rx) = channel();
    let mut drivers = Vec::new();
    for (i, irq) in irqs.into_iter().enumerate() {
        let (w, done) = (w.clone(), done_tx.clone());
        drivers.push(thread::spawn(move || {
            drive(&w, i, &irq);
            let _ = done.send(i);
        }));
    }
    drop(done_tx);
    let mut finished = 0;
    while finished < N {
        match done_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(_) => finished += 1,
            // A driver panicked: join below reports it.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) => panic!("deadlock: {finished}/{N} drivers finished in 120 s"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for d in drivers {
        d.join().expect("a driver failed");
    }
    for h in hammers {
        assert!(h.join().expect("a hammer failed") > 0);
    }
    for d in devices {
        d.join().unwrap();
    }
    // Every completion was one MSI-X message up each endpoint's link.
    for &ep in &w.eps {
        let count = w.read32(ep, DMA_CAP_OFFSET + dma_reg::COUNT);
        assert_eq!(count as usize, 2 * ROUNDS);
    }
}
