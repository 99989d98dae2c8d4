//! The picture: structure, widths and colours, checked in the SVG text
//! (the KVM tier renders one to PNG).

use super::*;

fn fabric() -> (crate::fabric::VmFabric, Vec<NodeId>) {
    let t = crate::topology::Topology::load(None).unwrap();
    let built = crate::run::dry_build(&t, 512 << 20).unwrap();
    let roots = built
        .nodes
        .iter()
        .map(|(_, id)| *id)
        .filter(|id| built.fabric.parent(*id).is_none())
        .collect();
    (built, roots)
}

fn doc(links: &[(&str, u64, u64, u64)], at_rc: u64) -> Value {
    let links: Vec<Value> = links
        .iter()
        .map(|(n, u, d, r)| serde_json::json!({"name": n, "up_bytes": u, "down_bytes": d, "refused_bytes": r}))
        .collect();
    serde_json::json!({"links": links, "refused": {"at_root_complex": at_rc}})
}

fn widths(svg: &str) -> Vec<f64> {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && !l.contains("dasharray"))
        .map(|l| {
            let at = l.find("stroke-width=\"").unwrap() + 14;
            l[at..].split('"').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn every_node_has_a_box_and_every_link_a_line_as_wide_as_its_bytes() {
    let (b, roots) = fabric();
    let c = doc(
        &[
            ("nvme1", 4 << 20, 4 << 20, 0),
            ("sw1-dp1", 4 << 20, 4 << 20, 0),
            ("sw1-dp0", 4 << 20, 4 << 20, 0),
            ("nvme0", 4 << 20, 4 << 20, 0),
            ("sw1", 1 << 20, 0, 0),
        ],
        0,
    );
    let svg = render(&b.fabric, &roots, Some(&c), "t");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    // Ten nodes below the root complex (the RNIC's two functions are two)
    // plus the root complex itself.
    assert_eq!(svg.matches("<rect x=").count(), 11);
    for n in ["nvme0", "nvme1", "sw1-dp2", "rp2", "rnic0", "rnic0.rdma"] {
        assert!(svg.contains(&format!(">{n}</text>")), "{n}");
    }
    // A line per link; the busiest are widest, the idle ones hairlines.
    let w = widths(&svg);
    assert_eq!(w.len(), 10);
    let max = w.iter().cloned().fold(0.0, f64::max);
    assert_eq!(max, MAX_WIDTH);
    assert_eq!(w.iter().filter(|&&x| x == MAX_WIDTH).count(), 4);
    assert!(w.contains(&1.0), "idle links are thin: {w:?}");
    assert_eq!(svg.matches(">\u{2191} 4.0 MiB<").count(), 4);
    assert_eq!(svg.matches(">\u{2193} 4.0 MiB<").count(), 4);
    assert!(!svg.contains(RED), "nothing refused, nothing red");
}

#[test]
fn refused_traffic_is_red_on_its_links_and_at_the_root_complex() {
    let (b, roots) = fabric();
    let c = doc(
        &[
            ("nvme1", 0, 0, 8192),
            ("sw1-dp1", 0, 0, 8192),
            ("sw1", 0, 0, 8192),
            ("rp1", 0, 0, 8192),
        ],
        2,
    );
    let svg = render(&b.fabric, &roots, Some(&c), "refused <&>");
    assert_eq!(svg.matches("stroke-dasharray").count(), 4);
    assert_eq!(svg.matches("refused 8.0 KiB").count(), 4);
    assert!(svg.contains("refused 2 requests here"));
    assert!(
        svg.contains("refused &lt;&amp;&gt;"),
        "the title is escaped"
    );
    // Without counters: the bare tree.
    let bare = render(&b.fabric, &roots, None, "bare");
    assert!(!bare.contains(RED));
    assert!(widths(&bare).iter().all(|&w| w == 1.0));
}
