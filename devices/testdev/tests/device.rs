//! The endpoint as enumeration and a guest see it: identity, capabilities,
//! BARs, RAM backing and reset.

mod common;

use common::Rig;
use p2pvm_testdev::{
    dma_reg, DmaStatus, TestEndpoint, TestEndpointConfig, DEVICE_ID, DMA_CAP_OFFSET, MAGIC,
    VENDOR_ID,
};
use pcie_core::{cap_id, capabilities, pcie_reg, reg, BarKind, PciFunction, ResetKind};

#[test]
fn identity_and_capabilities() {
    let r = Rig::new();
    assert_eq!(
        r.read32(r.a, reg::VENDOR_ID),
        u32::from(DEVICE_ID) << 16 | u32::from(VENDOR_ID)
    );
    assert_eq!(r.read32(r.a, 0x08) >> 8, 0xff_0000);
    let caps: Vec<_> = capabilities(|o| r.read32(r.a, o)).collect();
    let ids: Vec<u8> = caps.iter().map(|c| c.id).collect();
    use cap_id::*;
    assert_eq!(ids, [VENDOR_SPECIFIC, POWER_MANAGEMENT, MSIX, PCI_EXPRESS]);
    // One vector (table size field 0), table at BAR 4 + 0, PBA at BAR 4 + 0x800.
    let msix = caps[2].offset;
    assert_eq!(r.read32(r.a, msix) >> 16, 0);
    assert_eq!(r.read32(r.a, msix + 4), 4);
    assert_eq!(r.read32(r.a, msix + 8), 0x804);
    assert_eq!(caps[0].offset, DMA_CAP_OFFSET);
    let vndr = r.read32(r.a, DMA_CAP_OFFSET);
    assert_eq!(vndr >> 16, 0x0128, "length 0x28, version 1");
    let status = r.read32(r.a, DMA_CAP_OFFSET + dma_reg::STATUS);
    assert_eq!(status, DmaStatus::Idle.code());
    let pcie = caps[3].offset;
    assert_eq!(r.read32(r.a, pcie) >> 20 & 0xf, 0, "endpoint port type");
    // 8 GT/s x4, the default.
    assert_eq!(r.read32(r.a, pcie + pcie_reg::LNKCAP) & 0x3ff, 3 | 4 << 4);
}

#[test]
fn firmware_sizes_and_places_both_bars() {
    let r = Rig::new();
    let a = r.report.by_name("a").unwrap();
    let bars: Vec<_> = a.bars.iter().map(|b| (b.index, b.kind, b.size)).collect();
    let mmio = BarKind::Memory32 {
        prefetchable: false,
    };
    let ram = BarKind::Memory64 { prefetchable: true };
    assert_eq!(bars, [(0, mmio, 4096), (2, ram, 1 << 20), (4, mmio, 8192)]);
    assert!(r.bar(r.a, 0) < 1 << 32);
    assert!(r.bar(r.a, 2) >= 0x40_0000_0000);
    assert_eq!(a.command & 0x6, 0x6, "memory space and bus master");
}

#[test]
fn bar0_is_scratch_with_magic() {
    let r = Rig::new();
    let (f, bar0) = (&r.fabric, r.bar(r.a, 0));
    let mut d = [0; 4];
    assert!(f.mmio_read(bar0, &mut d));
    assert_eq!(u32::from_le_bytes(d), MAGIC);
    assert!(f.mmio_write(bar0, &[0; 4]));
    assert!(f.mmio_write(bar0 + 0x10, &0xdead_beefu32.to_le_bytes()));
    assert!(f.mmio_read(bar0, &mut d));
    assert_eq!(u32::from_le_bytes(d), MAGIC);
    assert!(f.mmio_read(bar0 + 0x10, &mut d));
    assert_eq!(u32::from_le_bytes(d), 0xdead_beef);
    assert!(f.mmio_read(bar0 + 0xffc, &mut d));
    assert_eq!(d, [0; 4]);
}

#[test]
fn bar2_is_the_backing_memory() {
    let r = Rig::with_bar2(64 << 10);
    let (f, bar2) = (&r.fabric, r.bar(r.b, 2));
    let mem = &r.backing[1];
    assert_eq!(
        (mem.host_address() as usize % 4096, mem.len()),
        (0, 64 << 10)
    );
    assert!(f.mmio_write(bar2 + 0x1234, b"peer"));
    assert_eq!(r.peek(1, 0x1234, 4), b"peer");
    // What a guest mapping of the memory writes, the BAR reads.
    mem.write(0xfffc, b"host");
    let mut d = [0; 4];
    assert!(f.mmio_read(bar2 + 0xfffc, &mut d));
    assert_eq!(&d, b"host");
}

#[test]
fn reset_restores_registers_and_keeps_ram() {
    let r = Rig::new();
    let bar2 = r.bar(r.b, 2);
    assert!(r.fabric.mmio_write(bar2, b"kept"));
    assert!(r.fabric.mmio_write(r.bar(r.b, 0) + 8, b"gone"));
    r.write32(r.b, DMA_CAP_OFFSET + dma_reg::LENGTH, 0x40);
    assert_eq!(r.dma(r.b, 0, 0x100, 0), (DmaStatus::ZeroLength.code(), 0));
    r.fabric.reset(r.b, ResetKind::FunctionLevel);
    assert_eq!(r.fabric.bar_regions(r.b), []);
    r.fabric.with_function(r.b, |f| {
        let mut d = [0; 4];
        f.config_read(DMA_CAP_OFFSET + dma_reg::STATUS, &mut d);
        assert_eq!(u32::from_le_bytes(d), DmaStatus::Idle.code());
        f.config_read(DMA_CAP_OFFSET + dma_reg::COUNT, &mut d);
        assert_eq!(d, [0; 4]);
        f.bar_read(0, 8, &mut d);
        assert_eq!(d, [0; 4]);
        f.bar_read(2, 0, &mut d);
        assert_eq!(&d, b"kept");
    });
}

#[test]
fn bad_configurations_are_refused() {
    let r = Rig::new();
    let handle = || {
        let ram: std::sync::Arc<dyn pcie_core::GuestRam> = r.ram.clone();
        pcie_core::DmaHandle::new(r.fabric.clone(), r.a, ram)
    };
    let notify = || std::sync::Arc::new(common::Count::default());
    for (bar2_size, link_width) in [(3 << 20, 4), (2048, 4), (1 << 20, 3)] {
        let cfg = TestEndpointConfig {
            bar2_size,
            link_width,
            ..TestEndpointConfig::default()
        };
        assert!(
            TestEndpoint::new(cfg, handle(), notify()).is_err(),
            "{cfg:?}"
        );
    }
    let (ep, _engine) =
        TestEndpoint::new(TestEndpointConfig::default(), handle(), notify()).unwrap();
    assert!(ep.bar_backing(0).is_none());
    assert_eq!(ep.bar_backing(2).unwrap().len(), 1 << 20);
    assert_eq!(ep.dma_status(), DmaStatus::Idle);
}
