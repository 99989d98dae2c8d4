//! NVMe over Fabrics with p2pmem, end to end: nvmet-rdma exports nvme1's
//! namespace with nvme0's CMB as its p2pmem (`param_inline_data_size`
//! 0, so every write is an RDMA READ by the target), nvme-rdma connects
//! to it in the same guest through the other RNIC (bound to its own
//! address), and fio writes and verifies through `/dev/nvme2n1`. The
//! fabric counters tell where the payload went: nvmet silently falls back
//! to RAM when the pool runs dry, so they are the check that matters.

mod common;

use common::{guest, link_bytes, section};

fn topo() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/rnic.toml").to_string()
}

/// The guest side: `$1` is the target's address, `$2` the host's.
const SCRIPT: &str = r#"ifname() { for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$1" ] && echo ${n##*/}; done; }
dev() { for c in /sys/class/nvme/nvme*; do read -r s < $c/serial; [ "$s" = "$1" ] && echo /dev/${c##*/} && return; done; echo none; }
t=$1; h=$2
a=$(ifname 00:50:56:50:32:00); b=$(ifname 00:50:56:50:32:01)
ip link set $a up; ip addr add 10.9.0.1/24 dev $a
ip link set $b up; ip addr add 10.9.0.2/24 dev $b
for d in all $a $b; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done
sleep 1
n1=$(dev P2PVM-NVME1)
b0=$(basename $(readlink -f /sys/class/nvme/$(basename $(dev P2PVM-NVME0))/device))
mount -t configfs none /sys/kernel/config
cd /sys/kernel/config/nvmet
mkdir subsystems/p2p
echo 1 > subsystems/p2p/attr_allow_any_host
mkdir subsystems/p2p/namespaces/1
echo ${n1}n1 > subsystems/p2p/namespaces/1/device_path
echo $b0 > subsystems/p2p/namespaces/1/p2pmem
echo 1 > subsystems/p2p/namespaces/1/enable
mkdir ports/1
echo rdma > ports/1/addr_trtype; echo ipv4 > ports/1/addr_adrfam
echo $t > ports/1/addr_traddr; echo 4420 > ports/1/addr_trsvcid
echo 0 > ports/1/param_inline_data_size
ln -s /sys/kernel/config/nvmet/subsystems/p2p ports/1/subsystems/p2p
cd /
echo '=== connect ==='
timeout 60 nvme connect -t rdma -a $t -s 4420 -n p2p -w $h --hostnqn=nqn.2026-12.io.p2pvm:host --hostid=5032d5e2-9a7b-4b6e-8f00-000000000001 2>&1; echo "connect exit $?"
sleep 1
for c in /sys/class/nvme/nvme*; do [ "$(cat $c/transport)" = rdma ] && echo "rdma ctrl ${c##*/} $(cat $c/address)"; done
echo '=== fio ==='
f=/dev/$(for c in /sys/class/nvme/nvme*; do [ "$(cat $c/transport)" = rdma ] && echo ${c##*/}; done)n1
[ -b $f ] && timeout 120 fio --name=v --filename=$f --size=16m --rw=randwrite --bs=64k --direct=1 --ioengine=libaio --iodepth=4 --verify=crc32c --do_verify=1 --output-format=terse >/dev/null 2>/tmp/fio.err; echo "fio exit $?"; head -3 /tmp/fio.err
echo '=== disconnect ==='
nvme disconnect -n p2p; echo "disconnect exit $?"
sleep 2
"#;

struct Out {
    stdout: String,
    dmesg: String,
    counters: String,
}

fn run(target: &str, host: &str, name: &str) -> Out {
    let counters =
        std::env::temp_dir().join(format!("p2pvm-nvmeof-{name}-{}.json", std::process::id()));
    let script = format!("set -- {target} {host}\n{SCRIPT}");
    let t = topo();
    let r = guest(
        &["--topology", &t, "--counters", counters.to_str().unwrap()],
        &script,
    );
    let json = std::fs::read_to_string(&counters).unwrap_or_default();
    let _ = std::fs::remove_file(&counters);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = Out {
        stdout: r.stdout,
        dmesg: r.dmesg.unwrap_or_default(),
        counters: json,
    };
    let c = section(&out.stdout, "connect");
    assert!(c.contains("connect exit 0"), "{c}");
    assert!(
        c.contains(&format!("traddr={target},trsvcid=4420,host_traddr={host}")),
        "{c}"
    );
    assert!(
        section(&out.stdout, "fio").contains("fio exit 0"),
        "fio verify over nvme-rdma:\n{}",
        out.stdout
    );
    assert!(section(&out.stdout, "disconnect").contains("disconnect exit 0"));
    assert!(
        !out.dmesg.contains("blocked for more than"),
        "{}",
        out.dmesg
    );
    assert!(
        out.dmesg
            .contains("nvmet: using p2pmem on 0000:03:00.0 for nsid 1"),
        "{}",
        out.dmesg
    );
    out
}

/// 16 MiB written and 16 MiB read back.
const PAYLOAD: u64 = 32 << 20;

#[test]
fn nvmet_rdma_with_p2pmem_below_the_switch_keeps_the_payload_off_the_root_port() {
    // Target on rnic0 (sw1-dp2, beside nvme0's CMB), host on rnic1 (rp2).
    let o = run("10.9.0.1", "10.9.0.2", "local");
    let (dp2_up, dp2_down) = link_bytes(&o.counters, "sw1-dp2");
    let (dp0_up, dp0_down) = link_bytes(&o.counters, "sw1-dp0");
    let (sw_up, sw_down) = link_bytes(&o.counters, "sw1");
    // rnic0 moves the payload to and from the CMB: up its link (RDMA READ
    // data into the CMB) and down it (CMB data out by RDMA WRITE).
    assert!(
        dp2_up + dp2_down >= PAYLOAD,
        "rnic0's link: {dp2_up} + {dp2_down}"
    );
    // The CMB's link carries it twice: the RNIC's and nvme1's accesses.
    assert!(
        dp0_up + dp0_down >= 2 * PAYLOAD,
        "nvme0's link: {dp0_up} + {dp0_down}"
    );
    // Nothing of it crosses the switch's upstream link (rings, capsules
    // and interrupts do: well under a tenth).
    assert!(
        sw_up + sw_down < PAYLOAD / 10,
        "sw1 upstream: {sw_up} + {sw_down}"
    );
}

#[test]
fn nvmet_rdma_with_the_target_rnic_behind_the_other_root_port_goes_through_the_root_complex() {
    // Target on rnic1 (rp2); nvme0's CMB is below rp1's switch. The host
    // bridge (8086:2020) is on Linux's whitelist, so P2P goes through it.
    let o = run("10.9.0.2", "10.9.0.1", "rc");
    let (rp2_up, rp2_down) = link_bytes(&o.counters, "rp2");
    let (rp1_up, rp1_down) = link_bytes(&o.counters, "rp1");
    assert!(
        rp2_up + rp2_down >= PAYLOAD,
        "rnic1's root port: {rp2_up} + {rp2_down}"
    );
    assert!(
        rp1_up + rp1_down >= PAYLOAD,
        "up to the root complex and down to the CMB: {rp1_up} + {rp1_down}"
    );
}
