//! Legacy INTx routing, the one definition shared by the fabric (which
//! drives the wires) and the VMM's ACPI `_PRT` (which tells the guest
//! where they land).
//!
//! A function's INTx pin travels up the tree as a virtual wire. At every
//! bridge it is swizzled by the device number of the function below the
//! bridge (PCI-to-PCI Bridge Architecture, "Interrupt routing"); a
//! function directly below a root or downstream port is device 0, so its
//! pin passes unchanged. On the root bus, device `d`'s pin `p` (0 for
//! INTA) reaches GSI `GSI_BASE + (d + p) % GSI_COUNT`: IOAPIC pins 16..=23,
//! level triggered, active low (the ACPI default for a `_PRT` entry
//! without a link device).

use crate::InterruptPin;

/// First GSI of legacy PCI interrupts: IOAPIC pin 16, the first one no
/// ISA interrupt uses.
pub const GSI_BASE: u32 = 16;

/// How many GSIs legacy PCI interrupts are spread over (16..=23).
pub const GSI_COUNT: u32 = 8;

/// Devices on one bus.
const DEVICES: u8 = 32;

impl InterruptPin {
    /// The pin an Interrupt Pin register value names; `None` for values
    /// outside 0..=4.
    pub const fn from_register(value: u8) -> Option<Self> {
        Some(match value {
            0 => InterruptPin::None,
            1 => InterruptPin::IntA,
            2 => InterruptPin::IntB,
            3 => InterruptPin::IntC,
            4 => InterruptPin::IntD,
            _ => return None,
        })
    }

    /// 0 for INTA through 3 for INTD (the `_PRT` encoding); `None` for no
    /// pin.
    pub const fn index(self) -> Option<u8> {
        match self {
            InterruptPin::None => None,
            pin => Some(pin as u8 - 1),
        }
    }

    /// The pin for index 0..=3 (see [`index`](Self::index)), taken
    /// modulo 4.
    const fn from_index(index: u8) -> Self {
        match index % 4 {
            0 => InterruptPin::IntA,
            1 => InterruptPin::IntB,
            2 => InterruptPin::IntC,
            _ => InterruptPin::IntD,
        }
    }
}

/// The pin on a bridge's primary side that `pin` of device `device` on
/// the bridge's secondary bus appears on:
/// `(pin - 1 + device) % 4 + 1`. No pin stays no pin.
pub const fn swizzle(pin: InterruptPin, device: u8) -> InterruptPin {
    match pin.index() {
        None => InterruptPin::None,
        Some(i) => InterruptPin::from_index(i + device % 4),
    }
}

/// The GSI that `pin` of device `device` on the root bus reaches, as the
/// `_PRT` says; `None` for no pin or a device number past 31.
pub const fn root_bus_gsi(device: u8, pin: InterruptPin) -> Option<u32> {
    match pin.index() {
        Some(i) if device < DEVICES => Some(GSI_BASE + (device as u32 + i as u32) % GSI_COUNT),
        _ => None,
    }
}

/// One `_PRT` entry: where a root-bus device's pin goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrtEntry {
    /// Device number on the root bus (the entry covers all its functions).
    pub device: u8,
    /// The pin, INTA..=INTD.
    pub pin: InterruptPin,
    /// The GSI it reaches.
    pub gsi: u32,
}

/// The root bus's `_PRT`: every device's four pins, device by device.
pub fn prt() -> impl Iterator<Item = PrtEntry> {
    let pins = [
        InterruptPin::IntA,
        InterruptPin::IntB,
        InterruptPin::IntC,
        InterruptPin::IntD,
    ];
    (0..DEVICES).flat_map(move |device| {
        pins.into_iter().filter_map(move |pin| {
            let gsi = root_bus_gsi(device, pin)?;
            Some(PrtEntry { device, pin, gsi })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use InterruptPin::{IntA, IntB, IntC, IntD};

    #[test]
    fn the_swizzle_follows_the_bridge_table() {
        // PCI-to-PCI Bridge Architecture, table "Interrupt binding": the
        // device number modulo 4 rotates the pins.
        assert_eq!(swizzle(IntA, 0), IntA);
        assert_eq!(swizzle(IntA, 1), IntB);
        assert_eq!(swizzle(IntC, 1), IntD);
        assert_eq!(swizzle(IntD, 1), IntA);
        assert_eq!(swizzle(IntB, 6), IntD);
        assert_eq!(swizzle(IntD, 31), IntC);
        assert_eq!(swizzle(InterruptPin::None, 3), InterruptPin::None);
    }

    #[test]
    fn root_bus_pins_spread_over_gsis_16_to_23() {
        assert_eq!(root_bus_gsi(1, IntA), Some(17));
        assert_eq!(root_bus_gsi(1, IntD), Some(20));
        assert_eq!(root_bus_gsi(7, IntB), Some(16));
        assert_eq!(root_bus_gsi(31, IntD), Some(18));
        assert_eq!(root_bus_gsi(0, IntA), Some(16));
        assert_eq!(root_bus_gsi(3, InterruptPin::None), None);
        assert_eq!(root_bus_gsi(32, IntA), None);
        let all: Vec<_> = prt().collect();
        assert_eq!(all.len(), 32 * 4);
        assert!(all.iter().all(|e| (16..=23).contains(&e.gsi)));
        assert_eq!(
            all[4 * 2 + 1],
            PrtEntry {
                device: 2,
                pin: IntB,
                gsi: 19
            }
        );
    }

    #[test]
    fn register_values_round_trip() {
        for v in 0..=4 {
            assert_eq!(InterruptPin::from_register(v).map(|p| p as u8), Some(v));
        }
        assert_eq!(InterruptPin::from_register(5), None);
        assert_eq!(IntA.index(), Some(0));
        assert_eq!(InterruptPin::None.index(), None);
    }
}
