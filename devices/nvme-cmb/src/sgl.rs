//! Scatter Gather Lists (NVMe Base 1.4, §4.4).

use crate::dptr::{push, Segment};
use crate::mem::BusMemory;
use crate::Status;

/// The most descriptors one command's SGL may hold (every segment
/// counted): a longer or looping chain is INVALID_SGL_DESCRIPTOR_COUNT.
pub const MAX_DESCRIPTORS: usize = 4096;

/// Descriptor types (byte 15, bits 7:4).
pub mod desc_type {
    /// SGL Data Block.
    pub const DATA_BLOCK: u8 = 0x0;
    /// SGL Bit Bucket.
    pub const BIT_BUCKET: u8 = 0x1;
    /// SGL Segment.
    pub const SEGMENT: u8 = 0x2;
    /// SGL Last Segment.
    pub const LAST_SEGMENT: u8 = 0x3;
}

/// Bytes in a descriptor.
pub const DESCRIPTOR_SIZE: usize = 16;

/// A decoded descriptor: type, address, length.
fn decode(d: &[u8]) -> Result<(u8, u64, u64), Status> {
    let id = d[15];
    if id & 0xf != 0 {
        // Only the "address" subtype.
        return Err(Status::SGL_DESCRIPTOR_TYPE_INVALID);
    }
    let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let len = u64::from(u32::from_le_bytes([d[8], d[9], d[10], d[11]]));
    Ok((id >> 4, addr, len))
}

/// Resolves SGL1 for a `len`-byte transfer: Data Block and Bit Bucket
/// descriptors become segments, Segment and Last Segment descriptors are
/// followed (one read per segment list). Fewer data bytes than `len` is
/// DATA_SGL_LENGTH_INVALID; more are cut at `len`.
pub fn sgl_segments(
    mem: &dyn BusMemory,
    sgl1: &[u8; 16],
    len: u64,
) -> Result<Vec<Segment>, Status> {
    let mut segs = Vec::new();
    let mut have = 0u64;
    let mut seen = 0usize;
    // Adds a data or bit-bucket descriptor; true once `len` is covered.
    let add = |segs: &mut Vec<Segment>, have: &mut u64, t: u8, addr: u64, n: u64| -> bool {
        let n = n.min(len - *have);
        push(segs, addr, n, t == desc_type::BIT_BUCKET);
        *have += n;
        *have >= len
    };
    let (t, addr, n) = decode(sgl1)?;
    let mut next = match t {
        desc_type::DATA_BLOCK | desc_type::BIT_BUCKET => {
            add(&mut segs, &mut have, t, addr, n);
            None
        }
        desc_type::SEGMENT | desc_type::LAST_SEGMENT => Some((t, addr, n)),
        _ => return Err(Status::SGL_DESCRIPTOR_TYPE_INVALID),
    };
    while let Some((kind, addr, bytes)) = next.take() {
        if have >= len {
            break;
        }
        if bytes == 0 || bytes % DESCRIPTOR_SIZE as u64 != 0 {
            return Err(Status::INVALID_SGL_SEGMENT_DESCRIPTOR);
        }
        let count = (bytes / DESCRIPTOR_SIZE as u64) as usize;
        seen = seen.saturating_add(count);
        if seen > MAX_DESCRIPTORS {
            return Err(Status::INVALID_SGL_DESCRIPTOR_COUNT);
        }
        let mut raw = vec![0u8; count * DESCRIPTOR_SIZE];
        mem.read(addr, &mut raw)
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        for (i, d) in raw.chunks_exact(DESCRIPTOR_SIZE).enumerate() {
            let (t, a, n) = decode(d)?;
            match t {
                desc_type::DATA_BLOCK | desc_type::BIT_BUCKET => {
                    if add(&mut segs, &mut have, t, a, n) {
                        break;
                    }
                }
                // A segment pointer only as the last descriptor of a
                // Segment (not of a Last Segment).
                desc_type::SEGMENT | desc_type::LAST_SEGMENT
                    if i + 1 == count && kind == desc_type::SEGMENT =>
                {
                    next = Some((t, a, n));
                }
                desc_type::SEGMENT | desc_type::LAST_SEGMENT => {
                    return Err(Status::INVALID_SGL_SEGMENT_DESCRIPTOR)
                }
                _ => return Err(Status::SGL_DESCRIPTOR_TYPE_INVALID),
            }
        }
    }
    if have < len {
        return Err(Status::DATA_SGL_LENGTH_INVALID);
    }
    Ok(segs)
}
