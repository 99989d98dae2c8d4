//! `p2pvm topology`: the tree the guest will see, with its BDFs.

use pcie_core::{Fabric, NodeId, NodeKind};

/// One line per function, indented by depth, in enumeration order:
/// `BDF [vendor:device] name (kind) [bus sec-sub]`.
pub fn render(fabric: &Fabric, root: &[NodeId]) -> String {
    let mut out = String::new();
    for id in root {
        line(fabric, *id, 0, &mut out);
    }
    out
}

fn line(fabric: &Fabric, id: NodeId, depth: usize, out: &mut String) {
    let bdf = fabric.bdf(id);
    let mut ids = [0u8; 4];
    let mut text = match bdf {
        Some(b) => {
            fabric.config_read(b, 0, &mut ids);
            format!(
                "{:indent$}0000:{b} [{:02x}{:02x}:{:02x}{:02x}] {}",
                "",
                ids[1],
                ids[0],
                ids[3],
                ids[2],
                fabric.name(id),
                indent = depth * 2
            )
        }
        None => format!(
            "{:indent$}(unassigned) {}",
            "",
            fabric.name(id),
            indent = depth * 2
        ),
    };
    let kind = fabric.kind(id);
    text += match kind {
        NodeKind::HostBridge => " (host bridge)",
        NodeKind::RootPort => " (root port)",
        NodeKind::SwitchUpstream => " (switch upstream port)",
        NodeKind::SwitchDownstream => " (switch downstream port)",
        NodeKind::Endpoint => " (endpoint)",
    };
    if let Some(br) = fabric.bridge(id) {
        text += &format!(" [bus {:02x}-{:02x}]", br.secondary, br.subordinate);
    }
    if let Some(acs) = fabric.acs(id) {
        let names = ["SV", "TB", "RR", "CR", "UF", "EC", "DT"];
        let on: Vec<&str> = (0..7)
            .filter(|i| acs.bits() & (1 << i) != 0)
            .map(|i| names[i])
            .collect();
        text += &format!(
            " ACS control: {}",
            if on.is_empty() {
                "-".into()
            } else {
                on.join(",")
            }
        );
    }
    out.push_str(&text);
    out.push('\n');
    if kind.is_bridge() {
        for c in fabric.children(id) {
            line(fabric, c, depth + 1, out);
        }
    }
}
