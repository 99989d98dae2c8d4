//! Mask properties of every port kind, checked against a bit-by-bit
//! expectation written from the specifications (not from the masks the
//! implementation sets), and reset behaviour.

use pcie_core::{cap_id, command, status, LinkSpeed};
use proptest::prelude::*;

use super::*;
use crate::{aer_reg, msi_reg, AcsBits, AcsConfig};

const SIZE: usize = 4096;

fn config(kind: PortKind) -> BridgeConfig {
    let down = kind.is_downstream();
    BridgeConfig {
        kind,
        vendor_id: 0x1b36,
        device_id: 0x000c,
        revision_id: 1,
        port_number: 3,
        link_speed: LinkSpeed::Gt16,
        link_width: 8,
        slot: down.then_some(7),
        acs: down.then_some(AcsConfig {
            capability: AcsBits::SV
                | AcsBits::TB
                | AcsBits::RR
                | AcsBits::CR
                | AcsBits::UF
                | AcsBits::EC,
            control: AcsBits::SV | AcsBits::UF,
            stuck: AcsBits::UF | AcsBits::TB,
            egress_vector_size: 40,
            egress_vector: 0x8000_0001,
        }),
        aer: kind != PortKind::SwitchDownstream,
        hot_plug: false,
    }
}

/// Per-byte classification: read-only, writable, write-1-to-clear bits.
struct Expect {
    ro: Vec<u8>,
    rw: Vec<u8>,
    w1c: Vec<u8>,
}

impl Expect {
    fn mark(&mut self, off: u16, len: usize, rw: u32, w1c: u32) {
        for i in 0..len {
            let at = off as usize + i;
            let (w, c) = ((rw >> (8 * i)) as u8, (w1c >> (8 * i)) as u8);
            self.rw[at] = w;
            self.w1c[at] = c;
            self.ro[at] = !(w | c);
        }
    }

    fn ro(&mut self, off: u16, len: usize) {
        for at in off as usize..off as usize + len {
            self.mark(at as u16, 1, 0, 0);
        }
    }
}

