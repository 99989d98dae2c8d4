//! The harness of `proptest_streams.rs`:
//! - [`layout`], [`rig`]: a rig whose guest RAM checks every device access
//!   against a map of zones;
//! - [`gen`], [`strategy`]: random command streams;
//! - [`build`], [`commands`]: their commands, PRP lists, SGL segments and
//!   range lists, and what the specification requires of each command;
//! - [`driver`], [`steps`]: a small host driver that runs the steps, tracks
//!   every command it submitted and checks each completion;
//! - [`model`]: what the namespaces may hold.

pub mod build;
pub mod commands;
pub mod driver;
pub mod gen;
pub mod layout;
pub mod model;
pub mod rig;
pub mod steps;
pub mod strategy;
