//! `kind = "nvme"` endpoints: from the topology's fields to an
//! [`NvmeConfig`].

use nvme_cmb::namespace::{BackingKind, NamespaceConfig};
use nvme_cmb::{CmbConfig, CmbFlags, NvmeConfig};

use super::{Endpoint, EndpointKind};
use crate::cli::parse_size;

/// The default namespace of a bare `kind = "nvme"`: 1 GiB of RAM.
const DEFAULT_NS_SIZE: u64 = 1 << 30;

/// Checks the fields that belong to one kind only.
pub(super) fn check_fields(ep: &Endpoint) -> Result<(), String> {
    let nvme_only =
        ep.serial.is_some() || ep.model.is_some() || ep.cmb.is_some() || !ep.namespace.is_empty();
    if ep.mac.is_some() && ep.kind != EndpointKind::Rnic {
        return Err("mac is for kind = \"rnic\"".into());
    }
    match ep.kind {
        EndpointKind::Test | EndpointKind::Rnic if nvme_only => {
            Err("serial, model, cmb and namespace are for kind = \"nvme\"".into())
        }
        EndpointKind::Rnic if ep.bar_size.is_some() => {
            Err("bar_size is for kind = \"test\"".into())
        }
        EndpointKind::Rnic => super::rnic::mac(ep, 0).map(|_| ()),
        EndpointKind::Nvme if ep.bar_size.is_some() => {
            Err("bar_size is for kind = \"test\" (an NVMe CMB is `cmb = { size = ... }`)".into())
        }
        EndpointKind::Nvme => nvme_config(ep, 1).map(|_| ()),
        EndpointKind::Test => Ok(()),
    }
}

/// The controller an `nvme` endpoint describes; `cntlid` is its
/// controller ID (unique in the VM).
pub fn nvme_config(ep: &Endpoint, cntlid: u16) -> Result<NvmeConfig, String> {
    let name = ep.name.get_ref();
    let serial = ep.serial.clone().unwrap_or_else(|| {
        let s: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        format!("P2PVM-{}", s.to_ascii_uppercase())
    });
    let cmb = match &ep.cmb {
        None => None,
        Some(c) => {
            let c = c.get_ref();
            let size = parse_size(&c.size).map_err(|m| format!("cmb size: {m}"))?;
            Some(CmbConfig {
                size,
                flags: CmbFlags {
                    sqs: c.sqs,
                    cqs: c.cqs,
                    lists: c.lists,
                    rds: c.rds,
                    wds: c.wds,
                },
            })
        }
    };
    let mut namespaces = Vec::new();
    for (i, ns) in ep.namespace.iter().enumerate() {
        let ns = ns.get_ref();
        let what = |m: String| format!("namespace {}: {m}", i + 1);
        let size = parse_size(&ns.size).map_err(what)?;
        if ns.lba_size != 512 && ns.lba_size != 4096 {
            return Err(what(format!(
                "lba_size {} must be 512 or 4096",
                ns.lba_size
            )));
        }
        if size == 0 || size % u64::from(ns.lba_size) != 0 {
            return Err(what(format!(
                "size '{}' must be a non-zero multiple of lba_size {}",
                ns.size, ns.lba_size
            )));
        }
        namespaces.push(NamespaceConfig {
            size,
            lba_size: ns.lba_size,
            backing: match &ns.file {
                Some(f) => BackingKind::File(f.clone()),
                None => BackingKind::Ram,
            },
        });
    }
    if namespaces.is_empty() {
        namespaces.push(NamespaceConfig {
            size: DEFAULT_NS_SIZE,
            lba_size: 512,
            backing: BackingKind::Ram,
        });
    }
    let cfg = NvmeConfig {
        link: (crate::fabric::speed(ep.link.speed), ep.link.width),
        serial,
        model: ep
            .model
            .clone()
            .unwrap_or_else(|| NvmeConfig::default().model),
        cmb,
        namespaces,
        cntlid,
        ..NvmeConfig::default()
    };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Host memory the topology's devices may fill besides guest RAM: RAM
/// namespaces, CMBs and test endpoints' BARs (what the KVM host box must
/// have room for; all of it is mapped lazily).
pub fn device_memory(topo: &super::Topology) -> u64 {
    topo.endpoint
        .iter()
        .map(|ep| match ep.kind {
            EndpointKind::Test => ep
                .bar_size
                .as_deref()
                .and_then(|s| parse_size(s).ok())
                .unwrap_or(1 << 20),
            // Rings live in guest RAM.
            EndpointKind::Rnic => 0,
            EndpointKind::Nvme => nvme_config(ep, 1).map_or(0, |c| {
                let ram: u64 = c
                    .namespaces
                    .iter()
                    .filter(|n| n.backing == BackingKind::Ram)
                    .map(|n| n.size)
                    .sum();
                ram + c.cmb.map_or(0, |m| m.size)
            }),
        })
        .sum()
}
