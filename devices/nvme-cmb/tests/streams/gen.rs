//! Random command streams: what a step does, before the case's addresses
//! are known ([`super::build`] resolves them; [`super::strategy`] makes
//! them).

/// Where a pointer points: a zone and an offset in it.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// RAM's data pages.
    Data(u32),
    /// The upper half of controller 0's CMB (data; queues use the lower).
    Cmb(u32),
    /// Controller 1's BAR 0 (false) or BAR 4 (true): peer-to-peer.
    Peer(bool, u16),
    /// Controller 0's own BAR 0 (false) or BAR 4 (true).
    Own(bool, u16),
    /// Nothing: above RAM (0), far above the apertures (1), or just
    /// below 2^64 (2).
    Outside(u8, u64),
}

/// How a pointer is aligned.
#[derive(Debug, Clone, Copy)]
pub enum Align {
    /// To a page.
    Page,
    /// To a dword (PRP1 may start anywhere dword aligned).
    Dword,
    /// Odd: an invalid PRP offset.
    Odd,
}

/// A pointer.
#[derive(Debug, Clone, Copy)]
pub struct Ptr {
    /// Where.
    pub to: Target,
    /// How aligned.
    pub align: Align,
}

/// PRP Entry 2.
#[derive(Debug, Clone)]
pub enum Prp2 {
    /// A pointer outside memory (and outside every BAR).
    Outside(u64),
    /// Fresh list pages (valid as a second data page too): entries from
    /// `skip` (8-byte units; `odd` misaligns it by 4) cycle through
    /// `entries`; each page's last entry chains to the next page.
    List {
        skip: u16,
        odd: bool,
        entries: Vec<Ptr>,
    },
}

/// How a segment descriptor's length relates to the descriptors written.
#[derive(Debug, Clone, Copy)]
pub enum SegLen {
    /// Exactly them.
    Exact,
    /// `n` more (zeroed) descriptors.
    More(u8),
    /// One fewer.
    Fewer,
    /// Not a multiple of 16.
    Ragged(u8),
}

/// An SGL descriptor.
#[derive(Debug, Clone)]
pub enum Desc {
    /// Data Block: `len` bytes (cut at the end of the target's zone).
    Data(Ptr, u32),
    /// Bit Bucket.
    Bucket(u32),
    /// Segment (`last`: Last Segment) on a fresh page.
    Seg {
        last: bool,
        descs: Vec<Desc>,
        len: SegLen,
    },
    /// An invalid type or subtype byte.
    Bad(u8),
}

/// A command's data pointer.
#[derive(Debug, Clone)]
pub enum Dptr {
    /// PRPs (PSDT 0).
    Prp(Ptr, Prp2),
    /// An SGL (PSDT 1).
    Sgl(Desc),
    /// A reserved PSDT (2 or 3) with any bytes.
    Raw(u8, [u8; 16]),
}

/// A namespace ID.
#[derive(Debug, Clone, Copy)]
pub enum Nsid {
    /// Namespace 1 (RAM, 512-byte blocks).
    One,
    /// Namespace 2 (file, 4 KiB blocks).
    Two,
    /// Any other value (0, 3, broadcast, random).
    Other(u32),
}

/// An LBA range, relative to a namespace's size `B`.
#[derive(Debug, Clone, Copy)]
pub enum Lba {
    /// Inside: start modulo B, up to 256 blocks.
    In(u32, u16),
    /// Starting in the last 16 blocks and running past the end.
    Straddle(u8, u16),
    /// Starting at or past the end.
    Beyond(u32, u16),
    /// Starting just below 2^64.
    Overflow(u16, u16),
    /// Inside, 65536 blocks long.
    Huge(u32),
}

/// Where a Create I/O queue command puts the queue.
#[derive(Debug, Clone, Copy)]
pub enum QBase {
    /// Its slot in RAM.
    Slot,
    /// Its slot in the CMB's lower half.
    Cmb,
    /// Outside memory, page aligned.
    Outside(u64),
    /// Its RAM slot plus a non-page offset.
    Unaligned(u16),
}

/// Which queue pair, as a raw ID (0 and above 64 invalid).
pub type Qid = u8;

/// An admin command.
#[derive(Debug, Clone)]
pub enum Admin {
    /// Identify (CNS, NSID).
    Identify(u8, Nsid, Dptr),
    /// Get Log Page: LID, NUMD, offset, RAE.
    GetLog(u8, u32, u64, bool, Dptr),
    /// Set Features: FID, dword 11, SV.
    SetFeatures(u8, u32, bool),
    /// Get Features: FID, SEL, dword 11.
    GetFeatures(u8, u8, u32),
    /// Create I/O CQ: ID, size (0-based), base, PC, IEN, vector.
    CreateCq(Qid, u16, QBase, bool, bool, u16),
    /// Create I/O SQ: ID, size, base, CQ ID, PC.
    CreateSq(Qid, u16, QBase, Qid, bool),
    /// Delete I/O SQ.
    DeleteSq(Qid),
    /// Delete I/O CQ.
    DeleteCq(Qid),
    /// Asynchronous Event Request.
    Aer,
    /// Abort, Keep Alive or anything else: opcode, NSID, dwords 10-15.
    Raw(u8, u32, [u32; 6], Dptr),
}

/// An I/O command.
#[derive(Debug, Clone)]
pub enum Io {
    /// Read (0), Write (1) or Compare (2); dword 12 bits 31:16; FUSE.
    Rw(u8, Nsid, Lba, u16, u8, Dptr),
    /// Write Zeroes.
    WriteZeroes(Nsid, Lba, u16),
    /// Flush.
    Flush(Nsid),
    /// Dataset Management: ranges (NLB, LBA) in a fresh range list, extra
    /// NR (added to the ranges' count), dword 11.
    Dsm(Nsid, Vec<(u32, Lba)>, u8, u32),
    /// Dataset Management with any data pointer (its ranges unknown).
    DsmWild(Nsid, u8, u32, Dptr),
    /// Any opcode: NSID, dwords 10-15.
    Raw(u8, u32, [u32; 6], Dptr),
}

/// A doorbell write the controller must ignore (or flag with an event).
#[derive(Debug, Clone, Copy)]
pub enum Bell {
    /// To a queue that does not exist: ID, tail (else head), value,
    /// width (1, 2, 4 or 8 bytes).
    NoQueue(Qid, bool, u32, u8),
    /// To an existing queue (selected), a value of at least 1024.
    TooBig(u8, bool, u32),
    /// Between doorbells: index, byte offset 1-3, value.
    Misaligned(u8, u8, u32),
    /// Past the last doorbell.
    Beyond(u16, u32),
    /// The value the queue has already (selected).
    Same(u8, bool),
}

/// Doorbell Buffer Config's pages.
#[derive(Debug, Clone, Copy)]
pub enum Shadow {
    /// Shadow pair 0 or 1.
    Pair(u8),
    /// Pair 0's shadow page and EventIdx at address 0 (a data page).
    ZeroEventIdx,
    /// A pointer off its page.
    Unaligned(u16),
    /// Outside memory (the doorbell page, else the EventIdx page).
    Outside(bool, u64),
}

/// One step of a stream.
#[derive(Debug, Clone)]
pub enum Op {
    /// An admin command.
    Admin(Admin),
    /// An I/O command on an existing I/O SQ (selected).
    Io(u8, Io),
    /// A doorbell write.
    Bell(Bell),
    /// Doorbell Buffer Config, run at once.
    Shadow(Shadow),
    /// The engine runs; completions are reaped.
    Run,
    /// Controller reset.
    Reset,
}
