//! The route cache: reuse within a decision range, invalidation by config
//! writes, range boundaries, and exact counters.
//!
//! The `common` module below is the integration tests' fixture
//! (`tests/common/`, without `cases`), inlined with `pcie_core::` paths
//! turned into `crate::` ones: a unit test cannot name its own crate.
use std::sync::Arc;

use super::{DmaError, DmaHandle, LinkCounters, RcP2pPolicy};
use crate::{command, AcsBits};
use common::topo::{standard, Topo, VecRam, RAM_SIZE};

fn handle(t: &Topo, name: &str, ram: &Arc<VecRam>) -> DmaHandle {
    DmaHandle::new(t.fabric.clone(), t.id(name), ram.clone())
}

fn all_counters(t: &Topo) -> Vec<(&'static str, LinkCounters)> {
    let mut v: Vec<_> = t
        .ids
        .iter()
        .map(|(n, id)| (*n, t.fabric.counters(*id)))
        .collect();
    v.sort_by_key(|(n, _)| *n);
    v
}

#[test]
fn route_is_reused_within_its_range() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    dma.write(0x1000, &[1; 64]).unwrap();
    let (routed, range) = dma.cache_stats();
    assert_eq!(routed, 1);
    assert_eq!(range, Some((0, RAM_SIZE)));
    for i in 0..10u64 {
        dma.write(0x2000 + i * 0x1000, &[2; 4096]).unwrap();
        let mut buf = [0; 100];
        dma.read(0x3000 + i * 0x1000, &mut buf).unwrap();
    }
    assert_eq!(dma.cache_stats().0, 1, "served from the cache");
    assert_eq!(ram.0.lock().unwrap()[0x2000], 2);
    // P2P to ep2's BAR 0: a new route, then reused.
    let bar = t.bar("ep2", 0);
    dma.write(bar, &[3; 128]).unwrap();
    dma.write(bar + 0x1000, &[4; 128]).unwrap();
    assert_eq!(dma.cache_stats().0, 2);
    assert_eq!(t.ep("ep2").peek(0, 0x1000, 2), vec![4, 4]);
    let mut back = [0; 128];
    dma.read(bar, &mut back).unwrap();
    assert_eq!(back, [3; 128]);
    assert_eq!(dma.cache_stats().0, 2);
}

#[test]
fn not_used_across_a_range_boundary() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let bar = t.bar("ep2", 0);
    let size = t.fabric.bar_regions(t.id("ep2"))[0].size;
    dma.write(bar, &[1; 64]).unwrap();
    let (_, range) = dma.cache_stats();
    assert_eq!(range, Some((bar, bar + size)));
    // Running past the end of the BAR (a 4 KiB boundary): the first piece
    // is served from the cache, the second is routed afresh.
    let end = bar + size;
    for (edge, lo) in [(end, bar), (RAM_SIZE, 0)] {
        dma.write(edge - 0x1000, &[1; 64]).unwrap();
        assert_eq!(dma.cache_stats().1.map(|r| r.0), Some(lo));
        let routed = dma.cache_stats().0;
        let got = dma.write(edge - 64, &[1; 128]);
        let want = t.fabric.route(&t.req("ep1", edge, 64, true));
        assert_eq!(got.is_ok(), want.is_ok(), "{edge:#x}: {got:?} vs {want:?}");
        // (A refused request is not counted as routed: nothing to cache.)
        let cached = u64::from(want.is_ok());
        assert_eq!(dma.cache_stats().0, routed + cached, "{edge:#x}");
        if want.is_ok() {
            assert_eq!(dma.cache_stats().1.map(|r| r.0), Some(edge));
        }
    }
}

