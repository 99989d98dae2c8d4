//! Building the PCIe fabric from the topology: host bridge, root ports,
//! switches and endpoints as nodes of a `pcie_core::Fabric`, numbered and
//! given resources the way firmware does before Linux boots.

use std::sync::Arc;

use p2pvm_testdev::{TestEndpoint, TestEndpointConfig};
use pcie_core::firmware::{enumerate, Apertures, EnumerationReport};
use pcie_core::{DeviceWorker, PciFunction};
use pcie_core::{DmaHandle, Fabric, GuestRam, LinkSpeed, NodeId, NodeKind, RcP2pPolicy};
use pcie_switch::{AcsConfig, BridgeConfig, HostBridge, HostBridgeConfig, PciBridge, PortKind};

use crate::devices::barmap::FollowerSlot;
use crate::devices::worker::DeviceThread;
use crate::error::{Error, Result};
use crate::layout::{mmio64_aperture, MMIO32_SIZE, MMIO32_START, PCI_IO_END, PCI_IO_START};
use crate::topology::{Acs, AcsBit, EndpointKind, Link, P2pPolicy, PlacedKind, Speed, Topology};

/// Root port IDs: Red Hat's generic PCIe root port.
const ROOT_PORT_ID: (u16, u16) = (0x1b36, 0x000c);
/// Switch port IDs: TI XIO3130 upstream and downstream ports.
const SWITCH_UP_ID: (u16, u16) = (0x104c, 0x8232);
const SWITCH_DOWN_ID: (u16, u16) = (0x104c, 0x8233);
/// Default size of a test endpoint's RAM-backed BAR.
const TEST_BAR_SIZE: u64 = 1 << 20;

/// The built fabric and where each topology node landed.
///
/// The fabric holds the functions; only the device threads hold the
/// fabric (through their workers' DMA handles), so dropping this frees
/// everything: there is no cycle.
pub struct VmFabric {
    /// The fabric, shared by vCPUs (config and MMIO) and devices (DMA).
    pub fabric: Arc<Fabric>,
    /// `(name, node)` in tree order, host bridge first.
    pub nodes: Vec<(String, NodeId)>,
    /// What enumeration assigned.
    pub report: EnumerationReport,
    /// The devices' workers, with their node, not started yet.
    pub threads: Vec<(NodeId, DeviceThread)>,
    /// Where the devices' doorbell switches find the VM's BAR follower.
    pub bells: FollowerSlot,
    /// The VT-d unit translating at the root complex, when the topology
    /// has one.
    pub iommu: Option<Arc<vtd::Vtd>>,
}

/// Guest RAM that refuses every access: for validating a topology before
/// the VM exists.
pub struct NoRam;

impl GuestRam for NoRam {
    fn read(&self, _addr: u64, _buf: &mut [u8]) -> bool {
        false
    }
    fn write(&self, _addr: u64, _buf: &[u8]) -> bool {
        false
    }
}

/// The link speed a topology names.
pub(crate) fn speed(s: Speed) -> LinkSpeed {
    match s {
        Speed::Gen1 => LinkSpeed::Gt2_5,
        Speed::Gen2 => LinkSpeed::Gt5,
        Speed::Gen3 => LinkSpeed::Gt8,
        Speed::Gen4 => LinkSpeed::Gt16,
        Speed::Gen5 => LinkSpeed::Gt32,
    }
}

fn acs(a: &Option<Acs>) -> Option<AcsConfig> {
    a.as_ref().map(|a| {
        let capability = AcsBit::bits(&a.capability);
        let ec = capability.contains(pcie_core::AcsBits::EC);
        AcsConfig {
            capability,
            control: AcsBit::bits(&a.control),
            stuck: AcsBit::bits(&a.stuck),
            egress_vector_size: if ec {
                a.egress_vector_size.unwrap_or(8)
            } else {
                0
            },
            egress_vector: a.egress_vector,
        }
    })
}

/// The slot below a root or downstream port.
#[derive(Clone, Copy)]
struct Slot {
    number: u16,
    hot_plug: bool,
}

