//! The PVRDMA ring arithmetic, bit for bit as Linux's `pvrdma_ring.h`
//! has it: indices run over `2 N` values (the bit above the slot is the
//! wrap bit) and are masked with `2 N - 1`, which for the async (N =
//! 1536) and CQ-notify (N = 3072) rings is not a power of two. The
//! device derives from the same masks how far an index runs before it
//! wraps ([`RingMath::period`]) and how many distinct slots it touches
//! ([`RingMath::slots`]), and never lets more than that many entries be
//! outstanding, since the driver's "has space" test cannot say so.

/// The arithmetic of a ring of `n` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingMath {
    n: u32,
}

impl RingMath {
    /// A ring of `n` elements: `None` for 0 or more than 2^30.
    pub fn new(n: u32) -> Option<Self> {
        (1..=1 << 30).contains(&n).then_some(RingMath { n })
    }

    /// The number of elements the driver sized the ring for.
    pub fn n(&self) -> u32 {
        self.n
    }

    fn mask(&self) -> u32 {
        (self.n << 1) - 1
    }

    /// `pvrdma_idx_valid`.
    pub fn valid(&self, idx: u32) -> bool {
        idx & !self.mask() == 0
    }

    /// `pvrdma_idx`: the slot an index names.
    pub fn slot(&self, idx: u32) -> u32 {
        idx & (self.n - 1)
    }

    /// `pvrdma_idx_ring_inc`.
    pub fn inc(&self, idx: u32) -> u32 {
        idx.wrapping_add(1) & self.mask()
    }

    /// How many increments bring an index from 0 back to 0.
    pub fn period(&self) -> u32 {
        1 << self.mask().trailing_ones()
    }

    /// How many distinct slots one period touches.
    pub fn slots(&self) -> u32 {
        1 << ((self.n - 1) & (self.period() - 1)).trailing_ones().min(31)
    }

    /// Entries between consumer `head` and producer `tail`, when both are
    /// indices the arithmetic produces.
    pub fn outstanding(&self, tail: u32, head: u32) -> Option<u32> {
        let p = self.period();
        (tail < p && head < p).then(|| tail.wrapping_sub(head) & (p - 1))
    }

    /// Whether a producer at `tail` may add an entry the consumer at
    /// `head` has room for (`None`: an index is invalid).
    pub fn has_space(&self, tail: u32, head: u32) -> Option<bool> {
        self.outstanding(tail, head).map(|o| o < self.slots())
    }

    /// Whether a consumer at `head` has entries to take up to `tail`
    /// (`None`: an index is invalid).
    pub fn has_data(&self, tail: u32, head: u32) -> Option<bool> {
        self.outstanding(tail, head).map(|o| o > 0)
    }
}
