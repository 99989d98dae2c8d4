//! PCIe switch: the host bridge, and root ports and switch ports on one
//! Type-1 bridge core, [`PciBridge`], built from a [`BridgeConfig`].
//!
//! A bridge's config space:
//! - Type-1 header, class 06/04/00: command, status (RW1C errors), bus
//!   numbers, 32-bit I/O, memory and 64-bit prefetchable windows, secondary
//!   status (RW1C), bridge control; no BARs, no expansion ROM. Root and
//!   downstream ports report INTA, upstream ports no pin.
//! - From 0x40: Power Management (v3, D0 only), MSI (64-bit, one vector),
//!   PCI Express (port type, slot, link, port number).
//! - From 0x100: AER (v2) when configured, then ACS (v1) when configured.
//!
//! Config writes report [`ConfigEffects::BRIDGE`](pcie_core::ConfigEffects::BRIDGE)
//! for bus numbers, windows, bridge control and ACS, and
//! [`ConfigEffects::COMMAND`](pcie_core::ConfigEffects::COMMAND) for the command register.

mod acs;
mod bridge;
mod config;
mod error;
mod host_bridge;
mod std_caps;
mod type1;

pub use acs::ACS_EGRESS_VECTOR_DWORDS;
pub use bridge::{CapabilityOffsets, PciBridge};
pub use config::{AcsConfig, BridgeConfig, PortKind, ACS_EGRESS_VECTOR_MAX};
pub use error::Error;
pub use host_bridge::{HostBridge, HostBridgeConfig};
pub use pcie_core::aer_reg;
pub use pcie_core::msi_reg;
pub use pcie_core::MsiMessage;
pub use pcie_core::{acs_reg, AcsBits};
pub use std_caps::pm_reg;
pub use type1::SECONDARY_STATUS_W1C;
