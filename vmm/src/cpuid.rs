//! The guest's CPUID: what KVM supports, normalised into p2pvm's own choice.
//!
//! `KVM_GET_SUPPORTED_CPUID` describes what KVM *can* virtualise, shaped by
//! the host: its topology, its brand string, every XSAVE component it has.
//! [`normalize`] turns that into one consistent virtual CPU:
//!
//! - **XSAVE (leaf 0xD).** Only the user components that Linux enables
//!   without further configuration are offered (x87, SSE, AVX and AVX-512,
//!   each only when its feature bit is offered). MPX, PKRU, AMX and all
//!   supervisor components are withdrawn together with their feature bits.
//!   The sizes in sub-leaves 0 and 1 are recomputed from the components that
//!   remain, and the sub-leaves of withdrawn components are removed.
//! - **Topology.** `count` cores in one package, one thread each, APIC ID =
//!   vCPU index: leaf 1, leaf 4, leaves 0xB/0x1F, and AMD's 0x8000_0001,
//!   0x8000_0008 and 0x8000_001E agree with `--cpus`.
//! - **Hypervisor.** The hypervisor bit in leaf 1 and KVM's signature leaf.
//! - **Brand string** (0x8000_0002..4): [`BRAND`].
//!
//! - **Identity.** Vendor, family, model and stepping stay as the host
//!   gives them unless the topology's `[cpu]` table sets them
//!   ([`CpuIdentity`]); the brand string can be set there too.

use kvm_bindings::{kvm_cpuid_entry2, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

mod identity;
pub use identity::{decode_signature, CpuIdentity, MAX_FAMILY};

/// The processor brand string the guest sees by default (at most 47 bytes).
pub const BRAND: &str = "p2pvm virtual CPU";

/// XSAVE component bits (XCR0 / IA32_XSS bit numbers).
mod xfeature {
    pub const X87: u32 = 0;
    pub const SSE: u32 = 1;
    pub const YMM: u32 = 2;
    pub const OPMASK: u32 = 5;
    pub const ZMM_HI256: u32 = 6;
    pub const HI16_ZMM: u32 = 7;
    /// Size of the legacy FXSAVE area plus the XSAVE header.
    pub const LEGACY_AND_HEADER: u32 = 512 + 64;
}

/// CPUID feature bits p2pvm reads or withdraws, as (leaf, register, bit).
mod bit {
    /// Leaf 1 ECX: XSAVE / OSXSAVE / AVX / hypervisor present.
    pub const L1_ECX_XSAVE: u32 = 26;
    pub const L1_ECX_AVX: u32 = 28;
    pub const L1_ECX_HYPERVISOR: u32 = 31;
    /// Leaf 1 EDX: HTT (EBX[23:16] is valid).
    pub const L1_EDX_HTT: u32 = 28;
    /// Leaf 7.0 EBX: MPX, AVX512F.
    pub const L7_EBX_MPX: u32 = 14;
    pub const L7_EBX_AVX512F: u32 = 16;
    /// Leaf 7.0 ECX: PKU, OSPKE.
    pub const L7_ECX_PKU: u32 = 3;
    pub const L7_ECX_OSPKE: u32 = 4;
    /// Leaf 7.0 EDX: AMX-BF16, AMX-TILE, AMX-INT8.
    pub const L7_EDX_AMX: [u32; 3] = [22, 24, 25];
    /// Leaf 0xD.1 EAX: XSAVES/XRSTORS and IA32_XSS.
    pub const LD1_EAX_XSAVES: u32 = 3;
    /// Leaf 0x8000_0001 ECX: CmpLegacy (more than one core).
    pub const LX1_ECX_CMP_LEGACY: u32 = 1;
}

/// Leaf numbers.
mod leaf {
    pub const BASIC: u32 = 0;
    pub const FEATURES: u32 = 1;
    pub const CACHE_PARAMS: u32 = 4;
    pub const EXT_FEATURES: u32 = 7;
    pub const TOPOLOGY: u32 = 0xb;
    pub const XSAVE: u32 = 0xd;
    pub const AMX_TILE: u32 = 0x1d;
    pub const AMX_TMUL: u32 = 0x1e;
    pub const TOPOLOGY_V2: u32 = 0x1f;
    pub const HYPERVISOR: u32 = 0x4000_0000;
    pub const EXT_MAX: u32 = 0x8000_0000;
    pub const EXT_AMD_FEATURES: u32 = 0x8000_0001;
    pub const BRAND: [u32; 3] = [0x8000_0002, 0x8000_0003, 0x8000_0004];
    pub const EXT_SIZES: u32 = 0x8000_0008;
    pub const AMD_TOPOLOGY: u32 = 0x8000_001e;
}

/// KVM's signature in leaf 0x4000_0000 (EBX, ECX, EDX).
const KVM_SIGNATURE: &[u8; 12] = b"KVMKVMKVM\0\0\0";

fn has(v: u32, bit: u32) -> bool {
    v & (1 << bit) != 0
}

/// True when `e` answers CPUID leaf `function`, sub-leaf `index`.
fn answers(e: &kvm_cpuid_entry2, function: u32, index: u32) -> bool {
    e.function == function && (e.index == index || !indexed(e))
}

fn find(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
    entries.iter().find(|e| answers(e, function, index))
}

fn find_mut(
    entries: &mut [kvm_cpuid_entry2],
    function: u32,
    index: u32,
) -> Option<&mut kvm_cpuid_entry2> {
    entries.iter_mut().find(|e| answers(e, function, index))
}

fn indexed(e: &kvm_cpuid_entry2) -> bool {
    e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0
}

fn entry(function: u32, index: u32, regs: [u32; 4], significant: bool) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        flags: if significant {
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: regs[0],
        ebx: regs[1],
        ecx: regs[2],
        edx: regs[3],
        ..Default::default()
    }
}

