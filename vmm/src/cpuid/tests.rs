use super::*;

fn e(function: u32, index: u32, regs: [u32; 4]) -> kvm_cpuid_entry2 {
    entry(
        function,
        index,
        regs,
        function == 0xd || function == 7 || function == 4,
    )
}

fn get(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> [u32; 4] {
    let x =
        find(entries, function, index).unwrap_or_else(|| panic!("no leaf {function:#x}.{index}"));
    [x.eax, x.ebx, x.ecx, x.edx]
}

/// An AMD host as KVM reports it: XSAVE with AVX, PKRU and MPX state, a
/// host brand string, 16-core topology, AVX-512 absent.
fn amd_host() -> Vec<kvm_cpuid_entry2> {
    vec![
        e(0, 0, [0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65]), // AuthenticAMD
        // Leaf 1: family 0xf; EBX says 16 logical CPUs, APIC ID 5;
        // ECX: SSE3, XSAVE (26), AVX (28); EDX: HTT.
        e(
            1,
            0,
            [0x0000_0f61, 0x0510_0800, (1 << 26) | (1 << 28) | 1, 1 << 28],
        ),
        // Leaf 7: MPX (EBX 14), PKU/OSPKE (ECX 3/4), AVX2 (EBX 5).
        e(7, 0, [0, (1 << 14) | (1 << 5), (1 << 3) | (1 << 4), 0]),
        // XCR0 offered: x87, SSE, AVX, MPX (3, 4), PKRU (9).
        e(0xd, 0, [0x21f, 2696, 2696, 0]),
        // XSAVEOPT (0), XSAVEC (1), XGETBV1 (2), XSAVES (3); XSS bit 11.
        e(0xd, 1, [0xf, 2696, 1 << 11, 0]),
        e(0xd, 2, [256, 576, 0, 0]),
        e(0xd, 3, [64, 960, 0, 0]),
        e(0xd, 4, [64, 1024, 0, 0]),
        e(0xd, 9, [8, 2688, 0, 0]),
        e(0xd, 11, [16, 0, 1, 0]),
        e(0xb, 0, [1, 2, 0x100, 5]),
        e(0xb, 1, [5, 16, 0x201, 5]),
        e(0x4000_0000, 0, [0x4000_0001, 0, 0, 0]),
        e(0x4000_0001, 0, [0x1234, 0, 0, 0]),
        e(0x8000_0000, 0, [0x8000_0008, 0, 0, 0]),
        e(0x8000_0001, 0, [0, 0, 1 << 1, 0]),
        e(0x8000_0002, 0, [u32::from_le_bytes(*b"AMD "), 0, 0, 0]),
        e(0x8000_0008, 0, [0x3030, 0, 0x400f, 0]),
    ]
}

#[test]
fn xsave_offers_only_x87_sse_avx_with_sizes_recomputed() {
    let mut c = amd_host();
    normalize(&mut c, 0, 1, &CpuIdentity::default());
    // x87 + SSE + AVX: 512 legacy + 64 header + 256 AVX at offset 576.
    assert_eq!(get(&c, 0xd, 0), [0x7, 832, 832, 0]);
    assert_eq!(xcr0(&c), Some(0x7));
    // XSAVES withdrawn, no supervisor state; XSAVEC's compacted size.
    assert_eq!(get(&c, 0xd, 1), [0x7, 832, 0, 0]);
    for gone in [3, 4, 9, 11] {
        assert!(find(&c, 0xd, gone).is_none(), "sub-leaf {gone} kept");
    }
    assert_eq!(get(&c, 0xd, 2), [256, 576, 0, 0]);
    // MPX and PKU withdrawn with their state; AVX2 kept.
    assert_eq!(get(&c, 7, 0), [0, 1 << 5, 0, 0]);
}

#[test]
fn topology_matches_the_vcpu_count() {
    let mut c = amd_host();
    normalize(&mut c, 2, 4, &CpuIdentity::default());
    // APIC ID 2, 4 logical CPUs, HTT set; low half of EBX kept.
    assert_eq!(get(&c, 1, 0)[1], 0x0204_0800);
    assert_ne!(get(&c, 1, 0)[3] & (1 << 28), 0);
    // 0xB: SMT level of one thread, core level of four (2 ID bits).
    assert_eq!(get(&c, 0xb, 0), [0, 1, 0x100, 2]);
    assert_eq!(get(&c, 0xb, 1), [2, 4, 0x201, 2]);
    assert_eq!(get(&c, 0xb, 2), [0, 0, 2, 2]);
    // Max basic leaf 0xd: no 0x1F.
    assert!(find(&c, 0x1f, 0).is_none());
    // AMD: NC = 3 cores after the first, ApicIdCoreIdSize = 2, CmpLegacy.
    assert_eq!(get(&c, 0x8000_0008, 0)[2], 0x2003);
    assert_eq!(get(&c, 0x8000_0001, 0)[2], 1 << 1);

    let mut one = amd_host();
    normalize(&mut one, 0, 1, &CpuIdentity::default());
    assert_eq!(get(&one, 1, 0)[1], 0x0001_0800);
    assert_eq!(get(&one, 1, 0)[3] & (1 << 28), 0);
    assert_eq!(get(&one, 0x8000_0001, 0)[2], 0);
    assert_eq!(get(&one, 0x8000_0008, 0)[2], 0x0000);
}

#[test]
fn hypervisor_bit_kvm_signature_and_brand() {
    let mut c = amd_host();
    normalize(&mut c, 0, 1, &CpuIdentity::default());
    assert_ne!(get(&c, 1, 0)[2] & (1 << 31), 0);
    let [max, b, c2, d] = get(&c, 0x4000_0000, 0);
    assert_eq!(max, 0x4000_0001);
    let sig: Vec<u8> = [b, c2, d].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&sig, b"KVMKVMKVM\0\0\0");
    // KVM's feature leaf is untouched.
    assert_eq!(get(&c, 0x4000_0001, 0)[0], 0x1234);
    let text: Vec<u8> = [0x8000_0002, 0x8000_0003, 0x8000_0004]
        .iter()
        .flat_map(|&f| get(&c, f, 0))
        .flat_map(|r| r.to_le_bytes())
        .collect();
    assert_eq!(&text[..18], b"p2pvm virtual CPU\0");
    assert!(text[18..].iter().all(|&b| b == 0));
    // Ext max leaf stays at 0x8000_0008.
    assert_eq!(get(&c, 0x8000_0000, 0)[0], 0x8000_0008);
}

#[test]
fn intel_cache_leaf_and_0x1f_follow_the_count() {
    let mut c = vec![
        e(0, 0, [0x1f, 0, 0, 0]),
        e(1, 0, [0x906ea, 0, 0, 0]),
        // L1d (level 1, type 1) and L3 (level 3, type 3), host: 8 cores.
        e(4, 0, [(7 << 26) | (1 << 14) | (1 << 5) | 1, 0, 0, 0]),
        e(4, 3, [(7 << 26) | (15 << 14) | (3 << 5) | 3, 0, 0, 0]),
        e(4, 4, [0, 0, 0, 0]),
    ];
    normalize(&mut c, 1, 3, &CpuIdentity::default());
    assert_eq!(get(&c, 4, 0)[0], (2 << 26) | (1 << 5) | 1);
    assert_eq!(get(&c, 4, 3)[0], (2 << 26) | (2 << 14) | (3 << 5) | 3);
    assert_eq!(get(&c, 4, 4)[0], 0);
    assert_eq!(get(&c, 0x1f, 1), [2, 3, 0x201, 1]);
    // No XSAVE in leaf 1: no leaf 0xD at all, so no XCR0 to preset.
    assert_eq!(xcr0(&c), None);
}
