//! Checking a parsed topology and placing every node in the tree.

use std::collections::HashMap;
use std::ops::Range;

use super::{Acs, Link, Topology};

/// What a placed node is, with its index in the topology's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacedKind {
    /// `root_port[i]`.
    RootPort(usize),
    /// The upstream port of `switch[i]`.
    SwitchUpstream(usize),
    /// `switch[i].downstream[j]`.
    SwitchDownstream(usize, usize),
    /// `endpoint[i]`.
    Endpoint(usize),
}

/// One node in tree order (parents before children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: PlacedKind,
    /// Index of its parent in the layout (`None`: on the root bus).
    pub parent: Option<usize>,
    /// Device number on its bus.
    pub device: u8,
}

/// The whole tree, in an order where parents come first.
pub type Layout = Vec<Placed>;

type Fail = (Option<Range<usize>>, String);

/// Largest RAM-backed BAR a test endpoint may have.
const MAX_BAR_SIZE: u64 = 4 << 30;

fn fail<T>(span: Option<Range<usize>>, msg: impl Into<String>) -> Result<T, Fail> {
    Err((span, msg.into()))
}

fn check_link(link: &Link, name: &str, span: &Range<usize>) -> Result<(), Fail> {
    if pcie_core::LinkWidth::from_lanes(link.width).is_none() {
        return fail(
            Some(span.clone()),
            format!(
                "{name}: link width x{} (use 1, 2, 4, 8, 12, 16 or 32)",
                link.width
            ),
        );
    }
    Ok(())
}

fn check_acs(acs: &Option<Acs>, name: &str, span: &Range<usize>) -> Result<(), Fail> {
    let Some(acs) = acs else { return Ok(()) };
    let cap = super::AcsBit::bits(&acs.capability);
    let ctl = super::AcsBit::bits(&acs.control);
    let stuck = super::AcsBit::bits(&acs.stuck);
    let err = |m: String| fail(Some(span.clone()), format!("{name}: acs: {m}"));
    if !cap.contains(ctl) {
        return err("control enables bits that capability does not implement".into());
    }
    if !cap.contains(stuck) {
        return err("stuck names bits that capability does not implement".into());
    }
    if !cap.contains(super::AcsBit::bits(&acs.stuck_on)) {
        return err("stuck_on names bits that capability does not implement".into());
    }
    let ec = cap.contains(pcie_core::AcsBits::EC);
    match acs.egress_vector_size {
        Some(n) if !ec => err(format!("egress_vector_size {n} without EC in capability")),
        Some(n) if n == 0 || n > 256 => err(format!("egress_vector_size {n} (use 1..=256)")),
        _ => Ok(()),
    }
}

fn check_cpu(cpu: &super::Cpu) -> Result<(), Fail> {
    if let Some(v) = &cpu.vendor {
        if v.get_ref().len() != 12 || !v.get_ref().is_ascii() {
            return fail(
                Some(v.span()),
                format!(
                    "cpu: vendor '{}' must be 12 ASCII characters (AuthenticAMD, GenuineIntel)",
                    v.get_ref()
                ),
            );
        }
    }
    if let Some(f) = &cpu.family {
        if *f.get_ref() > crate::cpuid::MAX_FAMILY {
            return fail(
                Some(f.span()),
                format!(
                    "cpu: family {:#x} is more than CPUID can say ({:#x})",
                    f.get_ref(),
                    crate::cpuid::MAX_FAMILY
                ),
            );
        }
    }
    if let Some(s) = &cpu.stepping {
        if *s.get_ref() > 15 {
            return fail(
                Some(s.span()),
                format!("cpu: stepping {} (use 0..=15)", s.get_ref()),
            );
        }
    }
    if let Some(b) = &cpu.brand {
        let t = b.get_ref();
        if t.len() > 47 || !t.bytes().all(|c| (0x20..0x7f).contains(&c)) {
            return fail(
                Some(b.span()),
                "cpu: brand must be printable ASCII, at most 47 characters",
            );
        }
    }
    Ok(())
}

/// Placement state while walking the file.
#[derive(Default)]
struct Builder {
    layout: Layout,
    by_name: HashMap<String, usize>,
    child_of: HashMap<usize, String>,
}

impl Builder {
    fn add(
        &mut self,
        name: &toml::Spanned<String>,
        kind: PlacedKind,
        parent: Option<usize>,
        device: u8,
    ) -> Result<usize, Fail> {
        let n = name.get_ref();
        if n.is_empty() {
            return fail(Some(name.span()), "empty name");
        }
        if self.by_name.contains_key(n) {
            return fail(Some(name.span()), format!("duplicate name '{n}'"));
        }
        let idx = self.layout.len();
        self.layout.push(Placed {
            name: n.clone(),
            kind,
            parent,
            device,
        });
        self.by_name.insert(n.clone(), idx);
        Ok(idx)
    }

    fn parent(&self, name: &toml::Spanned<String>) -> Option<usize> {
        self.by_name.get(name.get_ref()).copied()
    }
}

