//! The guest CPU's identity: vendor, family, model, stepping and brand,
//! as the topology's `[cpu]` table sets them (the host's by default).
//!
//! Linux's P2PDMA allows peer-to-peer through any host bridge on an AMD
//! CPU of family 0x17 (Zen) or later (`cpu_supports_p2pdma()`), so the
//! suite needs both answers on any host. Family and model are encoded as
//! the SDM and the AMD APM define the signature in leaf 1 EAX (and AMD's
//! copy in leaf 0x8000_0001 EAX): a family above 0xF is 0xF plus the
//! extended family, and the model's high nibble is the extended model
//! for families 6 and 0xF and above.

use kvm_bindings::kvm_cpuid_entry2;

use super::{find_mut, leaf};

/// Largest family the signature can encode: 0xF + 0xFF.
pub const MAX_FAMILY: u16 = 0xF + 0xFF;

/// What the guest CPU says it is; `None` keeps the host's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuIdentity {
    /// The 12-character vendor string, e.g. `AuthenticAMD`.
    pub vendor: Option<[u8; 12]>,
    /// Display family (0 ..= [`MAX_FAMILY`]).
    pub family: Option<u16>,
    /// Display model (0 ..= 255).
    pub model: Option<u8>,
    /// Stepping (0 ..= 15).
    pub stepping: Option<u8>,
    /// Brand string (at most 47 ASCII bytes); p2pvm's own by default.
    pub brand: Option<String>,
}

/// Display family and model of a leaf 1 signature.
pub fn decode_signature(eax: u32) -> (u16, u8, u8) {
    let base_family = ((eax >> 8) & 0xF) as u16;
    let family = if base_family == 0xF {
        base_family + ((eax >> 20) & 0xFF) as u16
    } else {
        base_family
    };
    let mut model = ((eax >> 4) & 0xF) as u8;
    if base_family == 0x6 || base_family == 0xF {
        model |= (((eax >> 16) & 0xF) as u8) << 4;
    }
    (family, model, (eax & 0xF) as u8)
}

/// A leaf 1 signature with `family`, `model`, `stepping`; the bits above
/// the signature (31:28) and 15:12 (processor type) are kept from `eax`.
pub fn encode_signature(eax: u32, family: u16, model: u8, stepping: u8) -> u32 {
    let (base, ext_family) = if family >= 0xF {
        (0xF, u32::from(family - 0xF))
    } else {
        (u32::from(family), 0)
    };
    let wide_model = base == 0x6 || base == 0xF;
    let (model_lo, ext_model) = if wide_model {
        (u32::from(model & 0xF), u32::from(model >> 4))
    } else {
        (u32::from(model & 0xF), 0)
    };
    let keep = eax & 0xF000_3000;
    keep | (ext_family << 20)
        | (ext_model << 16)
        | (base << 8)
        | (model_lo << 4)
        | u32::from(stepping & 0xF)
}

impl CpuIdentity {
    /// Applies the identity to normalised CPUID entries.
    pub fn apply(&self, entries: &mut [kvm_cpuid_entry2]) {
        if let Some(v) = &self.vendor {
            let word = |i: usize| u32::from_le_bytes(v[i * 4..i * 4 + 4].try_into().unwrap());
            // "Genu" "ineI" "ntel": EBX, EDX, ECX, in both leaves.
            for function in [leaf::BASIC, leaf::EXT_MAX] {
                if let Some(e) = find_mut(entries, function, 0) {
                    (e.ebx, e.edx, e.ecx) = (word(0), word(1), word(2));
                }
            }
        }
        if self.family.is_none() && self.model.is_none() && self.stepping.is_none() {
            return;
        }
        for function in [leaf::FEATURES, leaf::EXT_AMD_FEATURES] {
            let Some(e) = find_mut(entries, function, 0) else {
                continue;
            };
            if function == leaf::EXT_AMD_FEATURES && e.eax == 0 {
                // Intel leaves it zero: nothing to mirror.
                continue;
            }
            let (f, m, s) = decode_signature(e.eax);
            e.eax = encode_signature(
                e.eax,
                self.family.unwrap_or(f),
                self.model.unwrap_or(m),
                self.stepping.unwrap_or(s),
            );
        }
    }

    /// The brand string to show.
    pub fn brand(&self) -> &str {
        self.brand.as_deref().unwrap_or(super::BRAND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_manuals() {
        // AMD EPYC 7002 (Zen 2): family 0x17, model 0x31, stepping 0.
        assert_eq!(encode_signature(0, 0x17, 0x31, 0), 0x0083_0F10);
        assert_eq!(decode_signature(0x0083_0F10), (0x17, 0x31, 0));
        // Intel Sapphire Rapids: family 6, model 0x8F, stepping 8.
        assert_eq!(encode_signature(0, 6, 0x8F, 8), 0x0008_06F8);
        assert_eq!(decode_signature(0x0008_06F8), (6, 0x8F, 8));
        // AMD K8 "Hammer" (QEMU's TCG CPU in the box): family 0xF.
        assert_eq!(decode_signature(0x0000_0F51).0, 0xF);
        // Family 5 has no extended model: the high nibble is dropped.
        assert_eq!(decode_signature(encode_signature(0, 5, 0x12, 3)), (5, 2, 3));
        // Bits outside the signature survive.
        assert_eq!(
            encode_signature(0x1000_3000, 0x19, 1, 1) & 0xF000_3000,
            0x1000_3000
        );
    }

    #[test]
    fn vendor_and_family_land_in_both_leaves() {
        let mut e = vec![
            kvm_cpuid_entry2 {
                function: leaf::BASIC,
                eax: 0xd,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: leaf::FEATURES,
                eax: 0x0000_0F51,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: leaf::EXT_MAX,
                eax: 0x8000_0008,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: leaf::EXT_AMD_FEATURES,
                eax: 0x0000_0F51,
                ..Default::default()
            },
        ];
        let id = CpuIdentity {
            vendor: Some(*b"AuthenticAMD"),
            family: Some(0x19),
            model: Some(0x01),
            ..Default::default()
        };
        id.apply(&mut e);
        let s = |r: u32| r.to_le_bytes();
        let mut v = Vec::new();
        v.extend(s(e[0].ebx));
        v.extend(s(e[0].edx));
        v.extend(s(e[0].ecx));
        assert_eq!(&v, b"AuthenticAMD");
        assert_eq!(decode_signature(e[1].eax), (0x19, 0x01, 1));
        assert_eq!(decode_signature(e[3].eax), (0x19, 0x01, 1));
        assert_eq!(e[0].eax, 0xd, "max leaf kept");
    }
}
