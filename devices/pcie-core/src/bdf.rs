//! Bus/device/function addresses.

use std::fmt;

use crate::Error;

/// A PCI function address: bus (0..=255), device (0..32) and function (0..8).
///
/// Ordered like its requester ID, so a `BTreeMap<Bdf, _>` walks functions in
/// the order an OS enumerates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    bus: u8,
    device: u8,
    function: u8,
}

impl Bdf {
    /// Builds an address, rejecting device ≥ 32 or function ≥ 8.
    pub const fn new(bus: u8, device: u8, function: u8) -> Result<Self, Error> {
        if device >= 32 || function >= 8 {
            return Err(Error::InvalidBdf { device, function });
        }
        Ok(Bdf {
            bus,
            device,
            function,
        })
    }

    /// Decodes a 16-bit requester ID (bus 15:8, device 7:3, function 2:0).
    pub const fn from_requester_id(rid: u16) -> Self {
        Bdf {
            bus: (rid >> 8) as u8,
            device: ((rid >> 3) & 0x1f) as u8,
            function: (rid & 0x7) as u8,
        }
    }

    /// The bus number.
    pub const fn bus(&self) -> u8 {
        self.bus
    }

    /// The device (slot) number, below 32.
    pub const fn device(&self) -> u8 {
        self.device
    }

    /// The function number, below 8.
    pub const fn function(&self) -> u8 {
        self.function
    }

    /// The 16-bit requester ID carried in TLPs: bus 15:8, device 7:3, function 2:0.
    pub const fn requester_id(&self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }
}

impl fmt::Display for Bdf {
    /// Formats as `bb:dd.f` in lowercase hex, like `lspci`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus, self.device, self.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_lspci() {
        assert_eq!(Bdf::new(0, 0, 0).unwrap().to_string(), "00:00.0");
        assert_eq!(Bdf::new(0xab, 0x1f, 7).unwrap().to_string(), "ab:1f.7");
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(Bdf::new(0, 32, 0).is_err());
        assert!(Bdf::new(0, 0, 8).is_err());
        assert!(Bdf::new(255, 31, 7).is_ok());
    }

    #[test]
    fn requester_id_round_trips() {
        for rid in [0u16, 1, 0x0008, 0x01ff, 0xabcd, 0xffff] {
            assert_eq!(Bdf::from_requester_id(rid).requester_id(), rid);
        }
        assert_eq!(Bdf::new(0x12, 0x03, 4).unwrap().requester_id(), 0x121c);
    }

    #[test]
    fn orders_like_requester_id() {
        let a = Bdf::new(0, 31, 7).unwrap();
        let b = Bdf::new(1, 0, 0).unwrap();
        assert!(a < b);
        assert!(a.requester_id() < b.requester_id());
    }
}
