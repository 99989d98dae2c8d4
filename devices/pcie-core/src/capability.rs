//! Capability chains: standard capabilities from 0x40 (linked through the
//! capabilities pointer at 0x34) and extended capabilities from 0x100.

use crate::header::{reg, status};
use crate::{ConfigSpace, Error};

/// Standard capability IDs.
pub mod cap_id {
    /// PCI Power Management.
    pub const POWER_MANAGEMENT: u8 = 0x01;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor specific.
    pub const VENDOR_SPECIFIC: u8 = 0x09;
    /// Subsystem vendor ID (for Type 1 headers, which have no subsystem registers).
    pub const SUBSYSTEM_VENDOR_ID: u8 = 0x0d;
    /// PCI Express.
    pub const PCI_EXPRESS: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// Extended capability IDs.
pub mod ext_cap_id {
    /// Advanced Error Reporting.
    pub const AER: u16 = 0x0001;
    /// Access Control Services.
    pub const ACS: u16 = 0x000d;
    /// Alternative Routing-ID Interpretation.
    pub const ARI: u16 = 0x000e;
    /// Vendor-specific extended capability.
    pub const VENDOR_SPECIFIC: u16 = 0x000b;
}

/// Start of the standard capability area.
pub const STD_CAP_START: u16 = 0x40;
/// End (exclusive) of the standard area, start of the extended one.
pub const EXT_CAP_START: u16 = 0x100;
/// End (exclusive) of the extended area.
pub const EXT_CAP_END: u16 = 0x1000;

/// Most standard capabilities a walk visits before giving up (as Linux).
const STD_TTL: u16 = 48;
/// Most extended capabilities a walk visits: (4096 - 256) / 8.
const EXT_TTL: u16 = 480;

/// Where the next capability of each chain goes, and which one to link it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapabilityLayout {
    std_next: u16,
    std_tail: Option<u16>,
    ext_next: u16,
    ext_tail: Option<u16>,
}

impl Default for CapabilityLayout {
    fn default() -> Self {
        CapabilityLayout {
            std_next: STD_CAP_START,
            std_tail: None,
            ext_next: EXT_CAP_START,
            ext_tail: None,
        }
    }
}

const fn align4(x: usize) -> usize {
    (x + 3) & !3
}

impl ConfigSpace {
    /// Appends a standard capability: a 2-byte header (`id`, next pointer)
    /// followed by `body`, whose bytes get `writable` as their writable mask
    /// (same length as `body`). Links it into the chain, sets the status
    /// register's Capabilities List bit and returns the capability's offset.
    /// Set write-1-to-clear bits afterwards with [`set_w1c_mask`](Self::set_w1c_mask).
    pub fn add_capability(&mut self, id: u8, body: &[u8], writable: &[u8]) -> Result<u16, Error> {
        check_mask(body, writable)?;
        let offset = self.caps.std_next;
        let len = 2 + body.len();
        if offset as usize + len > EXT_CAP_START as usize {
            return Err(Error::CapabilitySpaceFull {
                offset,
                len,
                end: EXT_CAP_START,
            });
        }
        self.set_bytes(offset, &[id, 0]);
        self.set_writable_mask(offset, &[0, 0]);
        self.set_bytes(offset + 2, body);
        self.set_writable_mask(offset + 2, writable);
        let link = match self.caps.std_tail {
            Some(tail) => tail + 1,
            None => reg::CAPABILITIES_POINTER,
        };
        self.set_u8(link, offset as u8);
        self.set_u16(
            reg::STATUS,
            self.u16_at(reg::STATUS) | status::CAPABILITIES_LIST,
        );
        self.caps.std_tail = Some(offset);
        self.caps.std_next = align4(offset as usize + len) as u16;
        Ok(offset)
    }

    /// Appends an extended capability: a 32-bit header (`id` in bits 15:0,
    /// `version` in 19:16, next offset in 31:20) followed by `body`, whose
    /// bytes get `writable` as their writable mask. The first one lands at
    /// 0x100. Returns the capability's offset.
    pub fn add_ext_capability(
        &mut self,
        id: u16,
        version: u8,
        body: &[u8],
        writable: &[u8],
    ) -> Result<u16, Error> {
        if version > 0xf {
            return Err(Error::InvalidCapabilityVersion(version));
        }
        check_mask(body, writable)?;
        let offset = self.caps.ext_next;
        let len = 4 + body.len();
        if offset as usize + len > EXT_CAP_END as usize {
            return Err(Error::CapabilitySpaceFull {
                offset,
                len,
                end: EXT_CAP_END,
            });
        }
        self.set_u32(offset, id as u32 | (version as u32) << 16);
        self.set_writable_mask(offset, &[0; 4]);
        self.set_bytes(offset + 4, body);
        self.set_writable_mask(offset + 4, writable);
        if let Some(tail) = self.caps.ext_tail {
            let header = self.u32_at(tail) & 0x000f_ffff;
            self.set_u32(tail, header | (offset as u32) << 20);
        }
        self.caps.ext_tail = Some(offset);
        self.caps.ext_next = align4(offset as usize + len) as u16;
        Ok(offset)
    }