/// Bits needed to number `n` things (0 for one).
fn id_bits(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Turns `KVM_GET_SUPPORTED_CPUID`'s entries into vCPU `index` of `count`
/// with the identity `id`.
pub fn normalize(entries: &mut Vec<kvm_cpuid_entry2>, index: u8, count: u8, id: &CpuIdentity) {
    xsave(entries);
    topology(entries, u32::from(index), u32::from(count.max(1)));
    hypervisor(entries);
    brand(entries, id.brand());
    id.apply(entries);
}

/// The XCR0 mask the guest is offered after [`normalize`]; `None`
/// without XSAVE (no leaf 0xD).
pub fn xcr0(entries: &[kvm_cpuid_entry2]) -> Option<u64> {
    find(entries, leaf::XSAVE, 0).map(|e| u64::from(e.eax) | (u64::from(e.edx) << 32))
}

fn xsave(entries: &mut Vec<kvm_cpuid_entry2>) {
    let l1_ecx = find(entries, leaf::FEATURES, 0).map_or(0, |e| e.ecx);
    let l7_ebx = find(entries, leaf::EXT_FEATURES, 0).map_or(0, |e| e.ebx);
    // Withdraw the features whose state p2pvm does not offer.
    if let Some(e) = find_mut(entries, leaf::EXT_FEATURES, 0) {
        e.ebx &= !(1 << bit::L7_EBX_MPX);
        e.ecx &= !((1 << bit::L7_ECX_PKU) | (1 << bit::L7_ECX_OSPKE));
        for b in bit::L7_EDX_AMX {
            e.edx &= !(1 << b);
        }
    }
    entries.retain(|e| e.function != leaf::AMX_TILE && e.function != leaf::AMX_TMUL);
    if !has(l1_ecx, bit::L1_ECX_XSAVE) {
        entries.retain(|e| e.function != leaf::XSAVE);
        return;
    }
    let Some(offered) = xcr0(entries) else {
        return;
    };
    let mut want: u64 = (1 << xfeature::X87) | (1 << xfeature::SSE);
    if has(l1_ecx, bit::L1_ECX_AVX) {
        want |= 1 << xfeature::YMM;
        if has(l7_ebx, bit::L7_EBX_AVX512F) {
            want |=
                (1 << xfeature::OPMASK) | (1 << xfeature::ZMM_HI256) | (1 << xfeature::HI16_ZMM);
        }
    }
    let mask = offered & want;
    if mask & (1 << xfeature::YMM) == 0 {
        if let Some(e) = find_mut(entries, leaf::FEATURES, 0) {
            e.ecx &= !(1 << bit::L1_ECX_AVX);
        }
    }
    if mask & (1 << xfeature::OPMASK) == 0 {
        // Linux's feature dependencies drop every AVX-512 extension with it.
        if let Some(e) = find_mut(entries, leaf::EXT_FEATURES, 0) {
            e.ebx &= !(1 << bit::L7_EBX_AVX512F);
        }
    }
    // Sub-leaves 2..63 describe one component each; keep only ours.
    entries.retain(|e| {
        e.function != leaf::XSAVE || e.index < 2 || e.index >= 64 || mask & (1 << e.index) != 0
    });
    // Standard (non-compacted) layout: each component at its own offset.
    let size = (2..64)
        .filter(|i| mask & (1 << i) != 0)
        .filter_map(|i| find(entries, leaf::XSAVE, i).map(|c| c.ebx + c.eax))
        .fold(xfeature::LEGACY_AND_HEADER, u32::max);
    if let Some(e) = find_mut(entries, leaf::XSAVE, 0) {
        e.eax = mask as u32;
        e.edx = (mask >> 32) as u32;
        e.ebx = size;
        e.ecx = size;
    }
    let compacted = compacted_size(entries, mask);
    if let Some(e) = find_mut(entries, leaf::XSAVE, 1) {
        // No supervisor state: no XSAVES, IA32_XSS is zero.
        e.eax &= !(1 << bit::LD1_EAX_XSAVES);
        e.ecx = 0;
        e.edx = 0;
        e.ebx = if e.eax & 0x2 != 0 { compacted } else { 0 };
    }
}

/// Size of the compacted (XSAVEC) area for `mask`.
fn compacted_size(entries: &[kvm_cpuid_entry2], mask: u64) -> u32 {
    (2..64)
        .filter(|i| mask & (1 << i) != 0)
        .filter_map(|i| find(entries, leaf::XSAVE, i))
        .fold(xfeature::LEGACY_AND_HEADER, |at, c| {
            // ECX bit 1: the component is 64-byte aligned when compacted.
            let at = if c.ecx & 0x2 != 0 {
                at.next_multiple_of(64)
            } else {
                at
            };
            at + c.eax
        })
}

fn topology(entries: &mut Vec<kvm_cpuid_entry2>, index: u32, count: u32) {
    let core_bits = id_bits(count);
    if let Some(e) = find_mut(entries, leaf::FEATURES, 0) {
        e.ebx = (e.ebx & 0x0000_ffff) | (index << 24) | (count << 16);
        if count > 1 {
            e.edx |= 1 << bit::L1_EDX_HTT;
        } else {
            e.edx &= !(1 << bit::L1_EDX_HTT);
        }
    }
    // Deterministic cache parameters: L1 and L2 are private to a core, L3
    // is shared by the whole package.
    for e in entries
        .iter_mut()
        .filter(|e| e.function == leaf::CACHE_PARAMS)
    {
        if e.eax & 0x1f == 0 {
            continue;
        }
        let level = (e.eax >> 5) & 0x7;
        let sharing = if level >= 3 { count - 1 } else { 0 };
        e.eax = (e.eax & 0x3fff) | (sharing << 14) | ((count - 1) << 26);
    }
    let max_basic = find(entries, leaf::BASIC, 0).map_or(0, |e| e.eax);
    entries.retain(|e| e.function != leaf::TOPOLOGY && e.function != leaf::TOPOLOGY_V2);
    for function in [leaf::TOPOLOGY, leaf::TOPOLOGY_V2] {
        if max_basic < function {
            continue;
        }
        // Level 0: SMT (one thread per core); level 1: cores in the package.
        entries.push(entry(function, 0, [0, 1, 1 << 8, index], true));
        entries.push(entry(
            function,
            1,
            [core_bits, count, (2 << 8) | 1, index],
            true,
        ));
        entries.push(entry(function, 2, [0, 0, 2, index], true));
    }
    if let Some(e) = find_mut(entries, leaf::EXT_AMD_FEATURES, 0) {
        if count > 1 {
            e.ecx |= 1 << bit::LX1_ECX_CMP_LEGACY;
        } else {
            e.ecx &= !(1 << bit::LX1_ECX_CMP_LEGACY);
        }
    }
    if let Some(e) = find_mut(entries, leaf::EXT_SIZES, 0) {
        // NC = cores - 1; ApicIdCoreIdSize.
        e.ecx = (e.ecx & !0xf0ff) | (core_bits << 12) | (count - 1);
    }
    if let Some(e) = find_mut(entries, leaf::AMD_TOPOLOGY, 0) {
        // Extended APIC ID; one thread per compute unit; node 0.
        e.eax = index;
        e.ebx = index & 0xff;
        e.ecx = 0;
        e.edx = 0;
    }
}

fn hypervisor(entries: &mut Vec<kvm_cpuid_entry2>) {
    if let Some(e) = find_mut(entries, leaf::FEATURES, 0) {
        e.ecx |= 1 << bit::L1_ECX_HYPERVISOR;
    }
    let sig = |i: usize| u32::from_le_bytes(KVM_SIGNATURE[i * 4..i * 4 + 4].try_into().unwrap());
    let max = entries
        .iter()
        .filter(|e| e.function > leaf::HYPERVISOR && e.function < leaf::HYPERVISOR + 0x100)
        .map(|e| e.function)
        .max()
        .unwrap_or(leaf::HYPERVISOR);
    let regs = [max, sig(0), sig(1), sig(2)];
    match find_mut(entries, leaf::HYPERVISOR, 0) {
        Some(e) => {
            (e.eax, e.ebx, e.ecx, e.edx) = (regs[0], regs[1], regs[2], regs[3]);
        }
        None => entries.push(entry(leaf::HYPERVISOR, 0, regs, false)),
    }
}

fn brand(entries: &mut Vec<kvm_cpuid_entry2>, brand: &str) {
    let mut text = [0u8; 48];
    let n = brand.len().min(47);
    text[..n].copy_from_slice(&brand.as_bytes()[..n]);
    let word = |i: usize| u32::from_le_bytes(text[i * 4..i * 4 + 4].try_into().unwrap());
    match find_mut(entries, leaf::EXT_MAX, 0) {
        Some(e) => e.eax = e.eax.max(leaf::BRAND[2]),
        None => entries.push(entry(leaf::EXT_MAX, 0, [leaf::BRAND[2], 0, 0, 0], false)),
    }
    for (k, function) in leaf::BRAND.into_iter().enumerate() {
        let regs = [
            word(4 * k),
            word(4 * k + 1),
            word(4 * k + 2),
            word(4 * k + 3),
        ];
        match find_mut(entries, function, 0) {
            Some(e) => (e.eax, e.ebx, e.ecx, e.edx) = (regs[0], regs[1], regs[2], regs[3]),
            None => entries.push(entry(function, 0, regs, false)),
        }
    }
}

#[cfg(test)]
mod tests;
