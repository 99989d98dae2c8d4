//! How a controller is built: [`NvmeConfig`].

use crate::namespace::NamespaceConfig;
use crate::regs::cmb;

/// What the CMB advertises in CMBSZ (NVMe 1.4 §3.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CmbFlags {
    /// SQS: submission queues may live in the CMB.
    pub sqs: bool,
    /// CQS: completion queues may live in the CMB.
    pub cqs: bool,
    /// LISTS: PRP and SGL lists may live in the CMB.
    pub lists: bool,
    /// RDS: data of Read commands (controller to host) may go there.
    pub rds: bool,
    /// WDS: data of Write commands (host to controller) may come from there.
    pub wds: bool,
}

impl Default for CmbFlags {
    /// SQS, LISTS, RDS and WDS: what Linux needs to publish the CMB as
    /// p2pmem and to put its SQs there (CQS stays clear, as Linux never
    /// uses it).
    fn default() -> Self {
        CmbFlags {
            sqs: true,
            cqs: false,
            lists: true,
            rds: true,
            wds: true,
        }
    }
}

impl CmbFlags {
    /// The CMBSZ support bits.
    pub fn bits(&self) -> u32 {
        [
            (self.sqs, cmb::SQS),
            (self.cqs, cmb::CQS),
            (self.lists, cmb::LISTS),
            (self.rds, cmb::RDS),
            (self.wds, cmb::WDS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, b)| acc | b)
    }
}

/// A Controller Memory Buffer: its size and what it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CmbConfig {
    /// Bytes: a power of two from 2 MiB to 4 GiB (Linux maps a CMB only
    /// when its size and BAR are 2 MiB aligned).
    pub size: u64,
    /// What CMBSZ advertises.
    pub flags: CmbFlags,
}

/// How an NVMe controller is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeConfig {
    /// PCI vendor and device ID.
    pub pci_id: (u16, u16),
    /// Serial number (up to 20 ASCII characters).
    pub serial: String,
    /// Model number (up to 40 ASCII characters).
    pub model: String,
    /// The CMB, if any (BAR 2).
    pub cmb: Option<CmbConfig>,
    /// Namespaces, NSID 1 upwards.
    pub namespaces: Vec<NamespaceConfig>,
    /// Controller ID, also what makes namespace identifiers unique.
    pub cntlid: u16,
    /// Link speed and width in lanes (1, 2, 4, 8, 12, 16 or 32).
    pub link: (pcie_core::LinkSpeed, u8),
}

/// The PCI ID p2pvm's controllers use by default: Red Hat's vendor ID
/// with a device ID outside QEMU's assigned list, so that no quirk of
/// Linux's `nvme` driver applies (1b36:0010, QEMU's controller, has
/// NVME_QUIRK_BOGUS_NID). Linux binds by class code 01/08/02.
pub const DEFAULT_PCI_ID: (u16, u16) = (0x1b36, 0x00f0);

impl Default for NvmeConfig {
    /// One 1 GiB RAM namespace of 512-byte blocks and no CMB.
    fn default() -> Self {
        NvmeConfig {
            pci_id: DEFAULT_PCI_ID,
            serial: "P2PVM0001".into(),
            model: "p2pvm NVMe CMB".into(),
            cmb: None,
            namespaces: vec![NamespaceConfig {
                size: 1 << 30,
                lba_size: 512,
                backing: crate::namespace::BackingKind::Ram,
            }],
            cntlid: 1,
            link: (pcie_core::LinkSpeed::Gt8, 4),
        }
    }
}

impl NvmeConfig {
    /// Checks what the register file cannot represent.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if !self.serial.is_ascii() || self.serial.len() > 20 {
            return bad(format!(
                "serial {:?}: up to 20 ASCII characters",
                self.serial
            ));
        }
        if !self.model.is_ascii() || self.model.len() > 40 {
            return bad(format!("model {:?}: up to 40 ASCII characters", self.model));
        }
        if let Some(c) = &self.cmb {
            if !c.size.is_power_of_two() || !(2 << 20..=1 << 32).contains(&c.size) {
                return bad(format!(
                    "CMB size {:#x}: a power of two from 2 MiB to 4 GiB",
                    c.size
                ));
            }
        }
        if self.namespaces.len() > 32 {
            return bad(format!("{} namespaces: at most 32", self.namespaces.len()));
        }
        Ok(())
    }

    /// CMBSZ: the support bits, SZU = 1 MiB units (2), SZ = size in them.
    pub fn cmbsz(&self) -> u32 {
        self.cmb.map_or(0, |c| {
            let units = (c.size >> 20) as u32;
            c.flags.bits() | (2 << cmb::SZU_SHIFT) | (units << cmb::SZ_SHIFT)
        })
    }

    /// CMBLOC: BAR 2, offset 0, no restrictions.
    pub fn cmbloc(&self) -> u32 {
        if self.cmb.is_some() {
            crate::CMB_BAR.into()
        } else {
            0
        }
    }
}
