//! Router cost per DMA request, against a plain memcpy of the same size.
//!
//! Builds the standard fabric (host bridge; root port 1 → switch with three
//! downstream ports, each with an endpoint whose BARs are RAM-backed; root
//! port 2 → endpoint), programs it through config space with the tests'
//! firmware, then times, for 64 B, 4 KiB and 128 KiB:
//!
//! - `memcpy`: `copy_from_slice` between two host buffers (the baseline);
//! - `DmaHandle::write` / `read` between `ep1` and guest RAM;
//! - `DmaHandle::write` / `read` between `ep1` and `ep2`'s BAR 0 (switch-local
//!   peer-to-peer: `ep1^ dsp1^ dsp2v ep2v`);
//! - `Fabric::route` alone, for every request such a transfer is split into;
//! - a breakdown: `GuestRam::write` called directly (no fabric) and
//!   `Fabric::record` alone.
//!
//! Each figure is the median over 9 batches of ns per operation, every
//! batch running at least 20 ms; the batches of all rows of one size run
//! round-robin, so that load from other work hits them alike. Prints a
//! table with the overhead over memcpy, and writes JSON to
//! `$P2PVM_BENCH_OUT` when set. `P2PVM_BENCH_QUICK=1` runs 1 short batch per
//! figure (for profilers; its numbers are not the benchmark's), and
//! `P2PVM_BENCH_ONLY=key,key` measures only those rows (keys as in the
//! JSON `name` field) and `P2PVM_BENCH_SIZES=4096` only those sizes; no
//! JSON is written after such a partial run.
//!
//! Run with `cargo bench -p pcie-core --bench router`, or `bench/router/run.sh`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcie_core::{
    BarKind, BarRegion, ConfigEffects, Dir, DmaHandle, DmaRequest, Fabric, GuestRam, Hop, NodeId,
    NodeKind, PciFunction, RcP2pPolicy, ResetKind, Target, Type0Config, MAX_REQUEST,
};

use common::bridge::TestBridge;

/// Transfer sizes measured.
const SIZES: [usize; 3] = [64, 4 << 10, 128 << 10];
/// The largest transfer: what the buffers are sized for.
const MAX_SIZE: usize = 128 << 10;

/// The sizes this run measures: `SIZES`, or `$P2PVM_BENCH_SIZES` (bytes,
/// comma-separated, each 1..=128 KiB) to profile one size alone.
fn sizes() -> &'static [usize] {
    static SIZES_RUN: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    SIZES_RUN.get_or_init(|| match std::env::var("P2PVM_BENCH_SIZES") {
        Ok(list) if !list.is_empty() => list
            .split(',')
            .map(|s| {
                let n: usize = s.trim().parse().expect("P2PVM_BENCH_SIZES: a number");
                assert!((1..=MAX_SIZE).contains(&n), "P2PVM_BENCH_SIZES: 1..=131072");
                n
            })
            .collect(),
        _ => SIZES.to_vec(),
    })
}
/// Guest RAM: one range at 0.
const RAM_SIZE: usize = 4 << 20;
/// Where the RAM transfers land: page aligned, like a driver's buffer.
const RAM_ADDR: u64 = 0x10_0000;
/// Endpoint BAR 0: 64-bit prefetchable, 1 MiB, RAM-backed.
const BAR0: (u8, BarKind, u64) = (0, BarKind::Memory64 { prefetchable: true }, 1 << 20);
/// Endpoint BAR 2: 32-bit, 16 KiB, RAM-backed.
const BAR2: (u8, BarKind, u64) = (
    2,
    BarKind::Memory32 {
        prefetchable: false,
    },
    16 << 10,
);
/// The figure the fabric issue sets: routing adds less than this, in %, to
/// a 4 KiB write to RAM over a 4 KiB memcpy.
const TARGET_PCT: f64 = 10.0;

// ------------------------------------------------------------------ buffers