fn bridge(
    kind: PortKind,
    id: (u16, u16),
    port_number: u8,
    link: Link,
    slot: Option<Slot>,
    topo_acs: &Option<Acs>,
    has_child: bool,
) -> std::result::Result<PciBridge, pcie_switch::Error> {
    let mut b = PciBridge::new(BridgeConfig {
        kind,
        vendor_id: id.0,
        device_id: id.1,
        revision_id: 0,
        port_number,
        link_speed: speed(link.speed),
        link_width: link.width,
        slot: slot.map(|s| s.number),
        acs: acs(topo_acs),
        aer: true,
        hot_plug: slot.is_some_and(|s| s.hot_plug),
    })?;
    if let Some(a) = topo_acs {
        if a.hidden || !a.stuck_on.is_empty() {
            b.set_acs_fault(AcsBit::bits(&a.stuck_on), a.hidden)?;
        }
    }
    b.set_child_present(has_child);
    Ok(b)
}

/// Builds the fabric for `topo` over guest RAM `ram` (ranges `ram_ranges`)
/// and enumerates it like firmware.
pub fn build(
    topo: &Topology,
    ram_size: u64,
    ram_ranges: Vec<(u64, u64)>,
    ram: Arc<dyn GuestRam>,
) -> Result<VmFabric> {
    let terr = |msg: String| Error::Topology {
        path: "fabric".into(),
        msg,
    };
    let layout = topo.layout().map_err(|(_, m)| terr(m))?;
    let rc = &topo.root_complex;
    let policy = match rc.p2p {
        P2pPolicy::Forward => RcP2pPolicy::Forward,
        P2pPolicy::UnsupportedRequest => RcP2pPolicy::UnsupportedRequest,
    };
    let fabric = Arc::new(Fabric::new(ram_ranges, policy));
    let hb = HostBridge::new(HostBridgeConfig {
        vendor_id: rc.vendor_id,
        device_id: rc.device_id,
        revision_id: rc.revision,
        subsystem_vendor_id: rc.subsystem_vendor_id.unwrap_or(rc.vendor_id),
        subsystem_id: rc.subsystem_id.unwrap_or(rc.device_id),
    })
    .map_err(|e| terr(format!("root_complex: {e}")))?;
    let host = fabric
        .add(
            None,
            0,
            0,
            "host-bridge",
            NodeKind::HostBridge,
            Box::new(hb),
        )
        .map_err(|e| terr(e.to_string()))?;

    let has_child = |i: usize| layout.iter().any(|p| p.parent == Some(i));
    let mut ids: Vec<NodeId> = Vec::with_capacity(layout.len());
    let mut nodes = vec![("host-bridge".to_string(), host)];
    let mut slot: u16 = 0;
    let mut threads = Vec::new();
    let bells = FollowerSlot::default();
    let mut cntlid: u16 = 0;
    // Every RNIC of the VM is on one wire.
    let wire = rnic::Wire::new();
    let mut macs: Vec<[u8; 6]> = Vec::new();
    // Functions besides function 0 (an RNIC's PVRDMA), named after it.
    let mut extra: Vec<(String, NodeId)> = Vec::new();
    for (i, p) in layout.iter().enumerate() {
        let parent = p.parent.map(|x| ids[x]);
        let name = p.name.as_str();
        let e = |m: String| terr(format!("{name}: {m}"));
        let id = match p.kind {
            PlacedKind::RootPort(r) => {
                let rp = &topo.root_port[r];
                slot += 1;
                let b = bridge(
                    PortKind::RootPort,
                    ROOT_PORT_ID,
                    p.device,
                    rp.link,
                    Some(Slot {
                        number: slot,
                        hot_plug: rp.hot_plug,
                    }),
                    &rp.acs,
                    has_child(i),
                )
                .map_err(|x| e(x.to_string()))?;
                fabric
                    .add(parent, p.device, 0, name, NodeKind::RootPort, Box::new(b))
                    .map_err(Error::from)
            }
            PlacedKind::SwitchUpstream(s) => {
                let sw = &topo.switch[s];
                let b = bridge(
                    PortKind::SwitchUpstream,
                    SWITCH_UP_ID,
                    0,
                    sw.link,
                    None,
                    &None,
                    true,
                )
                .map_err(|x| e(x.to_string()))?;
                fabric
                    .add(parent, 0, 0, name, NodeKind::SwitchUpstream, Box::new(b))
                    .map_err(Error::from)
            }
            PlacedKind::SwitchDownstream(s, d) => {
                let dp = &topo.switch[s].downstream[d];
                slot += 1;
                let b = bridge(
                    PortKind::SwitchDownstream,
                    SWITCH_DOWN_ID,
                    p.device,
                    dp.link,
                    Some(Slot {
                        number: slot,
                        hot_plug: dp.hot_plug,
                    }),
                    &dp.acs,
                    has_child(i),
                )
                .map_err(|x| e(x.to_string()))?;
                fabric
                    .add(
                        parent,
                        p.device,
                        0,
                        name,
                        NodeKind::SwitchDownstream,
                        Box::new(b),
                    )
                    .map_err(Error::from)
            }
            PlacedKind::Endpoint(n) => {
                let ep = &topo.endpoint[n];
                let dev = Device {
                    fabric: &fabric,
                    ram: &ram,
                    bells: &bells,
                    parent,
                    name,
                };
                match ep.kind {
                    EndpointKind::Test => {
                        let bar2_size = match &ep.bar_size {
                            Some(s) => crate::cli::parse_size(s).map_err(e)?,
                            None => TEST_BAR_SIZE,
                        };
                        let cfg = TestEndpointConfig {
                            bar2_size,
                            link_speed: speed(ep.link.speed),
                            link_width: ep.link.width,
                        };
                        dev.add(&mut threads, |dma, notify, _bells| {
                            let (ep, engine) = TestEndpoint::new(cfg, dma, notify)
                                .map_err(|x| Error::Fabric(x.to_string()))?;
                            Ok((Box::new(ep), Box::new(engine)))
                        })
                    }
                    EndpointKind::Rnic => {
                        let mac = crate::topology::rnic_mac(ep, macs.len() as u8).map_err(e)?;
                        if macs.contains(&mac) {
                            return Err(e(format!("mac {mac:02x?} is used by another rnic")));
                        }
                        macs.push(mac);
                        let cfg = rnic::vmxnet3::Vmxnet3Config {
                            mac,
                            multifunction: true,
                            link_speed: speed(ep.link.speed),
                            link_width: ep.link.width,
                        };
                        let rdma = rnic::pvrdma::PvrdmaConfig {
                            mac,
                            link_speed: cfg.link_speed,
                            link_width: cfg.link_width,
                        };
                        let (wire, wire1) = (wire.clone(), wire.clone());
                        // Function 1 is the node "<name>.rdma" (counters, traces).
                        let rdma_name = format!("{name}.rdma");
                        let fn1 = Device {
                            fabric: &fabric,
                            ram: &ram,
                            bells: &bells,
                            parent,
                            name: &rdma_name,
                        };
                        let id = dev.add(&mut threads, move |dma, notify, _bells| {
                            let (f, engine) = rnic::vmxnet3::Vmxnet3::new(&cfg, dma, notify, &wire)
                                .map_err(|x| Error::Fabric(x.to_string()))?;
                            Ok((Box::new(f), Box::new(engine)))
                        })?;
                        let id1 =
                            fn1.add_function(1, &mut threads, move |dma, notify, _bells| {
                                let (f, engine) =
                                    rnic::pvrdma::Pvrdma::new(&rdma, dma, notify, &wire1)
                                        .map_err(|x| Error::Fabric(x.to_string()))?;
                                Ok((Box::new(f), Box::new(engine)))
                            })?;
                        extra.push((rdma_name.clone(), id1));
                        Ok(id)
                    }
                    EndpointKind::Nvme => {
                        cntlid += 1;
                        let cfg = crate::topology::nvme_config(ep, cntlid).map_err(e)?;
                        dev.add(&mut threads, |dma, notify, bells| {
                            let (ctrl, engine) = nvme_cmb::new(&cfg, dma, notify, bells)
                                .map_err(|x| Error::Fabric(x.to_string()))?;
                            Ok((Box::new(ctrl), Box::new(engine)))
                        })
                    }
                }
            }
        }
        .map_err(|x| match x {
            Error::Fabric(m) => e(m),
            other => other,
        })?;
        ids.push(id);
        nodes.push((p.name.clone(), id));
        nodes.append(&mut extra);
    }

    let (m64, m64_size) = mmio64_aperture(ram_size);
    let report = enumerate(
        &fabric,
        &Apertures {
            mmio32: (MMIO32_START, MMIO32_SIZE),
            mmio64: (m64, m64_size),
            io: (PCI_IO_START, PCI_IO_END),
        },
    )
    .map_err(|x| terr(x.to_string()))?;
    for f in &topo.fault {
        let node = nodes
            .iter()
            .find(|(n, _)| n == f.node.get_ref())
            .map(|(_, id)| *id)
            .ok_or_else(|| terr(format!("fault: no node '{}'", f.node.get_ref())))?;
        fabric.inject_fault(f.injected(node));
    }
    let iommu = match &topo.iommu {
        Some(cfg) => {
            let unit = match cfg.kind {
                crate::topology::IommuKind::VtD => {
                    Arc::new(vtd::Vtd::new(ram.clone(), fabric.ram().to_vec()))
                }
            };
            for f in &cfg.fault {
                let rid = match &f.device {
                    Some(d) => Some(node_rid(&fabric, &nodes, d).map_err(terr)?),
                    None => None,
                };
                unit.inject(
                    f.injection(rid)
                        .map_err(|m| terr(format!("iommu.fault: {m}")))?,
                );
            }
            fabric.set_iommu(Some(unit.clone()));
            Some(unit)
        }
        None => None,
    };
    Ok(VmFabric {
        fabric,
        nodes,
        report,
        threads,
        bells,
        iommu,
    })
}

