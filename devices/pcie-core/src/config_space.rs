//! 4 KiB of configuration space with per-byte writable and
//! write-1-to-clear masks.

use std::fmt;
use std::ops::Range;

use crate::capability::CapabilityLayout;
use crate::ConfigEffects;

/// Size of a PCIe function's configuration space.
pub const CONFIG_SPACE_SIZE: usize = 4096;

/// A register range watched by [`ConfigSpace::write_watched`] and the effect
/// reported when any byte in it changes value.
pub type Watch = (Range<u16>, ConfigEffects);

/// The configuration space of one function.
///
/// Every byte has a value, a writable mask (bits a guest write may set or
/// clear) and a write-1-to-clear mask (bits a guest clears by writing 1).
/// Bits in neither mask are read-only to the guest. The raw setters
/// (`set_*`) bypass the masks: device models use them to build the header
/// and to reflect hardware state.
#[derive(Clone)]
pub struct ConfigSpace {
    regs: Box<[u8; CONFIG_SPACE_SIZE]>,
    writable: Box<[u8; CONFIG_SPACE_SIZE]>,
    w1c: Box<[u8; CONFIG_SPACE_SIZE]>,
    pub(crate) caps: CapabilityLayout,
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("vendor_id", &format_args!("{:#06x}", self.u16_at(0)))
            .field("device_id", &format_args!("{:#06x}", self.u16_at(2)))
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl ConfigSpace {
    /// All-zero, all read-only configuration space.
    pub fn new() -> Self {
        ConfigSpace {
            regs: Box::new([0; CONFIG_SPACE_SIZE]),
            writable: Box::new([0; CONFIG_SPACE_SIZE]),
            w1c: Box::new([0; CONFIG_SPACE_SIZE]),
            caps: CapabilityLayout::default(),
        }
    }

    /// Guest read of `data.len()` bytes at `offset`. Bytes past 4 KiB read 0xFF.
    pub fn read(&self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.regs.get(offset as usize + i).copied().unwrap_or(0xff);
        }
    }

    /// Guest write honouring the masks: read-only bits never change, writable
    /// bits take the written value, write-1-to-clear bits clear where a 1 is
    /// written. Bytes past 4 KiB are ignored.
    pub fn write(&mut self, offset: u16, data: &[u8]) {
        self.write_watched(offset, data, &[]);
    }

    /// Like [`write`](Self::write), and returns the union of the effects of
    /// every watched range in which some byte changed value.
    pub fn write_watched(&mut self, offset: u16, data: &[u8], watches: &[Watch]) -> ConfigEffects {
        let mut effects = ConfigEffects::NONE;
        for (i, &value) in data.iter().enumerate() {
            let off = offset as usize + i;
            let Some(old) = self.regs.get(off).copied() else {
                break;
            };
            let (w, c) = (self.writable[off], self.w1c[off]);
            let new = ((old & !w) | (value & w)) & !(value & c);
            if new != old {
                self.regs[off] = new;
                let off = off as u16;
                for (range, effect) in watches {
                    if range.contains(&off) {
                        effects |= *effect;
                    }
                }
            }
        }
        effects
    }

    /// Raw byte setter (ignores masks).
    ///
    /// # Panics
    /// If `offset` is past 4 KiB, like slice indexing.
    pub fn set_u8(&mut self, offset: u16, value: u8) {
        self.set_bytes(offset, &[value]);
    }