/// Page alignment of every buffer the benchmark copies between.
const PAGE: usize = 4096;

/// A zeroed, page-aligned host buffer.
///
/// Every copy measured here then has source and destination at the same
/// offset in their pages, as a page-aligned DMA buffer and guest page
/// would. Heap `Vec`s land at arbitrary page offsets instead, and on some
/// CPUs (AMD Zen 3 here) glibc's `rep movsb` memcpy runs ~40x slower when
/// (dst - src) mod 4096 is a small non-multiple of 32: see the
/// `memcpy_skew16` row.
struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `PageBuf` owns its allocation, like a `Box<[u8]>`.
unsafe impl Send for PageBuf {}
// SAFETY: shared access only reads through `Deref`, like `&[u8]`; `HostRam`
// documents its own writes through a shared reference.
unsafe impl Sync for PageBuf {}

impl PageBuf {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len.max(1), PAGE).expect("layout")
    }

    fn new(len: usize) -> Self {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(Self::layout(len)) };
        let ptr =
            NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout(len)));
        PageBuf { ptr, len }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) };
    }
}

impl std::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised (zeroed) bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, borrowed uniquely through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

// ---------------------------------------------------------------- guest RAM

/// Guest RAM as cheap as a VMM's mmap-backed one: a bounds check and a copy
/// into one page-aligned host allocation, no lock.
struct HostRam {
    mem: PageBuf,
}

impl HostRam {
    fn new(len: usize) -> Self {
        HostRam {
            mem: PageBuf::new(len),
        }
    }

    /// The offset of `len` bytes at `addr`, when all of them are backed.
    fn offset(&self, addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(addr).ok()?;
        (off <= self.mem.len && len <= self.mem.len - off).then_some(off)
    }
}

impl GuestRam for HostRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(off) = self.offset(addr, buf.len()) else {
            return false;
        };
        // SAFETY: `off..off + buf.len()` is inside the allocation (checked
        // above); `buf` is a distinct Rust borrow, so they do not overlap.
        // Guest RAM is written through `&self`, as a VMM's is: concurrent
        // accesses to the same bytes race exactly as on real guest memory
        // (this benchmark uses one thread).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.mem.ptr.as_ptr().add(off),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        true
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let Some(off) = self.offset(addr, buf.len()) else {
            return false;
        };
        // SAFETY: as in `read`.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.mem.ptr.as_ptr().add(off), buf.len())
        };
        true
    }
}

// ----------------------------------------------------------------- endpoint

/// An endpoint whose memory BARs are plain host buffers, copied to and from
/// under the fabric's lock on the function only (no lock of its own).
struct BenchEndpoint {
    cfg: Type0Config,
    /// Page-aligned backing of each BAR, by index (empty when not declared).
    backing: [PageBuf; 6],
}

fn endpoint_config() -> Type0Config {
    let mut cfg = common::config(0x1234, 0x5678);
    for (i, kind, size) in [BAR0, BAR2] {
        cfg.add_bar(i, kind, size).expect("BAR");
    }
    cfg
}

impl BenchEndpoint {
    fn new() -> Box<Self> {
        let size = |i| {
            let bar = [BAR0, BAR2].into_iter().find(|b| b.0 == i);
            bar.map_or(0, |b| b.2 as usize)
        };
        let backing = std::array::from_fn(|i| PageBuf::new(size(i as u8)));
        Box::new(BenchEndpoint {
            cfg: endpoint_config(),
            backing,
        })
    }
}

impl PciFunction for BenchEndpoint {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.cfg.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        self.cfg.write(offset, data)
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let at = offset as usize;
        match self.backing[bar as usize].get(at..at + data.len()) {
            Some(src) => data.copy_from_slice(src),
            None => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        let at = offset as usize;
        if let Some(dst) = self.backing[bar as usize].get_mut(at..at + data.len()) {
            dst.copy_from_slice(data);
        }
    }

