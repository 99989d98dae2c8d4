//! Control-socket tier: a running VM changed from outside through
//! `p2pvm run --control` (inside the KVM host box on PVM machines, through
//! the relay). Checked: every command's effect as Linux and the fabric
//! see it, and that bad clients get errors while the VM keeps running.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{link_bytes, p2pvm, p2pvm_bin, section};

fn connect(path: &std::path::Path) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(path).expect("connect");
    let w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("{\"p2pvm\":"), "{greeting}");
    (r, w)
}

fn ask(c: &mut (BufReader<UnixStream>, UnixStream), line: &[u8]) -> serde_json::Value {
    c.1.write_all(line).unwrap();
    let mut s = String::new();
    c.0.read_line(&mut s).unwrap();
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

#[test]
fn a_running_vm_takes_faults_errors_and_traces_from_the_control_socket() {
    let dir = std::env::temp_dir().join(format!("p2pvm-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sock, counters, trace) = (
        dir.join("c.sock"),
        dir.join("counters.json"),
        dir.join("trace.jsonl"),
    );
    // The guest waits for the host's correctable error (sent last), then
    // copies peer to peer below the switch, with a data check.
    let script = r#"dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/} && return; done; echo none; }
n1=$(dev P2PVM-NVME1)
dd if=/dev/urandom of=${n1}n1 bs=128k count=16 oflag=direct 2>/dev/null
echo ready > /dev/kmsg
i=0; c=0
while [ $i -lt 900 ]; do c=$(cat /sys/bus/pci/devices/0000:00:01.0/aer_rootport_total_err_cor); [ "$c" -gt 0 ] && break; sleep 0.1; i=$((i+1)); done
echo '=== aer ==='; echo "$c"
echo '=== copy ==='
p2pvm-p2pmem copy 03:00.0 ${n1}n1 0 ${n1}n1 0x1000000 0x20000 16
echo '=== dmesg ==='; dmesg"#;
    let child = Command::new(p2pvm_bin())
        .args(["run", "--timeout", "150", "--control"])
        .arg(&sock)
        .arg("--counters")
        .arg(&counters)
        .args(["--exec", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut a = connect(&sock);
    let mut b = connect(&sock);
    // Wait until Linux has bound nvme1 and written to it (AER is enabled
    // on the root ports before the NVMe driver probes).
    loop {
        let r = ask(&mut a, b"{\"execute\":\"query-counters\"}\n");
        let links = r["return"]["links"].as_array().unwrap().clone();
        let n1 = links.iter().find(|l| l["name"] == "nvme1").unwrap();
        // dd wrote 2 MiB: the controller read it from RAM, down its link.
        if n1["down_bytes"].as_u64().unwrap() > 1 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the guest never wrote to nvme1");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Bad clients: errors, and the socket and the VM go on.
    assert_eq!(ask(&mut a, b"{nope\n")["error"]["class"], "InvalidJson");
    assert_eq!(
        ask(&mut b, b"{\"execute\":\"fly\"}\n")["error"]["class"],
        "CommandNotFound"
    );
    let mut huge = vec![b'['; 100_000];
    huge.push(b'\n');
    assert_eq!(ask(&mut a, &huge)["error"]["class"], "LineTooLong");
    {
        let mut c = connect(&sock);
        c.1.write_all(b"{\"execute\":\"reset-cou").unwrap();
    }
    // The ACS fault, set at run time: RR stuck on at nvme1's port.
    let r = ask(
        &mut b,
        br#"{"execute":"set-acs-fault","arguments":{"port":"sw1-dp1","stuck_on":["RR"]},"id":1}
"#,
    );
    assert_eq!(r, serde_json::json!({"return": {}, "id": 1}));
    assert_eq!(
        ask(&mut a, b"{\"execute\":\"reset-counters\"}\n")["return"],
        serde_json::json!({})
    );
    let t = format!(
        "{{\"execute\":\"trace-start\",\"arguments\":{{\"file\":\"{}\"}}}}\n",
        trace.display()
    );
    assert_eq!(ask(&mut a, t.as_bytes())["return"], serde_json::json!({}));
    // Last: the error the guest waits for, through `p2pvm ctl`.
    let r = p2pvm(&[
        "ctl",
        sock.to_str().unwrap(),
        "inject-error",
        "node=nvme0",
        "severity=correctable",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stats = p2pvm(&["stats", sock.to_str().unwrap()]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert!(stats.stdout.starts_with("node "), "{}", stats.stdout);
    assert!(stats.stdout.contains("\nsw1-dp1 "), "{}", stats.stdout);
    drop((a, b));

    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    let dmesg = section(&stdout, "dmesg");
    if let Err(report) = p2pvm::dmesg::check(dmesg) {
        panic!("{report}");
    }
    // Linux's AER driver took the error from the root port.
    assert_eq!(section(&stdout, "aer").trim(), "1");
    assert!(
        dmesg.contains("AER: Correctable error message received from 0000:03:00.0"),
        "{dmesg}"
    );
    // The copy's bytes are right, and Linux, which sees no redirect, went
    // switch-local while the port sent the payload up the switch.
    let copy = section(&stdout, "copy");
    assert!(copy.contains("copied=2097152"), "{copy}");
    assert!(!dmesg.contains("ACS redirect is set"), "{dmesg}");
    let json = std::fs::read_to_string(&counters).unwrap();
    let (up, down) = link_bytes(&json, "sw1");
    assert!(up >= 2 << 20 && down >= 2 << 20, "sw1 {up}/{down}\n{json}");
    // The trace, flushed at exit, covers what moved since the reset.
    let text = std::fs::read_to_string(&trace).unwrap();
    let sw1_bytes: u64 = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["outcome"].get("error").is_none())
        // A redirected request crosses sw1's link twice: up and back down.
        .map(|r| {
            let hops = r["path"].as_array().unwrap();
            let at_sw1 = hops.iter().filter(|h| h["node"] == "sw1").count() as u64;
            r["len"].as_u64().unwrap() * at_sw1
        })
        .sum();
    assert_eq!(
        sw1_bytes,
        up + down,
        "the trace and the counters agree on sw1"
    );
    assert!(!sock.exists(), "the socket is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}
