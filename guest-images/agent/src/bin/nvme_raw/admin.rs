//! Admin commands and driver hand-over for `p2pvm-nvme-raw`: taking a
//! controller from Linux's nvme driver and giving it back through sysfs,
//! and the admin commands the scenarios send (NVMe Base 1.4 §5).

use std::fs::OpenOptions;
use std::io::Result;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use crate::ctrl::{fail, poll, sysfs, Cmd, Cqe, Ctrl, Page};

/// Admin opcodes (NVMe Base 1.4 Figure 139).
pub mod op {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Asynchronous Event Request.
    pub const AER: u8 = 0x0c;
    /// Flush (NVM command set, on an I/O queue).
    pub const FLUSH: u8 = 0x00;
}

/// Writes `value` to sysfs file `path`.
fn write_file(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| fail(format!("{path}: {e}")))
}

/// Takes `bdf` from the nvme driver and turns on memory space and bus
/// mastering (Command register bits 1 and 2) through sysfs `config`.
pub fn take(bdf: &str) -> Result<()> {
    if let Ok(drv) = std::fs::read_link(sysfs(bdf, "driver")) {
        if !drv.ends_with("nvme") {
            return Err(fail(format!("{bdf} is bound to {}", drv.display())));
        }
        write_file("/sys/bus/pci/drivers/nvme/unbind", &format!("0000:{bdf}"))?;
    }
    let cfg = OpenOptions::new()
        .read(true)
        .write(true)
        .open(sysfs(bdf, "config"))?;
    let mut cmd = [0u8; 2];
    cfg.read_exact_at(&mut cmd, 4)?;
    let cmd = u16::from_le_bytes(cmd) | 0x6;
    cfg.write_all_at(&cmd.to_le_bytes(), 4)
}

/// Gives `bdf` back to the nvme driver and waits until its controller is
/// live again.
pub fn give_back(bdf: &str) -> Result<()> {
    write_file("/sys/bus/pci/drivers/nvme/bind", &format!("0000:{bdf}"))?;
    let live = poll(Duration::from_secs(30), || {
        let dir = std::fs::read_dir(sysfs(bdf, "nvme")).ok()?;
        dir.flatten()
            .any(|c| {
                std::fs::read_to_string(c.path().join("state")).is_ok_and(|s| s.trim() == "live")
            })
            .then_some(())
    });
    live.ok_or_else(|| {
        fail(format!(
            "{bdf}: the nvme driver did not bring it back live in 30 s"
        ))
    })
}

/// Identify Controller (CNS 01h), 4 KiB through PRP1/PRP2.
pub fn identify(c: &mut Ctrl, prp1: u64, prp2: u64) -> Result<Cqe> {
    c.exec(Cmd::new(op::IDENTIFY).prp(prp1, prp2).dw(10, 1))
}

/// Get Log Page `lid`, `len` bytes (a multiple of 4), Retain Asynchronous
/// Event `rae`, NSID FFFFFFFFh.
pub fn get_log(c: &mut Ctrl, lid: u8, rae: bool, len: u32, prp1: u64, prp2: u64) -> Result<Cqe> {
    let numd = len / 4 - 1;
    let dw10 = u32::from(lid) | (u32::from(rae) << 15) | ((numd & 0xffff) << 16);
    c.exec(
        Cmd::new(op::GET_LOG_PAGE)
            .nsid(!0)
            .prp(prp1, prp2)
            .dw(10, dw10)
            .dw(11, numd >> 16),
    )
}

/// Error log entry `i` in `p`: (error count, SQID, CID, status field bits 15:1).
fn error_entry(p: &Page, i: usize) -> (u64, u16, u16, u16) {
    let at = i * 64;
    let (w2, w3) = (p.r32(at + 8), p.r32(at + 12));
    (p.r64(at), w2 as u16, (w2 >> 16) as u16, (w3 as u16) >> 1)
}

/// The newest Error log entry (read with RAE = 1: events stay masked).
pub fn newest_error(c: &mut Ctrl, p: &Page) -> Result<(u64, u16, u16, u16)> {
    let e = get_log(c, 1, true, 64, p.phys, 0)?;
    if e.status != 0 {
        return Err(fail(format!("Get Log Page (Error, RAE=1): {}", e.st())));
    }
    Ok(error_entry(p, 0))
}

/// Create I/O CQ `qid` with QSIZE `qsize` (0-based) at `base`,
/// physically contiguous, interrupts off (IEN = 0, vector 0).
pub fn create_cq(c: &mut Ctrl, qid: u16, qsize: u32, base: u64) -> Result<Cqe> {
    c.exec(
        Cmd::new(op::CREATE_CQ)
            .prp(base, 0)
            .dw(10, (qsize << 16) | u32::from(qid))
            .dw(11, 1),
    )
}

/// Create I/O SQ `qid` (QSIZE `qsize`) on CQ `cqid`, in `base`.
pub fn create_sq(c: &mut Ctrl, qid: u16, qsize: u32, cqid: u16, base: u64) -> Result<Cqe> {
    let dw11 = (u32::from(cqid) << 16) | 1;
    c.exec(
        Cmd::new(op::CREATE_SQ)
            .prp(base, 0)
            .dw(10, (qsize << 16) | u32::from(qid))
            .dw(11, dw11),
    )
}
