//! What each namespace block may hold: its first pattern until a command
//! could have changed it. Only the LBA ranges the test itself put in
//! commands (and the specification's meaning of NLB, SLBA and the range
//! list) decide it, never the controller.

/// What a block may hold now (ordered: each allows more than the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Block {
    /// Its first pattern.
    Pattern,
    /// Its pattern or zeros (Write Zeroes, Deallocate).
    PatternOrZero,
    /// Anything (a Write).
    Any,
}

/// The first contents of block `lba` of namespace `nsid`: `len` bytes,
/// no two blocks alike.
pub fn pattern(nsid: u32, lba: u64, len: usize) -> Vec<u8> {
    (0..len / 8)
        .flat_map(|k| {
            let w = (u64::from(nsid) << 56) | (lba << 20) | k as u64;
            (w ^ 0x5a5a_0f0f_3c3c_9696).to_le_bytes()
        })
        .collect()
}

/// One namespace's blocks.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Its ID.
    pub nsid: u32,
    /// Each block's state.
    pub blocks: Vec<Block>,
}

impl Namespace {
    /// A namespace of `size` bytes, every block holding its pattern.
    pub fn new(nsid: u32, size: u64, lba_size: u32) -> Namespace {
        Namespace {
            nsid,
            blocks: vec![Block::Pattern; (size / u64::from(lba_size)) as usize],
        }
    }

    /// Blocks in the namespace.
    pub fn len(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Blocks from `slba` (cut at the end) may now hold `to`.
    pub fn mark(&mut self, slba: u64, nlb: u64, to: Block) {
        let end = slba.saturating_add(nlb).min(self.len());
        for b in slba.min(end)..end {
            let b = &mut self.blocks[b as usize];
            *b = (*b).max(to);
        }
    }

    /// Checks `data`, read from block `lba`, against what it may hold.
    pub fn check(&self, lba: u64, data: &[u8]) -> Result<(), String> {
        let ok = match self.blocks[lba as usize] {
            Block::Any => true,
            Block::Pattern => data == pattern(self.nsid, lba, data.len()),
            Block::PatternOrZero => {
                data.iter().all(|&b| b == 0) || data == pattern(self.nsid, lba, data.len())
            }
        };
        if ok {
            return Ok(());
        }
        let state = self.blocks[lba as usize];
        Err(format!(
            "namespace {} block {lba} ({state:?}) holds {:02x?}...",
            self.nsid,
            &data[..16]
        ))
    }
}
