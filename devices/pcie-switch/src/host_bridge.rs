//! The host bridge at 00:00.0: a Type 0 function of class 06/00/00 with no
//! BARs, no interrupt and no capabilities.

use pcie_core::{
    ClassCode, CommonHeader, ConfigEffects, InterruptPin, PciFunction, ResetKind, Type0Config,
    Type0Header,
};

use crate::Error;

/// Identity of a host bridge, chosen by the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostBridgeConfig {
    /// Vendor ID (not 0x0000 or 0xFFFF).
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision_id: u8,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: u16,
    /// Subsystem ID.
    pub subsystem_id: u16,
}

/// The root complex's host bridge function.
#[derive(Debug, Clone)]
pub struct HostBridge {
    identity: HostBridgeConfig,
    config: Type0Config,
}

impl HostBridge {
    /// A host bridge with this identity, in its post-reset state.
    pub fn new(identity: HostBridgeConfig) -> Result<Self, Error> {
        Ok(HostBridge {
            identity,
            config: build(&identity)?,
        })
    }

    /// The identity it was built with.
    pub fn identity(&self) -> &HostBridgeConfig {
        &self.identity
    }

    /// Its config space (command register, capabilities, ...).
    pub fn config(&self) -> &Type0Config {
        &self.config
    }
}

fn build(id: &HostBridgeConfig) -> Result<Type0Config, Error> {
    let header = Type0Header {
        common: CommonHeader {
            vendor_id: id.vendor_id,
            device_id: id.device_id,
            revision_id: id.revision_id,
            class_code: ClassCode::HOST_BRIDGE,
            multifunction: false,
            interrupt_pin: InterruptPin::None,
        },
        subsystem_vendor_id: id.subsystem_vendor_id,
        subsystem_id: id.subsystem_id,
    };
    Ok(Type0Config::new(&header)?)
}

impl PciFunction for HostBridge {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.config.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        self.config.write(offset, data)
    }

    /// No BARs: nothing decodes, reads return all ones.
    fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    /// No BARs: writes are dropped.
    fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}

    fn reset(&mut self, _kind: ResetKind) {
        // The identity was validated by `new`, so rebuilding cannot fail;
        // keep the current state should it ever do.
        if let Ok(config) = build(&self.identity) {
            self.config = config;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcie_core::{command, reg};

    fn bridge() -> HostBridge {
        HostBridge::new(HostBridgeConfig {
            vendor_id: 0x1b36,
            device_id: 0x0008,
            revision_id: 2,
            subsystem_vendor_id: 0x1af4,
            subsystem_id: 0x1100,
        })
        .unwrap()
    }

    #[test]
    fn rejects_reserved_vendor_ids() {
        for vendor_id in [0, 0xffff] {
            let id = HostBridgeConfig {
                vendor_id,
                ..*bridge().identity()
            };
            assert!(matches!(HostBridge::new(id), Err(Error::Core(_))));
        }
    }

    #[test]
    fn reset_restores_command() {
        let mut hb = bridge();
        let effects = hb.config_write(reg::COMMAND, &command::WRITABLE.to_le_bytes());
        assert!(effects.command_changed() && !effects.bars_changed());
        assert_eq!(hb.config().command(), command::WRITABLE);
        hb.reset(ResetKind::Hot);
        assert_eq!(hb.config().command(), 0);
    }
}
