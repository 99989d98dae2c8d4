//! `p2pvm topology --counters FILE --svg OUT`: the tree as an SVG
//! picture, each link drawn as wide as the bytes that crossed it, and
//! refused traffic in red, so that a glance tells whether P2P stayed
//! below the switch.

use std::collections::HashMap;
use std::fmt::Write as _;

use pcie_core::{Fabric, NodeId, NodeKind};
use serde_json::Value;

const BOX_W: f64 = 150.0;
const BOX_H: f64 = 46.0;
const COL: f64 = 190.0;
const ROW: f64 = 130.0;
const MARGIN: f64 = 30.0;
const TOP: f64 = 60.0;
/// Widest link, in pixels.
const MAX_WIDTH: f64 = 16.0;
/// The colour of refused traffic.
pub const RED: &str = "#d62728";
/// The colour of traffic that moved.
pub const BLUE: &str = "#1f5fa8";

/// What crossed one link, from a counters document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Traffic {
    up: u64,
    down: u64,
    refused: u64,
}

fn traffic(counters: Option<&Value>) -> HashMap<String, Traffic> {
    let mut m = HashMap::new();
    for l in counters
        .and_then(|c| c["links"].as_array())
        .into_iter()
        .flatten()
    {
        let n = |k: &str| l[k].as_u64().unwrap_or(0);
        if let Some(name) = l["name"].as_str() {
            m.insert(
                name.to_string(),
                Traffic {
                    up: n("up_bytes"),
                    down: n("down_bytes"),
                    refused: n("refused_bytes"),
                },
            );
        }
    }
    m
}

