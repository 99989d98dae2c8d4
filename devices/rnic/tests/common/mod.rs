//! The rig the vmxnet3 tests share, and a small vmxnet3 driver in Rust
//! that does what Linux's does: a root port, a switch with two downstream
//! ports, one NIC below each, both on one wire, 16 MiB of guest RAM at 0,
//! enumerated by the library firmware. The tests are the device threads:
//! they run each engine themselves.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pcie_core::{
    cap_id, capabilities, enumerate, msi_reg, Apertures, DmaHandle, Fabric, GuestRam,
    InterruptSink, NodeId, NodeKind, Notifier, PciFunction, RcP2pPolicy, VecRam,
};
use pcie_switch::{PciBridge, PortKind};
use rnic::vmxnet3::regs::{cmd, pt, vd};
use rnic::vmxnet3::{Vmxnet3, Vmxnet3Config, Vmxnet3Engine};
use rnic::Wire;

pub const RAM_SIZE: usize = 16 << 20;
pub const TX_RING: u32 = 32;
pub const RX_RING: u32 = 32;
pub const RX_BUF: u32 = 1522;
pub const MSI_ADDR: u32 = 0xfee0_0000;

pub const APERTURES: Apertures = Apertures {
    mmio32: (0xc000_0000, 0x2000_0000),
    mmio64: (0x40_0000_0000, 0x10_0000_0000),
    io: (0x1000, 0xffff),
};

/// Where NIC `n`'s driver keeps things in RAM.
pub fn base(n: usize) -> u64 {
    0x10_0000 * (n as u64 + 1)
}
pub fn ds(n: usize) -> u64 {
    base(n)
}
pub fn qdesc(n: usize) -> u64 {
    base(n) + 0x1000
}
pub fn tx_ring(n: usize) -> u64 {
    base(n) + 0x2000
}
pub fn tx_comp(n: usize) -> u64 {
    base(n) + 0x3000
}
pub fn rx_ring(n: usize) -> u64 {
    base(n) + 0x4000
}
pub fn rx_ring1(n: usize) -> u64 {
    base(n) + 0x5000
}
pub fn rx_comp(n: usize) -> u64 {
    base(n) + 0x6000
}
pub fn tx_buf(n: usize, i: u32) -> u64 {
    base(n) + 0x1_0000 + 0x4000 * u64::from(i)
}
pub fn rx_buf(n: usize, i: u32) -> u64 {
    base(n) + 0xa_0000 + 0x800 * u64::from(i)
}

#[derive(Default)]
pub struct Count(pub AtomicUsize);

impl Notifier for Count {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
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

    fn set_level(&self, _gsi: u32, _level: bool) {}
}

/// The driver's view of one NIC's rings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    pub tx_next: u32,
    pub tx_gen: bool,
    pub tcomp_next: u32,
    pub tcomp_gen: bool,
    pub rx_fill: u32,
    pub rx_gen_fill: bool,
    pub rcomp_next: u32,
    pub rcomp_gen: bool,
}

pub struct Nic {
    pub id: NodeId,
    pub engine: Mutex<Vmxnet3Engine>,
    pub notified: Arc<Count>,
    pub host: Mutex<Host>,
}

pub struct Rig {
    pub fabric: Arc<Fabric>,
    pub ram: Arc<VecRam>,
    pub irqs: Arc<Recorder>,
    pub wire: Arc<Wire>,
    pub nics: Vec<Nic>,
}

fn port(kind: PortKind, n: u8) -> Box<PciBridge> {
    PciBridge::simple(kind, n, None)
}

pub fn mac(n: usize) -> [u8; 6] {
    [0x00, 0x50, 0x56, 0xaa, 0x00, n as u8 + 1]
}

