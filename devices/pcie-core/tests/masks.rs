//! Property tests of the writable and write-1-to-clear masks.

mod common;

use pcie_core::{command, reg, status, ConfigSpace, CONFIG_SPACE_SIZE};
use proptest::prelude::*;

/// A deterministic pseudo-random byte per (seed, offset).
fn mix(seed: u64, offset: usize) -> u8 {
    let mut z = seed ^ (offset as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d4_9bb1_3311_11eb);
    (z ^ (z >> 31)) as u8
}

fn snapshot(cs: &ConfigSpace) -> Vec<u8> {
    let mut all = vec![0; CONFIG_SPACE_SIZE];
    cs.read(0, &mut all);
    all
}

fn write_strategy() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (0u16..0x1004, prop::collection::vec(any::<u8>(), 1..=4))
}

proptest! {
    #[test]
    fn config_space_masks_hold(
        seed in any::<u64>(),
        writes in prop::collection::vec(write_strategy(), 1..16),
    ) {
        let mut cs = ConfigSpace::new();
        let mut rw = vec![0u8; CONFIG_SPACE_SIZE];
        let mut c = vec![0u8; CONFIG_SPACE_SIZE];
        for off in 0..CONFIG_SPACE_SIZE {
            // Roughly: a quarter of bytes RO, the rest mixed RW / W1C / RO bits.
            let kind = mix(seed, off) & 3;
            rw[off] = if kind == 0 { 0 } else { mix(seed ^ 1, off) };
            c[off] = if kind == 0 { 0 } else { mix(seed ^ 2, off) & !rw[off] };
            cs.set_u8(off as u16, mix(seed ^ 3, off));
        }
        cs.set_writable_mask(0, &rw);
        cs.set_w1c_mask(0, &c);
        for off in 0..CONFIG_SPACE_SIZE as u16 {
            prop_assert_eq!(cs.writable_mask_at(off), rw[off as usize]);
            prop_assert_eq!(cs.w1c_mask_at(off), c[off as usize]);
        }
        for (offset, data) in writes {
            let before = snapshot(&cs);
            cs.write(offset, &data);
            let after = snapshot(&cs);
            for off in 0..CONFIG_SPACE_SIZE {
                let (old, new) = (before[off], after[off]);
                let Some(&v) = off.checked_sub(offset as usize).and_then(|i| data.get(i)) else {
                    prop_assert_eq!(new, old, "byte {:#x} outside the write changed", off);
                    continue;
                };
                let ro = !rw[off] & !c[off];
                prop_assert_eq!(new & ro, old & ro, "RO bits of {:#x}", off);
                prop_assert_eq!(new & rw[off], v & rw[off], "RW bits of {:#x}", off);
                prop_assert_eq!(new & c[off], old & c[off] & !v, "W1C bits of {:#x}", off);
            }
        }
    }

    #[test]
    fn type0_header_masks_hold(writes in prop::collection::vec(write_strategy(), 1..32)) {
        let mut cfg = common::config(0x1234, 0x5678);
        // Every RW1C status bit and the capabilities bit set, as hardware might.
        let st = status::W1C | status::CAPABILITIES_LIST;
        cfg.space_mut().set_u16(reg::STATUS, st);
        let initial = snapshot(cfg.space());
        for (offset, data) in writes {
            let before = snapshot(cfg.space());
            cfg.write(offset, &data);
            let after = snapshot(cfg.space());
            let written = |off: usize| off.checked_sub(offset as usize).and_then(|i| data.get(i)).copied();
            for off in 0..CONFIG_SPACE_SIZE {
                let (rw, c): (u8, u8) = match off as u16 {
                    reg::COMMAND => (command::WRITABLE as u8, 0),
                    0x05 => ((command::WRITABLE >> 8) as u8, 0),
                    reg::STATUS => (0, status::W1C as u8),
                    0x07 => (0, (status::W1C >> 8) as u8),
                    reg::CACHE_LINE_SIZE | reg::INTERRUPT_LINE => (0xff, 0),
                    _ => (0, 0),
                };
                let (old, new) = (before[off], after[off]);
                match written(off) {
                    None => prop_assert_eq!(new, old),
                    Some(v) => {
                        prop_assert_eq!(new & !rw & !c, old & !rw & !c, "RO bits of {:#x}", off);
                        prop_assert_eq!(new & rw, v & rw);
                        prop_assert_eq!(new & c, old & c & !v);
                    }
                }
            }
            // Identity never moves.
            for off in [0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x2c, 0x2d, 0x2e, 0x2f, 0x3d] {
                prop_assert_eq!(after[off], initial[off]);
            }
            // The capabilities bit is RO.
            prop_assert!(cfg.space().u16_at(reg::STATUS) & status::CAPABILITIES_LIST != 0);
        }
    }
}

#[test]
fn status_w1c_clears_only_written_ones() {
    let mut cfg = common::config(0x1234, 0x5678);
    let set =
        status::RECEIVED_MASTER_ABORT | status::SIGNALED_TARGET_ABORT | status::INTERRUPT_STATUS;
    cfg.space_mut().set_u16(reg::STATUS, set);
    // Writing 0 clears nothing; writing 1 to a RO bit does nothing.
    cfg.write(reg::STATUS, &0u16.to_le_bytes());
    assert_eq!(cfg.space().u16_at(reg::STATUS), set);
    cfg.write(
        reg::STATUS,
        &(status::RECEIVED_MASTER_ABORT | status::INTERRUPT_STATUS).to_le_bytes(),
    );
    assert_eq!(
        cfg.space().u16_at(reg::STATUS),
        status::SIGNALED_TARGET_ABORT | status::INTERRUPT_STATUS
    );
    // A dword write to COMMAND also hits STATUS.
    let dword = (status::SIGNALED_TARGET_ABORT as u32) << 16 | command::MEMORY_SPACE as u32;
    let effects = cfg.write(reg::COMMAND, &dword.to_le_bytes());
    assert!(effects.command_changed());
    assert_eq!(cfg.space().u16_at(reg::STATUS), status::INTERRUPT_STATUS);
    assert!(cfg.memory_enabled() && !cfg.io_enabled() && !cfg.bus_master_enabled());
}

#[test]
fn command_keeps_only_writable_bits() {
    let mut cfg = common::config(0x1234, 0x5678);
    let effects = cfg.write(reg::COMMAND, &[0xff, 0xff]);
    assert!(effects.command_changed() && !effects.bars_changed());
    assert_eq!(cfg.command(), command::WRITABLE);
    assert_eq!(cfg.command(), 0x0547);
    assert!(cfg.write(reg::COMMAND, &[0xff, 0xff]).is_empty());
}

#[test]
fn header_fields_are_placed() {
    let cfg = common::config(0x1234, 0x5678);
    let cs = cfg.space();
    assert_eq!(cs.u32_at(0), 0x5678_1234);
    assert_eq!(cs.u32_at(0x08), 0x0108_0201);
    assert_eq!(cs.u8_at(reg::HEADER_TYPE), 0);
    assert_eq!(cs.u32_at(0x2c), 0x0001_1af4);
    assert_eq!(cs.u8_at(reg::INTERRUPT_PIN), 1);
    assert_eq!(cs.u8_at(reg::CAPABILITIES_POINTER), 0);
    let mut h = common::header(1, 2);
    h.common.multifunction = true;
    let cfg = pcie_core::Type0Config::new(&h).unwrap();
    assert_eq!(cfg.space().u8_at(reg::HEADER_TYPE), 0x80);
    h.common.vendor_id = 0xffff;
    assert!(pcie_core::Type0Config::new(&h).is_err());
}
