//! Type 0 (endpoint) config space: the common header, subsystem IDs and six BARs.

use crate::header::{command, reg, CommonHeader, HeaderLayout};
use crate::{Bar, BarKind, BarRegion, Bars, ConfigEffects, ConfigSpace, Error, Watch};

/// What goes in a Type 0 header at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type0Header {
    /// IDs, class, multi-function bit and interrupt pin.
    pub common: CommonHeader,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: u16,
    /// Subsystem ID.
    pub subsystem_id: u16,
}

/// The config space of a Type 0 function plus its BAR declarations.
///
/// Device models own one, declare BARs and capabilities at construction,
/// and forward `PciFunction::config_read`/`config_write` to it.
#[derive(Debug, Clone)]
pub struct Type0Config {
    space: ConfigSpace,
    bars: Bars,
}

impl Type0Config {
    /// A Type 0 config space holding `header`, with no BARs and no capabilities.
    pub fn new(header: &Type0Header) -> Result<Self, Error> {
        let mut space = ConfigSpace::new();
        header.common.apply(&mut space, HeaderLayout::Type0)?;
        space.set_u16(reg::SUBSYSTEM_VENDOR_ID, header.subsystem_vendor_id);
        space.set_u16(reg::SUBSYSTEM_ID, header.subsystem_id);
        Ok(Type0Config {
            space,
            bars: Bars::new(Bars::TYPE0_COUNT),
        })
    }

    /// Declares BAR `index` (0..6); a 64-bit memory BAR also takes `index + 1`.
    /// `size` is a power of two (see [`Bars::declare`]).
    pub fn add_bar(&mut self, index: u8, kind: BarKind, size: u64) -> Result<(), Error> {
        self.bars.declare(&mut self.space, index, kind, size)
    }

    /// The BAR declared at `index`, if any.
    pub fn bar(&self, index: u8) -> Option<Bar> {
        self.bars.get(index)
    }

    /// The address programmed in BAR `index`; `None` if no BAR starts there.
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        self.bars.address(&self.space, index)
    }

    /// The programmed (non-zero) BARs: a device model's
    /// `PciFunction::bar_regions` in one line.
    pub fn bar_regions(&self) -> Vec<BarRegion> {
        self.bars.regions(&self.space)
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.space.u16_at(reg::COMMAND)
    }

    /// Memory Space Enable is set.
    pub fn memory_enabled(&self) -> bool {
        self.command() & command::MEMORY_SPACE != 0
    }

    /// I/O Space Enable is set.
    pub fn io_enabled(&self) -> bool {
        self.command() & command::IO_SPACE != 0
    }

    /// Bus Master Enable is set.
    pub fn bus_master_enabled(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// The underlying config space.
    pub fn space(&self) -> &ConfigSpace {
        &self.space
    }

    /// The underlying config space, to add capabilities or set hardware state.
    pub fn space_mut(&mut self) -> &mut ConfigSpace {
        &mut self.space
    }

    /// Guest config read.
    pub fn read(&self, offset: u16, data: &mut [u8]) {
        self.space.read(offset, data)
    }

    /// Guest config write; reports command and BAR changes.
    pub fn write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let watches: [Watch; 2] = [
            (reg::COMMAND..reg::COMMAND + 2, ConfigEffects::COMMAND),
            (self.bars.register_range(), ConfigEffects::BARS),
        ];
        self.space.write_watched(offset, data, &watches)
    }
}
