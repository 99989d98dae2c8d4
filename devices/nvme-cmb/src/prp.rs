//! Physical Region Page entries and lists (NVMe Base 1.4, §4.3).

use crate::dptr::{push, Segment};
use crate::mem::BusMemory;
use crate::Status;

/// Resolves PRP1/PRP2 for a `len`-byte transfer with `page_size` pages.
///
/// PRP1 may start anywhere dword aligned in its page. When the transfer
/// needs a second page only, PRP2 is that page; when it needs more, PRP2
/// points to a PRP list (dword aligned, possibly with an offset), whose
/// last entry in each list page chains to the next list page when more
/// entries follow. Every entry but PRP1 must be page aligned. The entries
/// read are bounded by the pages the transfer needs, so a hostile list
/// cannot loop.
pub fn prp_segments(
    mem: &dyn BusMemory,
    prp1: u64,
    prp2: u64,
    len: u64,
    page_size: u64,
) -> Result<Vec<Segment>, Status> {
    let mut segs = Vec::new();
    if len == 0 {
        return Ok(segs);
    }
    if page_size < 8 || !page_size.is_power_of_two() {
        return Err(Status::INVALID_FIELD);
    }
    if prp1 & 3 != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    let first = (page_size - prp1 % page_size).min(len);
    push(&mut segs, prp1, first, false);
    let mut left = len - first;
    if left == 0 {
        return Ok(segs);
    }
    let aligned = |p: u64| {
        if p.is_multiple_of(page_size) {
            Ok(p)
        } else {
            Err(Status::PRP_OFFSET_INVALID)
        }
    };
    if left <= page_size {
        push(&mut segs, aligned(prp2)?, left, false);
        return Ok(segs);
    }
    // A PRP list: entries from prp2 to the end of its page, the last one
    // chaining on when more entries are needed than the page holds.
    if prp2 & 3 != 0 || prp2 & 7 != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    let mut list = prp2;
    let mut entries = Vec::new();
    while left > 0 {
        let in_page = ((page_size - list % page_size) / 8) as usize;
        let needed = usize::try_from(left.div_ceil(page_size)).unwrap_or(usize::MAX);
        // All remaining entries fit in this list page, or its last entry
        // points to the next one.
        let (take, chain) = if needed <= in_page {
            (needed, false)
        } else {
            (in_page, true)
        };
        entries.resize(take, 0u64);
        let mut raw = vec![0u8; take * 8];
        mem.read(list, &mut raw)
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        for (e, b) in entries.iter_mut().zip(raw.chunks_exact(8)) {
            *e = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        }
        let data = if chain { take - 1 } else { take };
        for &e in &entries[..data] {
            let n = left.min(page_size);
            push(&mut segs, aligned(e)?, n, false);
            left -= n;
        }
        if chain {
            list = aligned(entries[take - 1])?;
        }
    }
    Ok(segs)
}
