//! A command's data pointer resolved to segments ([`data_segments`]), and
//! moving data through them ([`scatter`], [`gather`]).

use crate::mem::BusMemory;
use crate::sqe::Command;
use crate::Status;

/// One piece of a transfer: `len` bytes at bus address `addr`; for an SGL
/// Bit Bucket, `len` bytes of read data the controller discards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Bus address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// An SGL Bit Bucket: no memory behind it.
    pub bit_bucket: bool,
}

/// Resolves `cmd`'s data pointer for a `len`-byte transfer: PRPs when
/// PSDT is 0; an SGL when PSDT is 1 and `sgl_supported`; otherwise
/// INVALID_FIELD. `page_size` is CC.MPS's page size.
pub fn data_segments(
    mem: &dyn BusMemory,
    cmd: &Command,
    len: u64,
    page_size: u64,
    sgl_supported: bool,
) -> Result<Vec<Segment>, Status> {
    match cmd.psdt {
        0 => crate::prp::prp_segments(mem, cmd.prp1(), cmd.prp2(), len, page_size),
        1 if sgl_supported => crate::sgl::sgl_segments(mem, &cmd.dptr, len),
        _ => Err(Status::INVALID_FIELD),
    }
}

/// Copies `buf` out to host memory along `segs` (a Read): Bit Buckets
/// skip their bytes. A failed access is DATA_TRANSFER_ERROR.
pub fn scatter(mem: &dyn BusMemory, segs: &[Segment], buf: &[u8]) -> Result<(), Status> {
    let mut done = 0usize;
    for s in segs {
        if done >= buf.len() {
            break;
        }
        let n = usize::try_from(s.len)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        if !s.bit_bucket {
            mem.write(s.addr, &buf[done..done + n])
                .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        }
        done += n;
    }
    if done < buf.len() {
        return Err(Status::DATA_SGL_LENGTH_INVALID);
    }
    Ok(())
}

/// Fills `buf` from host memory along `segs` (a Write). A Bit Bucket has
/// no data to give: SGL_DESCRIPTOR_TYPE_INVALID. A failed access is
/// DATA_TRANSFER_ERROR.
pub fn gather(mem: &dyn BusMemory, segs: &[Segment], buf: &mut [u8]) -> Result<(), Status> {
    let mut done = 0usize;
    for s in segs {
        if done >= buf.len() {
            break;
        }
        if s.bit_bucket {
            return Err(Status::SGL_DESCRIPTOR_TYPE_INVALID);
        }
        let n = usize::try_from(s.len)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        mem.read(s.addr, &mut buf[done..done + n])
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        done += n;
    }
    if done < buf.len() {
        return Err(Status::DATA_SGL_LENGTH_INVALID);
    }
    Ok(())
}

/// Appends `len` bytes at `addr` to `segs`, merging with the last segment
/// when contiguous.
pub(crate) fn push(segs: &mut Vec<Segment>, addr: u64, len: u64, bit_bucket: bool) {
    if len == 0 {
        return;
    }
    if let Some(last) = segs.last_mut() {
        if last.bit_bucket == bit_bucket
            && (bit_bucket || last.addr.checked_add(last.len) == Some(addr))
        {
            last.len += len;
            return;
        }
    }
    segs.push(Segment {
        addr,
        len,
        bit_bucket,
    });
}
