//! An Intel VT-d DMA remapping unit in legacy (non-scalable) mode, as
//! Linux 6.12's `drivers/iommu/intel/` drives it, with no KVM in sight.
//!
//! - Registers ([`regs`]): VER, CAP (48-bit 4-level SAGAW, 256 domains,
//!   CM = 0, PSI, eight fault records), ECAP (coherent, QI, pass-through;
//!   no ATS, interrupt remapping or scalable mode), GCMD/GSTS (TE, SRTP,
//!   QIE, status set inside the write), RTADDR, CCMD, the IVA/IOTLB pair,
//!   FSTS, FECTL/FEDATA/FEADDR/FEUADDR, the invalidation queue
//!   (IQH/IQT/IQA/ICS/IECTL...) and the fault recording registers.
//! - Translation ([`walk`]): root table → context table (present, FPD,
//!   TT translate or pass-through, domain ID, address width) → 4-level
//!   second-level walk honouring R/W. The [`caches`] keep present results
//!   only and honour global, domain, device and page-selective
//!   invalidation, by register or descriptor ([`qi`]).
//! - Faults ([`faults`]): records with PFO/PPF/FRI and the fault event
//!   MSI, masked (IP) or not, sent through an [`pcie_core::InterruptSink`].
//!
//! [`Vtd`] implements [`pcie_core::Iommu`]: the fabric's root complex
//! asks it for every untranslated request that reaches it.

pub mod caches;
mod error;
mod event;
pub mod faults;
pub mod inject;
pub mod qi;
pub mod regs;
mod unit;
pub mod walk;

pub use error::Error;
pub use inject::Injection;
pub use unit::{Vtd, VtdStats};