#[test]
fn invalidated_by_config_writes() {
    let t = standard(RcP2pPolicy::Forward);
    let ram = VecRam::new(RAM_SIZE as usize);
    let dma = handle(&t, "ep1", &ram);
    let bar = t.bar("ep2", 0);

    // ACS: RR + UF... on dsp1 redirects ep1 -> ep2 through the upstream port.
    dma.write(bar, &[1; 64]).unwrap();
    assert!(t.fabric.counters(t.id("usp")).is_idle());
    t.set_acs("dsp1", AcsBits::RR | AcsBits::UF);
    dma.write(bar, &[1; 64]).unwrap();
    assert_eq!(t.fabric.counters(t.id("usp")).up_bytes, 64);
    t.set_acs("dsp1", AcsBits::NONE);

    // Moving the BAR: the old address no longer reaches ep2.
    t.fabric.reset_counters();
    dma.write(bar, &[1; 64]).unwrap();
    assert_eq!(t.fabric.counters(t.id("ep2")).down_bytes, 64);
    t.clear_command("ep2", command::MEMORY_SPACE);
    assert_eq!(dma.write(bar, &[1; 64]), Err(DmaError::UnsupportedRequest));
    assert_eq!(t.fabric.counters(t.id("ep2")).down_bytes, 64);

    // The requester's own Bus Master Enable.
    dma.write(0x1000, &[1; 64]).unwrap();
    dma.write(0x2000, &[1; 64]).unwrap();
    t.clear_command("ep1", command::BUS_MASTER);
    assert_eq!(
        dma.write(0x2000, &[1; 64]),
        Err(DmaError::BusMasterDisabled)
    );
    // A bridge's Bus Master Enable on the way up.
    let h2 = handle(&t, "ep3", &ram);
    h2.write(0x1000, &[1; 64]).unwrap();
    t.clear_command("usp", command::BUS_MASTER);
    assert_eq!(
        h2.write(0x1000, &[1; 64]),
        Err(DmaError::UnsupportedRequest)
    );
}

/// A handle with caching and one without, on two identical fabrics, doing
/// the same transfers: the same counters, every time they are read.
#[test]
fn counters_stay_exact() {
    let (a, b) = (
        standard(RcP2pPolicy::Forward),
        standard(RcP2pPolicy::Forward),
    );
    let (ram_a, ram_b) = (
        VecRam::new(RAM_SIZE as usize),
        VecRam::new(RAM_SIZE as usize),
    );
    let cached = handle(&a, "ep1", &ram_a);
    let plain = handle(&b, "ep1", &ram_b);
    plain.set_route_cache(false);
    let peer = a.bar("ep2", 0);
    assert_eq!(peer, b.bar("ep2", 0));
    let ep3 = a.bar("ep3", 2);
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut buf = vec![0u8; 20000];
    for i in 0..400 {
        let base = match next() % 4 {
            0 => 0x1000,
            1 => peer,
            2 => ep3,
            _ => 0x8_0000,
        };
        let addr = base + next() % 0x2000;
        let len = 1 + (next() % 9000) as usize;
        let write = next() % 2 == 0;
        let (ra, rb) = if write {
            (
                cached.write(addr, &buf[..len]),
                plain.write(addr, &buf[..len]),
            )
        } else {
            (
                cached.read(addr, &mut buf[..len]),
                plain.read(addr, &mut buf[..len]),
            )
        };
        assert_eq!(ra, rb, "request {i}");
        if i % 7 == 0 {
            assert_eq!(all_counters(&a), all_counters(&b), "after request {i}");
        }
        if i == 200 {
            a.fabric.reset_counters();
            b.fabric.reset_counters();
        }
    }
    assert_eq!(all_counters(&a), all_counters(&b));
    assert!(cached.cache_stats().0 < 400);
    assert_eq!(plain.cache_stats().0, 0);
    // A clone, then dropping both: the pending counts land in the atomics.
    let clone = cached.clone();
    clone.write(0x1000, &buf[..4096]).unwrap();
    plain.write(0x1000, &buf[..4096]).unwrap();
    drop(cached);
    drop(clone);
    assert_eq!(all_counters(&a), all_counters(&b));
    assert!(a.fabric.caches().is_empty(), "dropped handles unregister");
}

#[allow(dead_code, clippy::all)]
mod common {
    //! Helpers shared by the integration tests.
    #![allow(dead_code)]

    use crate::{
        ClassCode, CommonHeader, ConfigEffects, InterruptPin, PciFunction, ResetKind, Type0Config,
        Type0Header,
    };

    /// A plain endpoint header.
    pub fn header(vendor_id: u16, device_id: u16) -> Type0Header {
        Type0Header {
            common: CommonHeader {
                vendor_id,
                device_id,
                revision_id: 1,
                class_code: ClassCode::new(0x01, 0x08, 0x02),
                multifunction: false,
                interrupt_pin: InterruptPin::IntA,
            },
            subsystem_vendor_id: 0x1af4,
            subsystem_id: 0x0001,
        }
    }

