//! An RDMA NIC for p2pvm, KVM-free: one slot whose function 0 is a
//! vmxnet3 Ethernet controller ([`vmxnet3`]) and whose function 1 is
//! PVRDMA ([`pvrdma`]; its QP engine is in progress), joined to other
//! RNICs by a [`Wire`].
//!
//! # Locking
//! Each function's registers sit behind one lock that its engine takes
//! only to take work and decide interrupts, never across a DMA. Engines
//! exchange frames through the wire's queues and wake each other; none
//! waits for another.

mod config;
mod error;
pub mod pvrdma;
pub mod transport;
pub mod vmxnet3;
mod wire;

pub use error::Error;
pub use wire::{Wire, WirePort, PORT_QUEUE};
