//! The topology file (TOML): what the PCIe fabric looks like.
//!
//! ```toml
//! [root_complex]
//! vendor_id = 0x8086          # host bridge IDs (Linux's P2PDMA whitelists some)
//! device_id = 0x2020
//! p2p = "forward"             # or "unsupported-request"
//!
//! [cpu]                       # optional; the host's CPU by default
//! vendor = "AuthenticAMD"     # Linux allows P2P through any host bridge
//! family = 0x17               # on AMD family 0x17 (Zen) and later
//! model = 0x31
//! brand = "AMD EPYC (p2pvm)"
//!
//! [[root_port]]
//! name = "rp1"
//! link = { speed = "gen4", width = 16 }
//! acs = { capability = ["SV", "RR", "CR", "UF"], control = [], stuck = [] }
//! # fault injection: stuck_on = ["RR"] redirects while Control reads
//! # clear; hidden = true drops the capability from config space
//! hot_plug = true             # surprise hot-plug slot (pciehp)
//!
//! [iommu]                     # optional: Intel VT-d (ACPI DMAR, one DRHD
//! kind = "vt-d"               # with INCLUDE_PCI_ALL at 0xFED90000)
//! [[iommu.fault]]             # injected, armed from power-on (docs/CONTROL.md)
//! what = "drop-mappings"      # context-not-present, pass-through, translate,
//! device = "nvme1"            # wrong-domain, ignore-invalidations,
//! peer_only = true            # mask-fault-event, fail-descriptors, overflow-records
//!
//! [[fault]]                   # TLP faults, armed from power-on
//! node = "sw1-dp0"
//! tlp = "completer-abort"     # or "poisoned"
//! p2p_only = true             # the default: RAM DMA passes
//! count = 10                  # default: every request
//!
//! [[switch]]
//! name = "sw1"
//! parent = "rp1"
//! [[switch.downstream]]
//! name = "sw1-dp0"
//! acs = { capability = ["SV", "RR", "CR", "UF", "EC"], control = [], egress_vector_size = 3 }
//!
//! [[endpoint]]
//! name = "ep0"
//! parent = "sw1-dp0"
//! kind = "test"
//! ```
//!
//! Root ports sit on bus 0 at device 1, 2, … in file order; a switch's
//! downstream ports at device 0, 1, … on its internal bus; every endpoint
//! and switch at device 0 below its port.

mod iommu;
mod nvme;
mod print;
mod rnic;
pub mod svg;
mod validate;

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

pub use iommu::{IommuConfig, IommuFault, IommuFaultKind, IommuKind};
pub use nvme::{device_memory, nvme_config};
pub use print::render;
pub use rnic::mac as rnic_mac;
pub use validate::{Layout, Placed, PlacedKind};

/// The topology used when no file is given.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../../topologies/default.toml");

/// A whole topology file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The root complex and its host bridge.
    pub root_complex: RootComplex,
    /// What the guest CPU says it is (CPUID).
    #[serde(default)]
    pub cpu: Cpu,
    /// Root ports, on bus 0 in file order.
    #[serde(default)]
    pub root_port: Vec<RootPort>,
    /// Switches, each below a root port or a downstream port.
    #[serde(default)]
    pub switch: Vec<Switch>,
    /// Endpoints, each below a root port or a downstream port.
    #[serde(default)]
    pub endpoint: Vec<Endpoint>,
    /// Injected TLP faults, armed from power-on.
    #[serde(default)]
    pub fault: Vec<Fault>,
    /// The IOMMU at the root complex (none when absent).
    #[serde(default)]
    pub iommu: Option<IommuConfig>,
}

/// What an injected fault does: `tlp = "completer-abort" | "poisoned"`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TlpFaultKind {
    /// Completer Abort.
    CompleterAbort,
    /// Poisoned data (EP).
    Poisoned,
}

impl TlpFaultKind {
    /// As pcie-core names it.
    pub fn fault(self) -> pcie_core::TlpFault {
        match self {
            TlpFaultKind::CompleterAbort => pcie_core::TlpFault::CompleterAbort,
            TlpFaultKind::Poisoned => pcie_core::TlpFault::Poisoned,
        }
    }
}

/// `[[fault]]`: requests crossing `node`'s link are aborted or poisoned;
/// the node logs it in its AER capability and reports ERR_NONFATAL.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The port or function.
    pub node: Spanned<String>,
    /// What happens.
    pub tlp: TlpFaultKind,
    /// Only peer-to-peer requests (default), so boot-time DMA to RAM passes.
    #[serde(default = "yes")]
    pub p2p_only: bool,
    /// How many requests it takes (default: all).
    #[serde(default)]
    pub count: Option<u64>,
}