fn human(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Places `id` and its subtree: leaves left to right, parents centred.
fn place(
    f: &Fabric,
    id: NodeId,
    depth: usize,
    next: &mut f64,
    at: &mut Vec<(NodeId, f64, usize)>,
) -> f64 {
    let kids = f.children(id);
    let x = if kids.is_empty() {
        let x = *next;
        *next += 1.0;
        x
    } else {
        let xs: Vec<f64> = kids
            .iter()
            .map(|&k| place(f, k, depth + 1, next, at))
            .collect();
        (xs[0] + xs[xs.len() - 1]) / 2.0
    };
    at.push((id, x, depth));
    x
}

/// The picture of the tree below `roots` (the root bus's nodes) with the
/// traffic in `counters` (a `--counters` document, matched by node name).
pub fn render(f: &Fabric, roots: &[NodeId], counters: Option<&Value>, title: &str) -> String {
    let t = traffic(counters);
    let host = roots
        .iter()
        .copied()
        .find(|&r| f.kind(r) == NodeKind::HostBridge);
    let ports: Vec<NodeId> = roots.iter().copied().filter(|&r| Some(r) != host).collect();
    let mut at = Vec::new();
    let mut next = 0.0;
    let xs: Vec<f64> = ports
        .iter()
        .map(|&p| place(f, p, 1, &mut next, &mut at))
        .collect();
    let rc_x = if xs.is_empty() {
        0.0
    } else {
        (xs[0] + xs[xs.len() - 1]) / 2.0
    };
    let depth = at.iter().map(|a| a.2).max().unwrap_or(0);
    let width = MARGIN * 2.0 + next.max(1.0) * COL + 60.0;
    let height = TOP + MARGIN + depth as f64 * ROW + BOX_H;
    let max = t.values().map(|v| v.up + v.down).max().unwrap_or(0).max(1);
    let cx = |x: f64| MARGIN + x * COL + BOX_W / 2.0;
    let cy = |d: usize| TOP + d as f64 * ROW;
    let pos: HashMap<NodeId, (f64, usize)> = at.iter().map(|&(id, x, d)| (id, (x, d))).collect();

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"42\" fill=\"#555\">line width: bytes over the link (widest {}); red: refused requests</text>",
        human(max)
    );
    // Links first, boxes over them; idle links under busy ones.
    let mut links = at.clone();
    links.sort_by_key(|&(id, _, _)| t.get(&f.name(id)).map_or(0, |v| v.up + v.down));
    for &(id, x, d) in &links {
        let (px, pd) = match f.parent(id).and_then(|p| pos.get(&p)) {
            Some(&(px, pd)) => (px, pd),
            None => (rc_x, 0),
        };
        let (x1, y1) = (cx(x), cy(d));
        let (x2, y2) = (cx(px), cy(pd) + BOX_H);
        let tr = t.get(&f.name(id)).copied().unwrap_or_default();
        let bytes = tr.up + tr.down;
        let w = if bytes == 0 {
            1.0
        } else {
            1.5 + (MAX_WIDTH - 1.5) * bytes as f64 / max as f64
        };
        let colour = if bytes == 0 { "#bbbbbb" } else { BLUE };
        // An elbow: down from the parent to the bus, across, down to the child.
        let ym = (y1 + y2) / 2.0;
        let _ = writeln!(
            s,
            "<polyline points=\"{x2:.1},{y2:.1} {x2:.1},{ym:.1} {x1:.1},{ym:.1} {x1:.1},{y1:.1}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{w:.1}\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>"
        );
        let lx = x1 + w / 2.0 + 6.0;
        if bytes > 0 {
            let _ = writeln!(
                s,
                "<text x=\"{lx:.1}\" y=\"{:.1}\" fill=\"#222\">\u{2191} {}</text>\n<text x=\"{lx:.1}\" y=\"{:.1}\" fill=\"#222\">\u{2193} {}</text>",
                ym + 16.0,
                human(tr.up),
                ym + 30.0,
                human(tr.down)
            );
        }
        if tr.refused > 0 {
            let _ = writeln!(
                s,
                "<polyline points=\"{:.1},{ym:.1} {:.1},{y1:.1}\" fill=\"none\" stroke=\"{RED}\" stroke-width=\"4\" stroke-dasharray=\"6 4\"/>",
                x1 - w / 2.0 - 6.0,
                x1 - w / 2.0 - 6.0
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{RED}\" text-anchor=\"end\">refused {}</text>",
                x1 - w / 2.0 - 12.0,
                ym + 23.0,
                human(tr.refused)
            );
        }
    }
    // The root complex.
    let at_rc = counters.map_or(0, |c| c["refused"]["at_root_complex"].as_u64().unwrap_or(0));
    let label = host
        .and_then(|h| f.bdf(h).map(|b| format!("{} {b}", f.name(h))))
        .unwrap_or_else(|| "root complex".into());
    node_box(&mut s, cx(rc_x), cy(0), "root complex", &label, at_rc > 0);
    if at_rc > 0 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{RED}\" font-weight=\"bold\">refused {at_rc} requests here</text>",
            cx(rc_x) + BOX_W / 2.0 + 8.0,
            cy(0) + 28.0
        );
    }
    for &(id, x, d) in &at {
        let kind = match f.kind(id) {
            NodeKind::HostBridge => "host bridge",
            NodeKind::RootPort => "root port",
            NodeKind::SwitchUpstream => "switch",
            NodeKind::SwitchDownstream => "downstream port",
            NodeKind::Endpoint => "endpoint",
        };
        let bdf = f
            .bdf(id)
            .map(|b| b.to_string())
            .unwrap_or_else(|| "--:--.-".into());
        node_box(
            &mut s,
            cx(x),
            cy(d),
            &f.name(id),
            &format!("{kind} {bdf}"),
            false,
        );
    }
    s.push_str("</svg>\n");
    s
}

fn node_box(s: &mut String, x: f64, y: f64, name: &str, sub: &str, red: bool) {
    let stroke = if red { RED } else { "#333" };
    let _ = writeln!(
        s,
        "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"#f4f6fa\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
        x - BOX_W / 2.0,
        if red { 3 } else { 1 }
    );
    let _ = writeln!(
        s,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
        y + 19.0,
        esc(name)
    );
    let _ = writeln!(
        s,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\" font-size=\"11\">{}</text>",
        y + 36.0,
        esc(sub)
    );
}

#[cfg(test)]
mod tests;
