//! Access Control Services (extended capability 0x000D): the register
//! layout and the control bits the router honours.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// Register offsets inside the ACS extended capability, from its header.
pub mod acs_reg {
    /// ACS Capability register (16 bits): implemented bits, and the egress
    /// control vector size in bits 15:8 (0 means 256).
    pub const CAPABILITY: u16 = 0x04;
    /// ACS Control register (16 bits): enabled bits, same layout.
    pub const CONTROL: u16 = 0x06;
    /// Egress Control Vector (1 to 8 dwords), present when EC is implemented.
    pub const EGRESS_VECTOR: u16 = 0x08;
}

/// A set of ACS bits, as found in both the capability and the control
/// register (bits 6:0).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AcsBits(u16);

impl AcsBits {
    /// No bit.
    pub const NONE: Self = AcsBits(0);
    /// Source Validation.
    pub const SV: Self = AcsBits(1 << 0);
    /// Translation Blocking.
    pub const TB: Self = AcsBits(1 << 1);
    /// P2P Request Redirect.
    pub const RR: Self = AcsBits(1 << 2);
    /// P2P Completion Redirect.
    pub const CR: Self = AcsBits(1 << 3);
    /// Upstream Forwarding.
    pub const UF: Self = AcsBits(1 << 4);
    /// P2P Egress Control.
    pub const EC: Self = AcsBits(1 << 5);
    /// Direct Translated P2P.
    pub const DT: Self = AcsBits(1 << 6);
    /// All seven bits.
    pub const ALL: Self = AcsBits(0x7f);

    /// The bits 6:0 of a capability or control register value.
    pub const fn from_register(value: u16) -> Self {
        AcsBits(value & Self::ALL.0)
    }

    /// The register value holding these bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits of both (`|`, usable in constants).
    pub const fn union(self, other: Self) -> Self {
        AcsBits(self.0 | other.0)
    }
}

impl fmt::Debug for AcsBits {
    /// Formats as the set bit names, e.g. `AcsBits(SV|RR|UF)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = ["SV", "TB", "RR", "CR", "UF", "EC", "DT"];
        write!(f, "AcsBits(")?;
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    write!(f, "|")?;
                }
                write!(f, "{name}")?;
                first = false;
            }
        }
        write!(f, ")")
    }
}

impl BitOr for AcsBits {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        AcsBits(self.0 | rhs.0)
    }
}

impl BitOrAssign for AcsBits {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for AcsBits {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        AcsBits(self.0 & rhs.0)
    }
}

impl Not for AcsBits {
    type Output = Self;
    fn not(self) -> Self {
        AcsBits(!self.0 & Self::ALL.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_and_debug() {
        let b = AcsBits::SV | AcsBits::RR | AcsBits::UF;
        assert_eq!(b.bits(), 0x15);
        assert!(b.contains(AcsBits::RR) && !b.contains(AcsBits::EC));
        assert_eq!(b & !AcsBits::RR, AcsBits::SV | AcsBits::UF);
        assert_eq!(AcsBits::from_register(0xff15), b);
        assert_eq!(format!("{b:?}"), "AcsBits(SV|RR|UF)");
        assert!(AcsBits::NONE.is_empty());
    }
}
