use super::*;

fn err(text: &str) -> String {
    Topology::parse(text, "t.toml").unwrap_err().to_string()
}

const RC: &str = "[root_complex]\nvendor_id = 0x8086\ndevice_id = 0x2020\n";

#[test]
fn default_parses_and_places_a_switch_below_root_port_1() {
    let t = Topology::load(None).unwrap();
    assert_eq!(t.root_complex.vendor_id, 0x8086);
    assert_eq!(t.root_complex.device_id, 0x2020);
    let l = t.layout().unwrap();
    let names: Vec<_> = l.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["rp1", "rp2", "sw1", "sw1-dp0", "sw1-dp1", "sw1-dp2", "nvme0", "nvme1", "rnic0"]
    );
    // The controllers sit below the first two downstream ports.
    assert_eq!(l[6].parent, Some(3));
    assert_eq!(l[7].parent, Some(4));
    assert_eq!(l[2].parent, Some(0));
    assert_eq!((l[5].parent, l[5].device), (Some(2), 2));
    assert_eq!(l[1].device, 2);
}

#[test]
fn syntax_and_type_errors_name_the_line() {
    let e = err("[root_complex]\nvendor_id = 0x8086\ndevice_id = \"x\"\n");
    assert!(e.starts_with("topology t.toml: line 3"), "{e}");
    let e = err(&format!("{RC}colour = 3\n"));
    assert!(e.contains("colour") && e.contains("line 4"), "{e}");
    assert!(!e.contains('\n'));
    let e = err("[root_complex\n");
    assert!(e.contains("line 1"), "{e}");
    let e = err("[root_complex]\nvendor_id = 70000\ndevice_id = 2\n");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_device_kind() {
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\n[[endpoint]]\nname = \"e\"\nparent = \"rp1\"\nkind = \"gpu\"\n"
    ));
    assert!(e.contains("line 9") && e.contains("gpu"), "{e}");
}

#[test]
fn port_with_two_children() {
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\n\
         [[endpoint]]\nname = \"a\"\nparent = \"rp1\"\nkind = \"test\"\n\
         [[endpoint]]\nname = \"b\"\nparent = \"rp1\"\nkind = \"test\"\n"
    ));
    assert!(
        e.contains("line 12") && e.contains("already has a child ('a')"),
        "{e}"
    );
}

#[test]
fn duplicate_and_unknown_names() {
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp\"\n[[root_port]]\nname = \"rp\"\n"
    ));
    assert!(
        e.contains("line 7") && e.contains("duplicate name 'rp'"),
        "{e}"
    );
    let e = err(&format!(
        "{RC}[[endpoint]]\nname = \"e\"\nparent = \"nowhere\"\nkind = \"test\"\n"
    ));
    assert!(
        e.contains("line 6") && e.contains("unknown parent 'nowhere'"),
        "{e}"
    );
}

#[test]
fn parent_must_be_a_port() {
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\n\
         [[switch]]\nname = \"sw\"\nparent = \"rp1\"\n[[switch.downstream]]\nname = \"dp\"\n\
         [[endpoint]]\nname = \"e\"\nparent = \"sw\"\nkind = \"test\"\n"
    ));
    assert!(e.contains("not a root port or downstream port"), "{e}");
}

#[test]
fn more_than_256_buses() {
    // 31 root ports, each with a switch of 8 downstream ports: 1 + 31 * 10 buses.
    let mut t = RC.to_string();
    for r in 0..31 {
        t += &format!("[[root_port]]\nname = \"rp{r}\"\n");
    }
    for r in 0..31 {
        t += &format!("[[switch]]\nname = \"sw{r}\"\nparent = \"rp{r}\"\n");
        for d in 0..8 {
            t += &format!("[[switch.downstream]]\nname = \"sw{r}-dp{d}\"\n");
        }
    }
    let e = err(&t);
    assert!(e.contains("311 buses; PCIe has 256"), "{e}");
}

#[test]
fn acs_and_link_checks() {
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\nacs = {{ capability = [\"SV\"], control = [\"RR\"] }}\n"
    ));
    assert!(
        e.contains("line 5") && e.contains("control enables bits"),
        "{e}"
    );
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\nacs = {{ capability = [\"SV\"], egress_vector_size = 4 }}\n"
    ));
    assert!(e.contains("without EC"), "{e}");
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\nlink = {{ width = 3 }}\n"
    ));
    assert!(e.contains("link width x3"), "{e}");
    let e = err(&format!(
        "{RC}[[root_port]]\nname = \"rp1\"\nacs = {{ capability = [\"XX\"] }}\n"
    ));
    assert!(e.contains("line 6") && e.contains("XX"), "{e}");
}

