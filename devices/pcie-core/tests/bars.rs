//! BAR declaration and the sizing protocol.

mod common;

use pcie_core::{reg, Bar, BarKind, Bars, Error, Type0Config};

const ONES: [u8; 4] = [0xff; 4];

fn bar_reg(cfg: &Type0Config, index: u8) -> u32 {
    cfg.space().u32_at(Bars::register_offset(index))
}

fn write_bar(cfg: &mut Type0Config, index: u8, value: u32) -> pcie_core::ConfigEffects {
    cfg.write(Bars::register_offset(index), &value.to_le_bytes())
}

#[test]
fn sizing_32bit_memory() {
    let mut cfg = common::config(0x1234, 1);
    cfg.add_bar(
        0,
        BarKind::Memory32 {
            prefetchable: false,
        },
        0x1000,
    )
    .unwrap();
    cfg.add_bar(1, BarKind::Memory32 { prefetchable: true }, 1 << 20)
        .unwrap();
    assert_eq!(bar_reg(&cfg, 0), 0);
    assert_eq!(bar_reg(&cfg, 1), 0x8);
    assert!(write_bar(&mut cfg, 0, u32::MAX).bars_changed());
    assert!(write_bar(&mut cfg, 1, u32::MAX).bars_changed());
    assert_eq!(bar_reg(&cfg, 0), 0xffff_f000);
    assert_eq!(bar_reg(&cfg, 1), 0xfff0_0008);
    write_bar(&mut cfg, 0, 0xfeb0_1234);
    assert_eq!(bar_reg(&cfg, 0), 0xfeb0_1000);
    assert_eq!(cfg.bar_address(0), Some(0xfeb0_1000));
    write_bar(&mut cfg, 1, 0xc000_0000);
    assert_eq!(cfg.bar_address(1), Some(0xc000_0000));
    assert!(write_bar(&mut cfg, 1, 0xc000_0000).is_empty());
}

#[test]
fn sizing_64bit_memory_both_halves() {
    let mut cfg = common::config(0x1234, 1);
    cfg.add_bar(
        2,
        BarKind::Memory64 {
            prefetchable: false,
        },
        0x4000,
    )
    .unwrap();
    cfg.add_bar(4, BarKind::Memory64 { prefetchable: true }, 8 << 30)
        .unwrap();
    assert_eq!(bar_reg(&cfg, 2), 0x4);
    assert_eq!(bar_reg(&cfg, 4), 0xc);
    for i in 2..6 {
        write_bar(&mut cfg, i, u32::MAX);
    }
    assert_eq!(bar_reg(&cfg, 2), 0xffff_c004);
    assert_eq!(bar_reg(&cfg, 3), 0xffff_ffff);
    // 8 GiB: no address bits in the low half, bit 33 up in the high half.
    assert_eq!(bar_reg(&cfg, 4), 0x0000_000c);
    assert_eq!(bar_reg(&cfg, 5), 0xffff_fffe);
    let size = |lo: u32, hi: u32| !((hi as u64) << 32 | (lo & !0xf) as u64) + 1;
    assert_eq!(size(bar_reg(&cfg, 2), bar_reg(&cfg, 3)), 0x4000);
    assert_eq!(size(bar_reg(&cfg, 4), bar_reg(&cfg, 5)), 8 << 30);
    write_bar(&mut cfg, 2, 0xe000_0000);
    write_bar(&mut cfg, 3, 0x1);
    assert_eq!(cfg.bar_address(2), Some(0x1_e000_0000));
    write_bar(&mut cfg, 4, 0);
    assert!(write_bar(&mut cfg, 5, 0x8).bars_changed());
    assert_eq!(cfg.bar_address(4), Some(0x8_0000_0000));
    // The upper halves are not BARs of their own.
    assert_eq!(cfg.bar(3), None);
    assert_eq!(cfg.bar_address(5), None);
    assert_eq!(
        cfg.bar(4),
        Some(Bar {
            kind: BarKind::Memory64 { prefetchable: true },
            size: 8 << 30
        })
    );
}

