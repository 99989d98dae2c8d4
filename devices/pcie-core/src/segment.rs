//! A PCI segment: the functions reachable through one ECAM window, by address.
//!
//! Flat: every function inserted answers at its BDF. The [`crate::Fabric`]
//! routes Type 1 accesses through bridges instead.

use std::collections::BTreeMap;

use crate::{ecam_decode, Bdf, ConfigEffects, Error, PciFunction};

/// The functions of one PCI segment, keyed by address.
#[derive(Default)]
pub struct Segment {
    functions: BTreeMap<Bdf, Box<dyn PciFunction>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.functions.keys()).finish()
    }
}

impl Segment {
    /// An empty segment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `function` at `bdf`; fails if the address is taken.
    pub fn insert(&mut self, bdf: Bdf, function: Box<dyn PciFunction>) -> Result<(), Error> {
        if self.functions.contains_key(&bdf) {
            return Err(Error::DuplicateFunction(bdf));
        }
        self.functions.insert(bdf, function);
        Ok(())
    }

    /// Takes the function at `bdf` out of the segment.
    pub fn remove(&mut self, bdf: Bdf) -> Option<Box<dyn PciFunction>> {
        self.functions.remove(&bdf)
    }

    /// Whether a function answers at `bdf`.
    pub fn contains(&self, bdf: Bdf) -> bool {
        self.functions.contains_key(&bdf)
    }

    /// The function at `bdf`.
    pub fn get(&self, bdf: Bdf) -> Option<&dyn PciFunction> {
        self.functions.get(&bdf).map(|f| &**f)
    }

    /// The function at `bdf`, mutably (for BAR accesses and resets).
    pub fn get_mut(&mut self, bdf: Bdf) -> Option<&mut (dyn PciFunction + 'static)> {
        self.functions.get_mut(&bdf).map(|f| &mut **f)
    }

    /// Addresses of all functions, in enumeration order.
    pub fn bdfs(&self) -> impl Iterator<Item = Bdf> + '_ {
        self.functions.keys().copied()
    }

    /// Config read of register `reg` of `bdf`; all ones if nothing answers there.
    pub fn config_read(&self, bdf: Bdf, reg: u16, data: &mut [u8]) {
        match self.functions.get(&bdf) {
            Some(f) => f.config_read(reg, data),
            None => data.fill(0xff),
        }
    }

    /// Config write to register `reg` of `bdf`; ignored if nothing answers there.
    pub fn config_write(&mut self, bdf: Bdf, reg: u16, data: &[u8]) -> ConfigEffects {
        match self.functions.get_mut(&bdf) {
            Some(f) => f.config_write(reg, data),
            None => ConfigEffects::NONE,
        }
    }

    /// Config read at `offset` into this segment's ECAM window; all ones
    /// outside the window or where nothing answers.
    pub fn ecam_read(&self, offset: u64, data: &mut [u8]) {
        match ecam_decode(offset) {
            Some((bdf, reg)) => self.config_read(bdf, reg, data),
            None => data.fill(0xff),
        }
    }

    /// Config write at `offset` into this segment's ECAM window. Returns the
    /// function written, if any, and what changed.
    pub fn ecam_write(&mut self, offset: u64, data: &[u8]) -> Option<(Bdf, ConfigEffects)> {
        let (bdf, reg) = ecam_decode(offset)?;
        self.contains(bdf)
            .then(|| (bdf, self.config_write(bdf, reg, data)))
    }
}
