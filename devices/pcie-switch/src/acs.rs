//! The Access Control Services extended capability (ID 0x000D, version 1).

use pcie_core::{acs_reg, ext_cap_id, ConfigSpace};

use crate::{AcsConfig, Error, ACS_EGRESS_VECTOR_MAX};

/// Dwords of the largest egress control vector.
pub const ACS_EGRESS_VECTOR_DWORDS: usize = ACS_EGRESS_VECTOR_MAX as usize / 32;

/// The ACS Capability register value for `acs`.
pub(crate) fn capability_register(acs: &AcsConfig) -> u16 {
    let size = if acs.has_egress_control() {
        // 256 encodes as 0.
        (acs.egress_vector_size & 0xff) << 8
    } else {
        0
    };
    acs.capability.bits() | size
}

/// Adds the ACS capability for a validated `acs`: the capability register
/// read-only, the control register writable on implemented non-stuck bits,
/// the egress vector writable on its `egress_vector_size` bits.
pub(crate) fn add(space: &mut ConfigSpace, acs: &AcsConfig) -> Result<u16, Error> {
    let dwords = acs.egress_vector_dwords() as usize;
    let mut body = vec![0u8; 4 + 4 * dwords];
    let mut writable = vec![0u8; body.len()];
    body[0..2].copy_from_slice(&capability_register(acs).to_le_bytes());
    body[2..4].copy_from_slice(&acs.control.bits().to_le_bytes());
    let control_rw = acs.capability & !acs.stuck;
    writable[2..4].copy_from_slice(&control_rw.bits().to_le_bytes());
    if dwords > 0 {
        body[4..8].copy_from_slice(&acs.egress_vector.to_le_bytes());
        let size = usize::from(acs.egress_vector_size);
        for dw in 0..dwords {
            let bits = (size - 32 * dw).min(32);
            let mask = if bits == 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            };
            writable[4 + 4 * dw..8 + 4 * dw].copy_from_slice(&mask.to_le_bytes());
        }
    }
    Ok(space.add_ext_capability(ext_cap_id::ACS, 1, &body, &writable)?)
}

/// The egress control vector of the capability at `offset` with `dwords`
/// dwords; bits past the vector read zero.
pub(crate) fn egress_vector(
    space: &ConfigSpace,
    offset: u16,
    dwords: u16,
) -> [u32; ACS_EGRESS_VECTOR_DWORDS] {
    let mut v = [0; ACS_EGRESS_VECTOR_DWORDS];
    for (i, dw) in v.iter_mut().enumerate().take(dwords as usize) {
        *dw = space.u32_at(offset + acs_reg::EGRESS_VECTOR + 4 * i as u16);
    }
    v
}

/// Bits 31:20 of an extended capability header: the next capability.
const EXT_NEXT_SHIFT: u32 = 20;

/// Takes the ACS capability at `acs` out of the extended capability list
/// (software no longer finds it; its registers stay where they are).
/// Returns the offset of the capability whose next pointer now skips it,
/// or `None` when ACS was the first (its header then becomes a null
/// capability that points past it).
pub(crate) fn unlink(space: &mut ConfigSpace, acs: u16) -> Option<u16> {
    let header = space.u32_at(acs);
    let next = header >> EXT_NEXT_SHIFT;
    let pred = space
        .ext_capabilities()
        .find(|c| space.u32_at(c.offset) >> EXT_NEXT_SHIFT == u32::from(acs))
        .map(|c| c.offset);
    match pred {
        Some(p) => {
            let h = space.u32_at(p);
            space.set_u32(p, (h & 0x000F_FFFF) | (next << EXT_NEXT_SHIFT));
        }
        None => space.set_u32(acs, next << EXT_NEXT_SHIFT),
    }
    pred
}

/// Undoes [`unlink`]: `pred` is what it returned.
pub(crate) fn relink(space: &mut ConfigSpace, acs: u16, pred: Option<u16>) {
    match pred {
        Some(p) => {
            let h = space.u32_at(p);
            space.set_u32(p, (h & 0x000F_FFFF) | (u32::from(acs) << EXT_NEXT_SHIFT));
        }
        None => {
            let next = space.u32_at(acs) >> EXT_NEXT_SHIFT;
            space.set_u32(
                acs,
                u32::from(ext_cap_id::ACS) | (1 << 16) | (next << EXT_NEXT_SHIFT),
            );
        }
    }
}
