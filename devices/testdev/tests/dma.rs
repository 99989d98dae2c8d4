//! The DMA engine driven through config writes, as `setpci` would: data
//! arrives, STATUS/DONE/COUNT report it, the link counters show the path,
//! and every failure maps to its documented status code.

mod common;

use std::sync::Arc;

use common::{pattern, Rig};
use p2pvm_testdev::{dma_reg, DmaStatus, DMA_CAP_OFFSET, MAX_DMA_LEN};
use pcie_core::AcsBits;
use pcie_core::{command, reg, Iommu, RcP2pPolicy};

const DONE: u32 = 0;

#[test]
fn ram_to_peer_bar() {
    let r = Rig::new();
    let data = pattern(0x3000, 7);
    r.ram.0.lock().unwrap()[0x1800..0x4800].copy_from_slice(&data);
    let dst = r.bar(r.b, 2) + 0x100;
    assert_eq!(r.dma(r.a, 0x1800, dst, 0x3000), (DONE, 0x3000));
    assert_eq!(r.peek(1, 0x100, 0x3000), data);
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::COUNT), 1);
    // The source read came down from RAM through the root port.
    assert!(!r.fabric.counters(r.rp).is_idle());
    // And back into RAM: peer BAR to guest memory.
    assert_eq!(r.dma(r.a, dst, 0x8_0000, 0x3000), (DONE, 0x3000));
    assert_eq!(r.ram.0.lock().unwrap()[0x8_0000..0x8_3000], data[..]);
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::COUNT), 2);
}

/// Seeds B's BAR 2 with `len` bytes at 0, has A copy them to offset
/// 0x8_0000 of the same BAR, checks they arrived; returns them.
fn p2p_copy(r: &Rig, len: usize) -> (u32, u32) {
    let data = pattern(len, 0x5a);
    let bar2 = r.bar(r.b, 2);
    assert!(r.fabric.mmio_write(bar2, &data));
    r.fabric.reset_counters();
    let out = r.dma(r.a, bar2, bar2 + 0x8_0000, len as u32);
    if out.0 == DONE {
        assert_eq!(r.peek(1, 0x8_0000, len), data);
    }
    out
}

#[test]
fn peer_to_peer_stays_below_the_switch() {
    let r = Rig::new();
    let len = 0x1_0000;
    assert_eq!(p2p_copy(&r, len), (DONE, len as u32));
    let c = |id| r.fabric.counters(id);
    assert!(c(r.rp).is_idle(), "{:?}", c(r.rp));
    assert!(c(r.usp).is_idle(), "{:?}", c(r.usp));
    let len = len as u64;
    // A writes len bytes up and receives len bytes of read completions.
    assert_eq!((c(r.a).up_bytes, c(r.a).down_bytes), (len, len));
    assert_eq!((c(r.dsp1).up_bytes, c(r.dsp1).down_bytes), (len, len));
    assert_eq!((c(r.dsp2).up_bytes, c(r.dsp2).down_bytes), (len, len));
    assert_eq!((c(r.b).up_bytes, c(r.b).down_bytes), (len, len));
}

/// What Linux enables on every port once an IOMMU asks for ACS.
const LINUX_ACS: AcsBits = AcsBits::from_register(
    AcsBits::SV.bits() | AcsBits::RR.bits() | AcsBits::CR.bits() | AcsBits::UF.bits(),
);

#[test]
fn acs_redirect_sends_peer_traffic_through_the_root_port() {
    let r = Rig::new();
    for port in [r.dsp1, r.dsp2, r.rp] {
        r.set_acs(port, LINUX_ACS);
    }
    assert_eq!(p2p_copy(&r, 0x2000), (DONE, 0x2000));
    let rp = r.fabric.counters(r.rp);
    assert_eq!((rp.up_bytes, rp.down_bytes), (0x4000, 0x4000));
    // Refused by the root complex: the source read fails, nothing written.
    r.fabric.set_rc_policy(RcP2pPolicy::UnsupportedRequest);
    let status = DmaStatus::UnsupportedRequest.code();
    assert_eq!(p2p_copy(&r, 0x2000), (status, 0));
    // Without redirection the root complex's policy does not matter.
    for port in [r.dsp1, r.dsp2, r.rp] {
        r.set_acs(port, AcsBits::NONE);
    }
    assert_eq!(p2p_copy(&r, 0x2000), (DONE, 0x2000));
    assert!(r.fabric.counters(r.rp).is_idle());
}

