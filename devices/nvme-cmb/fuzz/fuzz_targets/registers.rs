//! Fuzzes controller 0's register file: a stream of MMIO reads and writes
//! (BAR 0 registers and doorbells, the MSI-X BAR, the CMB, config space
//! outside the BARs) of any width at any offset, with engine runs between
//! them. Never panics; CAP and VS always read their fixed values.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nvme_cmb::regs::{cap_value, reg, VERSION};
use nvme_cmb_fuzz::{cmb_flags, Rig};

/// Where an access goes.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Space {
    /// BAR 0: registers, then doorbells.
    Bar0,
    /// BAR 4: the MSI-X table and PBA.
    Bar4,
    /// BAR 2: the CMB.
    Cmb,
    /// Config space, except the BAR and ROM registers.
    Config,
}

/// One step of the stream.
#[derive(Arbitrary, Debug)]
enum Op {
    /// A write of `width` bytes (1, 2, 4 or 8: the low two bits) of `value`.
    Write {
        space: Space,
        off: u16,
        width: u8,
        value: u64,
    },
    /// A read of `width` bytes.
    Read { space: Space, off: u16, width: u8 },
    /// The device thread runs.
    Run,
}

/// The whole input: the CMB's support bits, then the stream.
#[derive(Arbitrary, Debug)]
struct Input {
    flags: u8,
    ops: Vec<Op>,
}

/// The bus address (or config offset) of `off` in `space`, if mapped.
fn target(rig: &Rig, space: Space, off: u16) -> Option<u64> {
    let off = u64::from(off);
    match space {
        Space::Bar0 => Some(rig.bar(0, 0) + off % 0x4100),
        Space::Bar4 => Some(rig.bar(0, 4) + off % 0x2100),
        Space::Cmb => Some(rig.bar(0, 2) + off),
        // Keep the BARs where enumeration put them: not 0x10..0x34.
        Space::Config => match off % 0x1000 {
            o if (0x10..0x34).contains(&o) => None,
            o => Some(o),
        },
    }
}

fuzz_target!(|input: Input| {
    let mut rig = Rig::new(cmb_flags(input.flags), false);
    let bdf = rig.fabric.bdf(rig.ids[0]).expect("enumerated");
    for op in input.ops.iter().take(512) {
        match *op {
            Op::Write {
                space,
                off,
                width,
                value,
            } => {
                let n = 1 << (width & 3);
                let Some(at) = target(&rig, space, off) else {
                    continue;
                };
                let bytes = &value.to_le_bytes()[..n];
                match space {
                    Space::Config => {
                        rig.fabric.config_write(bdf, at as u16, bytes);
                    }
                    _ => {
                        rig.fabric.mmio_write(at, bytes);
                    }
                }
            }
            Op::Read { space, off, width } => {
                let n = 1 << (width & 3);
                let Some(at) = target(&rig, space, off) else {
                    continue;
                };
                let mut b = [0u8; 8];
                match space {
                    Space::Config => rig.fabric.config_read(bdf, at as u16, &mut b[..n]),
                    _ => {
                        let bar0 = rig.bar(0, 0);
                        if rig.fabric.mmio_read(at, &mut b[..n]) && n >= 4 {
                            let v = u64::from_le_bytes(b);
                            if at == bar0 + reg::VS {
                                assert_eq!(v as u32, VERSION, "VS");
                            }
                            if at == bar0 + reg::CAP && n == 8 {
                                assert_eq!(v, cap_value(true, true), "CAP");
                            }
                        }
                    }
                }
            }
            Op::Run => rig.run(0),
        }
    }
    rig.run(0);
});
