//! The broken-kernel tier: a copy of Debian's kernel source with a
//! one-line change in `drivers/pci/p2pdma.c` that ignores ACS redirect
//! (`pci_bridge_has_acs_redir()` never sees RR/CR/EC), built by
//! `p2pvm test --kernel-src` itself. The suite must fail in the ACS
//! redirect scenario and say why, and still pass where ACS plays no part.
//!
//! The first run builds the tree (about 7 minutes on 2 cores); later runs
//! rebuild it incrementally in its own cached output directory.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::p2pvm;

/// The line the change replaces, and what replaces it.
const ORIGINAL: &str = "\tif (ctrl & (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC))\n";
const BROKEN: &str = "\tif (0 && (ctrl & (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC)))\n";

fn cache() -> PathBuf {
    std::env::var_os("P2PVM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/p2pvm"))
}

/// Debian's unpacked source, as the guest-kernel build left it (the
/// nextest setup script builds that kernel before any boot test).
fn debian_source() -> PathBuf {
    let src = cache().join("src");
    std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}; run 'p2pvm images' first", src.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("linux-source-6.12-"))
                && p.join("Makefile").is_file()
        })
        .expect("Debian's linux-source-6.12 unpacked under the cache")
}

/// A hard-linked copy of the Debian tree with the one-line change (the
/// changed file is a new file, so the original tree is untouched).
fn broken_tree() -> PathBuf {
    let orig = debian_source();
    let tree = cache().join("src/broken-p2pdma-acs-redirect");
    let file = tree.join("drivers/pci/p2pdma.c");
    if !tree.join("Makefile").is_file() {
        let tmp = tree.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let st = Command::new("cp")
            .arg("-al")
            .arg(&orig)
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success(), "cp -al {}", orig.display());
        std::fs::rename(&tmp, &tree).unwrap();
    }
    let text = std::fs::read_to_string(orig.join("drivers/pci/p2pdma.c")).unwrap();
    assert_eq!(
        text.matches(ORIGINAL).count(),
        1,
        "the line to change is in p2pdma.c once"
    );
    let broken = text.replace(ORIGINAL, BROKEN);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(&broken) {
        // Replace, never write through the hard link.
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, broken).unwrap();
    }
    tree
}

#[test]
fn a_kernel_that_ignores_acs_redirect_fails_the_acs_redirect_scenario() {
    let tree = broken_tree();
    let junit = std::env::temp_dir().join(format!("p2pvm-broken-{}.xml", std::process::id()));
    let r = p2pvm(&[
        "test",
        "--kernel-src",
        tree.to_str().unwrap(),
        "--filter",
        "switch-local,acs-redirect",
        "--keep-going",
        "--junit",
        junit.to_str().unwrap(),
        &format!("--tap={}", junit.with_extension("tap").display()),
    ]);
    eprintln!("--- stdout ---\n{}\n--- stderr ---\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "the suite must fail");
    let row = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}"))
            .to_string()
    };
    assert!(
        row("switch-local").contains(" PASS "),
        "{}",
        row("switch-local")
    );
    let acs = row("acs-redirect");
    assert!(acs.contains(" FAIL "), "{acs}");
    // The kernel went switch-local behind a redirecting port: it printed
    // no redirect warning, and the fabric carried the payload up anyway.
    assert!(
        r.stdout.contains(
            "[kernel] \"ACS redirect is set between the client and provider\" is printed (seen: false)"
        ),
        "{}",
        r.stdout
    );
    assert!(
        acs.contains("up to the root complex and back / up to the root complex and back"),
        "{acs}"
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
    common::valid_junit(&junit);
    // TAP that prove reads, and fails.
    common::prove(&junit.with_extension("tap"), false);
    let _ = std::fs::remove_file(&junit);
    let _ = std::fs::remove_file(junit.with_extension("tap"));
}