#[test]
fn sizing_io() {
    let mut cfg = common::config(0x1234, 1);
    cfg.add_bar(5, BarKind::Io, 32).unwrap();
    assert_eq!(bar_reg(&cfg, 5), 0x1);
    write_bar(&mut cfg, 5, u32::MAX);
    assert_eq!(bar_reg(&cfg, 5), 0xffff_ffe1);
    write_bar(&mut cfg, 5, 0xc047);
    assert_eq!(bar_reg(&cfg, 5), 0xc041);
    assert_eq!(cfg.bar_address(5), Some(0xc040));
}

#[test]
fn sizing_bytewise() {
    let mut cfg = common::config(0x1234, 1);
    cfg.add_bar(
        0,
        BarKind::Memory32 {
            prefetchable: false,
        },
        0x100,
    )
    .unwrap();
    for i in 0..4 {
        cfg.write(Bars::register_offset(0) + i, &[0xff]);
    }
    assert_eq!(bar_reg(&cfg, 0), 0xffff_ff00);
}

#[test]
fn no_bars_read_zero() {
    let mut cfg = common::config(0x1234, 1);
    for i in 0..6 {
        assert!(write_bar(&mut cfg, i, u32::MAX).is_empty());
        assert_eq!(bar_reg(&cfg, i), 0);
        assert_eq!(cfg.bar_address(i), None);
    }
    cfg.write(reg::EXPANSION_ROM, &ONES);
    assert_eq!(cfg.space().u32_at(reg::EXPANSION_ROM), 0);
}

#[test]
fn declaration_errors() {
    let mut cfg = common::config(0x1234, 1);
    let m32 = BarKind::Memory32 {
        prefetchable: false,
    };
    let m64 = BarKind::Memory64 {
        prefetchable: false,
    };
    assert_eq!(
        cfg.add_bar(6, m32, 0x1000),
        Err(Error::InvalidBarIndex { index: 6, count: 6 })
    );
    for (kind, size) in [
        (m32, 0x1800),
        (m32, 8),
        (m32, 1 << 32),
        (m64, 0),
        (BarKind::Io, 2),
        (BarKind::Io, 512),
    ] {
        assert!(
            matches!(
                cfg.add_bar(0, kind, size),
                Err(Error::InvalidBarSize { .. })
            ),
            "{kind:?} {size:#x}"
        );
    }
    assert_eq!(cfg.add_bar(5, m64, 0x1000), Err(Error::BarNoUpperHalf(5)));
    cfg.add_bar(1, m32, 0x1000).unwrap();
    assert_eq!(cfg.add_bar(1, m32, 0x1000), Err(Error::BarInUse(1)));
    assert_eq!(cfg.add_bar(0, m64, 0x1000), Err(Error::BarInUse(1)));
    cfg.add_bar(2, m64, 0x1000).unwrap();
    assert_eq!(cfg.add_bar(3, m32, 0x1000), Err(Error::BarInUse(3)));
    // Largest sizes are accepted.
    cfg.add_bar(4, m64, 1 << 63).unwrap();
    cfg.add_bar(0, m32, 1 << 31).unwrap();
}

#[test]
fn type1_has_two_bars() {
    let mut space = pcie_core::ConfigSpace::new();
    let mut bars = Bars::new(Bars::TYPE1_COUNT);
    assert_eq!(bars.register_range(), 0x10..0x18);
    let m64 = BarKind::Memory64 {
        prefetchable: false,
    };
    assert_eq!(
        bars.declare(&mut space, 1, m64, 0x1000),
        Err(Error::BarNoUpperHalf(1))
    );
    bars.declare(&mut space, 0, m64, 0x1000).unwrap();
    assert_eq!(bars.address(&space, 0), Some(0));
}
