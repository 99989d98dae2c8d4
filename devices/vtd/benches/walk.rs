//! The unit's cost per translated 4 KiB request: an IOTLB hit, a miss
//! (a 4-level walk through guest memory; the entry is dropped again by a
//! page-selective invalidation each round, whose cost is shown on its
//! own), a pass-through context, and translation off.
//!
//! Each figure is the median over 9 batches of at least 20 ms, in ns per
//! request. `P2PVM_BENCH_OUT=FILE` writes them as JSON. Run with
//! `cargo bench -p vtd --bench walk`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcie_core::{GuestRam, Iommu, VecRam};
use vtd::regs::{gcmd, reg};
use vtd::Vtd;

const ROOT: u64 = 0x10_0000;
const DEV: u16 = 0x0300;
const PT: u16 = 0x0400;

fn poke(ram: &VecRam, addr: u64, v: u64) {
    ram.write(addr, &v.to_le_bytes());
}

/// A unit with 03:00.0 translating 0x1000 → 0x80_0000 through a 4-level
/// table and 04:00.0 in pass-through, translation on.
fn unit() -> (Vtd, Arc<VecRam>) {
    let ram = VecRam::new(16 << 20);
    let (ct, pgd) = (0x20_0000u64, 0x30_0000u64);
    poke(&ram, ROOT + 3 * 16, ct | 1);
    poke(&ram, ROOT + 4 * 16, (ct + 0x1000) | 1);
    poke(&ram, ct, pgd | 1);
    poke(&ram, ct + 8, 1 << 8 | 2);
    poke(&ram, ct + 0x1000, 2 << 2 | 1);
    poke(&ram, ct + 0x1000 + 8, 2 << 8 | 2);
    let (l3, l2, l1) = (0x30_1000u64, 0x30_2000u64, 0x30_3000u64);
    poke(&ram, pgd, l3 | 3);
    poke(&ram, l3, l2 | 3);
    poke(&ram, l2, l1 | 3);
    poke(&ram, l1 + 8, 0x80_0000 | 3);
    let u = Vtd::new(ram.clone(), vec![(0, 16 << 20)]);
    u.write(reg::RTADDR, &ROOT.to_le_bytes());
    u.write(reg::GCMD, &gcmd::SRTP.to_le_bytes());
    u.write(reg::GCMD, &gcmd::TE.to_le_bytes());
    (u, ram)
}

fn median(mut f: impl FnMut() -> u64) -> f64 {
    let mut v: Vec<f64> = (0..9)
        .map(|_| {
            let (start, mut n) = (Instant::now(), 0u64);
            while start.elapsed() < Duration::from_millis(20) {
                n += f();
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[4]
}

fn main() {
    let (u, _ram) = unit();
    assert_eq!(u.translate(DEV, 0x1abc, 4096, true), Some(0x80_0abc));
    let batch = 1000;
    let hit = median(|| {
        for _ in 0..batch {
            black_box(u.translate(DEV, black_box(0x1000), 4096, true));
        }
        batch
    });
    let invalidate_page = || {
        u.write(reg::IVA, &0x1000u64.to_le_bytes());
        u.write(reg::IOTLB, &(1u64 << 63 | 3 << 60 | 1 << 32).to_le_bytes());
    };
    let inval = median(|| {
        for _ in 0..batch {
            invalidate_page();
        }
        batch
    });
    let miss_and_inval = median(|| {
        for _ in 0..batch {
            invalidate_page();
            black_box(u.translate(DEV, black_box(0x1000), 4096, true));
        }
        batch
    });
    let pass = median(|| {
        for _ in 0..batch {
            black_box(u.translate(PT, black_box(0x5000), 4096, false));
        }
        batch
    });
    let (off, _) = {
        let (u, r) = unit();
        u.write(reg::GCMD, &0u32.to_le_bytes());
        (
            median(|| {
                for _ in 0..batch {
                    black_box(u.translate(DEV, black_box(0x1000), 4096, false));
                }
                batch
            }),
            r,
        )
    };
    let miss = miss_and_inval - inval;
    let rows = [
        ("iotlb_hit", hit),
        ("iotlb_miss_walk", miss),
        ("page_invalidation_register", inval),
        ("pass_through", pass),
        ("translation_off", off),
    ];
    println!("{:<28} {:>10}", "ns per 4 KiB request", "ns");
    for (k, v) in rows {
        println!("{k:<28} {v:>10.1}");
    }
    if let Ok(path) = std::env::var("P2PVM_BENCH_OUT") {
        let body: Vec<String> = rows
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v:.1}"))
            .collect();
        std::fs::write(path, format!("{{\n{}\n}}\n", body.join(",\n"))).unwrap();
    }
}