    fn reset(&mut self, _kind: ResetKind) {
        self.cfg = endpoint_config();
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.cfg.bar_regions()
    }
}

// ------------------------------------------------------------------- fabric

/// The benchmark's fabric, enumerated.
struct Rig {
    fabric: Arc<Fabric>,
    names: Vec<(&'static str, NodeId)>,
}

impl Rig {
    fn id(&self, name: &str) -> NodeId {
        self.names.iter().find(|(n, _)| *n == name).expect("node").1
    }

    fn name(&self, id: NodeId) -> &'static str {
        self.names.iter().find(|(_, i)| *i == id).expect("node").0
    }

    fn bar0(&self, name: &str) -> u64 {
        let regions = self.fabric.bar_regions(self.id(name));
        regions.iter().find(|r| r.index == 0).expect("BAR 0").addr
    }

    fn path(&self, hops: &[Hop]) -> String {
        let arrow = |d| if d == Dir::Up { "^" } else { "v" };
        let parts: Vec<_> = hops
            .iter()
            .map(|h| format!("{}{}", self.name(h.node), arrow(h.dir)))
            .collect();
        parts.join(" ")
    }
}

/// Host bridge; rp1 → usp → dsp1..3 → ep1..3; rp2 → ep4. Port numbers are
/// device number + 1, as in the tests' topologies. (The tests' `standard`
/// topology also has `ep1f1` and an integrated `rciep`, which sit on none
/// of the measured paths.)
fn build() -> Rig {
    use NodeKind::*;
    let rows: [(&str, Option<&str>, u8, NodeKind); 10] = [
        ("hb", None, 0, HostBridge),
        ("rp1", None, 1, RootPort),
        ("usp", Some("rp1"), 0, SwitchUpstream),
        ("dsp1", Some("usp"), 0, SwitchDownstream),
        ("dsp2", Some("usp"), 1, SwitchDownstream),
        ("dsp3", Some("usp"), 2, SwitchDownstream),
        ("ep1", Some("dsp1"), 0, Endpoint),
        ("ep2", Some("dsp2"), 0, Endpoint),
        ("ep3", Some("dsp3"), 0, Endpoint),
        ("rp2", None, 2, RootPort),
    ];
    let fabric = Arc::new(Fabric::new(
        vec![(0, RAM_SIZE as u64)],
        RcP2pPolicy::Forward,
    ));
    let mut rig = Rig {
        fabric,
        names: Vec::new(),
    };
    let rows = rows.iter().chain(&[("ep4", Some("rp2"), 0, Endpoint)]);
    for &(name, parent, dev, kind) in rows {
        let f: Box<dyn PciFunction> = match kind {
            HostBridge => Box::new(common::Dummy(common::config(0x8086, 0x29c0))),
            RootPort => TestBridge::root_port(dev + 1),
            SwitchUpstream => TestBridge::upstream(),
            SwitchDownstream => TestBridge::downstream(dev + 1),
            Endpoint => BenchEndpoint::new(),
        };
        let parent = parent.map(|p| rig.id(p));
        let id = rig
            .fabric
            .add(parent, dev, 0, name, kind, f)
            .expect("add node");
        rig.names.push((name, id));
    }
    common::firmware::enumerate(&rig.fabric);
    rig
}

