//! A hostile or buggy driver: arbitrary sequences of config writes, BAR
//! writes and reads (MSI-X table, doorbell, scratch, RAM, past the end),
//! DMA commands with any addresses and lengths, resets and engine runs.
//! The endpoint never panics, STATUS always holds a documented code, and
//! every command ends (the engine is never left Busy after a run).

mod common;

use common::Rig;
use p2pvm_testdev::{dma_reg, DmaStatus, DMA_CAP_OFFSET};
use pcie_core::ResetKind;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Config(u16, Vec<u8>),
    BarWrite(u8, u64, Vec<u8>),
    BarRead(u8, u64, usize),
    Dma(u64, u64, u32),
    Run,
    Reset,
}

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..0x10_0000,
        Just(0xfee0_0000u64),
        (0x40_0000_0000u64..0x40_0020_0000),
        (0xc000_0000u64..0xc010_0000),
        Just(u64::MAX - 7),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = proptest::collection::vec(any::<u8>(), 1..=4);
    prop_oneof![
        (0u16..0x1100, bytes.clone()).prop_map(|(o, d)| Op::Config(o, d)),
        (
            0u8..6,
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(b, o, d)| Op::BarWrite(b, o % 0x3000 + (o >> 60) * 0x1000_0000, d)),
        (0u8..6, 0u64..0x3000, 0usize..64).prop_map(|(b, o, n)| Op::BarRead(b, o, n)),
        (addr(), addr(), prop_oneof![any::<u32>(), 0u32..0x3000])
            .prop_map(|(s, d, l)| Op::Dma(s, d, l)),
        Just(Op::Run),
        Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn hostile_sequences_never_wedge_the_endpoint(ops in proptest::collection::vec(op(), 1..40)) {
        let r = Rig::new();
        for op in ops {
            match op {
                Op::Config(o, d) => {
                    r.fabric.config_write(r.bdf(r.a), o, &d);
                }
                Op::BarWrite(b, o, d) => r.fabric.with_function(r.a, |f| f.bar_write(b, o, &d)),
                Op::BarRead(b, o, n) => {
                    let mut buf = vec![0; n];
                    r.fabric.with_function(r.a, |f| f.bar_read(b, o, &mut buf));
                }
                Op::Dma(s, d, l) => {
                    let (status, _) = r.dma(r.a, s, d, l);
                    prop_assert!(DmaStatus::from_code(status).is_some(), "status {status:#x}");
                    prop_assert_ne!(status, DmaStatus::Busy.code());
                }
                Op::Run => r.engine(r.a).run(),
                Op::Reset => {
                    r.fabric.reset(r.a, ResetKind::FunctionLevel);
                }
            }
            let status = r.read32(r.a, DMA_CAP_OFFSET + dma_reg::STATUS);
            // A config write may have left the bus numbers unreachable.
            if r.fabric.bdf(r.a).is_some() {
                prop_assert!(
                    DmaStatus::from_code(status).is_some() || status == u32::MAX,
                    "status {status:#x}"
                );
            }
        }
        // Whatever came before, a run leaves nothing busy.
        r.engine(r.a).run();
        let status = r.fabric.with_function(r.a, |f| {
            let mut d = [0; 4];
            f.config_read(DMA_CAP_OFFSET + dma_reg::STATUS, &mut d);
            u32::from_le_bytes(d)
        });
        prop_assert_ne!(status, DmaStatus::Busy.code());
    }
}
