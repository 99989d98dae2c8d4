//! The Type-1 (PCI-to-PCI bridge) header: register offsets, bridge control
//! bits, how the header is laid out with its masks, and how its windows decode.

use std::ops::RangeInclusive;

use pcie_core::{
    bridge_control, bridge_reg, decode_windows, ClassCode, CommonHeader, ConfigSpace, HeaderLayout,
    InterruptPin, Window,
};

use crate::{BridgeConfig, Error};

/// Secondary status bits a guest clears by writing 1: master data parity
/// error, signaled/received target abort, received master abort, received
/// system error, detected parity error.
pub const SECONDARY_STATUS_W1C: u16 = 0xf900;

/// Writes the Type-1 header of `config` into `space` with its masks.
///
/// Root and downstream ports use INTA (the legacy fallback for their PME,
/// AER and slot events when MSI is off); upstream ports signal nothing of
/// their own and report no pin.
pub(crate) fn apply_header(space: &mut ConfigSpace, config: &BridgeConfig) -> Result<(), Error> {
    use bridge_reg::*;
    let common = CommonHeader {
        vendor_id: config.vendor_id,
        device_id: config.device_id,
        revision_id: config.revision_id,
        class_code: ClassCode::PCI_BRIDGE,
        multifunction: false,
        interrupt_pin: if config.kind.is_downstream() {
            InterruptPin::IntA
        } else {
            InterruptPin::None
        },
    };
    common.apply(space, HeaderLayout::Type1)?;
    // Bus numbers and the secondary latency timer.
    space.set_writable_mask(PRIMARY_BUS, &[0xff; 4]);
    space.set_u8(IO_BASE, WIDE_DECODE);
    space.set_u8(IO_LIMIT, WIDE_DECODE);
    space.set_writable_mask(IO_BASE, &[0xf0, 0xf0]);
    space.set_w1c_mask(SECONDARY_STATUS, &SECONDARY_STATUS_W1C.to_le_bytes());
    space.set_writable_mask(MEMORY_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    space.set_u16(PREF_BASE, WIDE_DECODE.into());
    space.set_u16(PREF_LIMIT, WIDE_DECODE.into());
    space.set_writable_mask(PREF_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
    space.set_writable_mask(PREF_BASE_UPPER, &[0xff; 8]);
    space.set_writable_mask(IO_BASE_UPPER, &[0xff; 4]);
    space.set_writable_mask(BRIDGE_CONTROL, &bridge_control::WRITABLE.to_le_bytes());
    Ok(())
}

fn windows(space: &ConfigSpace) -> pcie_core::BridgeWindows {
    decode_windows(|o| space.u16_at(o), |o| space.u32_at(o))
}

fn range(w: Option<Window>) -> Option<RangeInclusive<u64>> {
    w.map(|w| w.base..=w.limit)
}

/// The I/O window programmed in `space` (4 KiB granular, 32-bit), `None`
/// when base > limit.
pub(crate) fn io_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    range(windows(space).io)
}

/// The non-prefetchable memory window (1 MiB granular, 32-bit), `None`
/// when base > limit.
pub(crate) fn memory_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    range(windows(space).mem)
}

/// The prefetchable memory window (1 MiB granular, 64-bit), `None` when
/// base > limit.
pub(crate) fn prefetchable_window(space: &ConfigSpace) -> Option<RangeInclusive<u64>> {
    range(windows(space).pref)
}