/// The requester ID (BDF) firmware gave node `name`.
pub fn node_rid(
    fabric: &Fabric,
    nodes: &[(String, NodeId)],
    name: &str,
) -> std::result::Result<u16, String> {
    let id = nodes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| *id)
        .ok_or_else(|| format!("no node '{name}'"))?;
    fabric
        .bdf(id)
        .map(|b| b.requester_id())
        .ok_or_else(|| format!("'{name}' has no bus number"))
}

impl VmFabric {
    /// The nodes on the root bus (host bridge and root ports), in order.
    pub fn roots(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| self.fabric.parent(*id).is_none())
            .collect()
    }
}

/// A function and its worker, as a device's constructor returns them.
type Made = (Box<dyn PciFunction>, Box<dyn DeviceWorker>);

/// Where an endpoint with a device thread is added.
struct Device<'a> {
    fabric: &'a Arc<Fabric>,
    ram: &'a Arc<dyn GuestRam>,
    bells: &'a FollowerSlot,
    parent: Option<NodeId>,
    name: &'a str,
}

impl Device<'_> {
    /// Adds the function `make` builds (from its DMA handle, its notifier
    /// and its doorbell switch) at device 0 below the parent, and records
    /// its thread.
    fn add(
        self,
        threads: &mut Vec<(NodeId, DeviceThread)>,
        make: impl FnOnce(
            DmaHandle,
            Arc<dyn pcie_core::Notifier>,
            Arc<dyn pcie_core::DoorbellControl>,
        ) -> Result<Made>,
    ) -> Result<NodeId> {
        self.add_function(0, threads, make)
    }

    /// [`add`](Self::add) at function `function` of device 0.
    fn add_function(
        self,
        function: u8,
        threads: &mut Vec<(NodeId, DeviceThread)>,
        make: impl FnOnce(
            DmaHandle,
            Arc<dyn pcie_core::Notifier>,
            Arc<dyn pcie_core::DoorbellControl>,
        ) -> Result<Made>,
    ) -> Result<NodeId> {
        let (f, ram, name, bells) = (
            self.fabric.clone(),
            self.ram.clone(),
            self.name,
            self.bells.clone(),
        );
        self.fabric.add_with(
            self.parent,
            0,
            function,
            name,
            NodeKind::Endpoint,
            move |id| {
                let mut dev = None;
                let thread = DeviceThread::new(name, |notify| {
                    let (function, worker) =
                        make(DmaHandle::new(f, id, ram), notify, bells.control(id))?;
                    let doorbells = function.doorbells().len();
                    dev = Some(function);
                    Ok((worker, doorbells))
                })?;
                threads.push((id, thread));
                dev.ok_or_else(|| Error::Fabric("no device".into()))
            },
        )
    }
}

