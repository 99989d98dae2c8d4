//! The PVRDMA command channel on guest bytes: a shared region, then a
//! series of commands whose slots the input fills (guest memory, page
//! directories and all), run by the engine as REQUEST writes would. It
//! never panics, always answers, and touches nothing outside the rig's
//! RAM (the DMA handle refuses it).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pcie_core::{DmaHandle, Fabric, GuestRam, NodeKind, RcP2pPolicy, VecRam};
use rnic::pvrdma::Rdma;

const RAM: usize = 1 << 20;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Bytes written into RAM at page-aligned places before each step.
    pokes: Vec<(u8, Vec<u8>)>,
    /// Commands: code and payload.
    cmds: Vec<(u8, Vec<u8>)>,
}

fuzz_target!(|inp: Input| {
    let fabric = Arc::new(Fabric::new(vec![(0, RAM as u64)], RcP2pPolicy::Forward));
    let ram = VecRam::new(RAM);
    let rp = fabric
        .add(None, 1, 0, "rp", NodeKind::RootPort, pcie_switch::PciBridge::simple(pcie_switch::PortKind::RootPort, 1, None))
        .unwrap();
    // The root port is the requester here: memory space and bus mastering on.
    let bdf = pcie_core::Bdf::new(0, 1, 0).unwrap();
    fabric.config_write(bdf, 4, &[6, 0]);
    let r: Arc<dyn GuestRam> = ram.clone();
    let dma = DmaHandle::new(fabric.clone(), rp, r);
    let mut rdma = Rdma::new([0, 0x50, 0x56, 0, 0, 1]);
    // A valid shared region at page 0: command slot 0x1000, response
    // 0x2000, both event rings over one directory (0x3000 -> table 0x4000
    // -> pages 0x5000, 0x6000).
    let put = |at: u64, v: u64| {
        let _ = ram.write(at, &v.to_le_bytes());
    };
    put(0, 20);
    put(0x10, 0x1000);
    put(0x18, 0x2000);
    for ring in [0x20, 0x30] {
        put(ring, 2);
        put(ring + 8, 0x3000);
    }
    put(0x3000, 0x4000);
    put(0x4000, 0x5000);
    put(0x4008, 0x6000);
    assert_eq!(rdma.load_dsr(&dma, 0), 0);
    // Everything else (page directories, rings, MR pages) the input fills.
    for (page, bytes) in inp.pokes.iter().take(32) {
        let at = (8 + u64::from(*page)) * 4096;
        let n = bytes.len().min(4096);
        let _ = ram.write(at, &bytes[..n]);
    }
    for (code, payload) in inp.cmds.iter().take(64) {
        let mut req = vec![0u8; 184];
        req[8] = *code % 20;
        let n = payload.len().min(168);
        req[16..16 + n].copy_from_slice(&payload[..n]);
        let slot = 0x1000;
        let _ = ram.write(slot, &req);
        let _ = rdma.command(&dma, 0);
    }
});
