//! The P2PDMA scenarios: a fabric, a guest command line, and what the
//! kernel and the fabric should each do.
//!
//! Every scenario boots the same tree, changed only by its [`Setup`]:
//!
//! ```text
//! 00:00.0 host bridge (IDs and RC policy from the setup)
//! rp1 ── sw1 ── sw1-dp0 ── nvme0  provider: 64 MiB CMB, published as p2pmem
//!            ├─ sw1-dp1 ── nvme1  client below the same switch (file namespace)
//!            └─ sw1-dp2
//! rp2 ── nvme2                    client on the other root port (file namespace)
//! ```
//!
//! The guest copies [`PAYLOAD`] bytes from the client's namespace into
//! nvme0's p2pmem and back out to another place on the same namespace
//! (O_DIRECT), reading nothing back: the host compares the bytes in the
//! backing file afterwards, so no traffic but the copy's crosses the
//! fabric.

/// Bytes the guest copies through p2pmem.
pub const PAYLOAD: u64 = 4 << 20;
/// Chunk of each O_DIRECT read and write.
pub const CHUNK: u64 = 128 << 10;
/// Where the copy lands on the client's namespace.
pub const DST_OFFSET: u64 = 16 << 20;
/// Where the second copy lands, after a surprise removal and reinsertion.
pub const DST2_OFFSET: u64 = 32 << 20;
/// Size of each client namespace's backing file.
pub const NAMESPACE_SIZE: u64 = 64 << 20;

/// Which NVMe controller reads and writes through nvme0's p2pmem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// nvme1, below the same switch as the provider.
    SameSwitch,
    /// nvme2, below the other root port.
    OtherRootPort,
}

impl Client {
    /// The controller's name in the topology.
    pub fn name(self) -> &'static str {
        match self {
            Client::SameSwitch => "nvme1",
            Client::OtherRootPort => "nvme2",
        }
    }

    /// Its NVMe serial number.
    pub fn serial(self) -> &'static str {
        match self {
            Client::SameSwitch => "P2PVM-NVME1",
            Client::OtherRootPort => "P2PVM-NVME2",
        }
    }
}

/// What the guest CPU should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuChoice {
    /// Anything but AMD family 0x17 or later: Linux then allows P2P
    /// through the root complex only for whitelisted host bridges. On a
    /// Zen host the guest is given family 0x10.
    NotZen,
    /// AMD family 0x17 (Zen): `cpu_supports_p2pdma()` allows P2P through
    /// any host bridge.
    Zen,
}

/// How a scenario changes the common tree.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Host bridge vendor and device ID.
    pub host_bridge: (u16, u16),
    /// The root complex forwards P2P between root ports (else it answers
    /// Unsupported Request).
    pub rc_forwards: bool,
    /// The guest CPU.
    pub cpu: CpuChoice,
    /// The client.
    pub client: Client,
    /// ACS Control of rp1 at power-on.
    pub rp1_control: &'static [&'static str],
    /// ACS Control of sw1-dp1 (the same-switch client's port) at power-on.
    pub dp1_control: &'static [&'static str],
    /// Bits sw1-dp1 applies while Control reads them clear.
    pub dp1_stuck_on: &'static [&'static str],
    /// sw1-dp1 has no ACS capability in config space.
    pub dp1_hidden: bool,
    /// A TLP fault armed from power-on on peer-to-peer requests through a
    /// node: `(node, "completer-abort" | "poisoned")`.
    pub fault: Option<(&'static str, &'static str)>,
    /// sw1-dp1's slot is surprise hot-plug capable.
    pub hot_plug: bool,
    /// An Intel VT-d unit translates at the root complex (`[iommu]`);
    /// Linux then turns ACS on at every port itself.
    pub iommu: bool,
    /// An `[[iommu.fault]]` armed from power-on: the table's body.
    pub iommu_fault: Option<&'static str>,
    /// NVMe over Fabrics instead of a local copy: rnic0 on sw1-dp2 and
    /// rnic1 on rp2 (in place of nvme2); nvmet-rdma on the target RNIC
    /// exports the client's namespace with nvme0's CMB as p2pmem, and
    /// the guest copies through the nvme-rdma device on the other RNIC.
    pub rdma: Option<RdmaTarget>,
}

/// Which RNIC serves NVMe over Fabrics (the other one is the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdmaTarget {
    /// rnic0, below the switch with the provider.
    SameSwitch,
    /// rnic1, below rp2.
    OtherRootPort,
}