/// Guest RAM as the fabric's DMA target.
pub struct GuestMemoryRam(pub vm_memory::GuestMemoryMmap);

impl GuestRam for GuestMemoryRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        use vm_memory::Bytes;
        self.0
            .read_slice(buf, vm_memory::GuestAddress(addr))
            .is_ok()
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        use vm_memory::Bytes;
        self.0
            .write_slice(buf, vm_memory::GuestAddress(addr))
            .is_ok()
    }

    /// Inside one region: its mmap, which lives as long as any clone of
    /// the `GuestMemoryMmap` (this one included) and never moves.
    fn host_range(&self, addr: u64, len: usize) -> Option<std::ptr::NonNull<u8>> {
        use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};
        let r = self.0.find_region(GuestAddress(addr))?;
        let off = addr - r.start_addr().raw_value();
        if off.checked_add(len as u64)? > r.len() {
            return None;
        }
        std::ptr::NonNull::new(self.0.get_host_address(GuestAddress(addr)).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_that_cannot_fit_are_a_clear_error() {
        // 17 endpoints with 4 GiB BARs need more than the 64 GiB aperture.
        let mut t = String::from("[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n");
        for i in 0..17 {
            t += &format!(
                "[[root_port]]\nname = \"rp{i}\"\n[[endpoint]]\nname = \"e{i}\"\nparent = \"rp{i}\"\nkind = \"test\"\nbar_size = \"4G\"\n"
            );
        }
        let topo = Topology::parse(&t, "big.toml").unwrap();
        let e = build(&topo, 512 << 20, vec![(0, 512 << 20)], Arc::new(NoRam))
            .err()
            .expect("must not fit")
            .to_string();
        assert!(e.contains("rp16") || e.contains("e16"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_dropped_fabric_is_freed_with_its_bar_memory() {
        let t = "[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n[[root_port]]\nname = \"rp\"\n[[endpoint]]\nname = \"e\"\nparent = \"rp\"\nkind = \"test\"\n";
        let topo = Topology::parse(t, "one.toml").unwrap();
        let built = build(&topo, 512 << 20, vec![(0, 512 << 20)], Arc::new(NoRam)).unwrap();
        let node = built.nodes.last().unwrap().1;
        let memory = Arc::downgrade(&built.fabric.bar_backing(node, 2).unwrap());
        let fabric = Arc::downgrade(&built.fabric);
        assert_eq!(built.threads.len(), 1);
        drop(built);
        assert!(fabric.upgrade().is_none(), "the fabric outlived its owner");
        assert!(memory.upgrade().is_none(), "BAR memory outlived the fabric");
    }

    #[test]
    fn default_topology_enumerates_like_firmware() {
        let topo = Topology::load(None).unwrap();
        let built = build(&topo, 512 << 20, vec![(0, 512 << 20)], Arc::new(NoRam)).unwrap();
        let bdfs: Vec<String> = built
            .nodes
            .iter()
            .map(|(n, id)| format!("{n}={}", built.fabric.bdf(*id).unwrap()))
            .collect();
        assert_eq!(
            bdfs,
            [
                "host-bridge=00:00.0",
                "rp1=00:01.0",
                "rp2=00:02.0",
                "sw1=01:00.0",
                "sw1-dp0=02:00.0",
                "sw1-dp1=02:01.0",
                "sw1-dp2=02:02.0",
                "nvme0=03:00.0",
                "nvme1=04:00.0",
                "rnic0=05:00.0",
                "rnic0.rdma=05:00.1"
            ]
        );
    }
}