    /// Raw little-endian 16-bit setter (ignores masks).
    ///
    /// # Panics
    /// If the register runs past 4 KiB.
    pub fn set_u16(&mut self, offset: u16, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Raw little-endian 32-bit setter (ignores masks).
    ///
    /// # Panics
    /// If the register runs past 4 KiB.
    pub fn set_u32(&mut self, offset: u16, value: u32) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Raw setter for a run of bytes (ignores masks).
    ///
    /// # Panics
    /// If the run goes past 4 KiB.
    pub fn set_bytes(&mut self, offset: u16, bytes: &[u8]) {
        let start = offset as usize;
        self.regs[start..start + bytes.len()].copy_from_slice(bytes);
    }

    /// Sets the writable mask of a run of bytes. Bits made writable stop
    /// being write-1-to-clear.
    ///
    /// # Panics
    /// If the run goes past 4 KiB.
    pub fn set_writable_mask(&mut self, offset: u16, mask: &[u8]) {
        let start = offset as usize;
        for (i, &m) in mask.iter().enumerate() {
            self.writable[start + i] = m;
            self.w1c[start + i] &= !m;
        }
    }

    /// Sets the write-1-to-clear mask of a run of bytes. Bits made
    /// write-1-to-clear stop being writable.
    ///
    /// # Panics
    /// If the run goes past 4 KiB.
    pub fn set_w1c_mask(&mut self, offset: u16, mask: &[u8]) {
        let start = offset as usize;
        for (i, &m) in mask.iter().enumerate() {
            self.w1c[start + i] = m;
            self.writable[start + i] &= !m;
        }
    }

    /// The byte at `offset`; 0xFF past 4 KiB.
    pub fn u8_at(&self, offset: u16) -> u8 {
        let mut b = [0; 1];
        self.read(offset, &mut b);
        b[0]
    }

    /// The little-endian 16-bit value at `offset`; 0xFF bytes past 4 KiB.
    pub fn u16_at(&self, offset: u16) -> u16 {
        let mut b = [0; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    /// The little-endian 32-bit value at `offset`; 0xFF bytes past 4 KiB.
    pub fn u32_at(&self, offset: u16) -> u32 {
        let mut b = [0; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// The writable mask of the byte at `offset` (0 past 4 KiB).
    pub fn writable_mask_at(&self, offset: u16) -> u8 {
        self.writable.get(offset as usize).copied().unwrap_or(0)
    }

    /// The write-1-to-clear mask of the byte at `offset` (0 past 4 KiB).
    pub fn w1c_mask_at(&self, offset: u16) -> u8 {
        self.w1c.get(offset as usize).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_end_are_all_ones() {
        let mut cs = ConfigSpace::new();
        cs.set_u8(0xfff, 0x5a);
        let mut b = [0; 4];
        cs.read(0xffe, &mut b);
        assert_eq!(b, [0, 0x5a, 0xff, 0xff]);
        assert_eq!(cs.u32_at(0x1000), 0xffff_ffff);
    }

    #[test]
    fn write_past_end_is_ignored() {
        let mut cs = ConfigSpace::new();
        cs.set_writable_mask(0xffe, &[0xff, 0xff]);
        cs.write(0xffe, &[1, 2, 3, 4]);
        assert_eq!(cs.u16_at(0xffe), 0x0201);
    }

    #[test]
    fn masks_are_disjoint_last_setter_wins() {
        let mut cs = ConfigSpace::new();
        cs.set_writable_mask(0x40, &[0xff]);
        cs.set_w1c_mask(0x40, &[0x0f]);
        assert_eq!(cs.writable_mask_at(0x40), 0xf0);
        assert_eq!(cs.w1c_mask_at(0x40), 0x0f);
        cs.set_u8(0x40, 0x0f);
        cs.write(0x40, &[0xa5]);
        // high nibble written, low nibble: bits 0 and 2 cleared.
        assert_eq!(cs.u8_at(0x40), 0xa0 | 0x0a);
    }

    #[test]
    fn watched_ranges_report_only_real_changes() {
        let mut cs = ConfigSpace::new();
        cs.set_writable_mask(0x04, &[0xff]);
        let w = [(0x04..0x06, ConfigEffects::COMMAND)];
        assert!(cs.write_watched(0x04, &[1], &w).command_changed());
        assert!(cs.write_watched(0x04, &[1], &w).is_empty());
        assert!(cs.write_watched(0x05, &[1], &w).is_empty()); // read-only byte
    }
}
