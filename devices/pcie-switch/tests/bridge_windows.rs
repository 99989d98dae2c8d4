//! Bus numbers and windows as Linux probes and programs them, and the
//! effects each routing-relevant write reports.

mod common;

use common::*;
use pcie_core::{acs_reg, bridge_control, bridge_reg::*};
use pcie_core::{command, reg, ConfigEffects, PciFunction, ResetKind};
use pcie_switch::{PciBridge, PortKind};

#[test]
fn linux_window_probe_sees_32bit_io_and_64bit_prefetchable() {
    for config in all_ports() {
        let mut b = PciBridge::new(config).unwrap();
        let f: &mut dyn PciFunction = &mut b;
        // pci_read_bridge_windows: a non-zero I/O base/limit means an I/O window.
        assert_eq!(r16(f, IO_BASE), 0x0101, "32-bit I/O type nibbles");
        // Non-zero prefetchable base/limit: a window, and 64-bit capable.
        let pmem = r32(f, PREF_BASE);
        assert_eq!(pmem, 0x0001_0001);
        let saved = r32(f, PREF_BASE_UPPER);
        w32(f, PREF_BASE_UPPER, 0xffff_ffff);
        assert_ne!(r32(f, PREF_BASE_UPPER), 0, "upper 32 bits writable");
        w32(f, PREF_BASE_UPPER, saved);
        // The 0xe0f0 / 0xffe0fff0 probes Linux uses on bridges reading zero.
        w16(f, IO_BASE, 0xe0f0);
        assert_eq!(r16(f, IO_BASE), 0xe1f1);
        w32(f, PREF_BASE, 0xffe0_fff0);
        assert_eq!(r32(f, PREF_BASE), 0xffe1_fff1);
        // BARs 0/1 and the expansion ROM do not exist.
        for off in [reg::BAR0, reg::BAR0 + 4, EXPANSION_ROM] {
            assert!(w32(f, off, 0xffff_ffff).is_empty());
            assert_eq!(r32(f, off), 0);
        }
    }
}

#[test]
fn prefetchable_window_above_4g_round_trips() {
    let mut b = PciBridge::new(root_port()).unwrap();
    let (base, limit) = (0x8_0000_0000u64, 0x8_3fff_ffffu64);
    w16(&mut b, PREF_BASE, (base >> 16) as u16);
    w16(&mut b, PREF_LIMIT, (limit >> 16) as u16);
    w32(&mut b, PREF_BASE_UPPER, (base >> 32) as u32);
    w32(&mut b, PREF_LIMIT_UPPER, (limit >> 32) as u32);
    assert_eq!(r32(&b, PREF_BASE), 0x3ff1_0001);
    assert_eq!(r32(&b, PREF_BASE_UPPER), 8);
    assert_eq!(r32(&b, PREF_LIMIT_UPPER), 8);
    // Decoded as pci_read_bridge_mmio_pref does.
    let lo = r32(&b, PREF_BASE);
    let dec = |lo: u32, hi: u32| u64::from(hi) << 32 | u64::from(lo & 0xfff0) << 16;
    assert_eq!(dec(lo, r32(&b, PREF_BASE_UPPER)), base);
    assert_eq!(dec(lo >> 16, r32(&b, PREF_LIMIT_UPPER)) | 0xf_ffff, limit);
    assert_eq!(b.prefetchable_window(), Some(base..=limit));
}

#[test]
fn io_and_memory_windows_round_trip() {
    let mut b = PciBridge::new(downstream_port()).unwrap();
    b.config_write(IO_BASE, &[0x20, 0x30]);
    assert_eq!(r16(&b, IO_BASE), 0x3121);
    assert_eq!(b.io_window(), Some(0x2000..=0x3fff));
    w16(&mut b, IO_BASE_UPPER, 0x0001);
    w16(&mut b, IO_LIMIT_UPPER, 0x0001);
    assert_eq!(b.io_window(), Some(0x1_2000..=0x1_3fff));
    w16(&mut b, MEMORY_BASE, 0xc00f);
    w16(&mut b, MEMORY_LIMIT, 0xc01f);
    assert_eq!(r32(&b, MEMORY_BASE), 0xc010_c000, "low nibbles read zero");
    assert_eq!(b.memory_window(), Some(0xc000_0000..=0xc01f_ffff));
    // base > limit closes a window.
    w16(&mut b, MEMORY_BASE, 0xfff0);
    w16(&mut b, MEMORY_LIMIT, 0x0000);
    assert_eq!(b.memory_window(), None);
    b.config_write(IO_BASE, &[0xf0, 0x00]);
    w16(&mut b, IO_LIMIT_UPPER, 0);
    assert_eq!(b.io_window(), None);
}