fn expectation(b: &PciBridge) -> Expect {
    use bridge_reg::*;
    let mut e = Expect {
        ro: vec![0; SIZE],
        rw: vec![0; SIZE],
        w1c: vec![0; SIZE],
    };
    let root = b.kind() == PortKind::RootPort;
    // Header: everything read-only unless listed.
    e.ro(0, 0x40);
    e.mark(reg::COMMAND, 2, command::WRITABLE.into(), 0);
    e.mark(reg::STATUS, 2, 0, status::W1C.into());
    e.mark(reg::CACHE_LINE_SIZE, 1, 0xff, 0);
    e.mark(PRIMARY_BUS, 4, u32::MAX, 0);
    e.mark(IO_BASE, 2, 0xf0f0, 0);
    e.mark(SECONDARY_STATUS, 2, 0, 0xf900);
    e.mark(MEMORY_BASE, 4, 0xfff0_fff0, 0);
    e.mark(PREF_BASE, 4, 0xfff0_fff0, 0);
    e.mark(PREF_BASE_UPPER, 4, u32::MAX, 0);
    e.mark(PREF_LIMIT_UPPER, 4, u32::MAX, 0);
    e.mark(IO_BASE_UPPER, 4, u32::MAX, 0);
    e.mark(reg::INTERRUPT_LINE, 1, 0xff, 0);
    e.mark(BRIDGE_CONTROL, 2, 0x7f, 0);
    // Standard capabilities: headers read-only; gaps after the last too.
    let caps: Vec<_> = b.space().capabilities().collect();
    let len = |id| match id {
        cap_id::POWER_MANAGEMENT => 8,
        cap_id::MSI => 0x10,
        _ => pcie_reg::LEN as u16,
    };
    let std_end = caps.iter().map(|c| c.offset + len(c.id)).max().unwrap();
    e.ro(std_end, 0x100 - std_end as usize);
    for c in &caps {
        e.ro(c.offset, 2);
        match c.id {
            cap_id::POWER_MANAGEMENT => e.ro(c.offset + 2, 6),
            cap_id::MSI => {
                e.mark(c.offset + msi_reg::CONTROL, 2, 0x71, 0);
                e.mark(c.offset + msi_reg::ADDRESS_LO, 4, 0xffff_fffc, 0);
                e.mark(c.offset + msi_reg::ADDRESS_HI, 4, u32::MAX, 0);
                e.mark(c.offset + msi_reg::DATA, 2, 0xffff, 0);
                e.ro(c.offset + 0x0e, 2);
            }
            cap_id::PCI_EXPRESS => {
                for (r, len) in [(2, 2), (4, 4), (0x0c, 4), (0x14, 4), (0x24, 4), (0x2c, 4)] {
                    e.ro(c.offset + r, len);
                }
                // Presence Detect State (the other Slot Status bits are
                // the core's business).
                e.ro[(c.offset + pcie_reg::SLTSTA) as usize] = 1 << 6;
            }
            id => panic!("unexpected capability {id:#x}"),
        }
    }
    // Extended capabilities.
    e.ro(0x100, 0xf00);
    if let Some(off) = b.capability_offsets().aer {
        use aer_reg::*;
        e.mark(off + UNCOR_STATUS, 4, 0, UNCOR_IMPLEMENTED);
        e.mark(off + UNCOR_MASK, 4, UNCOR_IMPLEMENTED, 0);
        e.mark(off + UNCOR_SEVERITY, 4, UNCOR_IMPLEMENTED, 0);
        e.mark(off + COR_STATUS, 4, 0, COR_IMPLEMENTED);
        e.mark(off + COR_MASK, 4, COR_IMPLEMENTED, 0);
        if root {
            e.mark(off + ROOT_COMMAND, 4, 7, 0);
            e.mark(off + ROOT_STATUS, 4, 0, 0x7f);
        }
    }
    if let (Some(off), Some(acs)) = (b.capability_offsets().acs, b.config().acs) {
        e.mark(off + 6, 2, (acs.capability & !acs.stuck).bits().into(), 0);
        let size = u32::from(acs.egress_vector_size);
        e.mark(off + 8, 4, u32::MAX, 0);
        e.mark(off + 12, 4, (1 << (size - 32)) - 1, 0);
    }
    e
}

fn dump(b: &PciBridge) -> Vec<u8> {
    let mut all = vec![0; SIZE];
    b.config_read(0, &mut all);
    all
}

/// Routing-relevant bytes, from the brief: bus numbers, windows, bridge
/// control, ACS control and egress vector.
fn routing(b: &PciBridge, off: usize) -> bool {
    let acs = b
        .capability_offsets()
        .acs
        .map_or(0..0, |a| a as usize + 6..a as usize + 16);
    matches!(off, 0x18..=0x1a | 0x1c | 0x1d | 0x20..=0x33 | 0x3e | 0x3f) || acs.contains(&off)
}

fn kinds() -> impl Strategy<Value = PortKind> {
    prop_oneof![
        Just(PortKind::RootPort),
        Just(PortKind::SwitchUpstream),
        Just(PortKind::SwitchDownstream)
    ]
}

/// Write offsets biased towards the header and the capabilities.
fn offsets() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => 0u16..0x40,
        2 => 0x40u16..0x100,
        2 => 0x100u16..0x1a0,
        1 => 0u16..0x1004,
    ]
}