    /// An endpoint with no BARs and no capabilities.
    pub fn config(vendor_id: u16, device_id: u16) -> Type0Config {
        Type0Config::new(&header(vendor_id, device_id)).unwrap()
    }

    /// A `PciFunction` that is nothing but its Type 0 config space.
    pub struct Dummy(pub Type0Config);

    impl PciFunction for Dummy {
        fn config_read(&self, offset: u16, data: &mut [u8]) {
            self.0.read(offset, data)
        }
        fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
            self.0.write(offset, data)
        }
        fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
            data.fill(0)
        }
        fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}
        fn reset(&mut self, _kind: ResetKind) {}
    }

    pub mod bridge {
        //! A minimal Type 1 bridge for fabric tests: bus numbers, windows, bridge
        //! control, a PCIe capability with a port number and an optional ACS
        //! capability built with `add_ext_capability`.

        use crate::{
            bridge_reg as br, ext_cap_id, reg, AcsBits, ClassCode, CommonHeader, ConfigEffects,
            ConfigSpace, HeaderLayout, InterruptPin, PciExpressCapability, PciFunction, PortType,
            ResetKind, Watch,
        };

        /// Bits of the egress control vector a test bridge implements.
        pub const EGRESS_BITS: u8 = 8;

        /// A root port, switch upstream port or switch downstream port.
        pub struct TestBridge {
            port_type: PortType,
            port: u8,
            acs: AcsBits,
            space: ConfigSpace,
        }

        impl TestBridge {
            /// A bridge of `port_type` with port number `port`, implementing the
            /// ACS bits `acs` (no ACS capability when empty).
            pub fn new(port_type: PortType, port: u8, acs: AcsBits) -> Self {
                TestBridge {
                    port_type,
                    port,
                    acs,
                    space: build(port_type, port, acs),
                }
            }

            /// A root port with every ACS bit.
            pub fn root_port(port: u8) -> Box<Self> {
                Box::new(Self::new(PortType::RootPort, port, AcsBits::ALL))
            }

            /// A switch upstream port, without ACS.
            pub fn upstream() -> Box<Self> {
                Box::new(Self::new(PortType::UpstreamPort, 0, AcsBits::NONE))
            }

            /// A switch downstream port with every ACS bit.
            pub fn downstream(port: u8) -> Box<Self> {
                Box::new(Self::new(PortType::DownstreamPort, port, AcsBits::ALL))
            }
        }

        fn build(port_type: PortType, port: u8, acs: AcsBits) -> ConfigSpace {
            let mut s = ConfigSpace::new();
            CommonHeader {
                vendor_id: 0x1b36,
                device_id: 0x000c + port_type as u16,
                revision_id: 0,
                class_code: ClassCode::PCI_BRIDGE,
                multifunction: false,
                interrupt_pin: InterruptPin::None,
            }
            .apply(&mut s, HeaderLayout::Type1)
            .unwrap();
            s.set_writable_mask(br::PRIMARY_BUS, &[0xff, 0xff, 0xff]);
            s.set_bytes(br::IO_BASE, &[br::WIDE_DECODE, br::WIDE_DECODE]);
            s.set_writable_mask(br::IO_BASE, &[0xf0, 0xf0]);
            s.set_writable_mask(br::MEMORY_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
            s.set_bytes(br::PREF_BASE, &[br::WIDE_DECODE, 0, br::WIDE_DECODE, 0]);
            s.set_writable_mask(br::PREF_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
            s.set_writable_mask(br::PREF_BASE_UPPER, &[0xff; 8]);
            s.set_writable_mask(br::IO_BASE_UPPER, &[0xff; 4]);
            s.set_writable_mask(br::BRIDGE_CONTROL, &[0x4f, 0]);
            PciExpressCapability::new(port_type)
                .port_number(port)
                .add_to(&mut s)
                .unwrap();
            if !acs.is_empty() {
                let ec = acs.contains(AcsBits::EC);
                let vector = if ec { u16::from(EGRESS_BITS) << 8 } else { 0 };
                let mut body = Vec::from((acs.bits() | vector).to_le_bytes());
                let mut mask = vec![0, 0];
                body.extend([0, 0]);
                mask.extend(acs.bits().to_le_bytes());
                if ec {
                    body.extend([0; 4]);
                    mask.extend([0xff, 0, 0, 0]);
                }
                s.add_ext_capability(ext_cap_id::ACS, 1, &body, &mask)
                    .unwrap();
            }
            s
        }

        impl PciFunction for TestBridge {
            fn config_read(&self, offset: u16, data: &mut [u8]) {
                self.space.read(offset, data)
            }

            fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
                let watches: [Watch; 2] = [
                    (reg::COMMAND..reg::COMMAND + 2, ConfigEffects::COMMAND),
                    (br::PRIMARY_BUS..0x40, ConfigEffects::BRIDGE),
                ];
                self.space.write_watched(offset, data, &watches)
            }

            fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
                data.fill(0xff)
            }

            fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}

            fn reset(&mut self, _kind: ResetKind) {
                self.space = build(self.port_type, self.port, self.acs);
            }
        }
    }
    pub mod endpoint {
        //! A Type 0 endpoint for fabric tests: memory BARs backed by buffers the
        //! test keeps a handle on, and a doorbell that makes the endpoint DMA.

        use std::sync::{Arc, Mutex};

        use crate::{
            BarKind, BarRegion, ClassCode, CommonHeader, ConfigEffects, DmaError, DmaHandle,
            InterruptPin, PciFunction, ResetKind, Type0Config, Type0Header,
        };

        /// BAR 0 of a standard test endpoint: 64-bit prefetchable, 1 MiB.
        pub const BAR0: (u8, BarKind, u64) = (0, BarKind::Memory64 { prefetchable: true }, 1 << 20);
        /// BAR 2 of a standard test endpoint: 32-bit, 16 KiB, with the doorbell at 0.
        pub const BAR2: (u8, BarKind, u64) = (
            2,
            BarKind::Memory32 {
                prefetchable: false,
            },
            16 << 10,
        );

        /// What the test sees of an endpoint once the fabric owns it.
        #[derive(Default)]
        pub struct EpShared {
            /// BAR contents, by BAR index.
            pub bars: [Mutex<Vec<u8>>; 6],
            /// The handle the doorbell DMAs through.
            pub dma: Mutex<Option<DmaHandle>>,
            /// What the doorbell DMAs; [`DOORBELL_DATA`] while empty.
            pub payload: Mutex<Vec<u8>>,
            /// Outcome of each doorbell DMA.
            pub doorbells: Mutex<Vec<Result<(), DmaError>>>,
        }

        impl EpShared {
            /// `len` bytes of BAR `bar` at `offset`.
            pub fn peek(&self, bar: u8, offset: usize, len: usize) -> Vec<u8> {
                self.bars[bar as usize].lock().unwrap()[offset..offset + len].to_vec()
            }
        }

        /// What the doorbell writes to the address it is given, by default.
        pub const DOORBELL_DATA: [u8; 4] = [0xd0, 0x0b, 0xe1, 0x11];

        /// A Type 0 function with backed memory BARs.
        pub struct TestEndpoint {
            header: Type0Header,
            bars: Vec<(u8, BarKind, u64)>,
            cfg: Type0Config,
            shared: Arc<EpShared>,
        }

        impl TestEndpoint {
            /// An endpoint with `bars` (index, kind, size); `multifunction` sets
            /// the header bit a function 0 needs when more functions follow.
            pub fn new(
                bars: &[(u8, BarKind, u64)],
                multifunction: bool,
            ) -> (Box<Self>, Arc<EpShared>) {
                let header = Type0Header {
                    common: CommonHeader {
                        vendor_id: 0x1234,
                        device_id: 0x5678,
                        revision_id: 1,
                        class_code: ClassCode::new(0x01, 0x08, 0x02),
                        multifunction,
                        interrupt_pin: InterruptPin::IntA,
                    },
                    subsystem_vendor_id: 0x1234,
                    subsystem_id: 1,
                };
                let shared = Arc::new(EpShared::default());
                for &(i, _, size) in bars {
                    *shared.bars[i as usize].lock().unwrap() = vec![0; size as usize];
                }
                let cfg = config(&header, bars);
                let ep = TestEndpoint {
                    header,
                    bars: bars.to_vec(),
                    cfg,
                    shared: shared.clone(),
                };
                (Box::new(ep), shared)
            }

            /// The standard endpoint: [`BAR0`] and [`BAR2`].
            pub fn standard(multifunction: bool) -> (Box<Self>, Arc<EpShared>) {
                Self::new(&[BAR0, BAR2], multifunction)
            }

            fn ring(&self, data: &[u8]) {
                let mut addr = [0; 8];
                let n = data.len().min(8);
                addr[..n].copy_from_slice(&data[..n]);
                let dma = self.shared.dma.lock().unwrap().clone();
                let mut payload = self.shared.payload.lock().unwrap().clone();
                if payload.is_empty() {
                    payload = DOORBELL_DATA.to_vec();
                }
                let result = match dma {
                    Some(dma) => dma.write(u64::from_le_bytes(addr), &payload),
                    None => Err(DmaError::BusMasterDisabled),
                };
                self.shared.doorbells.lock().unwrap().push(result);
            }
        }

        fn config(header: &Type0Header, bars: &[(u8, BarKind, u64)]) -> Type0Config {
            let mut cfg = Type0Config::new(header).unwrap();
            for &(i, kind, size) in bars {
                cfg.add_bar(i, kind, size).unwrap();
            }
            cfg
        }

        impl PciFunction for TestEndpoint {
            fn config_read(&self, offset: u16, data: &mut [u8]) {
                self.cfg.read(offset, data)
            }

            fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
                self.cfg.write(offset, data)
            }

            fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
                let mem = self.shared.bars[bar as usize].lock().unwrap();
                let at = offset as usize;
                data.copy_from_slice(&mem[at..at + data.len()]);
            }

            fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
                if bar == 2 && offset == 0 {
                    return self.ring(data);
                }
                let mut mem = self.shared.bars[bar as usize].lock().unwrap();
                let at = offset as usize;
                mem[at..at + data.len()].copy_from_slice(data);
            }

            fn reset(&mut self, _kind: ResetKind) {
                self.cfg = config(&self.header, &self.bars);
            }

            fn bar_regions(&self) -> Vec<BarRegion> {
                self.cfg.bar_regions()
            }
        }
    }
    pub mod firmware {
        //! Config-access helpers, and the apertures every test fabric is
        //! enumerated with by the library's firmware ([`crate::enumerate`]).

        use crate::{Apertures, Bdf, EnumerationReport, Fabric};

        /// Start of the 32-bit MMIO aperture.
        pub const MEM32_BASE: u64 = 0xc000_0000;
        /// Size of the 32-bit MMIO aperture.
        pub const MEM32_SIZE: u64 = 0x2000_0000;
        /// Start of the 64-bit MMIO aperture.
        pub const MEM64_BASE: u64 = 0x40_0000_0000;
        /// Size of the 64-bit MMIO aperture.
        pub const MEM64_SIZE: u64 = 0x10_0000_0000;
        /// The I/O range, inclusive.
        pub const IO_RANGE: (u16, u16) = (0x1000, 0xffff);

        /// The apertures of every test fabric.
        pub const APERTURES: Apertures = Apertures {
            mmio32: (MEM32_BASE, MEM32_SIZE),
            mmio64: (MEM64_BASE, MEM64_SIZE),
            io: IO_RANGE,
        };

        /// Config read of `N` bytes.
        pub fn read<const N: usize>(f: &Fabric, at: Bdf, off: u16) -> u64 {
            let mut b = [0u8; N];
            f.config_read(at, off, &mut b);
            b.iter().rev().fold(0, |acc, &x| acc << 8 | x as u64)
        }

        /// Config write of the low `N` bytes of `value`.
        pub fn write<const N: usize>(f: &Fabric, at: Bdf, off: u16, value: u64) {
            f.config_write(at, off, &value.to_le_bytes()[..N]);
        }

        /// Numbers the buses, assigns every BAR and window from [`APERTURES`] and
        /// enables decoding and bus mastering, like firmware.
        pub fn enumerate(f: &Fabric) -> EnumerationReport {
            crate::enumerate(f, &APERTURES).expect("enumeration")
        }
    }
    pub mod topo {
        //! Test fabrics, built and then programmed through config space like
        //! firmware would, and helpers to poke at them.

        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};

        use crate::{
            acs_reg, ext_cap_id, ext_capabilities, reg, AcsBits, BarKind, Bdf, Dir, DmaRequest,
            EnumerationReport, Fabric, GuestRam, NodeId, NodeKind, RcP2pPolicy, Route,
        };

        use super::bridge::TestBridge;
        use super::endpoint::{EpShared, TestEndpoint};
        use super::firmware::{self, read, write};
        use super::Dummy;

        /// Guest RAM of every test fabric: 1 MiB at 0.
        pub const RAM_SIZE: u64 = 1 << 20;

        /// A built and enumerated fabric, with its nodes by name.
        pub struct Topo {
            /// The fabric.
            pub fabric: Arc<Fabric>,
            /// Nodes by name.
            pub ids: HashMap<&'static str, NodeId>,
            /// Endpoints' shared state by name.
            pub eps: HashMap<&'static str, Arc<EpShared>>,
            /// What the firmware did.
            pub report: EnumerationReport,
        }

        impl Topo {
            /// The node called `name`.
            pub fn id(&self, name: &str) -> NodeId {
                *self
                    .ids
                    .get(name)
                    .unwrap_or_else(|| panic!("no node {name}"))
            }

            /// The endpoint state of `name`.
            pub fn ep(&self, name: &str) -> &Arc<EpShared> {
                &self.eps[name]
            }

            /// The bus address of BAR `bar` of `name`.
            pub fn bar(&self, name: &str, bar: u8) -> u64 {
                let regions = self.fabric.bar_regions(self.id(name));
                regions.iter().find(|r| r.index == bar).expect("BAR").addr
            }

            /// The BDF of `name`.
            pub fn bdf(&self, name: &str) -> Bdf {
                self.fabric.bdf(self.id(name)).expect("configured")
            }

            /// Sets ACS control of `name` to `bits`.
            pub fn set_acs(&self, name: &str, bits: AcsBits) {
                let at = self.bdf(name);
                let f = &*self.fabric;
                let cap = ext_capabilities(|o| read::<4>(f, at, o) as u32)
                    .find(|c| c.id == ext_cap_id::ACS)
                    .expect("ACS capability");
                write::<2>(f, at, cap.offset + acs_reg::CONTROL, bits.bits().into());
            }

            /// Sets the egress control vector (first dword) of `name`.
            pub fn set_egress(&self, name: &str, vector: u32) {
                let at = self.bdf(name);
                let f = &*self.fabric;
                let cap = ext_capabilities(|o| read::<4>(f, at, o) as u32)
                    .find(|c| c.id == ext_cap_id::ACS)
                    .expect("ACS capability");
                write::<4>(f, at, cap.offset + acs_reg::EGRESS_VECTOR, vector.into());
            }

            /// Clears command register bits of `name`.
            pub fn clear_command(&self, name: &str, bits: u16) {
                let at = self.bdf(name);
                let cmd = read::<2>(&self.fabric, at, reg::COMMAND) & !u64::from(bits);
                write::<2>(&self.fabric, at, reg::COMMAND, cmd);
            }

            /// A request from `from`.
            pub fn req(&self, from: &str, addr: u64, len: u64, write: bool) -> DmaRequest {
                DmaRequest {
                    requester: self.id(from),
                    requester_id: None,
                    addr,
                    len,
                    write,
                    translated: false,
                }
            }

            /// A route as `"ep1^ dsp1^ dsp2v ep2v"`.
            pub fn path(&self, route: &Route) -> String {
                let names: HashMap<NodeId, &str> = self.ids.iter().map(|(k, v)| (*v, *k)).collect();
                route
                    .hops
                    .iter()
                    .map(|h| {
                        format!(
                            "{}{}",
                            names[&h.node],
                            if h.dir == Dir::Up { "^" } else { "v" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }

        /// Builds a tree from `(name, parent, device, function, kind)` rows; the
        /// endpoints get [`TestEndpoint::standard`] unless named `rciep` (one
        /// 256-byte 32-bit BAR). Bridges implement every ACS bit but switch
        /// upstream ports, which have no ACS. Port numbers: device number + 1.
        pub fn build(
            rows: &[(&'static str, Option<&'static str>, u8, u8, NodeKind)],
            policy: RcP2pPolicy,
        ) -> Topo {
            let fabric = Arc::new(Fabric::new(vec![(0, RAM_SIZE)], policy));
            let mut topo = Topo {
                fabric,
                ids: HashMap::new(),
                eps: HashMap::new(),
                report: EnumerationReport::default(),
            };
            for &(name, parent, dev, func, kind) in rows {
                let multi = rows
                    .iter()
                    .any(|r| r.1 == parent && r.2 == dev && r.3 != 0 && func == 0);
                let f: Box<dyn crate::PciFunction> = match kind {
                    NodeKind::HostBridge => Box::new(Dummy(super::config(0x8086, 0x29c0))),
                    NodeKind::RootPort => TestBridge::root_port(dev + 1),
                    NodeKind::SwitchUpstream => TestBridge::upstream(),
                    NodeKind::SwitchDownstream => TestBridge::downstream(dev + 1),
                    NodeKind::Endpoint => {
                        let small = (
                            0,
                            BarKind::Memory32 {
                                prefetchable: false,
                            },
                            0x100,
                        );
                        let (ep, shared) = if name == "rciep" {
                            TestEndpoint::new(&[small], false)
                        } else {
                            TestEndpoint::standard(multi)
                        };
                        topo.eps.insert(name, shared);
                        ep
                    }
                };
                let parent = parent.map(|p| topo.id(p));
                let id = topo.fabric.add(parent, dev, func, name, kind, f).unwrap();
                topo.ids.insert(name, id);
            }
            topo.report = firmware::enumerate(&topo.fabric);
            topo
        }

        /// RC with a host bridge; root port 1 → switch (upstream port + 3
        /// downstream ports, each with an endpoint; the first endpoint has a
        /// second function `ep1f1`); root port 2 → `ep4`; an integrated `rciep`.
        pub fn standard(policy: RcP2pPolicy) -> Topo {
            use NodeKind::*;
            build(
                &[
                    ("hb", None, 0, 0, HostBridge),
                    ("rp1", None, 1, 0, RootPort),
                    ("usp", Some("rp1"), 0, 0, SwitchUpstream),
                    ("dsp1", Some("usp"), 0, 0, SwitchDownstream),
                    ("dsp2", Some("usp"), 1, 0, SwitchDownstream),
                    ("dsp3", Some("usp"), 2, 0, SwitchDownstream),
                    ("ep1", Some("dsp1"), 0, 0, Endpoint),
                    ("ep1f1", Some("dsp1"), 0, 1, Endpoint),
                    ("ep2", Some("dsp2"), 0, 0, Endpoint),
                    ("ep3", Some("dsp3"), 0, 0, Endpoint),
                    ("rp2", None, 2, 0, RootPort),
                    ("ep4", Some("rp2"), 0, 0, Endpoint),
                    ("rciep", None, 3, 0, Endpoint),
                ],
                policy,
            )
        }

        /// Two switch levels: root port → switch A; A's first downstream port →
        /// switch B with two endpoints; A's second downstream port → `ep_a2`.
        pub fn two_level(policy: RcP2pPolicy) -> Topo {
            use NodeKind::*;
            build(
                &[
                    ("hb", None, 0, 0, HostBridge),
                    ("rp1", None, 1, 0, RootPort),
                    ("usp_a", Some("rp1"), 0, 0, SwitchUpstream),
                    ("dsp_a1", Some("usp_a"), 0, 0, SwitchDownstream),
                    ("dsp_a2", Some("usp_a"), 1, 0, SwitchDownstream),
                    ("usp_b", Some("dsp_a1"), 0, 0, SwitchUpstream),
                    ("dsp_b1", Some("usp_b"), 0, 0, SwitchDownstream),
                    ("dsp_b2", Some("usp_b"), 1, 0, SwitchDownstream),
                    ("ep_b1", Some("dsp_b1"), 0, 0, Endpoint),
                    ("ep_b2", Some("dsp_b2"), 0, 0, Endpoint),
                    ("ep_a2", Some("dsp_a2"), 0, 0, Endpoint),
                ],
                policy,
            )
        }

        /// Guest RAM over a vector.
        pub struct VecRam(pub Mutex<Vec<u8>>);

        impl VecRam {
            /// `size` zero bytes.
            pub fn new(size: usize) -> Arc<Self> {
                Arc::new(VecRam(Mutex::new(vec![0; size])))
            }
        }

        impl GuestRam for VecRam {
            fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
                let mem = self.0.lock().unwrap();
                let Some(src) = mem.get(addr as usize..addr as usize + buf.len()) else {
                    return false;
                };
                buf.copy_from_slice(src);
                true
            }

            fn write(&self, addr: u64, buf: &[u8]) -> bool {
                let mut mem = self.0.lock().unwrap();
                let Some(dst) = mem.get_mut(addr as usize..addr as usize + buf.len()) else {
                    return false;
                };
                dst.copy_from_slice(buf);
                true
            }
        }
    }
}
