//! Bad input gets one clear line on stderr and a non-zero exit, never a panic.
//! None of these boot a guest.

mod common;

use common::p2pvm;

fn assert_one_line_error(args: &[&str], needle: &str) {
    let r = p2pvm(args);
    assert_ne!(r.code, 0, "{args:?} exited 0");
    assert!(r.code > 0, "{args:?} died from a signal");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: stderr is not one line:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        lines[0].contains(needle),
        "{args:?}: '{}' does not mention '{needle}'",
        lines[0]
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

fn scratch(name: &str, body: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("p2pvm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn missing_kernel() {
    assert_one_line_error(
        &["run", "--kernel", "/nonexistent/bzImage", "--exec", "true"],
        "/nonexistent/bzImage",
    );
}

#[test]
fn file_that_is_not_a_kernel() {
    let p = scratch("not-a-kernel", b"#!/bin/sh\necho hi\n");
    assert_one_line_error(
        &["run", "--kernel", p.to_str().unwrap(), "--exec", "true"],
        "not a Linux kernel",
    );
}

#[test]
fn memory_too_small() {
    assert_one_line_error(&["run", "--memory", "16M", "--exec", "true"], "too small");
}

#[test]
fn memory_not_a_size() {
    assert_one_line_error(&["run", "--memory", "lots", "--exec", "true"], "not a size");
}

#[test]
fn unknown_option() {
    assert_one_line_error(&["run", "--frobnicate"], "--frobnicate");
}

#[test]
fn zero_cpus() {
    assert_one_line_error(
        &["run", "--cpus", "0", "--exec", "true"],
        "between 1 and 64",
    );
}

#[test]
fn malformed_topology() {
    let p = scratch(
        "bad.toml",
        b"[root_complex]\nvendor_id = 0x8086\ndevice_id = \"oops\"\n",
    );
    assert_one_line_error(
        &["run", "--topology", p.to_str().unwrap(), "--exec", "true"],
        "line 3",
    );
    let p = scratch(
        "unknown.toml",
        b"[root_complex]\nvendor_id = 1\ndevice_id = 2\n[gpu]\n",
    );
    assert_one_line_error(
        &["run", "--topology", p.to_str().unwrap(), "--exec", "true"],
        "gpu",
    );
    assert_one_line_error(
        &["run", "--topology", "/nonexistent.toml", "--exec", "true"],
        "/nonexistent.toml",
    );
}

#[test]
fn missing_initrd() {
    assert_one_line_error(
        &[
            "run",
            "--extra-initrd",
            "/nonexistent.cpio",
            "--exec",
            "true",
        ],
        "/nonexistent.cpio",
    );
}

#[test]
fn test_with_an_unknown_suite_a_filter_that_matches_nothing_or_no_jobs() {
    assert_one_line_error(
        &["test", "--suite", "nope"],
        "no suite 'nope' (there are: default, smoke)",
    );
    assert_one_line_error(
        &["test", "--filter", "zzz*"],
        "--filter 'zzz*' matches no scenario",
    );
    assert_one_line_error(&["test", "--jobs", "0"], "--jobs must be at least 1");
    assert_one_line_error(
        &["test", "--kernel", "/nonexistent/vmlinux"],
        "/nonexistent/vmlinux",
    );
    assert_one_line_error(
        &["test", "--kernel", "/x", "--kernel-src", "/y"],
        "cannot be used with",
    );
    assert_one_line_error(
        &["test", "--kernel-src", "/nonexistent-tree"],
        "not a kernel tree",
    );
}

#[test]
fn a_bad_cpu_or_acs_fault_in_a_topology_is_one_line() {
    let t = scratch(
        "cpu.toml",
        b"[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n[cpu]\nvendor = \"Intel\"\n",
    );
    assert_one_line_error(&["topology", t.to_str().unwrap()], "12 ASCII characters");
    let t = scratch(
        "acs.toml",
        b"[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n[[root_port]]\nname = \"rp1\"\nacs = { capability = [\"SV\"], stuck_on = [\"RR\"] }\n",
    );
    assert_one_line_error(&["topology", t.to_str().unwrap()], "stuck_on names bits");
}

#[test]
fn a_bad_iommu_or_hot_plug_in_a_topology_is_one_line() {
    const RC: &str =
        "[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n[[root_port]]\nname = \"rp1\"\n";
    for (name, body, needle) in [
        ("kind.toml", "[iommu]\nkind = \"amd-vi\"\n", "unknown variant"),
        (
            "dev.toml",
            "[iommu]\nkind = \"vt-d\"\n[[iommu.fault]]\nwhat = \"drop-mappings\"\ndevice = \"nope\"\n",
            "no node 'nope'",
        ),
        (
            "dom.toml",
            "[iommu]\nkind = \"vt-d\"\n[[iommu.fault]]\nwhat = \"wrong-domain\"\ndevice = \"rp1\"\n",
            "needs a \"domain\"",
        ),
        (
            "hp.toml",
            "[[switch]]\nname = \"sw1\"\nparent = \"rp1\"\nhot_plug = true\n[[switch.downstream]]\nname = \"dp\"\n",
            "unknown field",
        ),
    ] {
        let t = scratch(name, format!("{RC}{body}").as_bytes());
        assert_one_line_error(&["topology", t.to_str().unwrap()], needle);
    }
}

#[test]
fn a_bad_or_duplicate_rnic_mac_is_one_line() {
    const RC: &str = "[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n\
        [[root_port]]\nname = \"rp1\"\n[[root_port]]\nname = \"rp2\"\n";
    let rnic = |name: &str, parent: &str, mac: &str| {
        format!("[[endpoint]]\nname = \"{name}\"\nparent = \"{parent}\"\nkind = \"rnic\"\nmac = \"{mac}\"\n")
    };
    for (name, body, needle) in [
        (
            "mac.toml",
            rnic("r0", "rp1", "00:50:56"),
            "is not six hex bytes",
        ),
        (
            "dup.toml",
            rnic("r0", "rp1", "00:50:56:00:00:01") + &rnic("r1", "rp2", "00:50:56:00:00:01"),
            "is used by another rnic",
        ),
    ] {
        let t = scratch(name, format!("{RC}{body}").as_bytes());
        assert_one_line_error(&["topology", t.to_str().unwrap()], needle);
    }
}