proptest! {
    #[test]
    fn masks_hold_under_random_writes(
        kind in kinds(),
        present in any::<bool>(),
        writes in prop::collection::vec((offsets(), prop::collection::vec(any::<u8>(), 1..=4)), 1..48),
    ) {
        let mut b = PciBridge::new(config(kind)).unwrap();
        b.set_child_present(present);
        let e = expectation(&b);
        // Latch every RW1C bit so clearing is observable.
        for off in 0..SIZE {
            let v = b.space.u8_at(off as u16) | e.w1c[off];
            b.space.set_u8(off as u16, v);
        }
        let initial = dump(&b);
        for (offset, data) in writes {
            let before = dump(&b);
            let effects = b.config_write(offset, &data);
            let after = dump(&b);
            let mut routing_changed = false;
            for off in 0..SIZE {
                let (old, new) = (before[off], after[off]);
                routing_changed |= old != new && routing(&b, off);
                let Some(&v) = off.checked_sub(offset as usize).and_then(|i| data.get(i)) else {
                    prop_assert_eq!(new, old, "unwritten byte {:#x} changed", off);
                    continue;
                };
                prop_assert_eq!(new & e.ro[off], initial[off] & e.ro[off], "RO bits of {:#x}", off);
                prop_assert_eq!(new & e.rw[off], v & e.rw[off], "RW bits of {:#x}", off);
                prop_assert_eq!(new & e.w1c[off], old & e.w1c[off] & !v, "RW1C bits of {:#x}", off);
            }
            prop_assert_eq!(effects.command_changed(), before[4..6] != after[4..6]);
            prop_assert_eq!(effects.bridge_changed(), routing_changed);
            prop_assert!(!effects.bars_changed());
        }
    }
}

#[test]
fn reset_restores_power_on_state_and_keeps_sticky_aer_on_hot_reset() {
    let mut b = PciBridge::new(config(PortKind::RootPort)).unwrap();
    let fresh = dump(&b);
    let aer = b.capability_offsets().aer.unwrap();
    let acs = b.capability_offsets().acs.unwrap();
    b.space.set_u32(aer + aer_reg::UNCOR_STATUS, 1 << 21);
    b.config_write(aer + aer_reg::UNCOR_MASK, &[0; 4]);
    b.config_write(reg::COMMAND, &[0x07, 0x04]);
    b.config_write(bridge_reg::PRIMARY_BUS, &[0, 1, 5, 0]);
    b.config_write(bridge_reg::MEMORY_BASE, &[0x00, 0xc0, 0x00, 0xc0]);
    b.config_write(acs + acs_reg::CONTROL, &[0x0c, 0]);
    b.config_write(acs + acs_reg::EGRESS_VECTOR, &[0; 8]);
    b.set_child_present(true);
    b.reset(ResetKind::Hot);
    assert_eq!(b.space.u32_at(aer + aer_reg::UNCOR_STATUS), 1 << 21);
    assert_eq!(b.space.u32_at(aer + aer_reg::UNCOR_MASK), 0);
    assert_eq!(b.command(), 0);
    assert_eq!((b.secondary_bus(), b.subordinate_bus()), (0, 0));
    assert_eq!(b.acs_control(), Some(AcsBits::SV | AcsBits::UF));
    assert_eq!(b.acs_egress_vector().unwrap()[..2], [0x8000_0001, 0]);
    assert!(b.child_present());
    b.set_child_present(false);
    b.reset(ResetKind::Fundamental);
    assert_eq!(dump(&b), fresh);
}

#[test]
fn presence_detect_follows_the_child_only_with_a_slot() {
    let sltsta = |b: &PciBridge| b.space.u16_at(b.caps.pci_express + pcie_reg::SLTSTA);
    let mut with_slot = PciBridge::new(config(PortKind::SwitchDownstream)).unwrap();
    assert_eq!(sltsta(&with_slot) & pcie_core::pcie_sltsta::PDS, 0);
    with_slot.set_child_present(true);
    assert_eq!(sltsta(&with_slot), pcie_core::pcie_sltsta::PDS);
    let mut no_slot = PciBridge::new(BridgeConfig {
        slot: None,
        ..config(PortKind::RootPort)
    })
    .unwrap();
    assert_eq!(sltsta(&no_slot), pcie_core::pcie_sltsta::PDS);
    no_slot.set_child_present(false);
    assert_eq!(sltsta(&no_slot), pcie_core::pcie_sltsta::PDS);
}

