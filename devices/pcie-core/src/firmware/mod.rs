//! Boot-firmware-style enumeration of a [`Fabric`]: bus numbers, BARs,
//! bridge windows and command registers, programmed through config
//! accesses by BDF only, exactly as a BIOS would, so that Linux finds a
//! configured hierarchy and keeps it.
//!
//! [`enumerate`] runs in three passes:
//! 1. Discovery, depth first from bus 0: every bridge gets its primary,
//!    secondary and subordinate bus numbers (subordinate = the highest bus
//!    below it), every BAR is sized with the standard protocol (write all
//!    ones, read back, restore; 64-bit BARs as pairs) with decoding off,
//!    and each bridge's window needs are computed bottom-up.
//! 2. Placement, top down: 64-bit prefetchable BARs go to the 64-bit
//!    aperture (when every bridge above has a 64-bit prefetchable window),
//!    all other memory BARs to the 32-bit aperture, I/O BARs to the I/O
//!    range. Everything is naturally aligned; memory windows are 1 MiB
//!    granular and aligned, I/O windows 4 KiB.
//! 3. Programming: BARs, windows (empty ones closed: base above limit),
//!    the PCIe Max Payload Size (256 bytes, or the smallest any function
//!    supports, the same everywhere), then Memory Space and Bus Master
//!    Enable (and I/O Space Enable with I/O resources) on every bridge
//!    and on every endpoint that has BARs.
//!
//! Running it again on an enumerated fabric gives the same result.

mod alloc;
mod program;
mod report;
mod scan;

pub use report::{BarAssignment, BridgeReport, EnumerationReport, NodeReport};

use crate::{BarKind, Bdf, Error, Fabric, NodeId};

/// The address ranges the root complex decodes for the hierarchy, which
/// enumeration hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Apertures {
    /// 32-bit MMIO aperture, (base, size): non-prefetchable memory and
    /// 32-bit BARs. Must end at or below 4 GiB.
    pub mmio32: (u64, u64),
    /// 64-bit MMIO aperture, (base, size): 64-bit prefetchable BARs. A
    /// size of 0 sends them to the 32-bit aperture.
    pub mmio64: (u64, u64),
    /// I/O port range, (first, last) inclusive; first > last for none.
    pub io: (u16, u16),
}

/// The three kinds of resources, each with its own aperture and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// 32-bit memory: the bridges' memory windows.
    Mem = 0,
    /// 64-bit prefetchable memory: the bridges' prefetchable windows.
    Pref = 1,
    /// I/O ports: the bridges' I/O windows.
    Io = 2,
}

impl Pool {
    const ALL: [Pool; 3] = [Pool::Mem, Pool::Pref, Pool::Io];

    /// Granularity (and minimum alignment) of a bridge window.
    const fn granule(self) -> u64 {
        match self {
            Pool::Mem | Pool::Pref => 1 << 20,
            Pool::Io => 1 << 12,
        }
    }

    /// The aperture it is allocated from, as errors name it.
    const fn aperture(self) -> &'static str {
        match self {
            Pool::Mem => "32-bit MMIO",
            Pool::Pref => "64-bit MMIO",
            Pool::Io => "I/O",
        }
    }

    /// The bridge window holding it, as errors name it.
    const fn name(self) -> &'static str {
        match self {
            Pool::Mem => "memory",
            Pool::Pref => "prefetchable",
            Pool::Io => "I/O",
        }
    }
}

/// One BAR found by discovery.
#[derive(Debug, Clone)]
pub(crate) struct BarPlan {
    index: u8,
    kind: BarKind,
    size: u64,
    /// Where it is allocated from; `None` when no path leads there (an I/O
    /// BAR below a bridge without an I/O window, or no I/O range).
    pool: Option<Pool>,
    addr: Option<u64>,
}

/// What a bridge window must hold: size (0 when empty) and alignment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Need {
    size: u64,
    align: u64,
}

/// A bridge found by discovery.
#[derive(Debug, Clone)]
pub(crate) struct BridgePlan {
    primary: u8,
    secondary: u8,
    subordinate: u8,
    has_io: bool,
    has_pref: bool,
    children: Vec<Func>,
    need: [Need; 3],
    /// Assigned windows, (base, size), by [`Pool`].
    window: [Option<(u64, u64)>; 3],
}

/// One function found by discovery.
#[derive(Debug, Clone)]
pub(crate) struct Func {
    bdf: Bdf,
    node: Option<NodeId>,
    name: String,
    depth: usize,
    command: u16,
    bars: Vec<BarPlan>,
    pcie: Option<u16>,
    bridge: Option<BridgePlan>,
}

impl Func {
    /// How errors and the report name it: "name (bb:dd.f)".
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.bdf)
    }
}

/// Each pool's (first, last) address at the root, when it has any.
type Ranges = [Option<(u64, u64)>; 3];

impl Apertures {
    fn ranges(&self) -> Result<Ranges, Error> {
        let bad = |aperture, reason| Err(Error::InvalidAperture { aperture, reason });
        let (b32, s32) = self.mmio32;
        match b32.checked_add(s32) {
            Some(end) if end <= 1 << 32 => {}
            _ => return bad("32-bit MMIO", "must end at or below 4 GiB"),
        }
        let (b64, s64) = self.mmio64;
        if b64.checked_add(s64).is_none() {
            return bad("64-bit MMIO", "ends past the 64-bit address space");
        }
        let range = |base: u64, size: u64| (size > 0).then(|| (base, base + size - 1));
        let (first, last) = self.io;
        let io = (first <= last).then_some((u64::from(first), u64::from(last)));
        Ok([range(b32, s32), range(b64, s64), io])
    }
}

/// Enumerates `fabric` like boot firmware, allocating from `apertures`:
/// see the module documentation. Fails with [`Error::TooManyBuses`] past
/// 256 buses, [`Error::ApertureExhausted`] (naming the bridge window or
/// BAR) when an aperture is too small, [`Error::InvalidAperture`] for a
/// malformed aperture.
pub fn enumerate(fabric: &Fabric, apertures: &Apertures) -> Result<EnumerationReport, Error> {
    let ranges = apertures.ranges()?;
    let flags = scan::Flags {
        pref: ranges[Pool::Pref as usize].is_some(),
        io: ranges[Pool::Io as usize].is_some(),
    };
    let (mut funcs, mps) = scan::discover(fabric, flags)?;
    alloc::place(&mut funcs, &ranges)?;
    program::program(fabric, &funcs, mps);
    Ok(report::build(fabric, &funcs, mps))
}