impl RdmaTarget {
    /// (target address, host address): rnic0 is 10.9.0.1, rnic1 10.9.0.2.
    fn addresses(self) -> (&'static str, &'static str) {
        match self {
            RdmaTarget::SameSwitch => ("10.9.0.1", "10.9.0.2"),
            RdmaTarget::OtherRootPort => ("10.9.0.2", "10.9.0.1"),
        }
    }
}

/// 8086:2020, on Linux's P2PDMA host bridge whitelist.
pub const WHITELISTED: (u16, u16) = (0x8086, 0x2020);
/// QEMU's generic PCIe host bridge ID, not on the whitelist.
pub const NOT_WHITELISTED: (u16, u16) = (0x1b36, 0x0008);

const BASE: Setup = Setup {
    host_bridge: WHITELISTED,
    rc_forwards: true,
    cpu: CpuChoice::NotZen,
    client: Client::SameSwitch,
    rp1_control: &[],
    dp1_control: &[],
    dp1_stuck_on: &[],
    dp1_hidden: false,
    fault: None,
    hot_plug: false,
    iommu: false,
    iommu_fault: None,
    rdma: None,
};

/// What the guest kernel should decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelExpect {
    /// P2P allowed: the copy succeeds and the bytes arrive. `redirect`:
    /// Linux says ACS redirect is set on the path (it maps through the
    /// host bridge); otherwise it must not say so.
    Allows {
        /// Linux warns about ACS redirect on the path.
        redirect: bool,
    },
    /// P2P refused with "do not share an upstream bridge or whitelisted
    /// host bridge": the copy fails, nothing lands.
    Refuses,
    /// P2P allowed, but the I/O fails with an NVMe Data Transfer Error:
    /// the copy fails and no wrong data lands.
    FailsWithDataTransferError,
    /// P2P allowed through the host bridge and the copy "succeeds": no
    /// error, no DMAR fault, but the bytes that land are wrong (each a
    /// block of the source from the wrong place). Only the host's byte
    /// check sees it.
    CorruptsSilently,
}

/// Where the payload should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FabricExpect {
    /// Through the downstream ports only: nothing at sw1's upstream link
    /// or rp1.
    BelowSwitch,
    /// From the client's root port through the root complex to rp1.
    ThroughRootComplex,
    /// Redirected up the switch to the root complex and back down.
    UpToRootComplexAndBack,
    /// Nowhere: the kernel never issued it.
    NoPayload,
    /// Refused at the root complex (counted there), nothing at nvme0.
    RefusedAtRootComplex,
    /// Refused by an injected fault on the way: the `refused` counter
    /// named here counts them, nothing at nvme0.
    Faulted {
        /// `completer_abort` or `poisoned`.
        counter: &'static str,
    },
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name, for `--filter`.
    pub name: &'static str,
    /// What it shows, in one line.
    pub title: &'static str,
    /// The tree.
    pub setup: Setup,
    /// Extra guest kernel arguments; `{bdf:NODE}` becomes NODE's BDF.
    pub cmdline: &'static str,
    /// Lines the guest's dmesg must have (`{bdf:NODE}` as above).
    pub dmesg_has: &'static [&'static str],
    /// Lines the guest's dmesg must not have.
    pub dmesg_lacks: &'static [&'static str],
    /// Entries the AER section must have: `BDF KIND` as the guest's
    /// `aer_dev_nonfatal` counts them (any count above 0), `{bdf:NODE}`
    /// as above.
    pub aer_has: &'static [&'static str],
    /// The kernel's column.
    pub kernel: KernelExpect,
    /// The fabric's column.
    pub fabric: FabricExpect,
    /// A misconfiguration the kernel cannot see: the fabric did what the
    /// kernel did not expect. Recorded in the report.
    pub unseen_by_kernel: bool,
    /// After the copy, the host pulls the client out (its link goes down
    /// through the control socket), puts it back, and the guest copies
    /// again to [`DST2_OFFSET`] through the new controller.
    pub replug: bool,
}

/// The port above the same-switch client, which `replug` scenarios pull.
pub const REPLUG_PORT: &str = "sw1-dp1";

