//! Fuzzes the invalidation queue: the input fills the queue's memory (and
//! the status addresses around it), picks the queue size and moves the
//! tail; then each raw descriptor pair goes through the parser alone.
//! Never panics; IQH stays inside the queue; an accepted page-selective
//! invalidation is aligned to its mask.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pcie_core::VecRam;
use vtd::qi::{self, Descriptor, Scope};
use vtd::regs::{gcmd, reg};
use vtd::Vtd;

#[derive(Arbitrary, Debug)]
struct Input {
    queue: Vec<u8>,
    qs: u8,
    tails: Vec<u16>,
    clear_iqe: Vec<bool>,
}

fuzz_target!(|input: Input| {
    let mut mem = input.queue;
    mem.resize(64 << 10, 0);
    for pair in mem.chunks(16).take(512) {
        let lo = u64::from_le_bytes(pair[..8].try_into().unwrap());
        let hi = u64::from_le_bytes(pair[8..].try_into().unwrap());
        if let Ok(Descriptor::Iotlb(Scope::Pages { addr, order, .. })) = qi::parse(lo, hi, 9) {
            assert!(order <= 9 && (addr >> 12) % (1 << order) == 0);
        }
    }
    let unit = Vtd::new(VecRam::from_bytes(mem), vec![(0, 32 << 10)]);
    let qs = u64::from(input.qs & 7);
    unit.write(reg::IQA, &qs.to_le_bytes());
    unit.write(reg::GCMD, &gcmd::QIE.to_le_bytes());
    for (i, t) in input.tails.into_iter().take(64).enumerate() {
        unit.write(reg::IQT, &(u64::from(t) << 4).to_le_bytes());
        let mut h = [0u8; 8];
        unit.read(reg::IQH, &mut h);
        assert!(u64::from_le_bytes(h) >> 4 < 256 << qs);
        if input.clear_iqe.get(i).copied().unwrap_or(false) {
            unit.write(reg::FSTS, &0x10u32.to_le_bytes());
        }
    }
});
