//! Get/Set Features (NVMe 1.4 §5.21.1): what the controller keeps.

use crate::Status;

/// Feature identifiers the controller supports.
pub mod fid {
    /// Arbitration.
    pub const ARBITRATION: u8 = 0x01;
    /// Power Management.
    pub const POWER_MANAGEMENT: u8 = 0x02;
    /// Temperature Threshold.
    pub const TEMPERATURE_THRESHOLD: u8 = 0x04;
    /// Error Recovery.
    pub const ERROR_RECOVERY: u8 = 0x05;
    /// Volatile Write Cache.
    pub const VOLATILE_WRITE_CACHE: u8 = 0x06;
    /// Number of Queues.
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt Coalescing.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
    /// Interrupt Vector Configuration.
    pub const INTERRUPT_VECTOR_CONFIG: u8 = 0x09;
    /// Write Atomicity Normal.
    pub const WRITE_ATOMICITY: u8 = 0x0a;
    /// Asynchronous Event Configuration.
    pub const ASYNC_EVENT_CONFIG: u8 = 0x0b;
}

/// Default composite-temperature over-threshold: 343 K (70 °C), which is
/// also WCTEMP.
pub const DEFAULT_OVER_TEMP: u16 = 343;

/// The features' current values (dword 11 as Set Features gives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// Arbitration.
    pub arbitration: u32,
    /// Power Management (power state 0 only).
    pub power_management: u32,
    /// Over- and under-temperature thresholds of the composite sensor.
    pub temp_over: u16,
    /// Under-temperature threshold.
    pub temp_under: u16,
    /// Error Recovery.
    pub error_recovery: u32,
    /// Volatile Write Cache enabled.
    pub write_cache: bool,
    /// Interrupt Coalescing.
    pub coalescing: u32,
    /// Interrupt Vector Configuration: vectors with coalescing disabled.
    pub no_coalesce: u128,
    /// Write Atomicity Normal.
    pub write_atomicity: u32,
    /// Asynchronous Event Configuration.
    pub async_events: u32,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            arbitration: 0,
            power_management: 0,
            temp_over: DEFAULT_OVER_TEMP,
            temp_under: 0,
            error_recovery: 0,
            write_cache: true,
            coalescing: 0,
            no_coalesce: 0,
            write_atomicity: 0,
            async_events: 0,
        }
    }
}

impl Features {
    /// The current value of feature `id` (`cdw11` selects the
    /// threshold or vector), or INVALID_FIELD for one not supported.
    /// Number of Queues is the engine's own.
    pub fn get(&self, id: u8, cdw11: u32) -> Result<u32, Status> {
        Ok(match id {
            fid::ARBITRATION => self.arbitration,
            fid::POWER_MANAGEMENT => self.power_management,
            fid::TEMPERATURE_THRESHOLD => {
                if (cdw11 >> 16) & 0xf != 0 {
                    return Err(Status::INVALID_FIELD);
                }
                let under = (cdw11 >> 20) & 3 == 1;
                let t = if under {
                    self.temp_under
                } else {
                    self.temp_over
                };
                u32::from(t) | (cdw11 & 0x003f_0000)
            }
            fid::ERROR_RECOVERY => self.error_recovery,
            fid::VOLATILE_WRITE_CACHE => u32::from(self.write_cache),
            fid::INTERRUPT_COALESCING => self.coalescing,
            fid::INTERRUPT_VECTOR_CONFIG => {
                let iv = cdw11 & 0xffff;
                if iv >= u32::from(crate::caps::MSIX_VECTORS) {
                    return Err(Status::INVALID_FIELD);
                }
                iv | (u32::from(self.no_coalesce >> iv & 1 == 1) << 16)
            }
            fid::WRITE_ATOMICITY => self.write_atomicity,
            fid::ASYNC_EVENT_CONFIG => self.async_events,
            _ => return Err(Status::INVALID_FIELD),
        })
    }

    /// Sets feature `id` from `cdw11`; returns completion dword 0.
    pub fn set(&mut self, id: u8, cdw11: u32) -> Result<u32, Status> {
        match id {
            fid::ARBITRATION => self.arbitration = cdw11,
            fid::POWER_MANAGEMENT => {
                // One power state (NPSS = 0).
                if cdw11 & 0x1f != 0 {
                    return Err(Status::INVALID_FIELD);
                }
                self.power_management = cdw11 & 0xff;
            }
            fid::TEMPERATURE_THRESHOLD => {
                if (cdw11 >> 16) & 0xf != 0 || (cdw11 >> 20) & 3 > 1 {
                    return Err(Status::INVALID_FIELD);
                }
                let t = cdw11 as u16;
                if (cdw11 >> 20) & 3 == 1 {
                    self.temp_under = t;
                } else {
                    self.temp_over = t;
                }
            }
            fid::ERROR_RECOVERY => self.error_recovery = cdw11 & 0x1_ffff,
            fid::VOLATILE_WRITE_CACHE => self.write_cache = cdw11 & 1 != 0,
            fid::INTERRUPT_COALESCING => self.coalescing = cdw11 & 0xffff,
            fid::INTERRUPT_VECTOR_CONFIG => {
                let iv = cdw11 & 0xffff;
                if iv >= u32::from(crate::caps::MSIX_VECTORS) {
                    return Err(Status::INVALID_FIELD);
                }
                let bit = 1u128 << iv;
                if cdw11 & (1 << 16) != 0 {
                    self.no_coalesce |= bit;
                } else {
                    self.no_coalesce &= !bit;
                }
            }
            fid::WRITE_ATOMICITY => self.write_atomicity = cdw11 & 1,
            fid::ASYNC_EVENT_CONFIG => self.async_events = cdw11,
            _ => return Err(Status::INVALID_FIELD),
        }
        Ok(0)
    }
}