/// Every scenario, in the order the suite runs them.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "switch-local",
            title: "client and provider below one switch",
            setup: BASE,
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::BelowSwitch,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "rc-whitelisted",
            title: "different root ports, whitelisted host bridge, RC forwards",
            setup: Setup {
                client: Client::OtherRootPort,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::ThroughRootComplex,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "rc-not-whitelisted",
            title: "different root ports, host bridge not whitelisted, CPU not Zen",
            setup: Setup {
                host_bridge: NOT_WHITELISTED,
                client: Client::OtherRootPort,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Refuses,
            fabric: FabricExpect::NoPayload,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "rc-zen",
            title: "different root ports, host bridge not whitelisted, AMD Zen CPU",
            setup: Setup {
                host_bridge: NOT_WHITELISTED,
                client: Client::OtherRootPort,
                cpu: CpuChoice::Zen,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::ThroughRootComplex,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "acs-redirect",
            title: "P2P Request Redirect on the client's downstream port",
            setup: Setup {
                rp1_control: &["UF"],
                dp1_control: &["RR"],
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &["pci=disable_acs_redir={bdf:sw1-dp1}"],
            kernel: KernelExpect::Allows { redirect: true },
            fabric: FabricExpect::UpToRootComplexAndBack,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "acs-redirect-disabled",
            title: "the same with pci=disable_acs_redir= for that port",
            setup: Setup {
                rp1_control: &["UF"],
                dp1_control: &["RR"],
                ..BASE
            },
            cmdline: "pci=disable_acs_redir={bdf:sw1-dp1}",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &["{bdf:sw1-dp1}: Configured ACS to 0x0000"],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::BelowSwitch,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "acs-stuck-redirect",
            title: "RR stuck on while ACS Control reads clear",
            setup: Setup {
                rp1_control: &["UF"],
                dp1_stuck_on: &["RR"],
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::UpToRootComplexAndBack,
            unseen_by_kernel: true,
            replug: false,
        },
        Scenario {
            name: "acs-hidden-redirect",
            title: "ACS capability hidden while the port redirects",
            setup: Setup {
                rp1_control: &["UF"],
                dp1_control: &["RR"],
                dp1_hidden: true,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::UpToRootComplexAndBack,
            unseen_by_kernel: true,
            replug: false,
        },
        Scenario {
            name: "rc-lies-whitelisted",
            title: "RC refuses P2P (UR) while the host bridge claims a whitelisted ID",
            setup: Setup {
                rc_forwards: false,
                client: Client::OtherRootPort,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[],
            kernel: KernelExpect::FailsWithDataTransferError,
            fabric: FabricExpect::RefusedAtRootComplex,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "aer-completer-abort",
            title: "the provider's downstream port answers P2P with Completer Abort",
            setup: Setup {
                fault: Some(("sw1-dp0", "completer-abort")),
                ..BASE
            },
            cmdline: "",
            aer_has: &["{bdf:sw1-dp0} CmpltAbrt"],
            dmesg_lacks: &[],
            dmesg_has: &[
                "AER: Uncorrectable (Non-Fatal) error message received from {bdf:sw1-dp0}",
            ],
            kernel: KernelExpect::FailsWithDataTransferError,
            fabric: FabricExpect::Faulted {
                counter: "completer_abort",
            },
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "aer-poisoned",
            title: "the provider's downstream port poisons P2P data",
            setup: Setup {
                fault: Some(("sw1-dp0", "poisoned")),
                ..BASE
            },
            cmdline: "",
            aer_has: &["{bdf:sw1-dp0} TLP"],
            dmesg_lacks: &[],
            dmesg_has: &[
                "AER: Uncorrectable (Non-Fatal) error message received from {bdf:sw1-dp0}",
            ],
            kernel: KernelExpect::FailsWithDataTransferError,
            fabric: FabricExpect::Faulted {
                counter: "poisoned",
            },
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "iommu-p2p",
            title: "VT-d on: Linux sets ACS redirect and maps P2P through the IOMMU",
            setup: Setup {
                iommu: true,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[
                "DMAR: Host address width 48",
                "DMAR: dmar0: Using Queued invalidation",
                "{bdf:nvme1}: Adding to iommu group",
            ],
            kernel: KernelExpect::Allows { redirect: true },
            fabric: FabricExpect::UpToRootComplexAndBack,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "iommu-p2p-disable-acs-redir",
            title: "VT-d on, pci=disable_acs_redir= on both ports: switch-local, untranslated",
            setup: Setup {
                iommu: true,
                ..BASE
            },
            cmdline: "pci=disable_acs_redir={bdf:sw1-dp0};{bdf:sw1-dp1}",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[
                "DMAR: dmar0: Using Queued invalidation",
                "{bdf:sw1-dp1}: Configured ACS to 0x",
            ],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::BelowSwitch,
            unseen_by_kernel: false,
            replug: false,
        },
        iommu_drop(
            "iommu-drop-p2p",
            "VT-d drops the client's mappings into the CMB: DMAR faults, the I/O fails",
            DROP_CLIENT_P2P,
            &[
                "DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr",
                "[fault reason 0x05] PTE Write access is not set",
            ],
            &[],
        ),
        iommu_drop(
            "iommu-masked-fault",
            "the same with the fault event lost: the I/O fails, Linux never hears why",
            concat!(
                "what = \"drop-mappings\"\ndevice = \"nvme1\"\npeer_only = true\n\n",
                "[[iommu.fault]]\nwhat = \"mask-fault-event\""
            ),
            &[],
            &["DMAR: [DMA", "DMAR: DRHD: handling fault"],
        ),
        iommu_drop(
            "iommu-overflowed-faults",
            "the same with the fault records full: Linux sees the overflow, no record",
            concat!(
                "what = \"drop-mappings\"\ndevice = \"nvme1\"\npeer_only = true\n\n",
                "[[iommu.fault]]\nwhat = \"overflow-records\""
            ),
            &["DMAR: DRHD: handling fault status reg 1"],
            &["DMAR: [DMA"],
        ),
        Scenario {
            name: "iommu-poison-p2p",
            title: "VT-d aliases the client's CMB pages: the copy succeeds with wrong bytes",
            setup: Setup {
                iommu: true,
                iommu_fault: Some(
                    "what = \"poison-mappings\"\ndevice = \"nvme1\"\npeer_only = true",
                ),
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &["DMAR: [DMA", "DMAR: DRHD: handling fault"],
            dmesg_has: &[],
            kernel: KernelExpect::CorruptsSilently,
            fabric: FabricExpect::UpToRootComplexAndBack,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "surprise-link-down",
            title: "the client's link goes down and up (surprise removal, pciehp)",
            setup: Setup {
                hot_plug: true,
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &[
                "{bdf:sw1-dp1}: pciehp: Slot(4): Link Down",
                "{bdf:sw1-dp1}: pciehp: Slot(4): Card not present",
                "{bdf:sw1-dp1}: pciehp: Slot(4): Card present",
                "{bdf:sw1-dp1}: pciehp: Slot(4): Link Up",
            ],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::BelowSwitch,
            unseen_by_kernel: false,
            replug: true,
        },
        Scenario {
            name: "nvmeof-switch-local",
            title: "NVMe-oF: nvmet-rdma's RNIC below the switch moves the data to and from the CMB",
            setup: Setup {
                rdma: Some(RdmaTarget::SameSwitch),
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &["nvmet: using p2pmem on {bdf:nvme0} for nsid 1"],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::BelowSwitch,
            unseen_by_kernel: false,
            replug: false,
        },
        Scenario {
            name: "nvmeof-rc",
            title:
                "NVMe-oF: the target RNIC behind the other root port reaches the CMB through the RC",
            setup: Setup {
                rdma: Some(RdmaTarget::OtherRootPort),
                ..BASE
            },
            cmdline: "",
            aer_has: &[],
            dmesg_lacks: &[],
            dmesg_has: &["nvmet: using p2pmem on {bdf:nvme0} for nsid 1"],
            kernel: KernelExpect::Allows { redirect: false },
            fabric: FabricExpect::ThroughRootComplex,
            unseen_by_kernel: false,
            replug: false,
        },
    ]
}

/// VT-d drops nvme1's mappings into a peer's BAR (the CMB).
const DROP_CLIENT_P2P: &str = "what = \"drop-mappings\"\ndevice = \"nvme1\"\npeer_only = true";

/// A VT-d scenario whose `[[iommu.fault]]` tables (`faults`) make the
/// copy's P2P requests fault at the root complex: Linux fails the I/O with
/// a Data Transfer Error, and its dmesg has `has` and lacks `lacks`.
fn iommu_drop(
    name: &'static str,
    title: &'static str,
    faults: &'static str,
    has: &'static [&'static str],
    lacks: &'static [&'static str],
) -> Scenario {
    Scenario {
        name,
        title,
        setup: Setup {
            iommu: true,
            iommu_fault: Some(faults),
            ..BASE
        },
        cmdline: "",
        aer_has: &[],
        dmesg_lacks: lacks,
        dmesg_has: has,
        kernel: KernelExpect::FailsWithDataTransferError,
        fabric: FabricExpect::Faulted {
            counter: "iommu_fault",
        },
        unseen_by_kernel: false,
        replug: false,
    }
}

/// The named suites: `(name, what it holds, scenario names)`; an empty
/// list is every scenario.
pub const SUITES: &[(&str, &str, &[&str])] = &[
    ("default", "every scenario", &[]),
    (
        "smoke",
        "one allowed and one refused path",
        &["switch-local", "rc-not-whitelisted"],
    ),
];

fn acs_list(bits: &[&str]) -> String {
    let quoted: Vec<String> = bits.iter().map(|b| format!("\"{b}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Scenario {
    /// The topology file, with the clients' namespaces in `images`
    /// (`nvme1.img`, `nvme2.img`) and the guest CPU as `cpu` says.
    pub fn topology(&self, images: &std::path::Path, cpu: Option<&str>) -> String {
        let s = &self.setup;
        let full = "[\"SV\", \"RR\", \"CR\", \"UF\", \"EC\", \"DT\"]";
        let mut t = format!(
            "# p2pvm test: scenario {name}\n\
             [root_complex]\nvendor_id = {v:#06x}\ndevice_id = {d:#06x}\np2p = \"{p2p}\"\n\n",
            name = self.name,
            v = s.host_bridge.0,
            d = s.host_bridge.1,
            p2p = if s.rc_forwards {
                "forward"
            } else {
                "unsupported-request"
            },
        );
        if let Some(cpu) = cpu {
            t += &format!("[cpu]\n{cpu}\n\n");
        }
        t += &format!(
            "[[root_port]]\nname = \"rp1\"\nacs = {{ capability = {full}, control = {}, egress_vector_size = 2 }}\n\n\
             [[root_port]]\nname = \"rp2\"\nacs = {{ capability = {full}, control = [], egress_vector_size = 2 }}\n\n\
             [[switch]]\nname = \"sw1\"\nparent = \"rp1\"\n\
             [[switch.downstream]]\nname = \"sw1-dp0\"\nacs = {{ capability = {full}, control = [], egress_vector_size = 3 }}\n\
             [[switch.downstream]]\nname = \"sw1-dp1\"\nhot_plug = {}\nacs = {{ capability = {full}, control = {}, stuck_on = {}, hidden = {}, egress_vector_size = 3 }}\n\
             [[switch.downstream]]\nname = \"sw1-dp2\"\nacs = {{ capability = {full}, control = [], egress_vector_size = 3 }}\n\n",
            acs_list(s.rp1_control),
            s.hot_plug,
            acs_list(s.dp1_control),
            acs_list(s.dp1_stuck_on),
            s.dp1_hidden,
        );
        if s.iommu {
            t += "[iommu]\nkind = \"vt-d\"\n\n";
        }
        if let Some(f) = s.iommu_fault {
            t += &format!("[[iommu.fault]]\n{f}\n\n");
        }
        if let Some((node, tlp)) = s.fault {
            t += &format!("[[fault]]\nnode = \"{node}\"\ntlp = \"{tlp}\"\n\n");
        }
        t += "[[endpoint]]\nname = \"nvme0\"\nparent = \"sw1-dp0\"\nkind = \"nvme\"\nserial = \"P2PVM-NVME0\"\n\
              cmb = { size = \"64M\" }\n[[endpoint.namespace]]\nsize = \"64M\"\n\n";
        let clients: &[(&str, &str, &str)] = if s.rdma.is_some() {
            t += "[[endpoint]]\nname = \"rnic0\"\nparent = \"sw1-dp2\"\nkind = \"rnic\"\n\n\
                  [[endpoint]]\nname = \"rnic1\"\nparent = \"rp2\"\nkind = \"rnic\"\n\n";
            &[("nvme1", "sw1-dp1", "P2PVM-NVME1")]
        } else {
            &[
                ("nvme1", "sw1-dp1", "P2PVM-NVME1"),
                ("nvme2", "rp2", "P2PVM-NVME2"),
            ]
        };
        for &(name, parent, serial) in clients {
            t += &format!(
                "[[endpoint]]\nname = \"{name}\"\nparent = \"{parent}\"\nkind = \"nvme\"\nserial = \"{serial}\"\n\
                 [[endpoint.namespace]]\nsize = \"{}M\"\nfile = \"{}\"\n\n",
                NAMESPACE_SIZE >> 20,
                images.join(format!("{name}.img")).display()
            );
        }
        t
    }

    /// What the host does through the control socket when the guest
    /// prints `P2PVM-CTL <step>`, in this order.
    pub fn host_steps(&self) -> Vec<String> {
        if !self.replug {
            return Vec::new();
        }
        ["link-down", "link-up"]
            .iter()
            .map(|c| format!("{c} port={REPLUG_PORT}"))
            .collect()
    }

    /// The guest script: it prints `=== cpu ===` (vendor, family),
    /// `=== copy ===` (the copy's output and `rc=N`), for `replug`
    /// `=== hotplug ===` (`gone=`, `back=`, the second copy and `rc2=N`),
    /// and `=== dmesg ===`.
    pub fn script(&self) -> String {
        let client = self.setup.client.serial();
        let steps = self.host_steps();
        let hotplug = match &steps[..] {
            [down, up] => format!(
                r#"echo '=== hotplug ==='
b=$(bdf {client})
echo "P2PVM-CTL {down}"
i=0; while [ -e /sys/bus/pci/devices/$b ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /sys/bus/pci/devices/$b ]; then echo "gone=no: $b is still there"; else echo "gone=yes: $b removed after $i polls"; fi
echo "P2PVM-CTL {up}"
i=0; while [ "$(dev {client})" = none ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
c=$(dev {client}); while [ ! -b ${{c}}n1 ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done
if [ -b ${{c}}n1 ]; then echo "back=yes: $c at $(bdf {client})"; else echo "back=no"; fi
p2pvm-p2pmem copy-only $p ${{c}}n1 0 ${{c}}n1 {dst2:#x} {chunk:#x} {count} 2>&1
echo "rc2=$?"
"#,
                dst2 = DST2_OFFSET,
                chunk = CHUNK,
                count = PAYLOAD / CHUNK,
            ),
            _ => String::new(),
        };
        let copy = match self.setup.rdma {
            None => format!(
                "p2pvm-p2pmem copy-only $p ${{c}}n1 0 ${{c}}n1 {dst:#x} {chunk:#x} {count} 2>&1\necho \"rc=$?\"\n",
                dst = DST_OFFSET,
                chunk = CHUNK,
                count = PAYLOAD / CHUNK,
            ),
            Some(target) => fabric_copy(target),
        };
        format!(
            r#"dev() {{ for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${{c##*/}} && return; done; echo none; }}
bdf() {{ c=$(dev "$1"); basename "$(readlink -f /sys/class/nvme/${{c##*/}}/device)"; }}
echo '=== cpu ==='
awk -F': ' '/^vendor_id/ {{ v = $2 }} /^cpu family/ {{ f = $2 }} END {{ print v, f }}' /proc/cpuinfo
c=$(dev {client}); p=$(bdf P2PVM-NVME0)
echo '=== copy ==='
echo "provider=$p client=$c published=$(cat /sys/bus/pci/devices/$p/p2pmem/published 2>/dev/null)"
{copy}{hotplug}echo '=== aer ==='
for d in /sys/bus/pci/devices/*; do [ -r $d/aer_dev_nonfatal ] || continue; awk -v d=${{d##*/}} '$2 > 0 && $1 != "TOTAL_ERR_NONFATAL" {{ print d, $1 "=" $2 }}' $d/aer_dev_nonfatal; done
echo '=== dmesg ==='
dmesg
"#,
        )
    }
}

/// The guest's NVMe-oF copy: both RNICs' links up (each address reaches
/// the other over the wire), nvmet-rdma on `target` exporting `$c`'s
/// namespace with `$p`'s p2pmem and no inline data (writes are RDMA
/// READs by the target), nvme-rdma connected through the other RNIC, and
/// the same O_DIRECT copy as the local scenarios through its device.
fn fabric_copy(target: RdmaTarget) -> String {
    let (t, h) = target.addresses();
    format!(
        r#"ifname() {{ for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$1" ] && echo ${{n##*/}}; done; }}
e0=$(ifname 00:50:56:50:32:00); e1=$(ifname 00:50:56:50:32:01)
ip addr add 10.9.0.1/24 dev $e0; ip link set $e0 up
ip addr add 10.9.0.2/24 dev $e1; ip link set $e1 up
for d in all $e0 $e1; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done
sleep 1
mount -t configfs none /sys/kernel/config
n=/sys/kernel/config/nvmet
mkdir $n/subsystems/p2p $n/subsystems/p2p/namespaces/1 $n/ports/1
echo 1 > $n/subsystems/p2p/attr_allow_any_host
echo ${{c}}n1 > $n/subsystems/p2p/namespaces/1/device_path
echo $p > $n/subsystems/p2p/namespaces/1/p2pmem
echo 1 > $n/subsystems/p2p/namespaces/1/enable
echo rdma > $n/ports/1/addr_trtype; echo ipv4 > $n/ports/1/addr_adrfam
echo {t} > $n/ports/1/addr_traddr; echo 4420 > $n/ports/1/addr_trsvcid
echo 0 > $n/ports/1/param_inline_data_size
ln -s $n/subsystems/p2p $n/ports/1/subsystems/p2p
timeout 60 nvme connect -t rdma -a {t} -s 4420 -n p2p -w {h} --hostnqn=nqn.2026-12.io.p2pvm:host --hostid=5032d5e2-9a7b-4b6e-8f00-000000000001 2>&1
f=/dev/$(for x in /sys/class/nvme/nvme*; do [ "$(cat $x/transport)" = rdma ] && echo ${{x##*/}}; done)n1
echo "fabric device $f"
dd if=$f of=$f bs={chunk} skip=0 seek={seek} count={count} iflag=direct oflag=direct 2>&1; r=$?
[ $r = 0 ] && echo "copied={payload} bytes"
echo "rc=$r"
nvme disconnect -n p2p 2>&1
"#,
        chunk = CHUNK,
        seek = DST_OFFSET / CHUNK,
        count = PAYLOAD / CHUNK,
        payload = PAYLOAD,
    )
}

/// `*` and `?` globs, comma-separated: does `name` match any?
pub fn matches(filter: &str, name: &str) -> bool {
    filter
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .any(|g| glob(g.as_bytes(), name.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("acs-*", "acs-redirect"));
        assert!(matches("switch-local,rc-*", "rc-zen"));
        assert!(matches("rc-?en", "rc-zen"));
        assert!(!matches("acs-*", "rc-zen"));
        assert!(!matches("", "rc-zen"));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn names_are_unique_and_suites_name_real_scenarios() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for (_, _, list) in SUITES {
            for n in *list {
                assert!(names.contains(n), "{n}");
            }
        }
    }

    #[test]
    fn vtd_fault_scenarios_arm_their_faults() {
        let all = all();
        let topo = |n: &str| {
            all.iter()
                .find(|s| s.name == n)
                .unwrap()
                .topology(std::path::Path::new("/tmp/x"), None)
        };
        let drop = "[iommu]\nkind = \"vt-d\"\n\n[[iommu.fault]]\nwhat = \"drop-mappings\"\ndevice = \"nvme1\"\npeer_only = true\n";
        for (n, then) in [
            ("iommu-drop-p2p", None),
            ("iommu-masked-fault", Some("mask-fault-event")),
            ("iommu-overflowed-faults", Some("overflow-records")),
        ] {
            let t = topo(n);
            assert!(t.contains(drop), "{n}:\n{t}");
            if let Some(w) = then {
                assert!(
                    t.contains(&format!("\n[[iommu.fault]]\nwhat = \"{w}\"\n")),
                    "{n}:\n{t}"
                );
            }
            let parsed = crate::topology::Topology::parse(&t, n).unwrap();
            let faults = parsed.iommu.unwrap().fault.len();
            assert_eq!(faults, 1 + usize::from(then.is_some()), "{n}");
        }
    }

    #[test]
    fn every_scenario_topology_parses() {
        for s in all() {
            let cpu = (s.setup.cpu == CpuChoice::Zen)
                .then_some("vendor = \"AuthenticAMD\"\nfamily = 0x17");
            let text = s.topology(std::path::Path::new("/tmp/x"), cpu);
            let t = crate::topology::Topology::parse(&text, s.name)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", s.name));
            let want = if s.setup.rdma.is_some() { 4 } else { 3 };
            assert_eq!(t.endpoint.len(), want, "{}", s.name);
        }
    }
}