impl Fault {
    /// The armed fault at `node`.
    pub fn injected(&self, node: pcie_core::NodeId) -> pcie_core::InjectedFault {
        pcie_core::InjectedFault {
            node,
            fault: self.tlp.fault(),
            p2p_only: self.p2p_only,
            remaining: self.count,
        }
    }
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
    /// Peer-to-peer between root ports.
    #[serde(default)]
    pub p2p: P2pPolicy,
}

/// The guest CPU's identity: each field left out keeps the host's value
/// (the brand: p2pvm's own).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// The 12-character vendor string (`AuthenticAMD`, `GenuineIntel`).
    #[serde(default)]
    pub vendor: Option<Spanned<String>>,
    /// Display family, e.g. 0x17 for AMD Zen (0 to 0x10E).
    #[serde(default)]
    pub family: Option<Spanned<u16>>,
    /// Display model (0 to 255).
    #[serde(default)]
    pub model: Option<u8>,
    /// Stepping (0 to 15).
    #[serde(default)]
    pub stepping: Option<Spanned<u8>>,
    /// Brand string: printable ASCII, at most 47 characters.
    #[serde(default)]
    pub brand: Option<Spanned<String>>,
}

impl Cpu {
    /// The identity CPUID gives the guest (the table is validated).
    pub fn identity(&self) -> crate::cpuid::CpuIdentity {
        crate::cpuid::CpuIdentity {
            vendor: self
                .vendor
                .as_ref()
                .and_then(|v| v.get_ref().as_bytes().try_into().ok()),
            family: self.family.as_ref().map(|f| *f.get_ref()),
            model: self.model,
            stepping: self.stepping.as_ref().map(|s| *s.get_ref()),
            brand: self.brand.as_ref().map(|b| b.get_ref().clone()),
        }
    }
}

/// The root complex's peer-to-peer policy.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum P2pPolicy {
    /// Forward requests between root ports.
    #[default]
    Forward,
    /// Answer them with Unsupported Request.
    UnsupportedRequest,
}

/// Link speed and width.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// `gen1` … `gen5`.
    #[serde(default = "default_speed")]
    pub speed: Speed,
    /// Lanes: 1, 2, 4, 8, 16 or 32.
    #[serde(default = "default_width")]
    pub width: u8,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            speed: default_speed(),
            width: default_width(),
        }
    }
}

fn default_speed() -> Speed {
    Speed::Gen4
}

fn default_width() -> u8 {
    16
}

/// PCIe generations.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Speed {
    /// 2.5 GT/s.
    Gen1,
    /// 5 GT/s.
    Gen2,
    /// 8 GT/s.
    Gen3,
    /// 16 GT/s.
    Gen4,
    /// 32 GT/s.
    Gen5,
}

/// An ACS bit name.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum AcsBit {
    /// Source Validation.
    SV,
    /// Translation Blocking.
    TB,
    /// P2P Request Redirect.
    RR,
    /// P2P Completion Redirect.
    CR,
    /// Upstream Forwarding.
    UF,
    /// P2P Egress Control.
    EC,
    /// Direct Translated P2P.
    DT,
}

impl AcsBit {
    /// The bit, as pcie-core defines it.
    pub fn mask(self) -> pcie_core::AcsBits {
        use pcie_core::AcsBits;
        match self {
            AcsBit::SV => AcsBits::SV,
            AcsBit::TB => AcsBits::TB,
            AcsBit::RR => AcsBits::RR,
            AcsBit::CR => AcsBits::CR,
            AcsBit::UF => AcsBits::UF,
            AcsBit::EC => AcsBits::EC,
            AcsBit::DT => AcsBits::DT,
        }
    }

    /// The set of a list of bits.
    pub fn bits(list: &[AcsBit]) -> pcie_core::AcsBits {
        list.iter()
            .fold(pcie_core::AcsBits::NONE, |acc, b| acc | b.mask())
    }
}

/// The ACS capability of a root or downstream port.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Acs {
    /// Implemented bits.
    pub capability: Vec<AcsBit>,
    /// Bits enabled at power-on.
    #[serde(default)]
    pub control: Vec<AcsBit>,
    /// Control bits the guest cannot change (broken firmware or hardware).
    #[serde(default)]
    pub stuck: Vec<AcsBit>,
    /// Bits the port applies whatever ACS Control says, while Control
    /// reads them clear (a port that lies about redirecting).
    #[serde(default)]
    pub stuck_on: Vec<AcsBit>,
    /// The capability is missing from config space, so Linux sees no
    /// ACS, while the port applies `control` (and `stuck_on`).
    #[serde(default)]
    pub hidden: bool,
    /// Egress control vector size in bits (with EC).
    #[serde(default)]
    pub egress_vector_size: Option<u16>,
    /// Initial egress control vector (with EC).
    #[serde(default)]
    pub egress_vector: u32,
}

