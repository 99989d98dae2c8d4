//! Ports through which the guest ends the VM: the ACPI sleep and reset
//! registers of our hardware-reduced FADT, and the i8042 reset line.

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;

use super::{ExitSender, VmExit};
use crate::layout::{
    ACPI_RESET_PORT, ACPI_RESET_VALUE, ACPI_SLEEP_CONTROL_PORT, I8042_PORT, S5_SLEEP_TYPE,
};

/// SLP_EN in the sleep control register.
const SLP_EN: u8 = 1 << 5;
/// i8042 command: pulse the CPU reset line.
const I8042_RESET: u8 = 0xfe;

/// The ACPI sleep control/status and reset registers plus the i8042 command port.
pub struct PowerPorts {
    exit: ExitSender,
}

impl PowerPorts {
    /// Ports that report the guest's power-off or reset on `exit`.
    pub fn new(exit: ExitSender) -> Self {
        PowerPorts { exit }
    }

    /// What a one-byte write to `port` asks for, if anything.
    pub fn decode(port: u16, value: u8) -> Option<VmExit> {
        match port {
            ACPI_SLEEP_CONTROL_PORT
                if value & SLP_EN != 0 && (value >> 2) & 0x7 == S5_SLEEP_TYPE =>
            {
                Some(VmExit::PowerOff)
            }
            ACPI_RESET_PORT if value == ACPI_RESET_VALUE => Some(VmExit::Reboot),
            I8042_PORT if value == I8042_RESET => Some(VmExit::Reboot),
            _ => None,
        }
    }
}

impl MutDevicePio for PowerPorts {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        // i8042 status: input buffer empty; ACPI registers read as zero.
        data.fill(0);
    }

    fn pio_write(&mut self, base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let port = base.0 + offset;
        if let Some(ev) = data.first().and_then(|v| Self::decode(port, *v)) {
            log::debug!("guest requested {ev:?} through port {port:#x}");
            let _ = self.exit.send(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_power_off_and_resets() {
        let s5 = (S5_SLEEP_TYPE << 2) | SLP_EN;
        assert_eq!(
            PowerPorts::decode(ACPI_SLEEP_CONTROL_PORT, s5),
            Some(VmExit::PowerOff)
        );
        // Without SLP_EN, or another sleep type, nothing happens.
        assert_eq!(
            PowerPorts::decode(ACPI_SLEEP_CONTROL_PORT, S5_SLEEP_TYPE << 2),
            None
        );
        assert_eq!(
            PowerPorts::decode(ACPI_SLEEP_CONTROL_PORT, (3 << 2) | SLP_EN),
            None
        );
        assert_eq!(
            PowerPorts::decode(ACPI_RESET_PORT, ACPI_RESET_VALUE),
            Some(VmExit::Reboot)
        );
        assert_eq!(PowerPorts::decode(I8042_PORT, 0xfe), Some(VmExit::Reboot));
        assert_eq!(PowerPorts::decode(I8042_PORT, 0xd1), None);
    }
}
