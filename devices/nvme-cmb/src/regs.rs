//! The controller registers in BAR 0 (NVMe Base 1.4, §3.1) and the
//! controller's fixed geometry: one definition of each offset and bit.

/// Register offsets in BAR 0.
pub mod reg {
    /// Controller Capabilities (64-bit, RO).
    pub const CAP: u64 = 0x00;
    /// Version (RO).
    pub const VS: u64 = 0x08;
    /// Interrupt Mask Set (pin and MSI only).
    pub const INTMS: u64 = 0x0c;
    /// Interrupt Mask Clear.
    pub const INTMC: u64 = 0x10;
    /// Controller Configuration.
    pub const CC: u64 = 0x14;
    /// Controller Status.
    pub const CSTS: u64 = 0x1c;
    /// NVM Subsystem Reset.
    pub const NSSR: u64 = 0x20;
    /// Admin Queue Attributes.
    pub const AQA: u64 = 0x24;
    /// Admin Submission Queue base (64-bit).
    pub const ASQ: u64 = 0x28;
    /// Admin Completion Queue base (64-bit).
    pub const ACQ: u64 = 0x30;
    /// Controller Memory Buffer Location.
    pub const CMBLOC: u64 = 0x38;
    /// Controller Memory Buffer Size.
    pub const CMBSZ: u64 = 0x3c;
    /// Controller Memory Buffer Memory Space Control (64-bit).
    pub const CMBMSC: u64 = 0x50;
    /// Controller Memory Buffer Status.
    pub const CMBSTS: u64 = 0x58;
    /// The first doorbell: SQ 0 tail.
    pub const DOORBELLS: u64 = 0x1000;
}

/// CAP fields.
pub mod cap {
    /// Contiguous Queues Required.
    pub const CQR: u64 = 1 << 16;
    /// Shift of TO (worst-case ready time, 500 ms units).
    pub const TO_SHIFT: u32 = 24;
    /// Shift of DSTRD (doorbell stride 2^(2+DSTRD) bytes).
    pub const DSTRD_SHIFT: u32 = 32;
    /// NVM Subsystem Reset Supported.
    pub const NSSRS: u64 = 1 << 36;
    /// Command Sets Supported: the NVM command set.
    pub const CSS_NVM: u64 = 1 << 37;
    /// Shift of MPSMIN (2^(12+MPSMIN)).
    pub const MPSMIN_SHIFT: u32 = 48;
    /// Shift of MPSMAX.
    pub const MPSMAX_SHIFT: u32 = 52;
    /// Controller Memory Buffer Supported (CMBLOC/CMBSZ/CMBMSC, 1.4).
    pub const CMBS: u64 = 1 << 57;
}

/// CC fields.
pub mod cc {
    /// Enable.
    pub const EN: u32 = 1;
    /// Shift of CSS (I/O command set selected).
    pub const CSS_SHIFT: u32 = 4;
    /// Shift of MPS (memory page size 2^(12+MPS)).
    pub const MPS_SHIFT: u32 = 7;
    /// Shift of AMS (arbitration mechanism).
    pub const AMS_SHIFT: u32 = 11;
    /// Shift of SHN (shutdown notification).
    pub const SHN_SHIFT: u32 = 14;
    /// Shift of IOSQES (I/O SQ entry size 2^n).
    pub const IOSQES_SHIFT: u32 = 16;
    /// Shift of IOCQES (I/O CQ entry size 2^n).
    pub const IOCQES_SHIFT: u32 = 20;
    /// The bits a host can write: EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES.
    pub const WRITABLE: u32 = 0x00ff_fff1;
}

/// CSTS fields.
pub mod csts {
    /// Ready.
    pub const RDY: u32 = 1;
    /// Controller Fatal Status.
    pub const CFS: u32 = 1 << 1;
    /// Shift of SHST (shutdown status).
    pub const SHST_SHIFT: u32 = 2;
    /// SHST: shutdown processing occurring.
    pub const SHST_OCCURRING: u32 = 1 << 2;
    /// SHST: shutdown processing complete.
    pub const SHST_COMPLETE: u32 = 2 << 2;
    /// SHST's mask.
    pub const SHST_MASK: u32 = 3 << 2;
    /// NVM Subsystem Reset Occurred (RW1C).
    pub const NSSRO: u32 = 1 << 4;
}

/// The value written to NSSR to reset the subsystem: "NVMe".
pub const NSSR_RESET: u32 = 0x4e56_4d65;

