//! Root table → context table → second-level page table (VT-d 3.4, 9.1,
//! 9.3, 9.8): what the unit reads from memory to translate a request, and
//! the fault reason when it cannot.

use pcie_core::GuestRam;

use crate::regs::ADDRESS_WIDTH;

/// Why a request was not translated (VT-d Appendix A, legacy reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FaultReason {
    /// The root entry for the bus is not present.
    RootNotPresent = 0x01,
    /// The context entry for the device is not present.
    ContextNotPresent = 0x02,
    /// The context entry is programmed wrong (address width).
    ContextInvalid = 0x03,
    /// The address is beyond the guest address width.
    AddressBeyondMgaw = 0x04,
    /// A write to a page without write permission (or not present).
    NoWrite = 0x05,
    /// A read from a page without read permission (or not present).
    NoRead = 0x06,
    /// A next-level table pointer beyond the host address width, or not
    /// in memory.
    TableAddressInvalid = 0x07,
    /// The root table address is not in memory.
    RootTableInvalid = 0x08,
    /// The context table pointer is not in memory.
    ContextTableInvalid = 0x09,
    /// A reserved field set in a root entry.
    RootReserved = 0x0a,
    /// A reserved field set in a context entry.
    ContextReserved = 0x0b,
    /// A reserved field set in a second-level entry.
    PteReserved = 0x0c,
    /// A translation type the unit does not support.
    TranslationType = 0x0d,
}

/// A present context entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context {
    /// Fault Processing Disable: faults are not recorded.
    pub fpd: bool,
    /// Pass-through (TT = 10b): addresses are not translated.
    pub pass_through: bool,
    /// The second-level page table (level 4) address.
    pub table: u64,
    /// Domain identifier.
    pub domain: u16,
}

/// A translated page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    /// The 4 KiB page's host (guest physical) address.
    pub addr: u64,
    /// Reads allowed.
    pub read: bool,
    /// Writes allowed.
    pub write: bool,
}

const PRESENT: u64 = 1;
const ADDR_MASK: u64 = ((1 << ADDRESS_WIDTH) - 1) & !0xfff;
/// Second-level entry bits this unit treats as reserved: bits 51:48 of
/// the address (beyond the host address width) and the superpage bit
/// (no superpages: CAP.SLLPS is 0).
const PTE_RESERVED: u64 = 0x000f_0000_0000_0000 | 1 << 7;

fn read_u64(ram: &dyn GuestRam, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    ram.read(addr, &mut b).then(|| u64::from_le_bytes(b))
}

/// The context entry of `rid` (bus in bits 15:8, devfn in 7:0) under the
/// root table at `root`.
pub fn context(ram: &dyn GuestRam, root: u64, rid: u16) -> Result<Context, FaultReason> {
    let bus = u64::from(rid >> 8);
    let re = read_u64(ram, root + bus * 16).ok_or(FaultReason::RootTableInvalid)?;
    let re_hi = read_u64(ram, root + bus * 16 + 8).ok_or(FaultReason::RootTableInvalid)?;
    if re & PRESENT == 0 {
        return Err(FaultReason::RootNotPresent);
    }
    // Bits 11:1 and 63:48 of the low half, and the whole high half
    // (legacy mode) are reserved.
    if re & 0xffe != 0 || re >> ADDRESS_WIDTH != 0 || re_hi != 0 {
        return Err(FaultReason::RootReserved);
    }
    let ct = (re & ADDR_MASK) + u64::from(rid & 0xff) * 16;
    let lo = read_u64(ram, ct).ok_or(FaultReason::ContextTableInvalid)?;
    let hi = read_u64(ram, ct + 8).ok_or(FaultReason::ContextTableInvalid)?;
    if lo & PRESENT == 0 {
        return Err(FaultReason::ContextNotPresent);
    }
    // Low: bits 11:4 reserved; high: bit 7 and bits 63:24 reserved
    // (6:3 are ignored).
    if lo & 0xff0 != 0 || lo >> ADDRESS_WIDTH != 0 || hi & 0x80 != 0 || hi >> 24 != 0 {
        return Err(FaultReason::ContextReserved);
    }
    let pass_through = match (lo >> 2) & 3 {
        0 => false,
        2 => true,
        // 01b needs device TLBs (ATS), 11b is reserved.
        _ => return Err(FaultReason::TranslationType),
    };
    // Address width: 010b = 48 bits, 4 levels, the only one in SAGAW
    // (ignored for pass-through).
    if !pass_through && hi & 7 != 2 {
        return Err(FaultReason::ContextInvalid);
    }
    Ok(Context {
        fpd: lo & 2 != 0,
        pass_through,
        table: lo & ADDR_MASK,
        domain: (hi >> 8) as u16,
    })
}

/// Walks the 4-level second-level table at `table` for `iova`. A
/// non-present entry at any level faults as a permission fault of the
/// request's kind, as the specification says.
pub fn walk(ram: &dyn GuestRam, table: u64, iova: u64, write: bool) -> Result<Page, FaultReason> {
    if iova >> ADDRESS_WIDTH != 0 {
        return Err(FaultReason::AddressBeyondMgaw);
    }
    let denied = if write {
        FaultReason::NoWrite
    } else {
        FaultReason::NoRead
    };
    let mut at = table;
    let (mut read, mut writable) = (true, true);
    for level in (1..=4u32).rev() {
        let index = (iova >> (12 + 9 * (level - 1))) & 0x1ff;
        let e = read_u64(ram, at + index * 8).ok_or(FaultReason::TableAddressInvalid)?;
        if e & 3 == 0 {
            return Err(denied);
        }
        if e & PTE_RESERVED != 0 {
            return Err(FaultReason::PteReserved);
        }
        read &= e & 1 != 0;
        writable &= e & 2 != 0;
        at = e & ADDR_MASK;
    }
    if (write && !writable) || (!write && !read) {
        return Err(denied);
    }
    Ok(Page {
        addr: at,
        read,
        write: writable,
    })
}
