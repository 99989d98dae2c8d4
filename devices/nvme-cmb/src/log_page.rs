//! Log pages (NVMe Base 1.4 §5.14.1): Error Information (Figure 195),
//! SMART / Health Information (Figure 196) and Firmware Slot Information
//! (Figure 198), as little-endian bytes.

use std::collections::VecDeque;

/// Log page identifiers (LID).
pub mod log_id {
    /// Error Information.
    pub const ERROR: u8 = 0x01;
    /// SMART / Health Information.
    pub const HEALTH: u8 = 0x02;
    /// Firmware Slot Information.
    pub const FIRMWARE_SLOT: u8 = 0x03;
}

/// The size of one Error Information log entry.
pub const ERROR_ENTRY_SIZE: usize = 64;
/// The size of the SMART / Health Information log.
pub const HEALTH_SIZE: usize = 512;
/// The size of the Firmware Slot Information log.
pub const FIRMWARE_SLOT_SIZE: usize = 512;

/// Byte offsets in an Error Information log entry.
pub mod error_off {
    /// Error Count (u64).
    pub const ERROR_COUNT: usize = 0;
    /// Submission Queue ID (u16).
    pub const SQID: usize = 8;
    /// Command ID (u16).
    pub const CID: usize = 10;
    /// Status Field (u16): bits 15:1 the status field, bit 0 the phase tag.
    pub const STATUS: usize = 12;
    /// Parameter Error Location (u16).
    pub const PARAM_LOCATION: usize = 14;
    /// LBA (u64).
    pub const LBA: usize = 16;
    /// Namespace (u32).
    pub const NSID: usize = 24;
}

/// Byte offsets in the SMART / Health Information log; counters are u128.
pub mod health_off {
    /// Critical Warning.
    pub const CRITICAL_WARNING: usize = 0;
    /// Composite Temperature (u16, kelvin).
    pub const TEMPERATURE: usize = 1;
    /// Available Spare (percent).
    pub const AVAILABLE_SPARE: usize = 3;
    /// Available Spare Threshold (percent).
    pub const SPARE_THRESHOLD: usize = 4;
    /// Percentage Used.
    pub const PERCENT_USED: usize = 5;
    /// Data Units Read.
    pub const DATA_UNITS_READ: usize = 32;
    /// Data Units Written.
    pub const DATA_UNITS_WRITTEN: usize = 48;
    /// Host Read Commands.
    pub const HOST_READS: usize = 64;
    /// Host Write Commands.
    pub const HOST_WRITES: usize = 80;
    /// Controller Busy Time (minutes).
    pub const BUSY_TIME: usize = 96;
    /// Power Cycles.
    pub const POWER_CYCLES: usize = 112;
    /// Power On Hours.
    pub const POWER_ON_HOURS: usize = 128;
    /// Unsafe Shutdowns.
    pub const UNSAFE_SHUTDOWNS: usize = 144;
    /// Media and Data Integrity Errors.
    pub const MEDIA_ERRORS: usize = 160;
    /// Number of Error Information Log Entries.
    pub const ERROR_ENTRIES: usize = 176;
}

/// The Status Field value that marks an error not tied to a command
/// (stored as is, like SQID and CID FFFFh for the same case).
pub const STATUS_NOT_COMMAND: u16 = 0xffff;

/// One Error Information log entry (64 bytes, Figure 195).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorEntry {
    /// The entry's unique, incrementing number (assigned by
    /// [`ErrorLog::record`]; 0 marks an unused entry).
    pub error_count: u64,
    /// The command's submission queue (FFFFh: none).
    pub sqid: u16,
    /// The command's identifier (FFFFh: none).
    pub cid: u16,
    /// The completion's Status Field as [`crate::Status::field`] gives it
    /// (the layout of completion DW3 bits 31:16: phase tag in bit 0,
    /// reported as 0, SC in bits 8:1, SCT 11:9, DNR 15);
    /// [`STATUS_NOT_COMMAND`] is stored as is.
    pub status_field: u16,
    /// Parameter Error Location: byte (7:0) and bit (10:8) of the command
    /// at fault; FFFFh if not specific.
    pub param_location: u16,
    /// The first LBA that failed, if any.
    pub lba: u64,
    /// The namespace, if any.
    pub nsid: u32,
}

impl ErrorEntry {
    fn encode(&self, out: &mut [u8]) {
        use error_off as o;
        let status = if self.status_field == STATUS_NOT_COMMAND {
            STATUS_NOT_COMMAND
        } else {
            self.status_field & !1
        };
        out[o::ERROR_COUNT..o::ERROR_COUNT + 8].copy_from_slice(&self.error_count.to_le_bytes());
        out[o::SQID..o::SQID + 2].copy_from_slice(&self.sqid.to_le_bytes());
        out[o::CID..o::CID + 2].copy_from_slice(&self.cid.to_le_bytes());
        out[o::STATUS..o::STATUS + 2].copy_from_slice(&status.to_le_bytes());
        out[o::PARAM_LOCATION..o::PARAM_LOCATION + 2]
            .copy_from_slice(&self.param_location.to_le_bytes());
        out[o::LBA..o::LBA + 8].copy_from_slice(&self.lba.to_le_bytes());
        out[o::NSID..o::NSID + 4].copy_from_slice(&self.nsid.to_le_bytes());
    }
}

/// The error log: a ring of the most recent entries, read newest first.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    entries: VecDeque<ErrorEntry>,
    capacity: usize,
    count: u64,
}

impl ErrorLog {
    /// An empty log keeping the newest `capacity` entries (ELPE + 1).
    pub fn new(capacity: usize) -> Self {
        ErrorLog {
            entries: VecDeque::with_capacity(capacity),
            capacity,
            count: 0,
        }
    }

