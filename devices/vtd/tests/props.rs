//! Property tests in the normal run (the fuzz targets' fast cousins): any
//! stream of register accesses and translations over memory full of
//! arbitrary bytes never panics, the fixed registers stay fixed, and what
//! the descriptor parser accepts is well formed.

mod common;

use std::sync::Arc;

use common::{Apic, VecRam};
use pcie_core::Iommu;
use proptest::prelude::*;
use vtd::qi::{self, Descriptor, Scope};
use vtd::regs::{cap_value, ecap_value, reg};
use vtd::Vtd;

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, wide: bool, value: u64 },
    Read { off: u64, wide: bool },
    Translate { rid: u16, iova: u64, write: bool },
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets cluster on the registers that do something.
    let off = prop_oneof![
        prop::sample::select(vec![
            reg::GCMD,
            reg::RTADDR,
            reg::CCMD,
            reg::CCMD + 4,
            reg::FSTS,
            reg::FECTL,
            reg::IQT,
            reg::IQA,
            reg::ICS,
            reg::IECTL,
            reg::IVA,
            reg::IOTLB,
            reg::IOTLB + 4,
            reg::FRCD + 12,
            reg::FRCD + 0x7c,
        ]),
        (0u64..0x1000).prop_map(|o| o & !3),
    ];
    prop_oneof![
        (off.clone(), any::<bool>(), any::<u64>()).prop_map(|(off, wide, value)| Op::Write {
            off: if wide { off & !7 } else { off },
            wide,
            value
        }),
        (off, any::<bool>()).prop_map(|(off, wide)| Op::Read { off, wide }),
        (any::<u16>(), 0u64..(1 << 17), any::<bool>())
            .prop_map(|(rid, iova, write)| { Op::Translate { rid, iova, write } }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_register_stream_over_any_memory_is_safe(
        mem in prop::collection::vec(any::<u8>(), 64 << 10),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let ram = VecRam::from_bytes(mem);
        let unit = Vtd::new(ram, vec![(0, 32 << 10)]);
        unit.set_interrupt_sink(Arc::new(Apic::default()));
        for o in ops {
            match o {
                Op::Write { off, wide, value } => {
                    if wide {
                        unit.write(off, &value.to_le_bytes());
                    } else {
                        unit.write(off, &(value as u32).to_le_bytes());
                    }
                }
                Op::Read { off, wide } => {
                    let mut b = [0u8; 8];
                    unit.read(off, &mut b[..if wide { 8 } else { 4 }]);
                }
                Op::Translate { rid, iova, write } => {
                    if let Some(a) = unit.translate(rid, iova, 4, write) {
                        // The page offset survives translation.
                        prop_assert_eq!(a & 0xfff, iova & 0xfff);
                    }
                }
            }
        }
        let mut b = [0u8; 8];
        unit.read(reg::CAP, &mut b);
        prop_assert_eq!(u64::from_le_bytes(b), cap_value());
        unit.read(reg::ECAP, &mut b);
        prop_assert_eq!(u64::from_le_bytes(b), ecap_value());
    }

    #[test]
    fn accepted_descriptors_are_well_formed(lo in any::<u64>(), hi in any::<u64>(), mamv in 0u8..12) {
        match qi::parse(lo, hi, mamv) {
            Ok(Descriptor::Iotlb(Scope::Pages { addr, order, .. })) => {
                prop_assert!(order <= mamv);
                prop_assert_eq!((addr >> 12) % (1 << order), 0);
                prop_assert_eq!(lo & 0xf, 2);
            }
            Ok(Descriptor::Context(s)) => {
                let pages = matches!(s, Scope::Pages { .. });
                prop_assert!(!pages, "a context scope of pages");
                prop_assert_eq!(lo & 0xf, 1);
                prop_assert_eq!(hi, 0);
            }
            Ok(Descriptor::Wait { addr, .. }) => {
                prop_assert_eq!(addr & 3, 0);
                prop_assert_eq!(lo & 0xf, 5);
            }
            Ok(Descriptor::Iotlb(_)) => prop_assert_eq!(lo & 0xf, 2),
            Err(_) => {}
        }
    }
}