/// A root port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RootPort {
    /// Unique name.
    pub name: Spanned<String>,
    /// Link to its child.
    #[serde(default)]
    pub link: Link,
    /// ACS capability (none when absent).
    #[serde(default)]
    pub acs: Option<Acs>,
    /// A surprise hot-plug capable slot (Linux's pciehp drives it; the
    /// control socket's `link-down` and `link-up` pull and reinsert what
    /// is below).
    #[serde(default)]
    pub hot_plug: bool,
}

/// A switch: an upstream port and its downstream ports.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// Unique name.
    pub name: Spanned<String>,
    /// The root port or downstream port it hangs below.
    pub parent: Spanned<String>,
    /// The upstream link.
    #[serde(default)]
    pub link: Link,
    /// Downstream ports, at device 0, 1, … of the internal bus.
    pub downstream: Vec<DownstreamPort>,
}

/// A switch downstream port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DownstreamPort {
    /// Unique name.
    pub name: Spanned<String>,
    /// Link to its child.
    #[serde(default)]
    pub link: Link,
    /// ACS capability (none when absent).
    #[serde(default)]
    pub acs: Option<Acs>,
    /// A surprise hot-plug capable slot (Linux's pciehp drives it; the
    /// control socket's `link-down` and `link-up` pull and reinsert what
    /// is below).
    #[serde(default)]
    pub hot_plug: bool,
}

/// Kinds of endpoint.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// The fabric test endpoint: RAM-backed BAR and a DMA engine.
    Test,
    /// An NVMe controller, optionally with a Controller Memory Buffer.
    Nvme,
    /// An RDMA NIC: vmxnet3 at function 0 (PVRDMA at function 1 is
    /// coming), on the VM's one wire.
    Rnic,
}

/// An endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Unique name.
    pub name: Spanned<String>,
    /// The root port or downstream port it hangs below.
    pub parent: Spanned<String>,
    /// What it is.
    pub kind: EndpointKind,
    /// Its link.
    #[serde(default)]
    pub link: Link,
    /// Size of the RAM-backed BAR (test endpoint), e.g. "1M".
    #[serde(default)]
    pub bar_size: Option<String>,
    /// NVMe: serial number (default from the endpoint's name).
    #[serde(default)]
    pub serial: Option<String>,
    /// NVMe: model number.
    #[serde(default)]
    pub model: Option<String>,
    /// NVMe: the Controller Memory Buffer (none when absent).
    #[serde(default)]
    pub cmb: Option<Spanned<Cmb>>,
    /// NVMe: namespaces, NSID 1 upwards (default: one 1 GiB RAM namespace).
    #[serde(default)]
    pub namespace: Vec<Spanned<Namespace>>,
    /// RNIC: the MAC address, "00:50:56:xx:xx:xx" (default: VMware's OUI
    /// and the RNIC's index).
    #[serde(default)]
    pub mac: Option<Spanned<String>>,
}

/// An NVMe Controller Memory Buffer: `cmb = { size = "64M" }`. Each
/// support bit CMBSZ advertises can be turned off, to see what the
/// kernel does without it (without both RDS and WDS Linux does not
/// publish the CMB as p2pmem; without SQS it keeps its SQs in RAM).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cmb {
    /// Size: a power of two from 2M to 4G.
    pub size: String,
    /// SQS: submission queues may live in the CMB.
    #[serde(default = "yes")]
    pub sqs: bool,
    /// CQS: completion queues may live in the CMB.
    #[serde(default)]
    pub cqs: bool,
    /// LISTS: PRP and SGL lists may live in the CMB.
    #[serde(default = "yes")]
    pub lists: bool,
    /// RDS: read data may go to the CMB.
    #[serde(default = "yes")]
    pub rds: bool,
    /// WDS: write data may come from the CMB.
    #[serde(default = "yes")]
    pub wds: bool,
}

fn yes() -> bool {
    true
}

/// An NVMe namespace: `[[endpoint.namespace]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Size, e.g. "1G": a multiple of the LBA size.
    pub size: String,
    /// Logical block size: 512 or 4096.
    #[serde(default = "lba_512")]
    pub lba_size: u32,
    /// Backing file (a raw image, created sparse when missing; a relative
    /// path is taken from the current directory). RAM when absent.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

fn lba_512() -> u32 {
    512
}

impl Topology {
    /// Parses and validates a topology; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Topology> {
        let t: Topology = toml::from_str(text).map_err(|e| Error::Topology {
            path: name.to_string(),
            msg: one_line(&e),
        })?;
        t.layout().map_err(|(span, msg)| Error::Topology {
            path: name.to_string(),
            msg: match span {
                Some(s) => format!("line {}: {msg}", line_of(text, s)),
                None => msg,
            },
        })?;
        Ok(t)
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

/// 1-based line of a byte offset.
fn line_of(text: &str, span: std::ops::Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// toml's errors span several lines with a caret drawing; keep the facts.
fn one_line(e: &toml::de::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or_default();
    match first.find("line ") {
        Some(pos) => format!("{}: {}", first[pos..].trim(), e.message().trim()),
        None => e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
