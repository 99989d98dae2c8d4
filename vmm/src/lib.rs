//! p2pvm: a rust-vmm virtual machine monitor with a PCIe fabric in which
//! peer-to-peer DMA is routed the way hardware routes it.

pub mod acpi;
pub mod boot;
pub mod cli;
pub mod console;
pub mod control;
pub mod counters;
pub mod cpu;
pub mod cpuid;
pub mod devices;
pub mod dmesg;
pub mod entry;
pub mod error;
pub mod fabric;
pub mod hostbox;
pub mod images;
pub mod initrd;
pub mod layout;
pub mod run;
pub mod suite;
pub mod topology;
pub mod trace;
pub mod vm;

pub use error::{Error, Result};
