//! [`Vmxnet3Engine`]: activation, transmit and receive, on the device's
//! thread. Every ring access and every payload goes through the
//! function's [`DmaHandle`]; the shared lock is taken only to take work
//! and to decide interrupts, never across a DMA.

use std::sync::Arc;

use pcie_core::{DeviceWorker, DmaHandle};

use super::desc::{rx_completion, tx_completion, Completion, Raw, RxDesc, TxDesc};
use super::offload;
use super::regs::{
    rxq, shared, txq, DESC_SIZE, MAX_QUEUES, MAX_RING_SIZE, MAX_TX_DESCS_PER_PKT, MAX_TX_FRAME,
    QUEUE_DESC_SIZE,
};
use super::state::Shared;
use crate::wire::WirePort;

/// A ring position: index and the generation the owner expects there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    base: u64,
    size: u32,
    next: u32,
    gen: bool,
}

impl Pos {
    fn new(base: u64, size: u32) -> Self {
        Pos {
            base,
            size,
            next: 0,
            gen: true,
        }
    }

    fn addr(&self) -> u64 {
        self.base.wrapping_add(u64::from(self.next) * DESC_SIZE)
    }

    fn advance(&mut self) {
        self.next += 1;
        if self.next == self.size {
            self.next = 0;
            self.gen = !self.gen;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct TxQueue {
    ring: Pos,
    comp: Pos,
    intr: usize,
}

#[derive(Debug, Clone, Copy)]
struct RxQueue {
    ring0: Pos,
    comp: Pos,
    intr: usize,
}

#[derive(Debug, Clone)]
struct Queues {
    tx: Vec<TxQueue>,
    rx: Vec<RxQueue>,
}

/// What the engine did since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vmxnet3Stats {
    /// Activations whose shared area and queues were accepted.
    pub activations: u64,
    /// Activations refused (bad magic, queue counts or ring sizes, or
    /// memory that could not be read).
    pub bad_activations: u64,
    /// Packets taken from the Tx rings and completed.
    pub tx_packets: u64,
    /// Frames sent on the wire (a TSO packet sends several).
    pub tx_frames: u64,
    /// Packets completed without being sent (malformed, or a DMA failed).
    pub tx_dropped: u64,
    /// Frames written to an Rx ring.
    pub rx_frames: u64,
    /// Frames dropped: no buffer, too big, too short, or a DMA failed.
    pub rx_dropped: u64,
    /// Interrupt messages sent.
    pub interrupts: u64,
}

/// The vmxnet3 engine: see the module documentation.
pub struct Vmxnet3Engine {
    shared: Arc<Shared>,
    dma: DmaHandle,
    port: WirePort,
    queues: Option<Queues>,
    epoch: u64,
    stats: Vmxnet3Stats,
}

impl std::fmt::Debug for Vmxnet3Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vmxnet3Engine")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn u32_at(b: &[u8], at: u64) -> u32 {
    let at = at as usize;
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: u64) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

fn ring_size(v: u32, max: u32) -> Option<u32> {
    (1..=max).contains(&v).then_some(v)
}

impl Vmxnet3Engine {
    pub(crate) fn new(shared: Arc<Shared>, dma: DmaHandle, port: WirePort) -> Self {
        Vmxnet3Engine {
            shared,
            dma,
            port,
            queues: None,
            epoch: 0,
            stats: Vmxnet3Stats::default(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> Vmxnet3Stats {
        self.stats
    }

    /// The handle its DMA goes through.
    pub fn dma_handle(&self) -> &DmaHandle {
        &self.dma
    }

    /// Reads the shared area at `dsa` and the queue descriptors it points
    /// to; `None` when anything is out of bounds.
    fn activate(&self, dsa: u64) -> Option<(Queues, bool)> {
        let mut ds = [0; shared::READ_LEN];
        self.dma.read(dsa, &mut ds).ok()?;
        if u32_at(&ds, shared::MAGIC_OFF) != shared::MAGIC {
            return None;
        }
        let ntx = usize::from(ds[shared::NUM_TX_QUEUES as usize]);
        let nrx = usize::from(ds[shared::NUM_RX_QUEUES as usize]);
        if !(1..=MAX_QUEUES).contains(&ntx) || !(1..=MAX_QUEUES).contains(&nrx) {
            return None;
        }
        let qpa = u64_at(&ds, shared::QUEUE_DESC_PA);
        let qlen = u64::from(u32_at(&ds, shared::QUEUE_DESC_LEN));
        let need = (ntx + nrx) as u64 * QUEUE_DESC_SIZE;
        if qlen < need {
            return None;
        }
        let mut descs = vec![0; need as usize];
        self.dma.read(qpa, &mut descs).ok()?;
        let mut tx = Vec::with_capacity(ntx);
        for q in descs.chunks_exact(QUEUE_DESC_SIZE as usize).take(ntx) {
            let size = ring_size(u32_at(q, txq::RING_SIZE), MAX_RING_SIZE)?;
            let comp = ring_size(u32_at(q, txq::COMP_RING_SIZE), MAX_RING_SIZE)?;
            tx.push(TxQueue {
                ring: Pos::new(u64_at(q, txq::RING), size),
                comp: Pos::new(u64_at(q, txq::COMP_RING), comp),
                intr: usize::from(q[txq::INTR_IDX as usize]),
            });
        }
        let mut rx = Vec::with_capacity(nrx);
        for q in descs.chunks_exact(QUEUE_DESC_SIZE as usize).skip(ntx) {
            let size = ring_size(u32_at(q, rxq::RING0_SIZE), MAX_RING_SIZE)?;
            ring_size(u32_at(q, rxq::RING1_SIZE).max(1), MAX_RING_SIZE)?;
            let comp = ring_size(u32_at(q, rxq::COMP_RING_SIZE), 2 * MAX_RING_SIZE)?;
            // Ring 1 (body buffers) is checked but never filled: every
            // frame fits one head buffer.
            rx.push(RxQueue {
                ring0: Pos::new(u64_at(q, rxq::RING0), size),
                comp: Pos::new(u64_at(q, rxq::COMP_RING), comp),
                intr: usize::from(q[rxq::INTR_IDX as usize]),
            });
        }
        let auto_mask = ds[shared::AUTO_MASK as usize] != 0;
        Some((Queues { tx, rx }, auto_mask))
    }

    fn read_desc(&self, at: u64) -> Option<Raw> {
        let mut raw = [0; 16];
        self.dma.read(at, &mut raw).ok()?;
        Some(raw)
    }

    /// Writes `c` at `at`: dwords 0..=2, then dword 3 with the generation.
    fn write_completion(&self, at: u64, c: &Completion) -> bool {
        self.dma.write(at, &c.body).is_ok() && self.dma.write(at + 12, &c.last).is_ok()
    }

    /// Sends every complete packet on queue `q`'s ring, at most one ring's
    /// worth: true if any completion was written.
    fn transmit(&mut self, q: &mut TxQueue) -> bool {
        let mut done = false;
        let mut budget = q.ring.size;
        while budget > 0 {
            let Some(raw) = self.read_desc(q.ring.addr()) else {
                break;
            };
            if TxDesc::gen_of(&raw) != q.ring.gen {
                break;
            }
            // Walk SOP..EOP on a copy of the position: a packet whose
            // later descriptors are not the device's yet stays on the ring.
            let sop = TxDesc::parse(&raw);
            let mut pos = q.ring;
            let mut descs = vec![sop];
            let mut eop = sop.eop;
            let mut last = pos.next;
            pos.advance();
            while !eop && descs.len() < MAX_TX_DESCS_PER_PKT && (descs.len() as u32) < q.ring.size {
                let Some(raw) = self.read_desc(pos.addr()) else {
                    return done;
                };
                let d = TxDesc::parse(&raw);
                if d.gen != pos.gen {
                    return done;
                }
                eop = d.eop;
                last = pos.next;
                descs.push(d);
                pos.advance();
            }
            budget = budget.saturating_sub(descs.len() as u32);
            q.ring = pos;
            self.send_packet(&descs, eop);
            if self.write_completion(q.comp.addr(), &tx_completion(last, q.comp.gen)) {
                done = true;
            }
            q.comp.advance();
            self.stats.tx_packets += 1;
        }
        if budget == 0 {
            // More may be waiting: look again before sleeping.
            self.shared.lock().kicked = true;
        }
        done
    }

    /// Gathers a packet's buffers, applies its offload and sends the
    /// frames; a malformed packet or a failed read drops it.
    fn send_packet(&mut self, descs: &[TxDesc], eop: bool) {
        let total: usize = descs.iter().map(|d| d.len).sum();
        if !eop || total > MAX_TX_FRAME {
            self.stats.tx_dropped += 1;
            return;
        }
        let mut frame = vec![0; total];
        let mut at = 0;
        for d in descs {
            if self.dma.read(d.addr, &mut frame[at..at + d.len]).is_err() {
                self.stats.tx_dropped += 1;
                return;
            }
            at += d.len;
        }
        let sop = descs[0];
        match offload::apply(frame, sop.om, sop.hlen, sop.msscof) {
            Ok(frames) => {
                for f in frames.iter().filter(|f| f.len() >= 14) {
                    self.port.send(f);
                    self.stats.tx_frames += 1;
                }
            }
            Err(_) => self.stats.tx_dropped += 1,
        }
    }

    /// Puts `frame` in the next head buffer of Rx queue `q`: true if it
    /// was delivered.
    fn receive(&mut self, q: &mut RxQueue, frame: &[u8]) -> bool {
        if frame.len() < 14 {
            self.stats.rx_dropped += 1;
            return false;
        }
        let Some(raw) = self.read_desc(q.ring0.addr()) else {
            self.stats.rx_dropped += 1;
            return false;
        };
        let d = RxDesc::parse(&raw);
        if d.gen != q.ring0.gen || d.body || frame.len() > d.len {
            self.stats.rx_dropped += 1;
            return false;
        }
        if self.dma.write(d.addr, frame).is_err() {
            self.stats.rx_dropped += 1;
            return false;
        }
        let c = rx_completion(q.ring0.next, 0, frame.len(), q.comp.gen);
        q.ring0.advance();
        let ok = self.write_completion(q.comp.addr(), &c);
        q.comp.advance();
        if ok {
            self.stats.rx_frames += 1;
        }
        ok
    }

    /// Raises vector `v`, or leaves it pending.
    fn interrupt(&mut self, v: usize) {
        let msg = self.shared.lock().raise(v);
        if let Some(m) = msg {
            // Refused (bus mastering off): lost, as on hardware.
            let _ = self.dma.msi(m.addr, m.data);
            self.stats.interrupts += 1;
        }
    }

    /// Does whatever is due: an activation, the Tx rings, the frames that
    /// arrived, and the interrupts these and unmasking call for. Goes
    /// round again (a few times at most) while doorbells or frames came
    /// in during a pass.
    pub fn run(&mut self) {
        for _ in 0..8 {
            if !self.pass() {
                break;
            }
        }
    }

    /// One pass of [`run`](Self::run): true if more is due.
    fn pass(&mut self) -> bool {
        let (activate, due) = {
            let mut core = self.shared.lock();
            if core.epoch != self.epoch {
                self.epoch = core.epoch;
                self.queues = None;
            }
            if !core.active {
                drop(core);
                while self.port.recv().is_some() {}
                return false;
            }
            core.busy = true;
            core.kicked = false;
            (core.activate.take(), std::mem::take(&mut core.due))
        };
        if let Some(dsa) = activate {
            match self.activate(dsa) {
                Some((queues, auto_mask)) => {
                    self.shared.lock().auto_mask = auto_mask;
                    self.queues = Some(queues);
                    self.stats.activations += 1;
                }
                None => {
                    self.stats.bad_activations += 1;
                    self.queues = None;
                }
            }
        }
        let mut fire = [false; MAX_QUEUES + 1];
        if due {
            fire[0] = true;
        }
        if let Some(mut qs) = self.queues.take() {
            for q in qs.tx.iter_mut() {
                if self.transmit(q) {
                    fire[q.intr.min(MAX_QUEUES)] = true;
                }
            }
            // One Rx queue takes every frame (RSS needs MSI-X).
            let budget = self.port.pending().min(super::regs::MAX_RING_SIZE as usize);
            for _ in 0..budget {
                let Some(frame) = self.port.recv() else { break };
                if let Some(q) = qs.rx.first_mut() {
                    if self.receive(q, &frame) {
                        fire[q.intr.min(MAX_QUEUES)] = true;
                    }
                }
            }
            if self.port.pending() > 0 {
                self.shared.lock().kicked = true;
            }
            self.queues = Some(qs);
        } else {
            while self.port.recv().is_some() {}
        }
        for (v, f) in fire.iter().enumerate() {
            if *f {
                self.interrupt(v);
            }
        }
        let again = self.shared.lock().kicked;
        self.shared.done();
        again
    }
}

impl DeviceWorker for Vmxnet3Engine {
    /// A TXPROD doorbell.
    fn doorbell(&mut self, _index: usize) {
        self.run();
    }

    fn notified(&mut self) {
        self.run();
    }
}
