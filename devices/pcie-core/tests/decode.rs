//! Table-driven tests of ECAM and 0xCF8 decoding.

use pcie_core::{cf8_decode, ecam_decode, Bdf};

fn at(bus: u8, dev: u8, func: u8, reg: u16) -> Option<(Bdf, u16)> {
    Some((Bdf::new(bus, dev, func).unwrap(), reg))
}

#[test]
fn ecam_table() {
    let cases: &[(u64, Option<(Bdf, u16)>)] = &[
        (0x0, at(0, 0, 0, 0)),
        (0xfff, at(0, 0, 0, 0xfff)),
        (0x1000, at(0, 0, 1, 0)),
        (0x7004, at(0, 0, 7, 4)),
        (0x8000, at(0, 1, 0, 0)),
        (0xff000, at(0, 31, 7, 0)),
        (0x100000, at(1, 0, 0, 0)),
        (0x123456, at(1, 4, 3, 0x456)),
        (0xfff_ffff, at(255, 31, 7, 0xfff)),
        (0x1000_0000, None),
        (0x1234_5678_9abc, None),
        (u64::MAX, None),
    ];
    for &(offset, expected) in cases {
        assert_eq!(ecam_decode(offset), expected, "offset {offset:#x}");
    }
}

#[test]
fn cf8_table() {
    let cases: &[(u32, Option<(Bdf, u16)>)] = &[
        // Enable bit clear: no config cycle, whatever else is set.
        (0x0000_0000, None),
        (0x7fff_fffc, None),
        (0x0f12_3b40, None),
        (0x8000_0000, at(0, 0, 0, 0)),
        (0x8000_00fc, at(0, 0, 0, 0xfc)),
        // Bits 1:0 are not part of the register: the port offset is.
        (0x8000_0003, at(0, 0, 0, 0)),
        (0x8000_0042, at(0, 0, 0, 0x40)),
        // AMD-style extended register bits 27:24 -> register bits 11:8.
        (0x8100_0000, at(0, 0, 0, 0x100)),
        (0x8f00_0000, at(0, 0, 0, 0xf00)),
        (0x8f00_00fc, at(0, 0, 0, 0xffc)),
        (0x8a12_3b40, at(0x12, 7, 3, 0xa40)),
        // Reserved bits 30:28 are ignored.
        (0xf000_0000, at(0, 0, 0, 0)),
        (0x8001_0800, at(1, 1, 0, 0)),
        (0x8000_0700, at(0, 0, 7, 0)),
        (0x8000_f800, at(0, 31, 0, 0)),
        (0x80ff_ff00, at(255, 31, 7, 0)),
        (0xffff_ffff, at(255, 31, 7, 0xffc)),
    ];
    for &(addr, expected) in cases {
        assert_eq!(cf8_decode(addr), expected, "addr {addr:#010x}");
    }
}

#[test]
fn ecam_and_cf8_agree_on_every_function() {
    for rid in (0..=u16::MAX).step_by(7) {
        let bdf = Bdf::from_requester_id(rid);
        for reg in [0u16, 0x3c, 0x100, 0xffc] {
            let ecam = (rid as u64) << 12 | reg as u64;
            let cf8 =
                0x8000_0000 | (reg as u32 >> 8) << 24 | (rid as u32) << 8 | (reg as u32 & 0xfc);
            assert_eq!(ecam_decode(ecam), Some((bdf, reg)));
            assert_eq!(cf8_decode(cf8), Some((bdf, reg)));
        }
    }
}