    /// Walks the standard capability chain.
    pub fn capabilities(&self) -> Capabilities<impl Fn(u16) -> u32 + '_> {
        capabilities(|off| self.u32_at(off))
    }

    /// Walks the extended capability chain.
    pub fn ext_capabilities(&self) -> ExtCapabilities<impl Fn(u16) -> u32 + '_> {
        ext_capabilities(|off| self.u32_at(off))
    }

    /// Offset of the first standard capability with this ID.
    pub fn find_capability(&self, id: u8) -> Option<u16> {
        self.capabilities().find(|c| c.id == id).map(|c| c.offset)
    }

    /// Offset of the first extended capability with this ID.
    pub fn find_ext_capability(&self, id: u16) -> Option<u16> {
        self.ext_capabilities()
            .find(|c| c.id == id)
            .map(|c| c.offset)
    }
}

fn check_mask(body: &[u8], writable: &[u8]) -> Result<(), Error> {
    if body.len() != writable.len() {
        return Err(Error::MaskLength {
            body: body.len(),
            mask: writable.len(),
        });
    }
    Ok(())
}

/// A standard capability found by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapabilityRef {
    /// Capability ID.
    pub id: u8,
    /// Offset of its header.
    pub offset: u16,
}

/// An extended capability found by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtCapabilityRef {
    /// Extended capability ID.
    pub id: u16,
    /// Capability version.
    pub version: u8,
    /// Offset of its header.
    pub offset: u16,
}

/// Iterator over a standard capability chain; see [`capabilities`].
#[derive(Debug, Clone)]
pub struct Capabilities<F> {
    read_dword: F,
    next: u16,
    ttl: u16,
}

/// Walks a standard capability chain through `read_dword` (a config-space
/// dword read at a dword-aligned offset), as an OS does: nothing unless the
/// status register's Capabilities List bit is set, then from the pointer at
/// 0x34. Stops at a pointer below 0x40, an ID of 0xFF, or after 48 entries,
/// so a looping chain still terminates.
pub fn capabilities<F: Fn(u16) -> u32>(read_dword: F) -> Capabilities<F> {
    let status = (read_dword(reg::COMMAND) >> 16) as u16;
    let next = if status & status::CAPABILITIES_LIST != 0 {
        (read_dword(reg::CAPABILITIES_POINTER) & 0xfc) as u16
    } else {
        0
    };
    Capabilities {
        read_dword,
        next,
        ttl: STD_TTL,
    }
}

impl<F: Fn(u16) -> u32> Iterator for Capabilities<F> {
    type Item = CapabilityRef;

    fn next(&mut self) -> Option<CapabilityRef> {
        if self.next < STD_CAP_START || self.ttl == 0 {
            return None;
        }
        let offset = self.next;
        let header = (self.read_dword)(offset);
        let id = header as u8;
        if id == 0xff {
            self.next = 0;
            return None;
        }
        self.ttl -= 1;
        self.next = ((header >> 8) & 0xfc) as u16;
        Some(CapabilityRef { id, offset })
    }
}

/// Iterator over an extended capability chain; see [`ext_capabilities`].
#[derive(Debug, Clone)]
pub struct ExtCapabilities<F> {
    read_dword: F,
    next: u16,
    ttl: u16,
}

/// Walks an extended capability chain from 0x100 through `read_dword`.
/// A header of all zeros (no extended capabilities) or all ones ends it, as
/// do a next offset below 0x100 and a limit of 480 entries.
pub fn ext_capabilities<F: Fn(u16) -> u32>(read_dword: F) -> ExtCapabilities<F> {
    ExtCapabilities {
        read_dword,
        next: EXT_CAP_START,
        ttl: EXT_TTL,
    }
}

impl<F: Fn(u16) -> u32> Iterator for ExtCapabilities<F> {
    type Item = ExtCapabilityRef;

    fn next(&mut self) -> Option<ExtCapabilityRef> {
        if self.next < EXT_CAP_START || self.ttl == 0 {
            return None;
        }
        let offset = self.next;
        let header = (self.read_dword)(offset);
        if header == 0 || header == 0xffff_ffff {
            self.next = 0;
            return None;
        }
        self.ttl -= 1;
        self.next = ((header >> 20) & 0xffc) as u16;
        Some(ExtCapabilityRef {
            id: header as u16,
            version: ((header >> 16) & 0xf) as u8,
            offset,
        })
    }
}
