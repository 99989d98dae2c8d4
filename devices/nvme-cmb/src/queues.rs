//! Submission and completion queues as the engine keeps them.

use crate::mem::{BusMemory, MemError};
use crate::sqe::{Command, Completion, CQE_SIZE, SQE_SIZE};

/// A submission queue: `size` entries of 64 bytes at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sq {
    pub(crate) base: u64,
    pub(crate) size: u32,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) cqid: u16,
}

impl Sq {
    pub(crate) fn new(base: u64, size: u32, cqid: u16) -> Self {
        Sq {
            base,
            size,
            head: 0,
            tail: 0,
            cqid,
        }
    }

    /// True when commands wait.
    pub(crate) fn pending(&self) -> bool {
        self.head != self.tail
    }

    /// The address of the entry at the head.
    pub(crate) fn head_addr(&self) -> u64 {
        self.base
            .wrapping_add(u64::from(self.head) * SQE_SIZE as u64)
    }

    /// Reads the entry at the head and advances it.
    pub(crate) fn fetch(&mut self, mem: &dyn BusMemory) -> Result<Command, MemError> {
        let mut b = [0u8; SQE_SIZE];
        mem.read(self.head_addr(), &mut b)?;
        self.head = (self.head + 1) % self.size;
        Ok(Command::parse(&b))
    }
}

/// A completion queue: `size` entries of 16 bytes at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cq {
    pub(crate) base: u64,
    pub(crate) size: u32,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) phase: bool,
    pub(crate) vector: u16,
    pub(crate) interrupts: bool,
}

impl Cq {
    pub(crate) fn new(base: u64, size: u32, vector: u16, interrupts: bool) -> Self {
        Cq {
            base,
            size,
            head: 0,
            tail: 0,
            phase: true,
            vector,
            interrupts,
        }
    }

    /// Whether `head` is a head the host can have: from the current head
    /// up to the tail, over posted entries only.
    pub(crate) fn head_ok(&self, head: u32) -> bool {
        let span = |to: u32| (to + self.size - self.head) % self.size;
        span(head) <= span(self.tail)
    }

    /// True when one more entry would overwrite one the host has not
    /// consumed.
    pub(crate) fn full(&self) -> bool {
        (self.tail + 1) % self.size == self.head
    }

    /// Writes `c` at the tail with the current phase and advances it.
    /// The caller checks [`full`](Self::full) first.
    pub(crate) fn post(&mut self, mem: &dyn BusMemory, c: &Completion) -> Result<(), MemError> {
        let addr = self
            .base
            .wrapping_add(u64::from(self.tail) * CQE_SIZE as u64);
        mem.write(addr, &c.to_bytes(self.phase))?;
        self.tail += 1;
        if self.tail == self.size {
            self.tail = 0;
            self.phase = !self.phase;
        }
        Ok(())
    }
}
