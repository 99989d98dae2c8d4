//! The register file's layout and every bit p2pvm's VT-d implements (VT-d
//! specification, chapter 11): one definition of each.

/// Register offsets from the remapping unit's base.
pub mod reg {
    /// Version (32 bits).
    pub const VER: u64 = 0x00;
    /// Capability (64 bits).
    pub const CAP: u64 = 0x08;
    /// Extended Capability (64 bits).
    pub const ECAP: u64 = 0x10;
    /// Global Command (32 bits, write).
    pub const GCMD: u64 = 0x18;
    /// Global Status (32 bits, read).
    pub const GSTS: u64 = 0x1c;
    /// Root Table Address (64 bits).
    pub const RTADDR: u64 = 0x20;
    /// Context Command (64 bits).
    pub const CCMD: u64 = 0x28;
    /// Fault Status (32 bits).
    pub const FSTS: u64 = 0x34;
    /// Fault Event Control (32 bits).
    pub const FECTL: u64 = 0x38;
    /// Fault Event Data (32 bits).
    pub const FEDATA: u64 = 0x3c;
    /// Fault Event Address (32 bits).
    pub const FEADDR: u64 = 0x40;
    /// Fault Event Upper Address (32 bits).
    pub const FEUADDR: u64 = 0x44;
    /// Protected Memory Enable (32 bits; no protected regions here).
    pub const PMEN: u64 = 0x64;
    /// Invalidation Queue Head (64 bits).
    pub const IQH: u64 = 0x80;
    /// Invalidation Queue Tail (64 bits).
    pub const IQT: u64 = 0x88;
    /// Invalidation Queue Address (64 bits).
    pub const IQA: u64 = 0x90;
    /// Invalidation Completion Status (32 bits).
    pub const ICS: u64 = 0x9c;
    /// Invalidation Event Control (32 bits).
    pub const IECTL: u64 = 0xa0;
    /// Invalidation Event Data (32 bits).
    pub const IEDATA: u64 = 0xa4;
    /// Invalidation Event Address (32 bits).
    pub const IEADDR: u64 = 0xa8;
    /// Invalidation Event Upper Address (32 bits).
    pub const IEUADDR: u64 = 0xac;
    /// Invalidate Address (64 bits), the first of the IOTLB pair.
    pub const IVA: u64 = 0x200;
    /// IOTLB Invalidate (64 bits).
    pub const IOTLB: u64 = 0x208;
    /// The first fault recording register (128 bits each).
    pub const FRCD: u64 = 0x300;
    /// Size of the register page.
    pub const SIZE: u64 = 0x1000;
}

/// Fault recording registers.
pub const FAULT_RECORDS: usize = 8;
/// Host (and guest) address width: 48 bits, 4-level tables.
pub const ADDRESS_WIDTH: u32 = 48;
/// VER: version 1.0.
pub const VERSION: u32 = 0x10;

/// Capability register bits.
pub mod cap {
    /// Number of domains supported: 2 = 256 domain IDs (bits 2:0).
    pub const ND_256: u64 = 2;
    /// Supported adjusted guest address widths: bit 2 of 12:8 = 48-bit,
    /// 4-level tables, the only one.
    pub const SAGAW_48: u64 = 1 << 10;
    /// Maximum guest address width minus 1 (bits 21:16).
    pub const MGAW_SHIFT: u32 = 16;
    /// Fault recording register offset / 16 (bits 33:24).
    pub const FRO_SHIFT: u32 = 24;
    /// Page-selective invalidation supported.
    pub const PSI: u64 = 1 << 39;
    /// Number of fault recording registers minus 1 (bits 47:40).
    pub const NFR_SHIFT: u32 = 40;
    /// Maximum address mask value for page-selective invalidation
    /// (bits 53:48).
    pub const MAMV_SHIFT: u32 = 48;
    /// The largest address mask p2pvm accepts (2^9 pages at once).
    pub const MAMV: u64 = 9;
}

/// Extended capability register bits.
pub mod ecap {
    /// Coherent page walks.
    pub const C: u64 = 1 << 0;
    /// Queued invalidation.
    pub const QI: u64 = 1 << 1;
    /// Pass-through translation type.
    pub const PT: u64 = 1 << 6;
    /// IOTLB register offset / 16 (bits 17:8).
    pub const IRO_SHIFT: u32 = 8;
}