#[test]
fn bus_numbers_round_trip_and_reset_to_zero() {
    for config in all_ports() {
        let mut b = PciBridge::new(config).unwrap();
        let e = b.config_write(PRIMARY_BUS, &[1, 2, 9, 0x40]);
        assert!(e.bridge_changed() && !e.command_changed());
        assert_eq!(
            (b.primary_bus(), b.secondary_bus(), b.subordinate_bus()),
            (1, 2, 9)
        );
        assert_eq!(r8(&b, SECONDARY_LATENCY_TIMER), 0x40);
        w16(
            &mut b,
            reg::COMMAND,
            command::MEMORY_SPACE | command::BUS_MASTER,
        );
        w16(&mut b, MEMORY_BASE, 0xc000);
        b.reset(ResetKind::Hot);
        assert_eq!(r32(&b, PRIMARY_BUS), 0);
        assert_eq!(b.command(), 0);
        assert_eq!(r16(&b, MEMORY_BASE), 0);
        assert_eq!(
            r32(&b, PREF_BASE),
            0x0001_0001,
            "type nibbles survive reset"
        );
    }
}

#[test]
fn routing_relevant_writes_report_effects() {
    let b = PciBridge::new(root_port()).unwrap();
    let acs = b.capability_offsets().acs.unwrap();
    let bridge = ConfigEffects::BRIDGE;
    let table: &[(&str, u16, &[u8], ConfigEffects)] = &[
        ("primary bus", PRIMARY_BUS, &[1], bridge),
        ("secondary bus", SECONDARY_BUS, &[2], bridge),
        ("subordinate bus", SUBORDINATE_BUS, &[3], bridge),
        ("I/O base", IO_BASE, &[0x10], bridge),
        ("I/O limit", IO_LIMIT, &[0x10], bridge),
        ("memory base", MEMORY_BASE, &[0, 0xc0], bridge),
        ("memory limit", MEMORY_LIMIT, &[0, 0xc0], bridge),
        ("pref base", PREF_BASE, &[0x10, 0], bridge),
        ("pref limit", PREF_LIMIT, &[0x10, 0], bridge),
        ("pref base upper", PREF_BASE_UPPER, &[1, 0, 0, 0], bridge),
        ("pref limit upper", PREF_LIMIT_UPPER, &[1, 0, 0, 0], bridge),
        ("I/O base upper", IO_BASE_UPPER, &[1, 0], bridge),
        ("I/O limit upper", IO_LIMIT_UPPER, &[1, 0], bridge),
        (
            "bridge control",
            BRIDGE_CONTROL,
            &[bridge_control::SECONDARY_BUS_RESET as u8],
            bridge,
        ),
        ("ACS control", acs + acs_reg::CONTROL, &[0x04], bridge),
        (
            "egress vector",
            acs + acs_reg::EGRESS_VECTOR + 4,
            &[0x80],
            bridge,
        ),
        (
            "command",
            reg::COMMAND,
            &[command::BUS_MASTER as u8],
            ConfigEffects::COMMAND,
        ),
        (
            "latency timer",
            SECONDARY_LATENCY_TIMER,
            &[0x20],
            ConfigEffects::NONE,
        ),
        (
            "interrupt line",
            reg::INTERRUPT_LINE,
            &[11],
            ConfigEffects::NONE,
        ),
        (
            "secondary status",
            SECONDARY_STATUS,
            &[0xff, 0xff],
            ConfigEffects::NONE,
        ),
        (
            "read-only pref nibble",
            PREF_BASE,
            &[0x0e],
            ConfigEffects::NONE,
        ),
        (
            "stuck ACS bit",
            acs + acs_reg::CONTROL,
            &[0x13],
            ConfigEffects::NONE,
        ),
    ];
    for &(what, off, data, expected) in table {
        let mut b = b.clone();
        assert_eq!(b.config_write(off, data), expected, "{what}");
        // Writing the same value again changes nothing.
        let mut now = vec![0; data.len()];
        b.config_read(off, &mut now);
        assert!(b.config_write(off, &now).is_empty(), "{what} rewritten");
    }
}

#[test]
fn secondary_bus_reset_is_visible_to_the_owner() {
    let mut b = PciBridge::new(downstream_port()).unwrap();
    assert_eq!(b.kind(), PortKind::SwitchDownstream);
    w16(
        &mut b,
        BRIDGE_CONTROL,
        bridge_control::SECONDARY_BUS_RESET | 0xff80,
    );
    assert!(b.secondary_bus_reset());
    assert_eq!(b.bridge_control(), bridge_control::SECONDARY_BUS_RESET);
    w16(&mut b, BRIDGE_CONTROL, 0);
    assert!(!b.secondary_bus_reset());
}