/// Checks that the measured requests go where they should and move data,
/// so that no error path gets timed.
fn check(rig: &Rig, dma: &DmaHandle, ram: &HostRam, peer: u64) {
    let ep1 = rig.id("ep1");
    let req = |addr, len| DmaRequest {
        requester: ep1,
        requester_id: None,
        addr,
        len,
        write: true,
        translated: false,
    };
    let r = rig
        .fabric
        .route(&req(RAM_ADDR, 4096))
        .expect("route to RAM");
    assert_eq!(r.target, Target::Ram { addr: RAM_ADDR });
    assert_eq!(rig.path(&r.hops), "ep1^ dsp1^ usp^ rp1^");
    let r = rig.fabric.route(&req(peer, 4096)).expect("route to peer");
    let ep2 = rig.id("ep2");
    let want = Target::Bar {
        node: ep2,
        bar: 0,
        offset: 0,
    };
    assert_eq!(r.target, want);
    assert_eq!(rig.path(&r.hops), "ep1^ dsp1^ dsp2v ep2v");

    let max = MAX_SIZE;
    let data: Vec<u8> = (0..max).map(|i| (i * 7 + 3) as u8).collect();
    let mut back = vec![0; max];
    dma.write(RAM_ADDR, &data).expect("write RAM");
    assert!(ram.read(RAM_ADDR, &mut back));
    assert_eq!(back, data, "RAM write landed");
    back.fill(0);
    dma.read(RAM_ADDR, &mut back).expect("read RAM");
    assert_eq!(back, data, "RAM read");

    rig.fabric.reset_counters();
    dma.write(peer, &data).expect("write peer");
    back.fill(0);
    assert!(rig.fabric.mmio_read(peer, &mut back));
    assert_eq!(back, data, "peer write landed");
    back.fill(0);
    dma.read(peer, &mut back).expect("read peer");
    assert_eq!(back, data, "peer read");
    let usp = rig.fabric.counters(rig.id("usp"));
    assert!(usp.is_idle(), "P2P stayed below the switch");
    let dsp2 = rig.fabric.counters(rig.id("dsp2"));
    // The write's payload goes down to ep2, the read's completions come up.
    assert_eq!(dsp2.down_bytes, max as u64, "P2P write crossed dsp2");
    assert_eq!(dsp2.up_bytes, max as u64, "P2P read crossed dsp2");
}

// ------------------------------------------------------------------- timing

/// How batches are run.
#[derive(Clone, Copy)]
struct Plan {
    batches: usize,
    /// Shortest a batch may be.
    min_batch: Duration,
    /// What calibration aims a batch at (a little above `min_batch`).
    aim: Duration,
    quick: bool,
    /// Comma-separated row keys to measure (all when empty).
    only: &'static str,
}

impl Plan {
    fn from_env() -> Self {
        let quick = std::env::var("P2PVM_BENCH_QUICK").is_ok_and(|v| v == "1");
        let only = std::env::var("P2PVM_BENCH_ONLY").unwrap_or_default();
        let only: &'static str = only.leak();
        if quick {
            return Plan {
                batches: 1,
                min_batch: Duration::from_millis(2),
                aim: Duration::from_millis(3),
                quick,
                only,
            };
        }
        Plan {
            batches: 9,
            min_batch: Duration::from_millis(20),
            aim: Duration::from_millis(25),
            quick,
            only,
        }
    }
}

/// One figure: ns per operation over the batches.
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    iters: u64,
    batches: usize,
    shortest_batch_ms: f64,
    /// ns per operation of each batch, in the order they ran.
    per_batch: Vec<f64>,
}

fn time_batch(iters: u64, op: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

/// A timed operation: runs `iters` iterations, returns how long they took.
/// (The loop is inside, monomorphised for the operation.)
type Batch<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

fn batch<'a>(mut op: impl FnMut() + 'a) -> Batch<'a> {
    Box::new(move |iters| time_batch(iters, &mut op))
}

/// Iterations for one batch of `run` to last `plan.aim`.
fn calibrate(plan: Plan, run: &mut Batch<'_>) -> u64 {
    let mut iters: u64 = 1;
    loop {
        let took = run(iters);
        if took >= plan.aim {
            return iters;
        }
        let scale = plan.aim.as_nanos() as f64 / took.as_nanos().max(1) as f64;
        iters = (iters as f64 * scale.clamp(2.0, 100.0) * 1.1).ceil() as u64;
    }
}