    /// Records `e`, numbering it (its `error_count` is replaced by the next
    /// count: 1, 2, ...; after u64::MAX comes 1 again, never 0) and dropping
    /// the oldest entry when full.
    pub fn record(&mut self, mut e: ErrorEntry) {
        self.count = self.count.checked_add(1).unwrap_or(1);
        e.error_count = self.count;
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_back();
        }
        self.entries.push_front(e);
    }

    /// The number of the newest entry: how many errors were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The log page: `capacity` entries of 64 bytes, newest first, unused
    /// entries zero.
    pub fn page(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.capacity.saturating_mul(ERROR_ENTRY_SIZE)];
        for (slot, e) in b.chunks_exact_mut(ERROR_ENTRY_SIZE).zip(&self.entries) {
            e.encode(slot);
        }
        b
    }
}

/// SMART / Health counters, in their own units (the page converts bytes to
/// data units).
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    /// Bytes read by host read commands.
    pub bytes_read: u64,
    /// Bytes written by host write commands.
    pub bytes_written: u64,
    /// Host read commands completed.
    pub host_reads: u64,
    /// Host write commands completed.
    pub host_writes: u64,
    /// Minutes the controller was busy with I/O.
    pub busy_minutes: u64,
    /// Power cycles.
    pub power_cycles: u64,
    /// Power-on hours.
    pub power_on_hours: u64,
    /// Shutdowns without a CC.SHN notification first.
    pub unsafe_shutdowns: u64,
    /// Unrecovered data integrity errors.
    pub media_errors: u64,
    /// Error Information log entries over the controller's life
    /// ([`ErrorLog::count`]).
    pub error_entries: u64,
    /// Composite temperature in kelvin (0 reads as "not reported").
    pub temperature_kelvin: u16,
    /// Critical Warning bits.
    pub warning: u8,
}

impl Health {
    /// Counts a host read command of `bytes` (SMART Data Units Read, Host
    /// Read Commands).
    pub fn count_read(&mut self, bytes: u64) {
        self.bytes_read += bytes;
        self.host_reads += 1;
    }

    /// Counts a host write command of `bytes`.
    pub fn count_write(&mut self, bytes: u64) {
        self.bytes_written += bytes;
        self.host_writes += 1;
    }
}

/// "Data Units" (Figure 196): thousands of 512-byte units, rounded up; so
/// 1 to 512,000 bytes are 1 unit and 512,001 are 2.
pub fn data_units(bytes: u64) -> u128 {
    u128::from(bytes).div_ceil(512 * 1000)
}

/// Available Spare reported: all of it.
const AVAILABLE_SPARE: u8 = 100;
/// Available Spare Threshold reported.
const SPARE_THRESHOLD: u8 = 10;

/// The SMART / Health Information log (512 bytes), for the controller as a
/// whole: available spare 100%, threshold 10%, 0% used, no temperature
/// sensors beyond the composite one.
pub fn health_page(h: &Health) -> Vec<u8> {
    use health_off as o;
    let mut b = vec![0u8; HEALTH_SIZE];
    let mut put = |off: usize, v: u128| b[off..off + 16].copy_from_slice(&v.to_le_bytes());
    put(o::DATA_UNITS_READ, data_units(h.bytes_read));
    put(o::DATA_UNITS_WRITTEN, data_units(h.bytes_written));
    put(o::HOST_READS, h.host_reads.into());
    put(o::HOST_WRITES, h.host_writes.into());
    put(o::BUSY_TIME, h.busy_minutes.into());
    put(o::POWER_CYCLES, h.power_cycles.into());
    put(o::POWER_ON_HOURS, h.power_on_hours.into());
    put(o::UNSAFE_SHUTDOWNS, h.unsafe_shutdowns.into());
    put(o::MEDIA_ERRORS, h.media_errors.into());
    put(o::ERROR_ENTRIES, h.error_entries.into());
    b[o::CRITICAL_WARNING] = h.warning;
    b[o::TEMPERATURE..o::TEMPERATURE + 2].copy_from_slice(&h.temperature_kelvin.to_le_bytes());
    b[o::AVAILABLE_SPARE] = AVAILABLE_SPARE;
    b[o::SPARE_THRESHOLD] = SPARE_THRESHOLD;
    b[o::PERCENT_USED] = 0;
    b
}

/// Byte offset of Firmware Revision for Slot 1 in the Firmware Slot log.
pub const FRS1: usize = 8;

/// The Firmware Slot Information log (512 bytes): slot 1 active (AFI byte 0
/// = 01h) holding `firmware`, 8 bytes, space padded (non-printable ASCII
/// becomes `?`).
pub fn firmware_slot_page(firmware: &str) -> Vec<u8> {
    let mut b = vec![0u8; FIRMWARE_SLOT_SIZE];
    b[0] = 0x01;
    let frs = &mut b[FRS1..FRS1 + 8];
    frs.fill(b' ');
    for (d, c) in frs.iter_mut().zip(firmware.bytes()) {
        *d = if (0x20..0x7f).contains(&c) { c } else { b'?' };
    }
    b
}

/// `page[offset..offset + len]` as a `len`-byte Vec, zero filled past the
/// page's end (Get Log Page with LPO and NUMD). The caller bounds `len`
/// (it comes from the guest's NUMD): this allocates `len` bytes.
pub fn window(page: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    if let Ok(start) = usize::try_from(offset) {
        if let Some(src) = page.get(start..) {
            let n = src.len().min(len);
            out[..n].copy_from_slice(&src[..n]);
        }
    }
    out
}
