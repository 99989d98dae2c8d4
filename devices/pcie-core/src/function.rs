//! The `PciFunction` trait every emulated function implements, and what a
//! config write tells its owner.

use std::ops::{BitOr, BitOrAssign};

use std::sync::Arc;

use crate::{BarMemory, BarRegion, Doorbell, ErrorMessage, MsiMessage};

/// What a config-space write changed, so the owner can remap BARs, rebuild
/// the routing snapshot or move eventfds. A small hand-written bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConfigEffects(u8);

impl ConfigEffects {
    /// Nothing the owner needs to act on.
    pub const NONE: Self = ConfigEffects(0);
    /// A BAR register changed value.
    pub const BARS: Self = ConfigEffects(1 << 0);
    /// The command register changed value (decode enables, bus master, INTx disable).
    pub const COMMAND: Self = ConfigEffects(1 << 1);
    /// A bridge's bus numbers, windows or bridge control changed value.
    pub const BRIDGE: Self = ConfigEffects(1 << 2);

    /// True when no effect is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every effect in `other` is also set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// A BAR register changed.
    pub const fn bars_changed(self) -> bool {
        self.contains(Self::BARS)
    }

    /// The command register changed.
    pub const fn command_changed(self) -> bool {
        self.contains(Self::COMMAND)
    }

    /// Bridge bus numbers, windows or control changed.
    pub const fn bridge_changed(self) -> bool {
        self.contains(Self::BRIDGE)
    }
}

impl BitOr for ConfigEffects {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        ConfigEffects(self.0 | rhs.0)
    }
}

impl BitOrAssign for ConfigEffects {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Kinds of reset a function can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// Power-on (cold) or warm reset of the whole platform: everything,
    /// sticky bits included, returns to its initial value.
    Fundamental,
    /// Hot reset, e.g. a Secondary Bus Reset on the bridge above: like a
    /// fundamental reset except that sticky bits are kept.
    Hot,
    /// Function Level Reset of this function only.
    FunctionLevel,
}

/// One emulated PCI function, as seen by the fabric.
///
/// Offsets are into the function's 4 KiB config space or into one BAR;
/// accesses are 1 to 4 bytes for config space, any length for BARs.
pub trait PciFunction: Send {
    /// Guest read of config space. Bytes past 4 KiB read 0xFF.
    fn config_read(&self, offset: u16, data: &mut [u8]);

    /// Guest write of config space. Returns what changed, so the owner can
    /// remap BARs, slots and eventfds; the function performs no such side
    /// effect itself.
    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects;

    /// Guest (or peer) read of a BAR at `offset` from the BAR's base.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]);

    /// Guest (or peer) write of a BAR at `offset` from the BAR's base.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]);

    /// Returns the function to its post-reset state.
    fn reset(&mut self, kind: ResetKind);

    /// The BARs currently programmed with a non-zero address. The fabric's
    /// routing snapshot reads them (it cannot size BARs by writing without
    /// disturbing the guest). Functions built on [`crate::Type0Config`]
    /// implement it as `self.config.bar_regions()`. The default, no BARs,
    /// makes the function unreachable by memory requests.
    fn bar_regions(&self) -> Vec<BarRegion> {
        Vec::new()
    }

    /// The memory behind BAR `bar` when it is RAM-backed (plain memory
    /// with no side effects, such as a CMB). The fabric asks once, when the
    /// function is added, and from then on serves DMA to that BAR straight
    /// from this memory, without locking the function; the VMM maps it
    /// into the guest where the BAR decodes. `bar_read`/`bar_write` must
    /// access the same memory.
    fn bar_backing(&self, _bar: u8) -> Option<Arc<BarMemory>> {
        None
    }

    /// An error message from a function below reached this root port
    /// (see [`Fabric::report_error`](crate::Fabric::report_error)): log it
    /// and return the interrupt to raise, if any; the fabric sends it from
    /// this function after releasing its lock. Only root ports receive
    /// messages; the default ignores them.
    fn error_message(&mut self, _msg: ErrorMessage) -> Option<MsiMessage> {
        None
    }

    /// The function's doorbells, asked once when the function is added.
    /// See [`Doorbell`].
    fn doorbells(&self) -> Vec<Doorbell> {
        Vec::new()
    }

    /// The device's own counters, by name (for the VMM's `--counters`
    /// file): what only the device can tell, such as where an NVMe
    /// controller fetched its submission queue entries from. The default
    /// has none.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// ACS behaviour that config space does not show: a port whose
    /// hardware disagrees with its registers (fault injection). The
    /// routing snapshot reads it with the registers; the default, a
    /// healthy function, has none.
    fn acs_fault(&self) -> Option<AcsFault> {
        None
    }

    /// Logs an uncorrectable error in the function's AER capability:
    /// sets `status_bit` in Uncorrectable Error Status (and the First
    /// Error Pointer when no error is logged yet). False when the
    /// function has no AER capability or the error is masked: then it
    /// sends no error message.
    fn record_uncorrectable(&mut self, _status_bit: u32) -> bool {
        false
    }

    /// Injects an ACS fault at run time (see [`AcsFault`]): `stuck_on`
    /// bits applied whatever Control says, and the capability hidden from
    /// software. The caller refreshes the fabric's routing snapshot.
    /// Functions without ACS refuse, as by default.
    fn inject_acs_fault(&mut self, _stuck_on: crate::AcsBits, _hidden: bool) -> Result<(), String> {
        Err("it has no ACS capability".into())
    }

    /// Brings the link below this downstream-facing port down or up, as a
    /// surprise removal and insertion would: Link Status' Data Link Layer
    /// Link Active and Slot Status' Presence Detect State follow `up`,
    /// and a hot-plug slot latches its change events. Returns the
    /// hot-plug interrupt to raise, if any (the fabric sends it from this
    /// function after releasing its lock). Functions without such a link
    /// refuse, as by default.
    fn set_link(&mut self, _up: bool) -> Result<Option<MsiMessage>, String> {
        Err("it is not a root or downstream port".into())
    }
}

/// How a port's ACS behaviour departs from its registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AcsFault {
    /// Bits the port applies whatever ACS Control says (they read as
    /// Control has them: clear, unless software set them).
    pub stuck_on: crate::AcsBits,
    /// The capability is missing from the extended capability list, so
    /// software sees no ACS; the port behaves as if it had these
    /// capability bits with these control bits.
    pub hidden: Option<(crate::AcsBits, crate::AcsBits)>,
}

/// Reads a little-endian dword of a function's config space.
pub fn config_read_u32<F: PciFunction + ?Sized>(function: &F, offset: u16) -> u32 {
    let mut b = [0; 4];
    function.config_read(offset, &mut b);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_combine() {
        let mut e = ConfigEffects::NONE;
        assert!(e.is_empty());
        e |= ConfigEffects::BARS;
        let e = e | ConfigEffects::BRIDGE;
        assert!(e.bars_changed() && e.bridge_changed() && !e.command_changed());
        assert!(e.contains(ConfigEffects::NONE));
    }
}