#[test]
fn every_failure_has_its_status() {
    let r = Rig::new();
    let code = |s: DmaStatus| s.code();
    let b2 = r.bar(r.b, 2);
    // Nothing decodes it: Unsupported Request, and no panic.
    let nowhere = 0x7000_0000_0000;
    assert_eq!(
        r.dma(r.a, nowhere, b2, 16),
        (code(DmaStatus::UnsupportedRequest), 0)
    );
    assert_eq!(
        r.dma(r.a, 0, nowhere, 16),
        (code(DmaStatus::UnsupportedRequest), 0)
    );
    // Lengths.
    assert_eq!(r.dma(r.a, 0, b2, 0), (code(DmaStatus::ZeroLength), 0));
    assert_eq!(
        r.dma(r.a, 0, b2, MAX_DMA_LEN + 1),
        (code(DmaStatus::TooLong), 0)
    );
    assert_eq!(r.dma(r.a, 0, b2, MAX_DMA_LEN), (DONE, MAX_DMA_LEN));
    // Into its own BAR.
    let own = r.bar(r.a, 2);
    assert_eq!(r.dma(r.a, 0, own, 16), (code(DmaStatus::CompleterAbort), 0));
    // Past the end of B's BAR: the first page lands, then nothing decodes.
    let end = b2 + (1 << 20);
    assert_eq!(
        r.dma(r.a, 0, end - 0x800, 0x1000),
        (code(DmaStatus::UnsupportedRequest), 0x800)
    );
    // ACS egress control on A's port blocks B's port (number 2).
    r.fabric
        .config_write(r.bdf(r.dsp1), ext_egress(&r), &[1 << 2]);
    r.set_acs(r.dsp1, AcsBits::EC);
    assert_eq!(r.dma(r.a, 0, b2, 16), (code(DmaStatus::AcsViolation), 0));
    r.set_acs(r.dsp1, AcsBits::NONE);
    // An IOMMU without mappings.
    r.fabric.set_iommu(Some(Arc::new(NoMappings)));
    assert_eq!(r.dma(r.a, 0, b2, 16), (code(DmaStatus::IommuFault), 0));
    r.fabric.set_iommu(None);
    // Bus mastering off.
    let cmd = r.read32(r.a, reg::COMMAND) as u16 & !command::BUS_MASTER;
    r.fabric
        .config_write(r.bdf(r.a), reg::COMMAND, &cmd.to_le_bytes());
    assert_eq!(
        r.dma(r.a, 0, b2, 16),
        (code(DmaStatus::BusMasterDisabled), 0)
    );
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::COUNT), 10);
}

/// Offset of dsp1's ACS egress control vector.
fn ext_egress(r: &Rig) -> u16 {
    let cap = pcie_core::ext_capabilities(|o| r.read32(r.dsp1, o))
        .find(|c| c.id == pcie_core::ext_cap_id::ACS)
        .unwrap();
    cap.offset + pcie_core::acs_reg::EGRESS_VECTOR
}

struct NoMappings;

impl Iommu for NoMappings {
    fn translate(&self, _rid: u16, _addr: u64, _len: u64, _write: bool) -> Option<u64> {
        None
    }
}

#[test]
fn go_needs_bit_0_and_control_reads_zero() {
    let r = Rig::new();
    let ctl = DMA_CAP_OFFSET + dma_reg::CONTROL;
    r.write32(r.a, DMA_CAP_OFFSET + dma_reg::LENGTH, 4);
    r.write32(r.a, ctl, 0xfffe);
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::COUNT), 0);
    assert_eq!(r.read32(r.a, ctl), 0);
    // A byte write of GO works too (setpci CAP_VNDR+4.B=1).
    r.fabric.config_write(r.bdf(r.a), ctl, &[1]);
    r.engine(r.a).run();
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::COUNT), 1);
    assert_eq!(r.read32(r.a, ctl), 0);
    assert_eq!(r.read32(r.a, DMA_CAP_OFFSET + dma_reg::STATUS), DONE);
}
