//! Legacy INTx: virtual wires swizzled up through every bridge to a
//! root-bus slot and its GSI, ORed per GSI, gated by Interrupt Disable,
//! shown in Status.Interrupt Status and dropped by resets.
//!
//! Every expected GSI is worked out by hand from the PCI rules: at each
//! bridge, `pin = (pin - 1 + device below) % 4 + 1`; on the root bus,
//! device `d`'s pin (INTA = 0) reaches GSI `16 + (d + pin) % 8`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::firmware::{read, write};
use common::topo::{build, Topo, VecRam, RAM_SIZE};
use common::{header, Dummy};
use pcie_core::{
    bridge_control, bridge_reg, command, reg, status, DmaError, DmaHandle, InterruptPin,
    InterruptSink, NodeKind, RcP2pPolicy, ResetKind, Type0Config,
};

/// The interrupt controller of the tests: records every level change.
#[derive(Default)]
struct Ioapic(Mutex<Vec<(u32, bool)>>);

impl InterruptSink for Ioapic {
    fn deliver(&self, _addr: u64, _data: u32) -> bool {
        false
    }
    fn set_level(&self, gsi: u32, level: bool) {
        self.0.lock().unwrap().push((gsi, level));
    }
}

impl Ioapic {
    /// The changes since the last call.
    fn take(&self) -> Vec<(u32, bool)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Root port 1 → switch with downstream ports at devices 0, 1 and 3 (an
/// endpoint each) and an endpoint on its internal bus at device 5; root
/// port 2 → `ep_e`; root port 6 → switch → downstream port at device 2 →
/// `ep_f`; an integrated endpoint at device 4. Endpoints use INTA.
fn fabric() -> Topo {
    use NodeKind::*;
    build(
        &[
            ("hb", None, 0, 0, HostBridge),
            ("rp1", None, 1, 0, RootPort),
            ("usp1", Some("rp1"), 0, 0, SwitchUpstream),
            ("dsp10", Some("usp1"), 0, 0, SwitchDownstream),
            ("dsp11", Some("usp1"), 1, 0, SwitchDownstream),
            ("dsp13", Some("usp1"), 3, 0, SwitchDownstream),
            ("ep_a", Some("dsp10"), 0, 0, Endpoint),
            ("ep_b", Some("dsp11"), 0, 0, Endpoint),
            ("ep_c", Some("dsp13"), 0, 0, Endpoint),
            ("sw_ep", Some("usp1"), 5, 0, Endpoint),
            ("rp2", None, 2, 0, RootPort),
            ("ep_e", Some("rp2"), 0, 0, Endpoint),
            ("rp6", None, 6, 0, RootPort),
            ("usp6", Some("rp6"), 0, 0, SwitchUpstream),
            ("dsp62", Some("usp6"), 2, 0, SwitchDownstream),
            ("ep_f", Some("dsp62"), 0, 0, Endpoint),
            ("rciep", None, 4, 0, Endpoint),
        ],
        RcP2pPolicy::Forward,
    )
}

/// The fabric with a recording sink, and a DMA handle per node name.
struct Rig {
    t: Topo,
    apic: Arc<Ioapic>,
    handles: HashMap<&'static str, DmaHandle>,
}

impl Rig {
    fn new() -> Self {
        let t = fabric();
        let apic = Arc::new(Ioapic::default());
        assert!(t.fabric.set_interrupt_sink(apic.clone()));
        Rig {
            t,
            apic,
            handles: HashMap::new(),
        }
    }

    fn intx(&mut self, name: &'static str, asserted: bool) -> Result<(), DmaError> {
        let (fabric, id) = (self.t.fabric.clone(), self.t.id(name));
        let ram = VecRam::new(RAM_SIZE as usize);
        let dma = self
            .handles
            .entry(name)
            .or_insert_with(|| DmaHandle::new(fabric, id, ram));
        dma.set_intx(asserted)
    }

    fn status(&self, name: &str) -> u16 {
        read::<2>(&self.t.fabric, self.t.bdf(name), reg::STATUS) as u16
    }

    fn set_command(&self, name: &str, bits: u16, on: bool) {
        let at = self.t.bdf(name);
        let cmd = read::<2>(&self.t.fabric, at, reg::COMMAND) as u16;
        let cmd = if on { cmd | bits } else { cmd & !bits };
        write::<2>(&self.t.fabric, at, reg::COMMAND, cmd.into());
    }
}

/// Where each endpoint's INTA lands, by hand:
/// - ep_a: device 0 below dsp10 (A), dsp10 is device 0 (A), usp1 device 0
///   below rp1 (A); rp1 is root-bus device 1: 16 + (1 + 0) % 8 = 17.
/// - ep_b: dsp11 is device 1: B; rp1: 16 + (1 + 1) % 8 = 18.
/// - ep_c: dsp13 is device 3: D; rp1: 16 + (1 + 3) % 8 = 20.
/// - sw_ep: device 5 on usp1's bus: (0 + 5) % 4 = B; rp1: 18.
/// - ep_e: below rp2 (A); rp2 is device 2: 16 + 2 = 18.
/// - ep_f: dsp62 is device 2: C; usp6 device 0 (C); rp6 is device 6:
///   16 + (6 + 2) % 8 = 16.
/// - rciep: root-bus device 4, A: 16 + 4 = 20.
const EXPECTED: [(&str, u32); 7] = [
    ("ep_a", 17),
    ("ep_b", 18),
    ("ep_c", 20),
    ("sw_ep", 18),
    ("ep_e", 18),
    ("ep_f", 16),
    ("rciep", 20),
];

#[test]
fn each_wire_reaches_the_gsi_the_swizzle_gives() {
    let mut r = Rig::new();
    for (name, gsi) in EXPECTED {
        r.intx(name, true).unwrap();
        assert_eq!(r.apic.take(), vec![(gsi, true)], "{name}");
        assert!(r.t.fabric.intx_driving(r.t.id(name)));
        r.intx(name, false).unwrap();
        assert_eq!(r.apic.take(), vec![(gsi, false)], "{name}");
        assert_eq!(r.t.fabric.intx_gsi(r.t.id(name)), Some(gsi), "{name}");
        assert_eq!(r.t.fabric.intx_assertions(r.t.id(name)), 1, "{name}");
    }
}

#[test]
fn other_pins_are_swizzled_too() {
    let t = fabric();
    // INTD at device 6 on usp1's bus: (3 + 6) % 4 = 1, INTB; usp1 is
    // device 0 below rp1 (INTB); rp1, device 1: 16 + (1 + 1) % 8 = 18.
    let mut h = header(0x1234, 0x4444);
    h.common.interrupt_pin = InterruptPin::IntD;
    let f = Box::new(Dummy(Type0Config::new(&h).unwrap()));
    let usp = t.id("usp1");
    let id = t
        .fabric
        .add(Some(usp), 6, 0, "pin_d", NodeKind::Endpoint, f);
    let id = id.unwrap();
    let apic = Arc::new(Ioapic::default());
    t.fabric.set_interrupt_sink(apic.clone());
    t.fabric.set_intx(id, true).unwrap();
    assert_eq!(apic.take(), vec![(18, true)]);
    // The register reads back as declared.
    let bus = t.fabric.bridge(usp).unwrap().secondary;
    let at = pcie_core::Bdf::new(bus, 6, 0).unwrap();
    assert_eq!(read::<1>(&t.fabric, at, reg::INTERRUPT_PIN), 4);
}

#[test]
fn wires_sharing_a_gsi_are_ored() {
    let mut r = Rig::new();
    // ep_b, sw_ep and ep_e all reach GSI 18.
    r.intx("ep_b", true).unwrap();
    assert_eq!(r.apic.take(), vec![(18, true)]);
    r.intx("ep_e", true).unwrap();
    r.intx("sw_ep", true).unwrap();
    r.intx("ep_b", true).unwrap(); // again: no change
    assert_eq!(r.apic.take(), vec![]);
    r.intx("ep_b", false).unwrap();
    r.intx("sw_ep", false).unwrap();
    r.intx("sw_ep", false).unwrap();
    assert_eq!(r.apic.take(), vec![], "ep_e still asserts 18");
    // Another GSI is independent.
    r.intx("ep_a", true).unwrap();
    assert_eq!(r.apic.take(), vec![(17, true)]);
    r.intx("ep_e", false).unwrap();
    assert_eq!(r.apic.take(), vec![(18, false)]);
    r.intx("ep_a", false).unwrap();
    assert_eq!(r.apic.take(), vec![(17, false)]);
    assert_eq!(r.t.fabric.intx_assertions(r.t.id("ep_b")), 1);
}

#[test]
fn interrupt_disable_gates_the_wire_but_not_interrupt_status() {
    let mut r = Rig::new();
    let is = status::INTERRUPT_STATUS;
    assert_eq!(r.status("ep_a") & is, 0);
    r.set_command("ep_a", command::INTX_DISABLE, true);
    r.intx("ep_a", true).unwrap();
    assert_eq!(r.apic.take(), vec![], "disabled: the wire stays idle");
    assert_ne!(r.status("ep_a") & is, 0, "but the interrupt is pending");
    // Status seen through a dword read of Command/Status and a byte read.
    let dword = read::<4>(&r.t.fabric, r.t.bdf("ep_a"), reg::COMMAND);
    assert_ne!(dword & (u64::from(is) << 16), 0);
    assert_ne!(read::<1>(&r.t.fabric, r.t.bdf("ep_a"), reg::STATUS) & 8, 0);
    // Other functions are not pending.
    assert_eq!(r.status("ep_b") & is, 0);

    // Re-enabling drives the still pending wire; disabling drops it.
    r.set_command("ep_a", command::INTX_DISABLE, false);
    assert_eq!(r.apic.take(), vec![(17, true)]);
    r.set_command("ep_a", command::INTX_DISABLE, true);
    assert_eq!(r.apic.take(), vec![(17, false)]);
    assert_ne!(r.status("ep_a") & is, 0);
    // Writes cannot clear Interrupt Status: it is read-only.
    write::<2>(&r.t.fabric, r.t.bdf("ep_a"), reg::STATUS, 0xffff);
    assert_ne!(r.status("ep_a") & is, 0);

    // Deasserted while disabled: re-enabling drives nothing.
    r.intx("ep_a", false).unwrap();
    assert_eq!(r.status("ep_a") & is, 0);
    r.set_command("ep_a", command::INTX_DISABLE, false);
    assert_eq!(r.apic.take(), vec![]);

    // Bus Master Enable does not gate INTx, on the function or above it.
    r.set_command("ep_a", command::BUS_MASTER, false);
    r.set_command("rp1", command::BUS_MASTER, false);
    r.intx("ep_a", true).unwrap();
    assert_eq!(r.apic.take(), vec![(17, true)]);
    // A bridge's Interrupt Disable covers its own INTx only.
    r.set_command("rp1", command::INTX_DISABLE, true);
    assert_eq!(r.apic.take(), vec![]);
    assert_eq!(r.t.fabric.intx_assertions(r.t.id("ep_a")), 2);
}

#[test]
fn resets_deassert_the_wire() {
    let mut r = Rig::new();
    let is = status::INTERRUPT_STATUS;
    r.intx("ep_a", true).unwrap();
    r.intx("ep_b", true).unwrap();
    r.intx("ep_e", true).unwrap();
    assert_eq!(r.apic.take(), vec![(17, true), (18, true)]);

    r.t.fabric.reset(r.t.id("ep_a"), ResetKind::FunctionLevel);
    assert_eq!(r.apic.take(), vec![(17, false)]);
    assert_eq!(r.status("ep_a") & is, 0);
    assert!(!r.t.fabric.intx_pending(r.t.id("ep_a")));

    // A Secondary Bus Reset on dsp11 hot resets ep_b; ep_e keeps 18 up.
    let at = r.t.bdf("dsp11");
    let ctl = u64::from(bridge_control::SECONDARY_BUS_RESET);
    write::<2>(&r.t.fabric, at, bridge_reg::BRIDGE_CONTROL, ctl);
    write::<2>(&r.t.fabric, at, bridge_reg::BRIDGE_CONTROL, 0);
    assert_eq!(r.apic.take(), vec![]);
    assert!(!r.t.fabric.intx_pending(r.t.id("ep_b")));
    assert!(r.t.fabric.intx_pending(r.t.id("ep_e")));

    r.intx("ep_f", true).unwrap();
    r.t.fabric.reset_all(ResetKind::Fundamental);
    // ep_f's assertion, then the resets in node order: ep_e, ep_f.
    assert_eq!(r.apic.take(), vec![(16, true), (18, false), (16, false)]);
    // The device may assert again after a reset.
    r.intx("ep_b", true).unwrap();
    assert_eq!(r.apic.take(), vec![(18, true)]);
}

#[test]
fn a_function_without_a_pin_has_no_intx() {
    let mut r = Rig::new();
    // The test switch ports declare no Interrupt Pin.
    assert_eq!(r.intx("usp1", true), Err(DmaError::UnsupportedRequest));
    assert_eq!(r.status("usp1") & status::INTERRUPT_STATUS, 0);
    assert_eq!(r.t.fabric.intx_gsi(r.t.id("usp1")), None);
    assert_eq!(r.apic.take(), vec![]);
}

#[test]
fn a_sink_connected_late_learns_the_asserted_lines() {
    let t = fabric();
    let ram = VecRam::new(RAM_SIZE as usize);
    let a = DmaHandle::new(t.fabric.clone(), t.id("ep_a"), ram.clone());
    let f = DmaHandle::new(t.fabric.clone(), t.id("ep_f"), ram);
    a.set_intx(true).unwrap();
    f.set_intx(true).unwrap();
    f.set_intx(false).unwrap();
    let apic = Arc::new(Ioapic::default());
    assert!(t.fabric.set_interrupt_sink(apic.clone()));
    assert_eq!(apic.take(), vec![(17, true)]);
    a.set_intx(false).unwrap();
    assert_eq!(apic.take(), vec![(17, false)]);
}

#[test]
fn concurrent_wires_and_interrupt_disable_leave_levels_consistent() {
    let r = Rig::new();
    let fabric = r.t.fabric.clone();
    // Three functions on GSI 18 toggle from their own threads while a
    // vCPU toggles ep_b's Interrupt Disable.
    let names = ["ep_b", "sw_ep", "ep_e"];
    std::thread::scope(|s| {
        for name in names {
            let dma = DmaHandle::new(fabric.clone(), r.t.id(name), VecRam::new(16));
            s.spawn(move || {
                for i in 0..2000 {
                    dma.set_intx(i % 2 == 0).unwrap();
                }
            });
        }
        s.spawn(|| {
            for i in 0..500 {
                r.set_command("ep_b", command::INTX_DISABLE, i % 2 == 0);
            }
        });
    });
    // Transitions alternate, starting high, and end low (all deasserted).
    let events = r.apic.take();
    assert!(!events.is_empty());
    for (i, &(gsi, level)) in events.iter().enumerate() {
        assert_eq!((gsi, level), (18, i % 2 == 0), "event {i}");
    }
    assert_eq!(events.last(), Some(&(18, false)));
}
