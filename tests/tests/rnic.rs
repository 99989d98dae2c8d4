//! RNIC tier: Linux's own vmxnet3 driver binds p2pvm's RNICs (function
//! 0), brings the links up and moves real traffic between two of them on
//! the VM's wire: ping both ways, and a 4 MiB HTTP download (busybox
//! httpd and wget; the device's checksum offload and TSO at work) whose
//! bytes are compared. The second NIC sits in its own
//! network namespace, so the traffic leaves one NIC and enters the other
//! instead of looping through `lo`.

mod common;

use common::{guest, section};

fn topo() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/rnic.toml").to_string()
}

/// Shell: `ifname MAC` prints the netdev with that address.
const IFNAME: &str = r#"ifname() { for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$1" ] && echo ${n##*/}; done; }
"#;

#[test]
fn vmxnet3_links_come_up_and_carry_ping_and_tcp_between_two_rnics() {
    let script = format!(
        r#"{IFNAME}
a=$(ifname 00:50:56:50:32:00); b=$(ifname 00:50:56:50:32:01)
echo '=== netdevs ==='
for n in /sys/class/net/*; do [ -e $n/device ] || continue; d=$(readlink -f $n/device); echo "${{n##*/}} $(cat $n/address) ${{d##*/}} $(cat $n/device/vendor):$(cat $n/device/device) $(basename $(readlink -f $n/device/driver))"; done
ip link set $a up; ip addr add 10.9.0.1/24 dev $a
unshare -n sleep 300 & ns=$!
sleep 0.5
ip link set $b netns $ns
nsenter -t $ns -n ip link set lo up
nsenter -t $ns -n ip link set $b up
nsenter -t $ns -n ip addr add 10.9.0.2/24 dev $b
sleep 1
echo '=== link ==='; echo "carrier $(cat /sys/class/net/$a/carrier) speed $(cat /sys/class/net/$a/speed)"; ip -o link show $a
echo '=== ping ==='; ping -c 5 -W 2 10.9.0.2; echo "ping exit $?"
echo '=== ping back ==='; nsenter -t $ns -n ping -c 3 -W 2 -s 1400 10.9.0.1; echo "ping back exit $?"
echo '=== tcp ==='
mkdir -p /tmp/www; dd if=/dev/urandom of=/tmp/www/src bs=64k count=64 2>/dev/null
nsenter -t $ns -n httpd -p 8080 -h /tmp/www
sleep 0.5
wget -q -O /tmp/got http://10.9.0.2:8080/src; echo "wget exit $?"
md5sum /tmp/www/src /tmp/got | awk '{{print $1}}' | uniq | wc -l | sed 's/^/distinct sums: /'
ls -l /tmp/got | awk '{{print "got bytes: " $5}}'
grep '^Tcp:' /proc/net/snmp | tail -1 | awk '{{print "in csum errors: " $NF}}'
kill $ns
"#
    );
    let t = topo();
    let r = guest(&["--topology", &t], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nd = section(&r.stdout, "netdevs");
    for (mac, bdf) in [
        ("00:50:56:50:32:00", "0000:05:00.0"),
        ("00:50:56:50:32:01", "0000:06:00.0"),
    ] {
        let line = nd
            .lines()
            .find(|l| l.contains(mac))
            .unwrap_or_else(|| panic!("{mac} in\n{nd}"));
        assert!(line.contains(bdf), "{line}");
        assert!(line.contains("0x15ad:0x07b0 vmxnet3"), "{line}");
    }
    let link = section(&r.stdout, "link");
    assert!(link.contains("carrier 1 speed 10000"), "{link}");
    assert!(link.contains("UP") && link.contains("LOWER_UP"), "{link}");
    let ping = section(&r.stdout, "ping");
    assert!(
        ping.contains("5 packets transmitted, 5 packets received"),
        "{ping}"
    );
    assert!(ping.contains("ping exit 0"), "{ping}");
    let back = section(&r.stdout, "ping back");
    assert!(
        back.contains("3 packets transmitted, 3 packets received"),
        "{back}"
    );
    let tcp = section(&r.stdout, "tcp");
    assert!(tcp.contains("wget exit 0"), "{tcp}");
    assert!(
        tcp.contains("in csum errors: 0"),
        "the device's checksums are right: {tcp}"
    );
    assert!(
        tcp.contains("got bytes: 4194304"),
        "all 4 MiB arrived: {tcp}"
    );
    assert!(tcp.contains("distinct sums: 1"), "the same bytes: {tcp}");
    let d = r.dmesg.unwrap_or_default();
    for bad in ["NETDEV WATCHDOG", "tx hang", "Failed to activate"] {
        assert!(!d.contains(bad), "{bad} in dmesg:\n{d}");
    }
}

#[test]
fn pvrdma_binds_function_1_and_its_port_is_active_with_a_roce_v2_gid() {
    let script = format!(
        r#"{IFNAME}
a=$(ifname 00:50:56:50:32:00)
ip addr add 10.9.0.1/24 dev $a; ip link set $a up; sleep 1
echo '=== lspci ==='; lspci -n -s 05:00
echo '=== devices ==='; ibv_devices
echo '=== devinfo ==='; ibv_devinfo -d vmw_pvrdma0 -v
echo '=== gids ==='
for g in /sys/class/infiniband/vmw_pvrdma0/ports/1/gids/*; do i=${{g##*/}}; v=$(cat $g); [ "$v" = 0000:0000:0000:0000:0000:0000:0000:0000 ] || echo "$i $v $(cat /sys/class/infiniband/vmw_pvrdma0/ports/1/gid_attrs/types/$i)"; done
echo '=== netdev ==='; cat /sys/class/infiniband/vmw_pvrdma0/ports/1/gid_attrs/ndevs/1
"#
    );
    let t = topo();
    let r = guest(&["--topology", &t], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l = section(&r.stdout, "lspci");
    assert!(l.contains("05:00.0 0200: 15ad:07b0"), "{l}");
    assert!(l.contains("05:00.1 0280: 15ad:0820"), "{l}");
    let devs = section(&r.stdout, "devices");
    // node GUIDs: EUI-64 of each RNIC's MAC.
    assert!(
        devs.contains("vmw_pvrdma0") && devs.contains("025056fffe503200"),
        "{devs}"
    );
    assert!(
        devs.contains("vmw_pvrdma1") && devs.contains("025056fffe503201"),
        "{devs}"
    );
    let info = section(&r.stdout, "devinfo");
    for want in [
        "vendor_id:\t\t\t0x15ad",
        "max_qp:\t\t\t\t256",
        "MEM_MGT_EXTENSIONS",
        "state:\t\t\tPORT_ACTIVE (4)",
        "link_layer:\t\tEthernet",
        "::ffff:10.9.0.1, RoCE v2",
    ] {
        assert!(info.contains(want), "{want:?} in\n{info}");
    }
    let gids = section(&r.stdout, "gids");
    assert!(
        gids.lines()
            .any(|l| l.contains("ffff:0a09:0001") && l.ends_with("RoCE v2")),
        "{gids}"
    );
    let nd = section(&r.stdout, "netdev");
    assert!(nd.trim() == "eth0" || nd.trim().starts_with("eth"), "{nd}");
    let d = r.dmesg.unwrap_or_default();
    for l in d.lines().filter(|l| l.contains("pvrdma")) {
        let l = l.to_lowercase();
        assert!(
            !l.contains("fail") && !l.contains("error") && !l.contains("timeout"),
            "{l}"
        );
    }
}

