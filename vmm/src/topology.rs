//! The topology file (TOML): what the PCIe fabric looks like.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The topology used when no file is given.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/default.toml");

/// A whole topology file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The root complex and its host bridge.
    pub root_complex: RootComplex,
}

/// The root complex.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RootComplex {
    /// Host bridge vendor ID.
    pub vendor_id: u16,
    /// Host bridge device ID.
    pub device_id: u16,
    /// Host bridge revision.
    #[serde(default)]
    pub revision: u8,
    /// Subsystem vendor ID (defaults to the vendor ID).
    #[serde(default)]
    pub subsystem_vendor_id: Option<u16>,
    /// Subsystem ID (defaults to the device ID).
    #[serde(default)]
    pub subsystem_id: Option<u16>,
}

impl Topology {
    /// Parses a topology; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Topology> {
        toml::from_str(text).map_err(|e| Error::Topology {
            path: name.to_string(),
            msg: one_line(&e),
        })
    }

    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Topology> {
        match path {
            None => Self::parse(DEFAULT_TOPOLOGY, "<default>"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::Topology {
                    path: p.display().to_string(),
                    msg: e.to_string(),
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }
}

/// toml's errors span several lines with a caret drawing; keep the facts.
fn one_line(e: &toml::de::Error) -> String {
    let mut msg = e.message().trim().to_string();
    if let Some(span) = e.span() {
        msg = format!("byte {}: {msg}", span.start);
    }
    // toml's Display starts with "TOML parse error at line L, column C".
    let full = e.to_string();
    if let Some(first) = full.lines().next() {
        if let Some(pos) = first.find("line ") {
            msg = format!("{}: {}", first[pos..].trim(), e.message().trim());
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses() {
        let t = Topology::load(None).unwrap();
        assert_eq!(t.root_complex.vendor_id, 0x8086);
        assert_eq!(t.root_complex.device_id, 0x2020);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = Topology::parse(
            "[root_complex]\nvendor_id = 0x8086\ndevice_id = \"x\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("topology t.toml: line 3"), "{e}");
        let e = Topology::parse(
            "[root_complex]\nvendor_id = 1\ndevice_id = 2\ncolour = 3\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(!e.contains('\n'));
        let e = Topology::parse("[root_complex\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = Topology::parse("[root_complex]\nvendor_id = 70000\ndevice_id = 2\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