impl Topology {
    /// Checks names, parents and sizes, and places every node.
    pub fn layout(&self) -> Result<Layout, Fail> {
        let mut b = Builder::default();
        check_cpu(&self.cpu)?;
        for f in &self.fault {
            let n = f.node.get_ref();
            let known = self.root_port.iter().any(|p| p.name.get_ref() == n)
                || self.switch.iter().any(|s| {
                    s.name.get_ref() == n || s.downstream.iter().any(|d| d.name.get_ref() == n)
                })
                || self.endpoint.iter().any(|e| e.name.get_ref() == n);
            if !known {
                return fail(Some(f.node.span()), format!("fault: no node '{n}'"));
            }
        }
        if self.root_port.len() > 31 {
            return fail(
                None,
                format!("{} root ports: bus 0 has room for 31", self.root_port.len()),
            );
        }
        for (i, rp) in self.root_port.iter().enumerate() {
            check_link(&rp.link, rp.name.get_ref(), &rp.name.span())?;
            check_acs(&rp.acs, rp.name.get_ref(), &rp.name.span())?;
            b.add(&rp.name, PlacedKind::RootPort(i), None, (i + 1) as u8)?;
        }

        // Switches and endpoints hang below ports named anywhere in the
        // file; place them as their parents appear.
        let mut pending_sw: Vec<usize> = (0..self.switch.len()).collect();
        let mut pending_ep: Vec<usize> = (0..self.endpoint.len()).collect();
        loop {
            let before = pending_sw.len() + pending_ep.len();
            let mut still = Vec::new();
            for &s in &pending_sw {
                let sw = &self.switch[s];
                let Some(parent) = b.parent(&sw.parent) else {
                    still.push(s);
                    continue;
                };
                claim_port(&mut b, parent, &sw.parent, sw.name.get_ref())?;
                check_link(&sw.link, sw.name.get_ref(), &sw.name.span())?;
                if sw.downstream.is_empty() || sw.downstream.len() > 32 {
                    return fail(
                        Some(sw.name.span()),
                        format!(
                            "{}: {} downstream ports (use 1..=32)",
                            sw.name.get_ref(),
                            sw.downstream.len()
                        ),
                    );
                }
                let up = b.add(&sw.name, PlacedKind::SwitchUpstream(s), Some(parent), 0)?;
                for (j, dp) in sw.downstream.iter().enumerate() {
                    check_link(&dp.link, dp.name.get_ref(), &dp.name.span())?;
                    check_acs(&dp.acs, dp.name.get_ref(), &dp.name.span())?;
                    b.add(
                        &dp.name,
                        PlacedKind::SwitchDownstream(s, j),
                        Some(up),
                        j as u8,
                    )?;
                }
            }
            pending_sw = still;
            let mut still = Vec::new();
            for &e in &pending_ep {
                let ep = &self.endpoint[e];
                let Some(parent) = b.parent(&ep.parent) else {
                    still.push(e);
                    continue;
                };
                claim_port(&mut b, parent, &ep.parent, ep.name.get_ref())?;
                check_link(&ep.link, ep.name.get_ref(), &ep.name.span())?;
                super::nvme::check_fields(ep)
                    .map_err(|m| (Some(ep.name.span()), format!("{}: {m}", ep.name.get_ref())))?;
                if let Some(size) = &ep.bar_size {
                    let fail_size = |m: String| {
                        (
                            Some(ep.name.span()),
                            format!("{}: bar_size: {m}", ep.name.get_ref()),
                        )
                    };
                    let n = crate::cli::parse_size(size).map_err(fail_size)?;
                    // Host memory backs the BAR: keep it a sane power of two.
                    if !n.is_power_of_two() || !(4096..=MAX_BAR_SIZE).contains(&n) {
                        return Err(fail_size(format!(
                            "'{size}' must be a power of two from 4K to 4G"
                        )));
                    }
                }
                b.add(&ep.name, PlacedKind::Endpoint(e), Some(parent), 0)?;
            }
            pending_ep = still;
            if pending_sw.len() + pending_ep.len() == before {
                break;
            }
        }
        if let Some(&s) = pending_sw.first() {
            let p = &self.switch[s].parent;
            return fail(
                Some(p.span()),
                format!(
                    "{}: unknown parent '{}'",
                    self.switch[s].name.get_ref(),
                    p.get_ref()
                ),
            );
        }
        if let Some(&e) = pending_ep.first() {
            let p = &self.endpoint[e].parent;
            return fail(
                Some(p.span()),
                format!(
                    "{}: unknown parent '{}'",
                    self.endpoint[e].name.get_ref(),
                    p.get_ref()
                ),
            );
        }

        // Bus 0, plus one secondary bus per bridge.
        let buses = 1 + b
            .layout
            .iter()
            .filter(|p| !matches!(p.kind, PlacedKind::Endpoint(_)))
            .count();
        if buses > 256 {
            return fail(
                None,
                format!("the fabric needs {buses} buses; PCIe has 256"),
            );
        }
        Ok(b.layout)
    }
}

/// A root or downstream port has one link and so one child.
fn claim_port(
    b: &mut Builder,
    parent: usize,
    parent_name: &toml::Spanned<String>,
    child: &str,
) -> Result<(), Fail> {
    match b.layout[parent].kind {
        PlacedKind::RootPort(_) | PlacedKind::SwitchDownstream(..) => {}
        _ => {
            return fail(
                Some(parent_name.span()),
                format!(
                    "{child}: parent '{}' is not a root port or downstream port",
                    parent_name.get_ref()
                ),
            )
        }
    }
    if let Some(other) = b.child_of.insert(parent, child.to_string()) {
        return fail(
            Some(parent_name.span()),
            format!(
                "{child}: port '{}' already has a child ('{other}'): a link has one device",
                parent_name.get_ref()
            ),
        );
    }
    Ok(())
}