/// CMBLOC and CMBSZ fields.
pub mod cmb {
    /// CMBSZ: Submission Queue Support.
    pub const SQS: u32 = 1;
    /// CMBSZ: Completion Queue Support.
    pub const CQS: u32 = 1 << 1;
    /// CMBSZ: PRP SGL List Support.
    pub const LISTS: u32 = 1 << 2;
    /// CMBSZ: Read Data Support.
    pub const RDS: u32 = 1 << 3;
    /// CMBSZ: Write Data Support.
    pub const WDS: u32 = 1 << 4;
    /// Shift of CMBSZ.SZU (size unit 4 KiB * 16^SZU).
    pub const SZU_SHIFT: u32 = 8;
    /// Shift of CMBSZ.SZ and CMBLOC.OFST.
    pub const SZ_SHIFT: u32 = 12;
    /// CMBMSC: Capabilities Registers Enabled.
    pub const CRE: u64 = 1;
    /// CMBMSC: Controller Memory Space Enable.
    pub const CMSE: u64 = 1 << 1;
    /// CMBMSC: Controller Base Address (bits 63:12).
    pub const CBA_MASK: u64 = !0xfff;
    /// CMBSTS: Controller Base Address Invalid.
    pub const CBAI: u32 = 1;
}

/// AQA fields: sizes are 0-based, 12 bits each.
pub mod aqa {
    /// Admin SQ size mask (bits 11:0).
    pub const ASQS_MASK: u32 = 0xfff;
    /// Shift of ACQS (bits 27:16).
    pub const ACQS_SHIFT: u32 = 16;
}

/// The NVMe version reported: 1.4.0.
pub const VERSION: u32 = 0x0001_0400;

/// Maximum Queue Entries Supported, as entries (CAP.MQES is this - 1).
pub const MAX_QUEUE_ENTRIES: u32 = 1024;

/// I/O queue pairs supported (SQ and CQ IDs 1..=this).
pub const MAX_IO_QUEUES: u16 = 64;

/// The doorbell stride exponent: doorbells are 4 bytes apart.
pub const DSTRD: u32 = 0;

/// Size of BAR 0: registers, then doorbells for the admin queue and every
/// I/O queue pair, rounded up to a power of two.
pub const BAR0_SIZE: u64 = 0x4000;

/// BAR 4: the MSI-X table at 0 and the PBA at 0x1000.
pub mod bar4 {
    /// Offset of the MSI-X table.
    pub const MSIX_TABLE: u64 = 0;
    /// Offset of the PBA.
    pub const MSIX_PBA: u64 = 0x1000;
    /// Size of BAR 4.
    pub const SIZE: u64 = 0x2000;
}

/// Memory page sizes: CAP.MPSMIN = 0 (4 KiB) to MPSMAX = 4 (64 KiB).
pub const MPS_MAX: u32 = 4;

/// The doorbell `index` covers: even indices are SQ `index / 2` tails,
/// odd ones CQ `index / 2` heads. `None` outside the doorbell range.
pub fn doorbell_index(offset: u64) -> Option<usize> {
    let rel = offset.checked_sub(reg::DOORBELLS)?;
    let stride = 4u64 << DSTRD;
    let index = usize::try_from(rel / stride).ok()?;
    (rel % stride == 0 && index < doorbells()).then_some(index)
}

/// How many doorbells there are: a tail and a head per queue pair, the
/// admin pair included.
pub const fn doorbells() -> usize {
    2 * (MAX_IO_QUEUES as usize + 1)
}

/// The CAP register of a controller with `cmb` (CMBS) and `nssr` (NSSRS).
pub fn cap_value(cmb: bool, nssr: bool) -> u64 {
    let mut v = u64::from(MAX_QUEUE_ENTRIES - 1)
        | cap::CQR
        | (30 << cap::TO_SHIFT) // 15 s
        | (u64::from(DSTRD) << cap::DSTRD_SHIFT)
        | cap::CSS_NVM
        | (u64::from(MPS_MAX) << cap::MPSMAX_SHIFT);
    if cmb {
        v |= cap::CMBS;
    }
    if nssr {
        v |= cap::NSSRS;
    }
    v
}

/// The first doorbell the function lists in
/// [`doorbells`](pcie_core::PciFunction::doorbells): SQ 1's tail. Function
/// doorbell `j` is doorbell index `j + FIRST_IO_DOORBELL`; the admin
/// queue's two are always trapped.
pub const FIRST_IO_DOORBELL: usize = 2;
