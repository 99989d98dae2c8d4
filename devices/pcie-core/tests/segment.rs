//! The flat config bus.

mod common;

use pcie_core::{reg, BarKind, Bdf, Error, Segment};

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).unwrap()
}

fn segment() -> Segment {
    let mut seg = Segment::new();
    seg.insert(
        bdf(0, 0, 0),
        Box::new(common::Dummy(common::config(0x1111, 0x0001))),
    )
    .unwrap();
    let mut ep = common::config(0x2222, 0x0002);
    ep.add_bar(
        0,
        BarKind::Memory32 {
            prefetchable: false,
        },
        0x1000,
    )
    .unwrap();
    seg.insert(bdf(1, 2, 3), Box::new(common::Dummy(ep)))
        .unwrap();
    seg
}

#[test]
fn absent_functions_read_all_ones() {
    let seg = segment();
    for len in 1..=4 {
        for reg in [0u16, 0x3c, 0x100, 0xffc] {
            let mut data = vec![0; len];
            seg.config_read(bdf(0, 1, 0), reg, &mut data);
            assert!(data.iter().all(|&b| b == 0xff));
        }
    }
    let mut data = [0; 4];
    seg.ecam_read(0x1000_0000, &mut data);
    assert_eq!(data, [0xff; 4]);
}

#[test]
fn present_functions_answer() {
    let seg = segment();
    let mut data = [0; 4];
    seg.config_read(bdf(0, 0, 0), 0, &mut data);
    assert_eq!(u32::from_le_bytes(data), 0x0001_1111);
    seg.ecam_read(1 << 20 | 2 << 15 | 3 << 12 | 2, &mut data[..2]);
    assert_eq!(u16::from_le_bytes([data[0], data[1]]), 0x0002);
    assert_eq!(seg.bdfs().collect::<Vec<_>>(), [bdf(0, 0, 0), bdf(1, 2, 3)]);
}

#[test]
fn writes_reach_only_present_functions() {
    let mut seg = segment();
    assert!(seg
        .config_write(bdf(5, 0, 0), reg::COMMAND, &[0xff, 0xff])
        .is_empty());
    assert_eq!(seg.ecam_write(5 << 20 | 0x10, &[0xff; 4]), None);
    let (at, effects) = seg
        .ecam_write(1 << 20 | 2 << 15 | 3 << 12 | 0x10, &[0xff; 4])
        .unwrap();
    assert_eq!(at, bdf(1, 2, 3));
    assert!(effects.bars_changed());
    let mut data = [0; 4];
    seg.config_read(bdf(1, 2, 3), 0x10, &mut data);
    assert_eq!(u32::from_le_bytes(data), 0xffff_f000);
}

#[test]
fn duplicate_insert_fails() {
    let mut seg = segment();
    let again = Box::new(common::Dummy(common::config(0x3333, 3)));
    assert_eq!(
        seg.insert(bdf(1, 2, 3), again),
        Err(Error::DuplicateFunction(bdf(1, 2, 3)))
    );
    assert!(seg.remove(bdf(1, 2, 3)).is_some());
    assert!(!seg.contains(bdf(1, 2, 3)));
    assert!(seg.get(bdf(0, 0, 0)).is_some());
    assert!(seg.get_mut(bdf(1, 2, 3)).is_none());
}
