//! 8250 UARTs (vm-superio) on the port bus, with an irqfd as interrupt line.

use std::io::{self, Write};

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;
use vm_superio::{serial::NoEvents, Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// An edge-triggered interrupt line backed by an eventfd registered as irqfd.
pub struct IrqLine(pub EventFd);

impl Trigger for IrqLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// One UART at a fixed I/O base whose transmitted bytes go to `W`.
pub struct SerialPort<W: Write + Send> {
    serial: Serial<IrqLine, NoEvents, W>,
}

impl<W: Write + Send> SerialPort<W> {
    /// A UART that raises `irq` and writes what the guest sends to `out`.
    pub fn new(irq: IrqLine, out: W) -> Self {
        SerialPort {
            serial: Serial::new(irq, out),
        }
    }

    /// Queues bytes for the guest to read; returns how many fit in the FIFO.
    pub fn enqueue(&mut self, bytes: &[u8]) -> usize {
        let room = self.serial.fifo_capacity().min(bytes.len());
        if room == 0 {
            return 0;
        }
        self.serial.enqueue_raw_bytes(&bytes[..room]).unwrap_or(0)
    }

    /// The sink for transmitted bytes.
    pub fn writer_mut(&mut self) -> &mut W {
        self.serial.writer_mut()
    }
}

impl<W: Write + Send> MutDevicePio for SerialPort<W> {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        if data.len() == 1 && offset < 8 {
            data[0] = self.serial.read(offset as u8);
        } else {
            data.fill(0xff);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        if data.len() == 1 && offset < 8 {
            if let Err(e) = self.serial.write(offset as u8, data[0]) {
                log::debug!("serial write at offset {offset}: {e:?}");
            }
        }
    }
}
