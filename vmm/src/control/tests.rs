//! The control protocol without a VM: the default topology's fabric,
//! built and enumerated, driven through the real socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use super::*;

fn control() -> Arc<Control> {
    let t = crate::topology::Topology::load(None).unwrap();
    let built = crate::run::dry_build(&t, 512 << 20).unwrap();
    Control::new(&built, None)
}

fn reply(c: &Control, line: &str) -> Value {
    serde_json::from_str(&c.handle(line)).unwrap()
}

#[test]
fn commands_reply_return_or_a_typed_error() {
    let c = control();
    let r = reply(&c, r#"{"execute": "query-topology", "id": 7}"#);
    assert_eq!(r["id"], 7);
    let names: Vec<&str> = r["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "host-bridge",
            "rp1",
            "rp2",
            "sw1",
            "sw1-dp0",
            "sw1-dp1",
            "sw1-dp2",
            "nvme0",
            "nvme1",
            "rnic0",
            "rnic0.rdma"
        ]
    );
    let r = reply(&c, r#"{"execute": "query-counters"}"#);
    assert_eq!(r["return"]["links"].as_array().unwrap().len(), 11);
    assert_eq!(r["return"]["refused"]["at_root_complex"], 0);
    for (line, class) in [
        ("{not json", "InvalidJson"),
        (r#"{"execute": "format-disk"}"#, "CommandNotFound"),
        (r#"{"command": "query-counters"}"#, "GenericError"),
        (
            r#"{"execute": "set-acs-fault", "arguments": []}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "set-acs-fault", "arguments": {"port": "nope"}}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "set-acs-fault", "arguments": {"port": "sw1", "stuck_on": ["RR"]}}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "set-acs-fault", "arguments": {"port": "sw1-dp1", "stuck_on": ["XX"]}}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "set-rc-policy", "arguments": {"p2p": "maybe"}}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "inject-error", "arguments": {"node": "nvme0", "severity": "mild"}}"#,
            "GenericError",
        ),
        (r#"{"execute": "trace-start"}"#, "GenericError"),
        (
            r#"{"execute": "inject-tlp-fault", "arguments": {"node": "sw1-dp0", "tlp": "gremlins"}}"#,
            "GenericError",
        ),
        (
            r#"{"execute": "inject-tlp-fault", "arguments": {"node": "sw1-dp0", "tlp": "poisoned", "count": -1}}"#,
            "GenericError",
        ),
    ] {
        let r = reply(&c, line);
        assert_eq!(r["error"]["class"], class, "{line}: {r}");
        assert!(r["error"]["desc"].as_str().unwrap().len() > 5, "{r}");
    }
}

#[test]
fn acs_faults_and_the_rc_policy_change_routing_at_run_time() {
    let c = control();
    let f = &c.fabric;
    let dp1 = c.nodes.iter().find(|(n, _)| n == "sw1-dp1").unwrap().1;
    assert!(
        f.acs(dp1).is_some_and(|a| a.is_empty()),
        "healthy: no control bits"
    );
    let r = reply(
        &c,
        r#"{"execute": "set-acs-fault", "arguments": {"port": "sw1-dp1", "stuck_on": ["RR"], "hidden": true}}"#,
    );
    assert_eq!(r["return"], json!({}), "{r}");
    // Hidden from config space: the guest finds no ACS capability.
    let found = f.with_function(dp1, |func| {
        let r32 = |off: u16| pcie_core::config_read_u32(func, off);
        pcie_core::ext_capabilities(r32).any(|c| c.id == pcie_core::ext_cap_id::ACS)
    });
    assert!(!found);
    let r = reply(
        &c,
        r#"{"execute": "clear-acs-fault", "arguments": {"port": "sw1-dp1"}}"#,
    );
    assert_eq!(r["return"], json!({}), "{r}");
    let found = f.with_function(dp1, |func| {
        let r32 = |off: u16| pcie_core::config_read_u32(func, off);
        pcie_core::ext_capabilities(r32).any(|c| c.id == pcie_core::ext_cap_id::ACS)
    });
    assert!(found);
    reply(
        &c,
        r#"{"execute": "set-rc-policy", "arguments": {"p2p": "unsupported-request"}}"#,
    );
    assert_eq!(f.rc_policy(), RcP2pPolicy::UnsupportedRequest);
    reply(
        &c,
        r#"{"execute": "set-rc-policy", "arguments": {"p2p": "forward"}}"#,
    );
    assert_eq!(f.rc_policy(), RcP2pPolicy::Forward);
    let r = reply(
        &c,
        r#"{"execute": "inject-tlp-fault", "arguments": {"node": "sw1-dp0", "tlp": "completer-abort", "count": 3}}"#,
    );
    assert_eq!(r["return"], json!({}), "{r}");
    let dp0 = c.nodes.iter().find(|(n, _)| n == "sw1-dp0").unwrap().1;
    assert_eq!(
        f.faults(),
        [pcie_core::InjectedFault {
            node: dp0,
            fault: pcie_core::TlpFault::CompleterAbort,
            p2p_only: true,
            remaining: Some(3)
        }]
    );
    reply(&c, r#"{"execute": "clear-tlp-faults"}"#);
    assert!(f.faults().is_empty());
}

fn connect(path: &std::path::Path) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(path).unwrap();
    let w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("{\"p2pvm\":"), "{greeting}");
    (r, w)
}

fn ask(r: &mut BufReader<UnixStream>, w: &mut UnixStream, line: &[u8]) -> Value {
    w.write_all(line).unwrap();
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn the_socket_survives_huge_lines_disconnects_and_serves_clients_at_once() {
    let dir = std::env::temp_dir().join(format!("p2pvm-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.sock");
    serve_unix(&path, control()).unwrap();
    let (mut r1, mut w1) = connect(&path);
    let (mut r2, mut w2) = connect(&path);
    // A line past the limit: an error, and the next line still works.
    let mut huge = vec![b'x'; MAX_LINE + 10];
    huge.push(b'\n');
    assert_eq!(
        ask(&mut r1, &mut w1, &huge)["error"]["class"],
        "LineTooLong"
    );
    assert!(ask(&mut r1, &mut w1, b"{\"execute\":\"query-commands\"}\n")["return"].is_array());
    // Not UTF-8, empty lines skipped.
    assert_eq!(
        ask(&mut r2, &mut w2, b"\n\xff\xfe\n")["error"]["class"],
        "InvalidJson"
    );
    // A client that disconnects mid-command gets nothing and harms nothing.
    {
        let (_r3, mut w3) = connect(&path);
        w3.write_all(b"{\"execute\": \"reset-coun").unwrap();
    }
    // Both others still work, interleaved.
    for _ in 0..3 {
        assert!(
            ask(&mut r1, &mut w1, b"{\"execute\":\"query-counters\"}\n")["return"]["links"]
                .is_array()
        );
        assert_eq!(
            ask(
                &mut r2,
                &mut w2,
                b"{\"execute\":\"reset-counters\",\"id\":\"a\"}\n"
            )["id"],
            "a"
        );
    }
    // A stale socket file is replaced; a regular file is not.
    drop((r1, w1, r2, w2));
    let plain = dir.join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let e = serve_unix(&plain, control()).unwrap_err().to_string();
    assert!(e.contains("is not a socket"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_line_caps_and_ends() {
    let mut r = BufReader::with_capacity(16, &b"short\nand a partial"[..]);
    assert_eq!(read_line(&mut r).unwrap(), Line::Text(b"short".to_vec()));
    assert_eq!(read_line(&mut r).unwrap(), Line::End);
    let mut long = vec![b'y'; MAX_LINE + 1];
    long.extend_from_slice(b"\nok\n");
    let mut r = BufReader::with_capacity(100, &long[..]);
    assert_eq!(read_line(&mut r).unwrap(), Line::TooLong);
    assert_eq!(read_line(&mut r).unwrap(), Line::Text(b"ok".to_vec()));
}

#[test]
fn ctl_arguments_take_json_or_strings() {
    let m = parse_args(&[
        "port=sw1-dp1".into(),
        "stuck_on=[\"RR\"]".into(),
        "hidden=true".into(),
    ])
    .unwrap();
    assert_eq!(m["port"], "sw1-dp1");
    assert_eq!(m["stuck_on"], json!(["RR"]));
    assert_eq!(m["hidden"], true);
    assert!(parse_args(&["nokey".into()]).is_err());
}

proptest::proptest! {
    /// Any byte stream, in any chunking: lines come out whole and within
    /// the limit, too-long ones as TooLong, and every request gets exactly
    /// one reply line.
    #[test]
    fn any_stream_gets_one_reply_per_line(
        lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..20),
        cap in 1usize..64,
    ) {
        let c = control();
        let mut input = Vec::new();
        let mut want = 0;
        for l in &lines {
            let l: Vec<u8> = l.iter().copied().filter(|&b| b != b'\n').collect();
            if !String::from_utf8_lossy(&l).trim().is_empty() {
                want += 1;
            }
            input.extend_from_slice(&l);
            input.push(b'\n');
        }
        let mut out = Vec::new();
        serve_stream(BufReader::with_capacity(cap, &input[..]), &mut out, &c).unwrap();
        let text = String::from_utf8(out).unwrap();
        let replies: Vec<&str> = text.lines().skip(1).collect();
        proptest::prop_assert_eq!(replies.len(), want);
        for r in replies {
            let v: Value = serde_json::from_str(r).unwrap();
            proptest::prop_assert!(v.get("return").is_some() || v.get("error").is_some());
        }
    }
}

#[test]
fn link_down_and_up_take_what_is_below_away_and_bring_it_back() {
    let t = crate::topology::Topology::load(None).unwrap();
    let built = crate::run::dry_build(&t, 512 << 20).unwrap();
    let moved = Arc::new(Mutex::new(Vec::new()));
    let sink = moved.clone();
    let c = Control::new(
        &built,
        Some(Arc::new(move |m: &[BarMove]| {
            sink.lock().unwrap().extend_from_slice(m)
        })),
    );
    let id = |n: &str| built.nodes.iter().find(|(x, _)| x == n).unwrap().1;
    let nvme0 = built.fabric.bdf(id("nvme0")).unwrap();
    let vendor = |f: &Fabric| {
        let mut b = [0; 2];
        f.config_read(nvme0, 0, &mut b);
        u16::from_le_bytes(b)
    };
    assert_eq!(vendor(&built.fabric), 0x1b36);
    let link = |c: &Control, node: &str| {
        let r = reply(c, r#"{"execute": "query-topology"}"#);
        r["return"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap()["link"]
            .clone()
    };
    assert_eq!(link(&c, "sw1-dp0"), "up");
    assert_eq!(link(&c, "sw1"), Value::Null);
    let r = reply(
        &c,
        r#"{"execute": "link-down", "arguments": {"port": "sw1-dp0"}}"#,
    );
    assert_eq!(r["return"]["link"], "down", "{r}");
    assert_eq!(vendor(&built.fabric), 0xffff);
    assert_eq!(link(&c, "sw1-dp0"), "down");
    // nvme0's CMB (RAM-backed, mapped by the VMM) stopped decoding: the
    // VMM was told to unmap it.
    let unmapped = moved.lock().unwrap().clone();
    assert!(
        unmapped
            .iter()
            .any(|m| m.node == id("nvme0") && m.to.is_none() && m.from.is_some()),
        "{unmapped:?}"
    );
    let counters = reply(&c, r#"{"execute": "query-counters"}"#);
    let dp0 = counters["return"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "sw1-dp0")
        .unwrap()
        .clone();
    assert_eq!(
        (dp0["link"].clone(), dp0["link_downs"].clone()),
        ("down".into(), 1.into())
    );
    let r = reply(
        &c,
        r#"{"execute": "link-up", "arguments": {"port": "sw1-dp0"}}"#,
    );
    assert_eq!(r["return"]["link"], "up");
    assert_eq!(vendor(&built.fabric), 0x1b36);
    for (args, needle) in [
        (r#"{"port": "sw1"}"#, "sw1: "),
        (r#"{"port": "nvme0"}"#, "nvme0: "),
        (r#"{"port": "nope"}"#, "no node"),
        (r#"{}"#, "missing string argument"),
    ] {
        let r = reply(
            &c,
            &format!(r#"{{"execute": "link-down", "arguments": {args}}}"#),
        );
        assert_eq!(r["error"]["class"], "GenericError", "{r}");
        assert!(r["error"]["desc"].as_str().unwrap().contains(needle), "{r}");
    }
}

#[test]
fn iommu_faults_arm_on_a_vtd_fabric_and_are_refused_without_one() {
    let r = reply(
        &control(),
        r#"{"execute": "iommu-fault", "arguments": {"what": "mask-fault-event"}}"#,
    );
    assert_eq!(r["error"]["desc"], "the topology has no [iommu]");
    let mut t = crate::topology::Topology::load(None).unwrap();
    t.iommu = Some(crate::topology::IommuConfig {
        kind: crate::topology::IommuKind::VtD,
        fault: Vec::new(),
    });
    let built = crate::run::dry_build(&t, 512 << 20).unwrap();
    let c = Control::new(&built, None);
    let r = reply(
        &c,
        r#"{"execute": "iommu-fault", "arguments": {"what": "drop-mappings", "device": "nvme1", "peer_only": true}}"#,
    );
    assert_eq!(r["return"]["armed"], 1, "{r}");
    let unit = built.iommu.as_ref().unwrap();
    let rid = built
        .fabric
        .bdf(built.nodes.iter().find(|(n, _)| n == "nvme1").unwrap().1)
        .unwrap()
        .requester_id();
    assert_eq!(
        unit.injections(),
        [vtd::Injection::DropMappings {
            rid: Some(rid),
            peer_only: true
        }]
    );
    for (args, needle) in [
        (r#"{"what": "context-not-present"}"#, "needs a \"device\""),
        (
            r#"{"what": "wrong-domain", "device": "nvme0"}"#,
            "needs a \"domain\"",
        ),
        (r#"{"what": "eat-the-cpu"}"#, "unknown variant"),
        (
            r#"{"what": "pass-through", "device": "nope"}"#,
            "no node 'nope'",
        ),
        (
            r#"{"what": "pass-through", "device": "nvme0", "colour": 1}"#,
            "unknown field",
        ),
    ] {
        let r = reply(
            &c,
            &format!(r#"{{"execute": "iommu-fault", "arguments": {args}}}"#),
        );
        let desc = r["error"]["desc"].as_str().unwrap_or_default();
        assert!(desc.contains(needle), "{args}: {r}");
    }
    reply(&c, r#"{"execute": "iommu-clear-faults"}"#);
    assert!(unit.injections().is_empty());
}
