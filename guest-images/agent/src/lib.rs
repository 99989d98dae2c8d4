//! p2pvm's guest agent.
//!
//! The binary `p2pvm-agent` runs as PID 1 in the guest when the host supplied
//! a command in `/p2pvm/exec`: it runs the command and streams its output and
//! exit status to the host over `/dev/ttyS1`, then powers the guest off.
//!
//! This library holds the wire protocol, [`proto`], so the host-side VMM can
//! decode what the agent sends.

pub mod proto;

pub use proto::{encode, Decoder, Frame};