#[test]
fn bar_sizes_are_checked() {
    let ep = |size: &str| {
        format!(
            "{RC}[[root_port]]\nname = \"rp1\"\n[[endpoint]]\nname = \"e\"\nparent = \"rp1\"\nkind = \"test\"\nbar_size = \"{size}\"\n"
        )
    };
    assert!(err(&ep("3M")).contains("power of two"));
    assert!(err(&ep("8G")).contains("from 4K to 4G"));
    assert!(err(&ep("lots")).contains("line 7"));
    Topology::parse(&ep("2M"), "t").unwrap();
}

#[test]
fn the_cpu_table_sets_the_guest_cpu_identity() {
    let t = Topology::parse(
        &format!("{RC}[cpu]\nvendor = \"AuthenticAMD\"\nfamily = 0x17\nmodel = 0x31\nbrand = \"AMD EPYC (p2pvm)\"\n"),
        "t.toml",
    )
    .unwrap();
    let id = t.cpu.identity();
    assert_eq!(id.vendor, Some(*b"AuthenticAMD"));
    assert_eq!(
        (id.family, id.model, id.stepping),
        (Some(0x17), Some(0x31), None)
    );
    assert_eq!(id.brand(), "AMD EPYC (p2pvm)");
    // Without the table: the host's identity and p2pvm's brand.
    let d = Topology::parse(RC, "t.toml").unwrap().cpu.identity();
    assert_eq!(d, crate::cpuid::CpuIdentity::default());
    assert_eq!(d.brand(), crate::cpuid::BRAND);
}

#[test]
fn a_bad_cpu_table_is_refused_with_its_line() {
    let e = err(&format!("{RC}[cpu]\nvendor = \"AMD\"\n"));
    assert!(
        e.contains("line 5") && e.contains("12 ASCII characters"),
        "{e}"
    );
    let e = err(&format!("{RC}[cpu]\nfamily = 0x200\n"));
    assert!(e.contains("more than CPUID can say"), "{e}");
    let e = err(&format!("{RC}[cpu]\nstepping = 16\n"));
    assert!(e.contains("stepping 16"), "{e}");
    let e = err(&format!("{RC}[cpu]\nbrand = \"{}\"\n", "x".repeat(48)));
    assert!(e.contains("at most 47"), "{e}");
    let e = err(&format!("{RC}[cpu]\nfamly = 0x17\n"));
    assert!(e.contains("famly"), "{e}");
}

#[test]
fn rnic_fields() {
    let rp = "[[root_port]]\nname = \"rp1\"\n[[endpoint]]\nname = \"r\"\nparent = \"rp1\"\n";
    let ok = Topology::parse(
        &format!("{RC}{rp}kind = \"rnic\"\nmac = \"00:50:56:00:00:07\"\n"),
        "t.toml",
    );
    let t = ok.unwrap();
    assert_eq!(
        super::rnic_mac(&t.endpoint[0], 3).unwrap(),
        [0, 0x50, 0x56, 0, 0, 7]
    );
    let bare = Topology::parse(&format!("{RC}{rp}kind = \"rnic\"\n"), "t.toml").unwrap();
    assert_eq!(
        super::rnic_mac(&bare.endpoint[0], 3).unwrap(),
        [0, 0x50, 0x56, 0x50, 0x32, 3]
    );
    for (mac, want) in [
        ("00:50:56:00:00", "is not six hex bytes"),
        ("00:50:56:00:00:0g", "is not six hex bytes"),
        ("00:50:56:00:00:001", "is not six hex bytes"),
        ("01:00:5e:00:00:01", "is a multicast address"),
    ] {
        let e = err(&format!("{RC}{rp}kind = \"rnic\"\nmac = \"{mac}\"\n"));
        assert!(e.contains(want), "{mac}: {e}");
    }
    let e = err(&format!(
        "{RC}{rp}kind = \"nvme\"\nmac = \"00:50:56:00:00:01\"\n"
    ));
    assert!(e.contains("mac is for kind = \"rnic\""), "{e}");
    let e = err(&format!(
        "{RC}{rp}kind = \"rnic\"\ncmb = {{ size = \"2M\" }}\n"
    ));
    assert!(e.contains("are for kind = \"nvme\""), "{e}");
    let e = err(&format!("{RC}{rp}kind = \"rnic\"\nbar_size = \"1M\"\n"));
    assert!(e.contains("bar_size is for kind = \"test\""), "{e}");
}
