//! Helpers shared by the integration tests.
#![allow(dead_code)]

use pcie_core::{
    ClassCode, CommonHeader, ConfigEffects, InterruptPin, PciFunction, ResetKind, Type0Config,
    Type0Header,
};

/// A plain endpoint header.
pub fn header(vendor_id: u16, device_id: u16) -> Type0Header {
    Type0Header {
        common: CommonHeader {
            vendor_id,
            device_id,
            revision_id: 1,
            class_code: ClassCode::new(0x01, 0x08, 0x02),
            multifunction: false,
            interrupt_pin: InterruptPin::IntA,
        },
        subsystem_vendor_id: 0x1af4,
        subsystem_id: 0x0001,
    }
}

/// An endpoint with no BARs and no capabilities.
pub fn config(vendor_id: u16, device_id: u16) -> Type0Config {
    Type0Config::new(&header(vendor_id, device_id)).unwrap()
}

/// A `PciFunction` that is nothing but its Type 0 config space.
pub struct Dummy(pub Type0Config);

impl PciFunction for Dummy {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.0.read(offset, data)
    }
    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        self.0.write(offset, data)
    }
    fn bar_read(&mut self, _bar: u8, _offset: u64, data: &mut [u8]) {
        data.fill(0)
    }
    fn bar_write(&mut self, _bar: u8, _offset: u64, _data: &[u8]) {}
    fn reset(&mut self, _kind: ResetKind) {}
}

pub mod bridge;
pub mod cases;
pub mod endpoint;
pub mod firmware;
pub mod topo;

/// The interrupt controller of the tests: records what it was given.
#[derive(Default)]
pub struct Apic(pub std::sync::Mutex<Vec<(u64, u32)>>);

impl pcie_core::InterruptSink for Apic {
    fn deliver(&self, addr: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((addr, data));
        true
    }
}