/// Shell: both links up, rnic1's netdev (10.9.0.2) in its own network
/// namespace `$ns`, rnic0's (10.9.0.1) in the initial one. The RDMA
/// devices are not namespaced; each one's RoCE GID follows its netdev.
const TWO_HOSTS: &str = r#"a=$(ifname 00:50:56:50:32:00); b=$(ifname 00:50:56:50:32:01)
ip link set $a up; ip addr add 10.9.0.1/24 dev $a
unshare -n sleep 600 & ns=$!
sleep 0.5
ip link set $b netns $ns
nsenter -t $ns -n ip link set lo up
nsenter -t $ns -n ip link set $b up
nsenter -t $ns -n ip addr add 10.9.0.2/24 dev $b
sleep 1
# pair NAME SERVER-CMD CLIENT-CMD: the server in rnic1's namespace.
pair() { echo "=== $1 ==="; nsenter -t $ns -n timeout 60 sh -c "$2" > /tmp/srv.log 2>&1 & s=$!; sleep 1; timeout 60 sh -c "$3" > /tmp/cli.log 2>&1; echo "client exit $?"; tail -6 /tmp/cli.log; wait $s; echo "server exit $?"; tail -4 /tmp/srv.log; }
"#;

#[test]
fn rdma_core_tools_pass_between_two_rnics_and_in_loopback() {
    let script = format!(
        r#"{IFNAME}{TWO_HOSTS}
pair rc_pingpong 'ibv_rc_pingpong -d vmw_pvrdma1 -g 1 -n 50 -c' 'ibv_rc_pingpong -d vmw_pvrdma0 -g 1 -n 50 -c 10.9.0.2'
pair rping 'rping -s -a 10.9.0.2 -C 5 -V' 'rping -c -a 10.9.0.2 -C 5 -V -v'
pair write_bw 'ib_write_bw -d vmw_pvrdma1 -x 1 -n 100' 'ib_write_bw -d vmw_pvrdma0 -x 1 -n 100 10.9.0.2'
pair read_bw 'ib_read_bw -d vmw_pvrdma1 -x 1 -n 100' 'ib_read_bw -d vmw_pvrdma0 -x 1 -n 100 10.9.0.2'
pair send_bw 'ib_send_bw -d vmw_pvrdma1 -x 1 -n 100' 'ib_send_bw -d vmw_pvrdma0 -x 1 -n 100 10.9.0.2'
pair write_lat 'ib_write_lat -d vmw_pvrdma1 -x 1 -n 100' 'ib_write_lat -d vmw_pvrdma0 -x 1 -n 100 10.9.0.2'
echo "=== loopback ==="
timeout 60 rping -s -a 10.9.0.1 -C 3 -V > /tmp/lo.log 2>&1 & s=$!
sleep 1
timeout 60 rping -c -a 10.9.0.1 -C 3 -V -v; echo "loop client exit $?"
wait $s; echo "loop server exit $?"
kill $ns
"#
    );
    let t = topo();
    let r = guest(&["--topology", &t], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in [
        "rc_pingpong",
        "rping",
        "write_bw",
        "read_bw",
        "send_bw",
        "write_lat",
    ] {
        let s = section(&r.stdout, name);
        assert!(
            s.contains("client exit 0") && s.contains("server exit 0"),
            "{name}:\n{s}"
        );
    }
    let pp = section(&r.stdout, "rc_pingpong");
    assert!(
        pp.contains("409600 bytes in"),
        "50 x 4096 bytes each way: {pp}"
    );
    let rp = section(&r.stdout, "rping");
    assert!(rp.contains("ping data: rdma-ping-4"), "{rp}");
    for bw in ["write_bw", "read_bw", "send_bw"] {
        let s = section(&r.stdout, bw);
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with("65536      100")),
            "{bw}: {s}"
        );
    }
    let lo = section(&r.stdout, "loopback");
    assert!(
        lo.contains("loop client exit 0") && lo.contains("loop server exit 0"),
        "{lo}"
    );
    assert!(lo.contains("ping data: rdma-ping-2"), "{lo}");
    let d = r.dmesg.unwrap_or_default();
    assert!(!d.contains("blocked for more than"), "{d}");
}