/// Times every operation of `ops` over `plan.batches` rounds, one batch of
/// each per round, so that a load spike on this shared machine hits all of
/// them alike. Rounds are redone, with twice the iterations for the
/// operations concerned, while some batch came out shorter than
/// `plan.min_batch`.
fn measure(plan: Plan, ops: &mut [Batch<'_>]) -> Vec<Stats> {
    let mut iters: Vec<u64> = ops.iter_mut().map(|op| calibrate(plan, op)).collect();
    loop {
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
        for _ in 0..plan.batches {
            for (i, op) in ops.iter_mut().enumerate() {
                times[i].push(op(iters[i]));
            }
        }
        let mut short = false;
        for (i, t) in times.iter().enumerate() {
            if t.iter().any(|&d| d < plan.min_batch) {
                iters[i] *= 2;
                short = true;
            }
        }
        if short {
            continue;
        }
        let stats = times.iter().zip(&iters).map(|(t, &n)| {
            let per_batch: Vec<f64> = t.iter().map(|d| d.as_nanos() as f64 / n as f64).collect();
            let mut ns = per_batch.clone();
            ns.sort_by(f64::total_cmp);
            Stats {
                median: median(&ns),
                min: ns[0],
                max: ns[ns.len() - 1],
                iters: n,
                batches: plan.batches,
                shortest_batch_ms: t.iter().min().expect("batches").as_secs_f64() * 1e3,
                per_batch,
            }
        });
        return stats.collect();
    }
}

/// The median of sorted `v` (the lower middle one of an even count).
fn median(v: &[f64]) -> f64 {
    v[(v.len() - 1) / 2]
}

/// The median over rounds of the overhead of `x` over `base` in the same
/// round: steadier than comparing medians when the load changes.
fn paired_overhead_pct(base: &Stats, x: &Stats) -> f64 {
    let mut pct: Vec<f64> = base
        .per_batch
        .iter()
        .zip(&x.per_batch)
        .map(|(&b, &x)| overhead_pct(b, x))
        .collect();
    pct.sort_by(f64::total_cmp);
    median(&pct)
}

// ------------------------------------------------------------------ results

/// What one row of the table measures.
struct Row {
    key: &'static str,
    label: &'static str,
    /// One figure per entry of `sizes()`.
    stats: Vec<Stats>,
}

/// Requests a transfer of `size` bytes at a 4 KiB-aligned address becomes.
fn requests(size: usize) -> u64 {
    (size as u64).div_ceil(MAX_REQUEST)
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn overhead_pct(base: f64, x: f64) -> f64 {
    (x - base) / base * 100.0
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    let info = read_trimmed("/proc/cpuinfo");
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

fn json_str(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Context recorded with the figures.
struct Env {
    nproc: usize,
    load_before: String,
    load_after: String,
    unix_time: u64,
    cpu: String,
    /// `$P2PVM_BENCH_REV`: the source revision, as `bench/router/run.sh` sets it.
    revision: String,
    plan: Plan,
}

fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = write!(t, "{:<46}", "ns per operation (median)");
    for &s in sizes() {
        let _ = write!(t, "{:>14}", size_name(s));
    }
    t.push('\n');
    let _ = write!(t, "{:<46}", "  requests per operation");
    for &s in sizes() {
        let _ = write!(t, "{:>14}", requests(s));
    }
    t.push('\n');
    for row in rows {
        let _ = write!(t, "{:<46}", row.label);
        for st in &row.stats {
            let _ = write!(t, "{:>14.1}", st.median);
        }
        t.push('\n');
        let memcpy = rows.iter().find(|r| r.key == "memcpy");
        if let Some(base) = memcpy.filter(|_| row.key == "dma_write_ram") {
            let base = &base.stats;
            let _ = write!(t, "{:<46}", "  overhead over memcpy");
            for (b, x) in base.iter().zip(&row.stats) {
                let cell = format!("{:+.0}%", overhead_pct(b.median, x.median));
                let _ = write!(t, "{cell:>14}");
            }
            t.push('\n');
            let _ = write!(t, "{:<46}", "  overhead, same-round batches paired");
            for (b, x) in base.iter().zip(&row.stats) {
                let cell = format!("{:+.0}%", paired_overhead_pct(b, x));
                let _ = write!(t, "{cell:>14}");
            }
            t.push('\n');
            let _ = write!(t, "{:<46}", "  added ns per 4 KiB request");
            for (i, (b, x)) in base.iter().zip(&row.stats).enumerate() {
                let per = (x.median - b.median) / requests(sizes()[i]) as f64;
                let _ = write!(t, "{per:>14.1}");
            }
            t.push('\n');
        }
    }
    t
}

fn to_json(rows: &[Row], env: &Env, verdict: (f64, bool)) -> String {
    let mut j = String::new();
    let _ = writeln!(j, "{{");
    let _ = writeln!(j, "  \"bench\": \"router\",");
    let _ = writeln!(j, "  \"unix_time\": {},", env.unix_time);
    let _ = writeln!(j, "  \"revision\": {},", json_str(&env.revision));
    let _ = writeln!(j, "  \"cpu\": {},", json_str(&env.cpu));
    let _ = writeln!(j, "  \"nproc\": {},", env.nproc);
    let _ = writeln!(j, "  \"loadavg_before\": {},", json_str(&env.load_before));
    let _ = writeln!(j, "  \"loadavg_after\": {},", json_str(&env.load_after));
    let _ = writeln!(j, "  \"quick\": {},", env.plan.quick);
    let _ = writeln!(j, "  \"batches\": {},", env.plan.batches);
    let _ = writeln!(j, "  \"min_batch_ms\": {},", env.plan.min_batch.as_millis());
    let _ = writeln!(j, "  \"unit\": \"ns per operation\",");
    let _ = writeln!(j, "  \"results\": [");
    let mut first = true;
    for row in rows {
        for (size, st) in sizes().iter().zip(&row.stats) {
            if !first {
                let _ = writeln!(j, ",");
            }
            first = false;
            let _ = write!(
                j,
                "    {{\"name\": {}, \"label\": {}, \"size\": {size}, \"requests\": {}, \
                 \"median_ns\": {:.2}, \"min_ns\": {:.2}, \"max_ns\": {:.2}, \
                 \"iters_per_batch\": {}, \"batches\": {}, \"shortest_batch_ms\": {:.2}, \
                 \"per_batch_ns\": [{}]}}",
                json_str(row.key),
                json_str(row.label.trim()),
                requests(*size),
                st.median,
                st.min,
                st.max,
                st.iters,
                st.batches,
                st.shortest_batch_ms,
                st.per_batch
                    .iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    let _ = writeln!(j, "\n  ],");
    let _ = writeln!(j, "  \"overhead_write_ram_over_memcpy\": [");
    let base = &rows.iter().find(|r| r.key == "memcpy").expect("row").stats;
    let write = &rows
        .iter()
        .find(|r| r.key == "dma_write_ram")
        .expect("row")
        .stats;
    for (i, size) in sizes().iter().enumerate() {
        let paired = paired_overhead_pct(&base[i], &write[i]);
        let (b, x) = (base[i].median, write[i].median);
        let sep = if i + 1 < sizes().len() { "," } else { "" };
        let _ = writeln!(
            j,
            "    {{\"size\": {size}, \"memcpy_ns\": {b:.2}, \"write_ns\": {x:.2}, \
             \"overhead_pct\": {:.1}, \"paired_overhead_pct\": {paired:.1}, \
             \"added_ns_per_request\": {:.2}}}{sep}",
            overhead_pct(b, x),
            (x - b) / requests(*size) as f64,
        );
    }
    let _ = writeln!(j, "  ],");
    let _ = writeln!(
        j,
        "  \"target\": {{\"size\": 4096, \"limit_pct\": {TARGET_PCT}, \"overhead_pct\": {:.1}, \"met\": {}}}",
        verdict.0, verdict.1
    );
    let _ = writeln!(j, "}}");
    j
}

// --------------------------------------------------------------------- main

fn main() {
    let plan = Plan::from_env();
    let load_before = read_trimmed("/proc/loadavg");
    let rig = build();
    let ram = Arc::new(HostRam::new(RAM_SIZE));
    let ep1 = rig.id("ep1");
    let dma = DmaHandle::new(rig.fabric.clone(), ep1, ram.clone());
    let peer = rig.bar0("ep2");
    check(&rig, &dma, &ram, peer);

    let mut src = PageBuf::new(MAX_SIZE);
    for (i, b) in src.iter_mut().enumerate() {
        *b = i as u8;
    }
    let src = &*src;
    // One destination per row that writes host memory.
    let mut dsts: Vec<PageBuf> = (0..4).map(|_| PageBuf::new(MAX_SIZE + PAGE)).collect();
    let fabric = &*rig.fabric;
    let guest: &dyn GuestRam = &*ram;
    let dma = &dma;
    let errors = std::cell::Cell::new(0u64);
    let errors = &errors;
    let fail = |bad: bool| errors.set(errors.get() + u64::from(bad));

    // The requests a transfer is split into, for the route-only and
    // record-only rows.
    let chunks = |addr: u64, size: usize| -> Vec<DmaRequest> {
        (0..requests(size))
            .map(|i| DmaRequest {
                requester: ep1,
                requester_id: None,
                addr: addr + i * MAX_REQUEST,
                len: (size as u64 - i * MAX_REQUEST).min(MAX_REQUEST),
                write: true,
                translated: false,
            })
            .collect()
    };

    let mut rows: Vec<Row> = Vec::new();
    for &n in sizes() {
        eprintln!("measuring {}", size_name(n));
        let [d_copy, d_skew, d_ram, d_p2p] = &mut dsts[..] else {
            unreachable!()
        };
        let (ram_reqs, p2p_reqs) = (chunks(RAM_ADDR, n), chunks(peer, n));
        let routes: Vec<_> = ram_reqs
            .iter()
            .map(|r| fabric.route(r).expect("route"))
            .collect();
        let ram_reqs2 = ram_reqs.clone();
        let ops: Vec<(&'static str, &'static str, Batch<'_>)> = vec![
            (
                "memcpy",
                "memcpy (copy_from_slice, baseline)",
                batch(move || {
                    let d = black_box(&mut d_copy[..n]);
                    d.copy_from_slice(black_box(&src[..n]));
                    black_box(d);
                }),
            ),
            (
                "memcpy_skew16",
                "  memcpy, (dst - src) % 4096 = 16 (diagnostic)",
                batch(move || {
                    let d = black_box(&mut d_skew[16..16 + n]);
                    d.copy_from_slice(black_box(&src[..n]));
                    black_box(d);
                }),
            ),
            (
                "dma_write_ram",
                "DmaHandle::write ep1 -> RAM",
                batch(move || {
                    let r = dma.write(black_box(RAM_ADDR), black_box(&src[..n]));
                    fail(r.is_err());
                }),
            ),
            (
                "dma_read_ram",
                "DmaHandle::read ep1 <- RAM",
                batch(move || {
                    let d = black_box(&mut d_ram[..n]);
                    fail(dma.read(black_box(RAM_ADDR), d).is_err());
                }),
            ),
            (
                "dma_write_p2p",
                "DmaHandle::write ep1 -> ep2 BAR0 (P2P)",
                batch(move || {
                    let r = dma.write(black_box(peer), black_box(&src[..n]));
                    fail(r.is_err());
                }),
            ),
            (
                "dma_read_p2p",
                "DmaHandle::read ep1 <- ep2 BAR0 (P2P)",
                batch(move || {
                    let d = black_box(&mut d_p2p[..n]);
                    fail(dma.read(black_box(peer), d).is_err());
                }),
            ),
            (
                "route_ram",
                "Fabric::route only, to RAM",
                batch(move || {
                    for req in &ram_reqs {
                        fail(black_box(fabric.route(black_box(req))).is_err());
                    }
                }),
            ),
            (
                "route_p2p",
                "Fabric::route only, to ep2 BAR0",
                batch(move || {
                    for req in &p2p_reqs {
                        fail(black_box(fabric.route(black_box(req))).is_err());
                    }
                }),
            ),
            (
                "guestram_write",
                "  breakdown: GuestRam::write, no fabric",
                batch(move || {
                    for i in 0..requests(n) as usize {
                        let at = i * MAX_REQUEST as usize;
                        let len = (n - at).min(MAX_REQUEST as usize);
                        let addr = black_box(RAM_ADDR + at as u64);
                        let ok = black_box(guest).write(addr, black_box(&src[at..at + len]));
                        fail(!ok);
                    }
                }),
            ),
            (
                "record_ram",
                "  breakdown: Fabric::record, RAM route",
                batch(move || {
                    for (req, route) in ram_reqs2.iter().zip(&routes) {
                        fabric.record(black_box(route), black_box(req));
                    }
                }),
            ),
        ];
        let wanted = |key: &str| plan.only.is_empty() || plan.only.split(',').any(|k| k == key);
        let (names, mut ops): (Vec<_>, Vec<_>) = ops
            .into_iter()
            .filter(|(key, _, _)| wanted(key))
            .map(|(key, label, op)| ((key, label), op))
            .unzip();
        let stats = measure(plan, &mut ops);
        for ((key, label), st) in names.into_iter().zip(stats) {
            match rows.iter_mut().find(|r| r.key == key) {
                Some(row) => row.stats.push(st),
                None => rows.push(Row {
                    key,
                    label,
                    stats: vec![st],
                }),
            }
        }
    }
    assert_eq!(errors.get(), 0, "a timed request failed");

    let load_after = read_trimmed("/proc/loadavg");
    let env = Env {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        load_after,
        unix_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        cpu: cpu_model(),
        revision: std::env::var("P2PVM_BENCH_REV").unwrap_or_default(),
        plan,
    };
    let at4k = sizes().iter().position(|&s| s == 4096);
    let median = |key: &str| {
        let row = rows.iter().find(|r| r.key == key)?;
        Some(row.stats[at4k?].median)
    };
    let verdict = median("memcpy")
        .zip(median("dma_write_ram"))
        .map(|(base, write)| overhead_pct(base, write))
        .map(|pct| (pct, pct < TARGET_PCT));

    println!();
    println!(
        "router bench: {} batches/figure, each >= {} ms; cpu {}; nproc {}; loadavg {} -> {}",
        plan.batches,
        plan.min_batch.as_millis(),
        env.cpu,
        env.nproc,
        env.load_before,
        env.load_after
    );
    if plan.quick {
        println!("QUICK RUN (P2PVM_BENCH_QUICK=1): not benchmark figures");
    }
    if !plan.only.is_empty() || sizes() != SIZES {
        println!("partial run (P2PVM_BENCH_ONLY / P2PVM_BENCH_SIZES): no JSON written");
    }
    print!("{}", table(&rows));
    let Some((pct, met)) = verdict else {
        return;
    };
    println!(
        "target: 4 KiB write to RAM adds {pct:.1}% over memcpy (limit {TARGET_PCT}%): {}",
        if met { "MET" } else { "NOT MET" }
    );

    let out = std::env::var("P2PVM_BENCH_OUT").unwrap_or_default();
    let partial = !plan.only.is_empty() || sizes() != SIZES;
    if !out.is_empty() && !partial {
        let json = to_json(&rows, &env, (pct, met));
        std::fs::write(&out, json).unwrap_or_else(|e| panic!("writing {out}: {e}"));
        println!("wrote {out}");
    }
}
