//! Fuzzes the register file and translation: a stream of 4- and 8-byte
//! register reads and writes at any offset and translation requests, over
//! 64 KiB of guest memory the input fills (so root, context and page
//! tables are arbitrary). Never panics; CAP and ECAP never change.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pcie_core::{InterruptSink, Iommu, VecRam};
use vtd::regs::{cap_value, ecap_value, reg};
use vtd::Vtd;


struct Sink;
impl InterruptSink for Sink {
    fn deliver(&self, _addr: u64, _data: u32) -> bool {
        true
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Write { off: u16, wide: bool, value: u64 },
    Read { off: u16, wide: bool },
    Translate { rid: u16, iova: u32, write: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    mem: Vec<u8>,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let mut mem = input.mem;
    mem.resize(64 << 10, 0);
    let unit = Vtd::new(VecRam::from_bytes(mem), vec![(0, 32 << 10)]);
    unit.set_interrupt_sink(Arc::new(Sink));
    for op in input.ops.into_iter().take(512) {
        match op {
            Op::Write { off, wide, value } => {
                let off = u64::from(off) & 0xfff;
                if wide {
                    unit.write(off, &value.to_le_bytes());
                } else {
                    unit.write(off, &(value as u32).to_le_bytes());
                }
            }
            Op::Read { off, wide } => {
                let mut b = [0u8; 8];
                unit.read(u64::from(off) & 0xfff, &mut b[..if wide { 8 } else { 4 }]);
            }
            Op::Translate { rid, iova, write } => {
                if let Some(a) = unit.translate(rid, u64::from(iova), 4, write) {
                    assert_eq!(a & 0xfff, u64::from(iova) & 0xfff);
                }
            }
        }
    }
    let mut b = [0u8; 8];
    unit.read(reg::CAP, &mut b);
    assert_eq!(u64::from_le_bytes(b), cap_value());
    unit.read(reg::ECAP, &mut b);
    assert_eq!(u64::from_le_bytes(b), ecap_value());
});
