//! KVM-free PCIe core: addresses and config-access decoding, 4 KiB config
//! space with writable and write-1-to-clear masks, BARs, capability chains,
//! the [`PciFunction`] trait, a flat [`Segment`] that holds functions by
//! address, and the [`Fabric`]: the tree of functions with config routing,
//! CPU memory routing, the ACS-aware DMA router, link counters and the
//! [`DmaHandle`] devices reach memory through (and raise MSI, MSI-X and
//! legacy INTx through: [`DmaHandle::msi`], [`DmaHandle::set_intx`], with
//! INTx routing defined once in [`intx`]).
//!
//! Building a function: fill a [`Type0Header`], create a [`Type0Config`],
//! declare BARs with [`Type0Config::add_bar`] and capabilities through
//! [`ConfigSpace::add_capability`] / [`ConfigSpace::add_ext_capability`] or
//! [`PciExpressCapability::add_to`], then forward the trait's config accesses
//! to it.
//!
//! Before a guest boots, [`firmware::enumerate`] numbers the buses and
//! assigns every BAR and bridge window through config space, like boot
//! firmware.

mod acs;
pub mod aer;
mod bar;
mod bar_memory;
mod bdf;
mod capability;
mod config_space;
mod decode;
mod error;
mod fabric;
pub mod firmware;
mod function;
mod header;
pub mod intx;
mod msi;
mod msix;
mod pcie_cap;
mod segment;
mod type0;
mod type1;
mod vec_ram;
mod worker;

pub use acs::{acs_reg, AcsBits};
pub use aer::{aer_reg, ErrorMessage, ErrorSeverity};
pub use bar::{Bar, BarKind, BarRegion, Bars};
pub use bar_memory::BarMemory;
pub use bdf::Bdf;
pub use capability::{
    cap_id, capabilities, ext_cap_id, ext_capabilities, Capabilities, CapabilityRef,
    ExtCapabilities, ExtCapabilityRef, EXT_CAP_END, EXT_CAP_START, STD_CAP_START,
};
pub use config_space::{ConfigSpace, Watch, CONFIG_SPACE_SIZE};
pub use decode::{cf8_decode, ecam_decode, CF8_ENABLE, ECAM_SIZE};
pub use error::Error;
pub use fabric::{
    AcsViolationKind, BarMove, BridgeState, ConfigWrite, Dir, DmaError, DmaHandle, DmaMap,
    DmaRequest, Fabric, GuestRam, Hop, Hops, InjectedFault, InterruptSink, Iommu, LinkCounters,
    LinkState, NodeId, NodeKind, RcP2pPolicy, RefusedCounters, Route, Target, TlpFault,
    TraceRecord, TraceSink, Window, MAX_DEPTH, MAX_HOPS, MAX_PAYLOAD, MAX_READ_REQUEST,
    MAX_REQUEST, MSI_RANGE,
};
pub use firmware::{
    enumerate, Apertures, BarAssignment, BridgeReport, EnumerationReport, NodeReport,
};
pub use function::{config_read_u32, AcsFault, ConfigEffects, PciFunction, ResetKind};
pub use header::{command, reg, status, ClassCode, CommonHeader, HeaderLayout, InterruptPin};
pub use msi::{add_msi, msi_message, msi_reg};
pub use msix::{
    msix_control, msix_reg, MsiMessage, Msix, MsixPlacement, MSIX_ENTRY_SIZE, MSIX_MAX_VECTORS,
    MSIX_VECTOR_MASKED,
};
pub use pcie_cap::{
    pcie_devctl, pcie_lnkcap, pcie_lnksta, pcie_reg, pcie_sltcap, pcie_sltctl, pcie_sltsta,
    LinkSpeed, LinkWidth, MaxPayload, PciExpressCapability, PortType,
};
pub use segment::Segment;
pub use type0::{Type0Config, Type0Header};
pub use type1::{bridge_control, bridge_reg, decode_windows, BridgeWindows};
pub use vec_ram::VecRam;
pub use worker::{DeviceWorker, Doorbell, DoorbellControl, Notifier};
