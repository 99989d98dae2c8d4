//! Fuzzes the data-pointer parsers directly: PRP entries and lists, SGL
//! descriptors and segments, over a memory the input fills, then moving
//! data along the segments; and SQE/CQE decoding. Never panics; a
//! resolved pointer covers exactly the transfer length.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nvme_cmb::dptr::{data_segments, gather, scatter};
use nvme_cmb::mem::{BusMemory, MemError};
use nvme_cmb::sqe::{Command, Completion, CQE_SIZE, SQE_SIZE};
use std::cell::RefCell;

/// Memory at bus addresses `base..base + len`.
struct Mem {
    base: u64,
    bytes: RefCell<Vec<u8>>,
}

impl Mem {
    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, MemError> {
        let off = addr.checked_sub(self.base).ok_or(MemError)?;
        let off = usize::try_from(off).map_err(|_| MemError)?;
        let end = off.checked_add(len).ok_or(MemError)?;
        (end <= self.bytes.borrow().len())
            .then_some(off..end)
            .ok_or(MemError)
    }
}

impl BusMemory for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        let r = self.range(addr, buf.len())?;
        self.bytes.borrow_mut()[r].copy_from_slice(buf);
        Ok(())
    }
}

/// The whole input.
#[derive(Arbitrary, Debug)]
struct Input {
    sqe: [u8; SQE_SIZE],
    cqe: [u8; CQE_SIZE],
    /// Transfer length, cut to 1 MiB.
    len: u32,
    /// Memory page size exponent (any: invalid ones must be refused).
    page_shift: u8,
    sgl_supported: bool,
    /// Where the memory starts.
    base: u32,
    memory: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let cmd = Command::parse(&input.sqe);
    assert_eq!(Command::parse(&cmd.to_bytes()), cmd, "SQE round trip");
    let (cqe, phase) = Completion::parse(&input.cqe);
    assert_eq!(Completion::parse(&cqe.to_bytes(phase)), (cqe, phase));
    let mem = Mem {
        base: u64::from(input.base),
        bytes: RefCell::new(input.memory),
    };
    let len = u64::from(input.len % (1 << 20));
    let page = 1u64.checked_shl(u32::from(input.page_shift)).unwrap_or(0);
    let Ok(segs) = data_segments(&mem, &cmd, len, page, input.sgl_supported) else {
        return;
    };
    let total: u64 = segs.iter().map(|s| s.len).sum();
    assert_eq!(total, len, "segments cover the transfer: {segs:?}");
    let mut buf = vec![0u8; len as usize];
    let _ = gather(&mem, &segs, &mut buf);
    let _ = scatter(&mem, &segs, &buf);
});