impl Rig {
    pub fn new() -> Rig {
        use NodeKind::*;
        let fabric = Arc::new(Fabric::new(
            vec![(0, RAM_SIZE as u64)],
            RcP2pPolicy::Forward,
        ));
        let ram = VecRam::new(RAM_SIZE);
        let irqs = Arc::new(Recorder::default());
        assert!(fabric.set_interrupt_sink(irqs.clone()));
        let wire = Wire::new();
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
        let mut nics = Vec::new();
        for n in 0..2 {
            let d = n as u8;
            let p = port(PortKind::SwitchDownstream, d + 1);
            let dsp = f.add(Some(usp), d, 0, "dsp", SwitchDownstream, p).unwrap();
            let count = Arc::new(Count::default());
            let mut engine = None;
            let cfg = Vmxnet3Config {
                mac: mac(n),
                ..Vmxnet3Config::default()
            };
            let id = f
                .add_with(Some(dsp), 0, 0, "nic", Endpoint, |id| {
                    let r: Arc<dyn GuestRam> = ram.clone();
                    let dma = DmaHandle::new(fabric.clone(), id, r);
                    let (c, e) = Vmxnet3::new(&cfg, dma, count.clone(), &wire)?;
                    engine = Some(e);
                    Ok::<Box<dyn PciFunction>, rnic::Error>(Box::new(c))
                })
                .unwrap();
            nics.push(Nic {
                id,
                engine: Mutex::new(engine.unwrap()),
                notified: count,
                host: Mutex::new(Host::default()),
            });
        }
        enumerate(&fabric, &APERTURES).unwrap();
        let rig = Rig {
            fabric,
            ram,
            irqs,
            wire,
            nics,
        };
        for n in 0..2 {
            rig.bus_master(n);
            rig.msi_on(n);
        }
        rig
    }

    pub fn bar(&self, n: usize, bar: u8) -> u64 {
        let regions = self.fabric.bar_regions(self.nics[n].id);
        regions.iter().find(|r| r.index == bar).unwrap().addr
    }

    pub fn cfg_read(&self, n: usize, off: u16) -> u32 {
        let bdf = self.fabric.bdf(self.nics[n].id).unwrap();
        let mut b = [0; 4];
        self.fabric.config_read(bdf, off, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn cfg_write(&self, n: usize, off: u16, data: &[u8]) {
        let bdf = self.fabric.bdf(self.nics[n].id).unwrap();
        self.fabric.config_write(bdf, off, data);
    }

    fn bus_master(&self, n: usize) {
        self.cfg_write(n, 4, &0x0006u16.to_le_bytes());
    }

    /// MSI on, message `MSI_ADDR` / 0x40 + n.
    pub fn msi_on(&self, n: usize) {
        let cap = capabilities(|o| self.cfg_read(n, o))
            .find(|c| c.id == cap_id::MSI)
            .unwrap()
            .offset;
        self.cfg_write(n, cap + msi_reg::ADDRESS_LO, &MSI_ADDR.to_le_bytes());
        self.cfg_write(n, cap + msi_reg::ADDRESS_HI, &0u32.to_le_bytes());
        self.cfg_write(n, cap + msi_reg::DATA, &(0x40 + n as u16).to_le_bytes());
        self.cfg_write(n, cap + msi_reg::CONTROL, &msi_reg::ENABLE.to_le_bytes());
    }

    /// Interrupts NIC `n` sent so far.
    pub fn irqs(&self, n: usize) -> usize {
        let want = 0x40 + n as u32;
        let v = self.irqs.0.lock().unwrap();
        v.iter()
            .filter(|(a, d)| *a == u64::from(MSI_ADDR) && *d == want)
            .count()
    }

    pub fn read(&self, n: usize, bar: u8, off: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.fabric.mmio_read(self.bar(n, bar) + off, &mut b));
        u32::from_le_bytes(b)
    }

    pub fn write(&self, n: usize, bar: u8, off: u64, v: u32) {
        assert!(self
            .fabric
            .mmio_write(self.bar(n, bar) + off, &v.to_le_bytes()));
    }

    pub fn command(&self, n: usize, c: u32) -> u32 {
        self.write(n, 1, vd::CMD, c);
        self.read(n, 1, vd::CMD)
    }

    pub fn engine(&self, n: usize) -> MutexGuard<'_, Vmxnet3Engine> {
        self.nics[n].engine.lock().unwrap()
    }

    pub fn run(&self, n: usize) {
        self.engine(n).run();
    }

    pub fn run_all(&self) {
        for _ in 0..2 {
            self.run(0);
            self.run(1);
        }
    }