/// Global Command / Global Status bits (same positions).
pub mod gcmd {
    /// Translation Enable / Status.
    pub const TE: u32 = 1 << 31;
    /// Set Root Table Pointer / Root Table Pointer Status.
    pub const SRTP: u32 = 1 << 30;
    /// Set Fault Log (not supported).
    pub const SFL: u32 = 1 << 29;
    /// Write Buffer Flush (not needed: RWBF is 0).
    pub const WBF: u32 = 1 << 27;
    /// Queued Invalidation Enable / Status.
    pub const QIE: u32 = 1 << 26;
    /// Interrupt Remapping Enable (not supported).
    pub const IRE: u32 = 1 << 25;
    /// Compatibility Format Interrupt (not supported).
    pub const CFI: u32 = 1 << 23;
    /// The one-shot commands: their status bits are not "enabled" states.
    pub const ONE_SHOT: u32 = SRTP | SFL | WBF;
    /// The enable bits this unit implements.
    pub const ENABLES: u32 = TE | QIE;
}

/// Context Command register fields.
pub mod ccmd {
    /// Invalidate Context-Cache (bit 63): set by software, cleared when done.
    pub const ICC: u64 = 1 << 63;
    /// Context Invalidation Request Granularity (bits 62:61).
    pub const CIRG_SHIFT: u32 = 61;
    /// Context Actual Invalidation Granularity (bits 60:59).
    pub const CAIG_SHIFT: u32 = 59;
    /// Function Mask (bits 33:32).
    pub const FM_SHIFT: u32 = 32;
    /// Source-ID (bits 31:16).
    pub const SID_SHIFT: u32 = 16;
}

/// IOTLB Invalidate register fields.
pub mod iotlb {
    /// Invalidate IOTLB (bit 63): set by software, cleared when done.
    pub const IVT: u64 = 1 << 63;
    /// IOTLB Invalidation Request Granularity (bits 61:60).
    pub const IIRG_SHIFT: u32 = 60;
    /// IOTLB Actual Invalidation Granularity (bits 58:57).
    pub const IAIG_SHIFT: u32 = 57;
    /// Domain-ID (bits 47:32).
    pub const DID_SHIFT: u32 = 32;
    /// IVA's Address Mask (bits 5:0).
    pub const IVA_AM_MASK: u64 = 0x3f;
}

/// Fault Status register bits.
pub mod fsts {
    /// Primary Fault Overflow (RW1C).
    pub const PFO: u32 = 1 << 0;
    /// Primary Pending Fault (read-only: some record has F set).
    pub const PPF: u32 = 1 << 1;
    /// Invalidation Queue Error (RW1C).
    pub const IQE: u32 = 1 << 4;
    /// Invalidation Completion Error (RW1C; no device TLBs here).
    pub const ICE: u32 = 1 << 5;
    /// Invalidation Time-out Error (RW1C; no device TLBs here).
    pub const ITE: u32 = 1 << 6;
    /// Fault Record Index (bits 15:8).
    pub const FRI_SHIFT: u32 = 8;
    /// The write-1-to-clear bits.
    pub const W1C: u32 = PFO | IQE | ICE | ITE;
}

/// Fault Event Control / Invalidation Event Control bits.
pub mod event {
    /// Interrupt Mask.
    pub const IM: u32 = 1 << 31;
    /// Interrupt Pending (read-only).
    pub const IP: u32 = 1 << 30;
}

/// Invalidation Queue Address register fields.
pub mod iqa {
    /// Descriptor Width: 256-bit descriptors (scalable mode only; refused).
    pub const DW: u64 = 1 << 11;
    /// Queue Size: 2^QS 4 KiB pages (bits 2:0).
    pub const QS_MASK: u64 = 0x7;
}

/// Invalidation Completion Status: Invalidation Wait Descriptor Complete.
pub const ICS_IWC: u32 = 1 << 0;

/// The top 32 bits of a fault record: Fault (bit 127 of the record).
pub const FRCD_F: u32 = 1 << 31;
/// Type (bit 126): 1 for a read request, 0 for a write.
pub const FRCD_T_READ: u32 = 1 << 30;

/// The value of CAP.
pub const fn cap_value() -> u64 {
    cap::ND_256
        | cap::SAGAW_48
        | ((ADDRESS_WIDTH as u64 - 1) << cap::MGAW_SHIFT)
        | ((reg::FRCD / 16) << cap::FRO_SHIFT)
        | cap::PSI
        | ((FAULT_RECORDS as u64 - 1) << cap::NFR_SHIFT)
        | (cap::MAMV << cap::MAMV_SHIFT)
}

/// The value of ECAP.
pub const fn ecap_value() -> u64 {
    ecap::C | ecap::QI | ecap::PT | ((reg::IVA / 16) << ecap::IRO_SHIFT)
}