fn ext_ids(b: &PciBridge) -> Vec<u16> {
    b.space.ext_capabilities().map(|c| c.id).collect()
}

#[test]
fn an_acs_fault_hides_the_capability_and_forces_bits_through_resets() {
    // Root port: ACS follows AER. Downstream port: ACS is first, at 0x100.
    for (kind, visible) in [
        (PortKind::RootPort, vec![0x0001, 0x000d]),
        (PortKind::SwitchDownstream, vec![0x000d]),
    ] {
        let mut b = PciBridge::new(config(kind)).unwrap();
        assert_eq!(ext_ids(&b), visible, "{kind:?}");
        assert_eq!(b.acs_fault(), None);
        b.set_acs_fault(AcsBits::RR, true).unwrap();
        let hidden: Vec<u16> = visible.iter().copied().filter(|&i| i != 0x000d).collect();
        assert_eq!(
            ext_ids(&b)
                .into_iter()
                .filter(|&i| i != 0)
                .collect::<Vec<_>>(),
            hidden,
            "{kind:?}"
        );
        let f = b.acs_fault().unwrap();
        assert_eq!(f.stuck_on, AcsBits::RR);
        // The port behaves as its (unreachable) registers say.
        assert_eq!(
            f.hidden,
            Some((b.config.acs.unwrap().capability, AcsBits::SV | AcsBits::UF))
        );
        b.reset(ResetKind::Hot);
        assert_eq!(
            ext_ids(&b)
                .into_iter()
                .filter(|&i| i != 0)
                .collect::<Vec<_>>(),
            hidden,
            "hidden after reset"
        );
        b.set_acs_fault(AcsBits::NONE, false).unwrap();
        assert_eq!(ext_ids(&b), visible, "{kind:?} relinked");
        assert_eq!(b.acs_fault(), None);
        assert_eq!(b.acs_control(), Some(AcsBits::SV | AcsBits::UF));
    }
    // Bits the port does not implement, and ports without ACS, are refused.
    let mut b = PciBridge::new(config(PortKind::RootPort)).unwrap();
    assert!(b.set_acs_fault(AcsBits::DT, false).is_err());
    let mut up = PciBridge::new(config(PortKind::SwitchUpstream)).unwrap();
    assert!(up.set_acs_fault(AcsBits::RR, false).is_err());
}

#[test]
fn an_injected_uncorrectable_error_is_logged_in_aer_with_its_first_error_pointer() {
    let mut b = PciBridge::new(config(PortKind::RootPort)).unwrap();
    let aer = b.caps.aer.unwrap();
    assert!(b.record_uncorrectable(1 << 15));
    assert_eq!(b.space.u32_at(aer + aer_reg::UNCOR_STATUS), 1 << 15);
    assert_eq!(b.space.u32_at(aer + aer_reg::CAP_CONTROL) & 0x1f, 15);
    // A second one adds its bit; the pointer keeps the first.
    assert!(b.record_uncorrectable(1 << 12));
    assert_eq!(
        b.space.u32_at(aer + aer_reg::UNCOR_STATUS),
        (1 << 15) | (1 << 12)
    );
    assert_eq!(b.space.u32_at(aer + aer_reg::CAP_CONTROL) & 0x1f, 15);
    // Masked: not logged, no message.
    b.space.set_u32(aer + aer_reg::UNCOR_MASK, 1 << 20);
    assert!(!b.record_uncorrectable(1 << 20));
    // No AER capability: nothing.
    let mut d = PciBridge::new(config(PortKind::SwitchDownstream)).unwrap();
    assert!(!d.record_uncorrectable(1 << 15));
}