    pub fn poke(&self, addr: u64, data: &[u8]) {
        assert!(self.ram.write(addr, data));
    }

    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.ram.read(addr, &mut v));
        v
    }

    pub fn poke32(&self, addr: u64, v: u32) {
        self.poke(addr, &v.to_le_bytes());
    }

    pub fn poke64(&self, addr: u64, v: u64) {
        self.poke(addr, &v.to_le_bytes());
    }

    pub fn peek32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.peek(addr, 4).try_into().unwrap())
    }

    /// Writes the shared area and the queue descriptors as Linux does
    /// (one Tx and one Rx queue, automatic masking, one MSI vector),
    /// posts `RX_RING - 1` head buffers and activates; `tweak` may change
    /// the shared area and queue descriptors before activation.
    pub fn activate_with(&self, n: usize, tweak: impl FnOnce(&Rig)) -> u32 {
        // Zeroed rings, as the driver leaves them.
        self.poke(tx_ring(n), &vec![0; 0x5000]);
        self.poke(ds(n), &[0; 0x320]);
        self.poke32(ds(n), 0xbabe_fee1);
        self.poke64(ds(n) + 0x28, qdesc(n));
        self.poke32(ds(n) + 0x34, 512);
        self.poke32(ds(n) + 0x38, 1500);
        self.poke(ds(n) + 0x3e, &[1, 1]);
        self.poke(ds(n) + 0x50, &[1, 1, 0]);
        self.poke(qdesc(n), &[0; 512]);
        let t = qdesc(n);
        self.poke64(t + 0x10, tx_ring(n));
        self.poke64(t + 0x20, tx_comp(n));
        self.poke32(t + 0x38, TX_RING);
        self.poke32(t + 0x3c, TX_RING);
        self.poke32(t + 0x40, TX_RING);
        let r = qdesc(n) + 256;
        self.poke64(r + 0x10, rx_ring(n));
        self.poke64(r + 0x18, rx_ring1(n));
        self.poke64(r + 0x20, rx_comp(n));
        self.poke32(r + 0x38, RX_RING);
        self.poke32(r + 0x3c, 16);
        self.poke32(r + 0x40, RX_RING + 16);
        for i in 0..RX_RING - 1 {
            self.post_rx(n, i, true);
        }
        *self.nics[n].host.lock().unwrap() = Host {
            tx_gen: true,
            tcomp_gen: true,
            rx_fill: RX_RING - 1,
            rx_gen_fill: true,
            rcomp_gen: true,
            ..Host::default()
        };
        tweak(self);
        self.write(n, 1, vd::DSAL, ds(n) as u32);
        self.write(n, 1, vd::DSAH, (ds(n) >> 32) as u32);
        let r = self.command(n, cmd::ACTIVATE_DEV);
        self.run(n);
        self.write(n, 0, pt::IMR, 0);
        r
    }

    pub fn activate(&self, n: usize) {
        assert_eq!(self.activate_with(n, |_| {}), 0);
    }

    /// Rx descriptor `i` of NIC `n`: its head buffer, owned by the device
    /// when `gen` matches the device's.
    pub fn post_rx(&self, n: usize, i: u32, gen: bool) {
        let d = rx_ring(n) + 16 * u64::from(i);
        self.poke64(d, rx_buf(n, i));
        self.poke32(d + 8, RX_BUF | u32::from(gen) << 31);
        self.poke32(d + 12, 0);
    }

    /// Puts a packet of `bufs` on NIC `n`'s Tx ring the way Linux does
    /// (the SOP's generation flipped last), with offload mode `om`,
    /// `hlen` and `msscof` on the SOP, and rings TXPROD. Returns the EOP
    /// index.
    pub fn post_tx(&self, n: usize, bufs: &[Vec<u8>], om: u32, hlen: u32, msscof: u32) -> u32 {
        let mut h = self.nics[n].host.lock().unwrap();
        let sop = h.tx_next;
        let sop_gen = h.tx_gen;
        let mut eop = sop;
        for (k, b) in bufs.iter().enumerate() {
            let i = h.tx_next;
            self.poke(tx_buf(n, i), b);
            let d = tx_ring(n) + 16 * u64::from(i);
            let last = k + 1 == bufs.len();
            // The SOP goes in with the wrong generation, fixed below.
            let gen = if k == 0 { !h.tx_gen } else { h.tx_gen };
            let len = (b.len() as u32) & 0x3fff;
            self.poke64(d, tx_buf(n, i));
            self.poke32(d + 8, len | u32::from(gen) << 14 | msscof << 18);
            let mut d3 = hlen | om << 10;
            if last {
                d3 |= 1 << 12 | 1 << 13;
            }
            self.poke32(d + 12, d3);
            eop = i;
            h.tx_next += 1;
            if h.tx_next == TX_RING {
                h.tx_next = 0;
                h.tx_gen = !h.tx_gen;
            }
        }
        let d = tx_ring(n) + 16 * u64::from(sop) + 8;
        let w = self.peek32(d) ^ (1 << 14);
        assert_eq!(w >> 14 & 1, u32::from(sop_gen));
        self.poke32(d, w);
        let next = h.tx_next;
        drop(h);
        self.write(n, 0, pt::TXPROD, next);
        eop
    }

    /// The Tx completions NIC `n` wrote since the last call (their
    /// descriptor indices).
    pub fn tx_done(&self, n: usize) -> Vec<u32> {
        let mut h = self.nics[n].host.lock().unwrap();
        let mut out = Vec::new();
        loop {
            let c = tx_comp(n) + 16 * u64::from(h.tcomp_next);
            let d3 = self.peek32(c + 12);
            if (d3 >> 31 != 0) != h.tcomp_gen {
                break;
            }
            out.push(self.peek32(c) & 0xfff);
            h.tcomp_next += 1;
            if h.tcomp_next == TX_RING {
                h.tcomp_next = 0;
                h.tcomp_gen = !h.tcomp_gen;
            }
        }
        out
    }

    /// The frames NIC `n` received since the last call, each buffer given
    /// back to the device (the driver's refill, no doorbell).
    pub fn rx_frames(&self, n: usize) -> Vec<Vec<u8>> {
        let mut h = self.nics[n].host.lock().unwrap();
        let mut out = Vec::new();
        loop {
            let c = rx_comp(n) + 16 * u64::from(h.rcomp_next);
            let d3 = self.peek32(c + 12);
            if (d3 >> 31 != 0) != h.rcomp_gen {
                break;
            }
            let d0 = self.peek32(c);
            assert_eq!(d0 & 0xc000, 0xc000, "SOP and EOP");
            assert_eq!(d0 >> 16 & 0x3ff, 0, "ring 0 of queue 0");
            assert_eq!(d3 >> 24 & 0x7f, 3, "an Rx completion");
            let idx = d0 & 0xfff;
            let len = (self.peek32(c + 8) & 0x3fff) as usize;
            out.push(self.peek(rx_buf(n, idx), len));
            h.rcomp_next += 1;
            if h.rcomp_next == RX_RING + 16 {
                h.rcomp_next = 0;
                h.rcomp_gen = !h.rcomp_gen;
            }
            // Refill: the next free descriptor becomes the device's.
            let (i, g) = (h.rx_fill, h.rx_gen_fill);
            self.post_rx(n, i, g);
            h.rx_fill += 1;
            if h.rx_fill == RX_RING {
                h.rx_fill = 0;
                h.rx_gen_fill = !h.rx_gen_fill;
            }
        }
        out
    }
}

/// An Ethernet frame from NIC `from` to NIC `to` of `len` bytes
/// (ethertype 0x88b5, local experimental) with a recognisable payload.
pub fn frame(from: usize, to: usize, len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&mac(to));
    f.extend_from_slice(&mac(from));
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((14..len).map(|i| (i as u8).wrapping_mul(13) ^ seed));
    f
}

/// The Internet checksum, written independently of the device's.
pub fn inet_sum(chunks: &[&[u8]]) -> u16 {
    let mut all = Vec::new();
    for c in chunks {
        all.extend_from_slice(c);
    }
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut s: u32 = 0;
    for w in all.chunks(2) {
        s += u32::from(w[0]) << 8 | u32::from(w[1]);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}
