//! PCIe switch: host bridge, root ports and switch ports on one Type-1 bridge
//! core (issue #3). For now: the host bridge.

mod error;
mod host_bridge;

pub use error::Error;
pub use host_bridge::{HostBridge, HostBridgeConfig};
