//! Queued invalidation descriptors (VT-d 6.5.2), 128 bits each: the
//! parser of what the guest puts in the invalidation queue.

/// What an invalidation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything.
    Global,
    /// One domain.
    Domain(u16),
    /// Context cache: the devices of one domain whose source ID matches
    /// `sid` under the function mask (`mask` low bits of the devfn ignored).
    Device {
        /// The domain.
        domain: u16,
        /// Source ID.
        sid: u16,
        /// How many low devfn bits to ignore (0 to 3).
        mask: u8,
    },
    /// IOTLB: 2^`order` pages from `addr` (aligned to their size) of a
    /// domain.
    Pages {
        /// The domain.
        domain: u16,
        /// First page address.
        addr: u64,
        /// log2 of the page count.
        order: u8,
    },
}

/// One decoded descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Descriptor {
    /// Context-cache invalidate (type 1).
    Context(Scope),
    /// IOTLB invalidate (type 2).
    Iotlb(Scope),
    /// Invalidation wait (type 5): write `data` at `addr` when `status`
    /// is set, raise the invalidation event when `interrupt` is set.
    Wait {
        /// Status Write.
        status: bool,
        /// Interrupt Flag.
        interrupt: bool,
        /// Status data.
        data: u32,
        /// Status address (4-byte aligned).
        addr: u64,
    },
}

/// Why a descriptor is refused (the queue stops with IQE set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// A type this unit does not support (device-TLB, interrupt entry,
    /// PASID, or an unknown one).
    Type(u8),
    /// A reserved granularity, or an address mask beyond CAP.MAMV, or an
    /// address not aligned to its mask.
    Granularity,
    /// Reserved bits set.
    Reserved,
}

/// Decodes the descriptor `lo`, `hi` (its two quadwords). `mamv` is the
/// largest address mask page-selective IOTLB invalidation accepts.
pub fn parse(lo: u64, hi: u64, mamv: u8) -> Result<Descriptor, Invalid> {
    let ty = (lo & 0xf) as u8 | (((lo >> 9) & 0x7) as u8) << 4;
    let gran = (lo >> 4) & 3;
    let did = (lo >> 16) as u16;
    match ty {
        1 => {
            // Bits 8:6, 15:12, 63:50 and the whole high half are reserved.
            if lo & 0xfffc_0000_0000_f1c0 != 0 || hi != 0 {
                return Err(Invalid::Reserved);
            }
            let sid = (lo >> 32) as u16;
            let mask = ((lo >> 48) & 3) as u8;
            let scope = match gran {
                1 => Scope::Global,
                2 => Scope::Domain(did),
                3 => Scope::Device {
                    domain: did,
                    sid,
                    mask,
                },
                _ => return Err(Invalid::Granularity),
            };
            Ok(Descriptor::Context(scope))
        }
        2 => {
            // Low: bits 8, 15:12, 63:32 reserved; high: 11:7 reserved.
            if lo & 0xffff_ffff_0000_f100 != 0 || hi & 0xf80 != 0 {
                return Err(Invalid::Reserved);
            }
            let scope = match gran {
                1 => Scope::Global,
                2 => Scope::Domain(did),
                3 => {
                    let order = (hi & 0x3f) as u8;
                    let addr = hi & !0xfff;
                    let pages = 1u64.checked_shl(u32::from(order)).unwrap_or(0);
                    if order > mamv || !(addr >> 12).is_multiple_of(pages.max(1)) || pages == 0 {
                        return Err(Invalid::Granularity);
                    }
                    Scope::Pages {
                        domain: did,
                        addr,
                        order,
                    }
                }
                _ => return Err(Invalid::Granularity),
            };
            Ok(Descriptor::Iotlb(scope))
        }
        5 => {
            // Bits 8:7 and 31:12 reserved (PD, FN are ignored); the
            // status address is 4-byte aligned (bits 1:0 reserved).
            if lo & 0xffff_f180 != 0 || hi & 3 != 0 {
                return Err(Invalid::Reserved);
            }
            Ok(Descriptor::Wait {
                interrupt: lo & 1 << 4 != 0,
                status: lo & 1 << 5 != 0,
                data: (lo >> 32) as u32,
                addr: hi,
            })
        }
        other => Err(Invalid::Type(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Encodings as Linux's drivers/iommu/intel/ builds them (QI_CC_*,
    // QI_IOTLB_*, QI_IWD_*), written out from the specification's layout.
    #[test]
    fn linux_descriptors_decode() {
        // Context-cache global: type 1, granularity 1 (bits 5:4).
        assert_eq!(parse(0x11, 0, 9), Ok(Descriptor::Context(Scope::Global)));
        // Domain 5.
        assert_eq!(
            parse(0x21 | 5 << 16, 0, 9),
            Ok(Descriptor::Context(Scope::Domain(5)))
        );
        // Device: domain 5, source 0x0300, function mask 0.
        assert_eq!(
            parse(0x31 | 5 << 16 | 0x0300 << 32, 0, 9),
            Ok(Descriptor::Context(Scope::Device {
                domain: 5,
                sid: 0x300,
                mask: 0
            }))
        );
        // IOTLB global with drain read/write (bits 7:6).
        assert_eq!(
            parse(0x12 | 3 << 6, 0, 9),
            Ok(Descriptor::Iotlb(Scope::Global))
        );
        // Page-selective: domain 1, 4 pages at 0x10000 (AM = 2), IH.
        assert_eq!(
            parse(0x32 | 1 << 16, 0x10000 | 1 << 6 | 2, 9),
            Ok(Descriptor::Iotlb(Scope::Pages {
                domain: 1,
                addr: 0x10000,
                order: 2
            }))
        );
        // Wait with status write of 1 to 0x8000.
        assert_eq!(
            parse(0x25 | 1 << 32, 0x8000, 9),
            Ok(Descriptor::Wait {
                status: true,
                interrupt: false,
                data: 1,
                addr: 0x8000
            })
        );
    }

    #[test]
    fn bad_descriptors_are_refused() {
        assert_eq!(parse(0x01, 0, 9), Err(Invalid::Granularity));
        assert_eq!(parse(0x02, 0, 9), Err(Invalid::Granularity));
        assert_eq!(parse(0x11, 1, 9), Err(Invalid::Reserved));
        // Mask beyond MAMV, misaligned address.
        assert_eq!(parse(0x32, 10, 9), Err(Invalid::Granularity));
        assert_eq!(parse(0x32, 0x1000 | 1, 9), Err(Invalid::Granularity));
        // Device-TLB (3), interrupt entry cache (4), PASID (6, 7), and
        // type bits 11:9 (scalable-mode types 0x10+).
        for t in [0u64, 3, 4, 6, 7, 8, 15] {
            assert_eq!(parse(t | 0x10, 0, 9), Err(Invalid::Type(t as u8)));
        }
        assert_eq!(parse(0x1 << 9 | 0x1 | 0x10, 0, 9), Err(Invalid::Type(0x11)));
        assert_eq!(parse(0x25, 0x8002, 9), Err(Invalid::Reserved));
    }
}
