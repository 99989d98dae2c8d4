//! The host bridge as the guest sees it through config space.

use pcie_core::{
    capabilities, command, config_read_u32, ext_capabilities, reg, Bdf, PciFunction, ResetKind,
    Segment,
};
use pcie_switch::{HostBridge, HostBridgeConfig};
use proptest::prelude::*;

const ID: HostBridgeConfig = HostBridgeConfig {
    vendor_id: 0x1b36,
    device_id: 0x0008,
    revision_id: 0x02,
    subsystem_vendor_id: 0x1af4,
    subsystem_id: 0x1100,
};

fn dump(f: &dyn PciFunction) -> Vec<u8> {
    let mut all = vec![0; 4096];
    f.config_read(0, &mut all);
    all
}

#[test]
fn header_as_lspci_sees_it() {
    let hb = HostBridge::new(ID).unwrap();
    let f: &dyn PciFunction = &hb;
    assert_eq!(config_read_u32(f, 0x00), 0x0008_1b36);
    assert_eq!(config_read_u32(f, 0x04), 0); // command 0, status 0: no capabilities
    assert_eq!(config_read_u32(f, 0x08), 0x0600_0002);
    assert_eq!(config_read_u32(f, 0x0c), 0); // header type 0, single function
    assert_eq!(config_read_u32(f, 0x2c), 0x1100_1af4);
    assert_eq!(config_read_u32(f, 0x3c), 0); // no interrupt pin
    assert_eq!(capabilities(|o| config_read_u32(f, o)).count(), 0);
    assert_eq!(ext_capabilities(|o| config_read_u32(f, o)).count(), 0);
    // The whole 4 KiB is readable; extended space is zeros.
    assert!(dump(f)[0x100..].iter().all(|&b| b == 0));
    let mut past = [0; 4];
    f.config_read(0x1000, &mut past);
    assert_eq!(past, [0xff; 4]);
}

#[test]
fn has_no_bars() {
    let mut hb = HostBridge::new(ID).unwrap();
    for i in 0..6u16 {
        let effects = hb.config_write(reg::BAR0 + 4 * i, &[0xff; 4]);
        assert!(effects.is_empty());
        assert_eq!(config_read_u32(&hb, reg::BAR0 + 4 * i), 0);
        assert_eq!(hb.config().bar_address(i as u8), None);
    }
    let mut data = [0; 4];
    hb.bar_read(0, 0, &mut data);
    assert_eq!(data, [0xff; 4]);
}

#[test]
fn sits_in_a_segment() {
    let mut seg = Segment::new();
    let root = Bdf::new(0, 0, 0).unwrap();
    seg.insert(root, Box::new(HostBridge::new(ID).unwrap()))
        .unwrap();
    let mut data = [0; 2];
    seg.ecam_read(0x0a, &mut data);
    assert_eq!(u16::from_le_bytes(data), 0x0600);
    let (_, effects) = seg
        .ecam_write(0x04, &command::MEMORY_SPACE.to_le_bytes())
        .unwrap();
    assert!(effects.command_changed());
    seg.get_mut(root).unwrap().reset(ResetKind::Fundamental);
    seg.config_read(root, reg::COMMAND, &mut data);
    assert_eq!(data, [0, 0]);
}

proptest! {
    /// Under any sequence of writes, only command's writable bits, cache line
    /// size and interrupt line move; identity never does.
    #[test]
    fn read_only_bits_never_change(
        writes in prop::collection::vec((0u16..0x1004, prop::collection::vec(any::<u8>(), 1..=4)), 1..32),
    ) {
        let mut hb = HostBridge::new(ID).unwrap();
        let initial = dump(&hb);
        for (offset, data) in writes {
            let before = dump(&hb);
            let effects = hb.config_write(offset, &data);
            let after = dump(&hb);
            prop_assert!(!effects.bars_changed() && !effects.bridge_changed());
            for off in 0..4096usize {
                let written = off.checked_sub(offset as usize).and_then(|i| data.get(i)).copied();
                let rw = match off as u16 {
                    reg::COMMAND => command::WRITABLE as u8,
                    0x05 => (command::WRITABLE >> 8) as u8,
                    reg::CACHE_LINE_SIZE | reg::INTERRUPT_LINE => 0xff,
                    _ => 0,
                };
                match written {
                    None => prop_assert_eq!(after[off], before[off]),
                    Some(v) => {
                        prop_assert_eq!(after[off] & !rw, initial[off] & !rw, "RO bits of {:#x}", off);
                        prop_assert_eq!(after[off] & rw, v & rw, "RW bits of {:#x}", off);
                    }
                }
            }
            prop_assert_eq!(effects.command_changed(), after[4..6] != before[4..6]);
        }
    }
}
