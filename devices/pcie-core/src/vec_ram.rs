//! [`VecRam`]: guest RAM over a vector, for rigs, fuzzers, benchmarks and
//! tools that drive devices without a VM.

use std::sync::{Arc, Mutex, PoisonError};

use crate::GuestRam;

/// Guest RAM from address 0 over a vector. An access that does not fit
/// (past the end, or an address that overflows) fails and touches nothing.
#[derive(Debug, Default)]
pub struct VecRam(pub Mutex<Vec<u8>>);

impl VecRam {
    /// `size` zero bytes.
    pub fn new(size: usize) -> Arc<Self> {
        Arc::new(VecRam(Mutex::new(vec![0; size])))
    }

    /// RAM holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Arc<Self> {
        Arc::new(VecRam(Mutex::new(bytes)))
    }
}

fn range(addr: u64, len: usize, size: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(addr).ok()?;
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

impl GuestRam for VecRam {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let mem = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(r) = range(addr, buf.len(), mem.len()) else {
            return false;
        };
        buf.copy_from_slice(&mem[r]);
        true
    }

    fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let mut mem = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(r) = range(addr, buf.len(), mem.len()) else {
            return false;
        };
        mem[r].copy_from_slice(buf);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_that_do_not_fit_fail_whole() {
        let ram = VecRam::new(16);
        assert!(ram.write(8, &[1; 8]));
        assert!(!ram.write(9, &[2; 8]));
        assert!(!ram.write(u64::MAX, &[2; 2]));
        let mut b = [0; 8];
        assert!(ram.read(8, &mut b));
        assert_eq!(b, [1; 8]);
        assert!(!ram.read(u64::MAX - 1, &mut b));
    }
}
