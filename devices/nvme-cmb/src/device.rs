//! Building a controller: [`new`] makes the function and its engine.

use std::sync::Arc;

use pcie_core::{BarMemory, DmaHandle, DoorbellControl, Notifier};

use crate::config::NvmeConfig;
use crate::controller::NvmeController;
use crate::engine::NvmeEngine;
use crate::identify::ControllerInfo;
use crate::namespace::Namespace;
use crate::state::Shared;
use crate::Error;

/// Firmware revision reported in Identify and the firmware slot log.
pub const FIRMWARE: &str = "p2pvm1";

/// A stable 64-bit identity for a controller: FNV-1a of its serial and
/// controller ID. Namespace NGUIDs and UUIDs derive from it.
fn uid(cfg: &NvmeConfig) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cfg.serial.bytes().chain(cfg.cntlid.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What Identify Controller reports for `cfg`.
pub fn controller_info(cfg: &NvmeConfig) -> ControllerInfo {
    ControllerInfo {
        vid: cfg.pci_id.0,
        ssvid: cfg.pci_id.0,
        serial: cfg.serial.clone(),
        model: cfg.model.clone(),
        firmware: FIRMWARE.into(),
        ieee_oui: [0x00, 0x00, 0x00],
        mdts: crate::io::MDTS,
        cntlid: cfg.cntlid,
        version: crate::regs::VERSION,
        oaes: 0,
        ctratt: 0,
        // Doorbell Buffer Config (shadow doorbells, see crate::shadow).
        oacs: 1 << 8,
        // 0-based: 4 Abort and 4 Async Event Request commands.
        acl: 3,
        aerl: 3,
        // One firmware slot, read-only.
        frmw: 0x03,
        // Extended Get Log Page data (NUMDU, LPO).
        lpa: 0x04,
        elpe: 63,
        wctemp: crate::features::DEFAULT_OVER_TEMP,
        cctemp: 373,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: 0,
        nn: cfg.namespaces.len() as u32,
        // Compare, Dataset Management, Write Zeroes, Save/Select in features.
        oncs: 0x1d,
        // A volatile write cache; Flush with NSID FFFFFFFFh supported.
        vwc: 0x07,
        // SGLs (no alignment needed), Bit Bucket descriptors.
        sgls: 0x0001_0001,
        subnqn: format!("nqn.2026-12.io.p2pvm:nvme:{}", cfg.serial),
        kas: 0,
    }
}

/// A controller in its power-on state and its engine. The engine reaches
/// memory through `dma` (a handle for the node the controller is added as)
/// and runs on a thread of its own; the controller calls `notify` when
/// the engine has work, and the engine switches the I/O doorbells between
/// trapped writes and ioeventfds through `bells` (shadow doorbells). Opens
/// (or creates, sparse) the namespaces' files.
pub fn new(
    cfg: &NvmeConfig,
    dma: DmaHandle,
    notify: Arc<dyn Notifier>,
    bells: Arc<dyn DoorbellControl>,
) -> Result<(NvmeController, NvmeEngine), Error> {
    cfg.validate()?;
    let (config, msix) = crate::caps::build(cfg)?;
    let cmb = match &cfg.cmb {
        Some(c) => Some(BarMemory::new(c.size).map_err(|_| Error::OutOfMemory(c.size))?),
        None => None,
    };
    let ns = cfg
        .namespaces
        .iter()
        .map(|n| Namespace::open(n).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared::new(config, msix));
    let ctrl = NvmeController::new(cfg, shared.clone(), cmb.clone(), notify.clone());
    let flags = cfg.cmb.map_or(0, |c| c.flags.bits());
    let engine = NvmeEngine::new(
        shared,
        dma,
        cmb,
        flags,
        ns,
        controller_info(cfg),
        uid(cfg),
        bells,
        notify,
    );
    Ok((ctrl, engine))
}
