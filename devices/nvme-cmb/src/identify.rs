//! Identify data structures (NVMe Base 1.4 §5.15): Identify Controller
//! (Figure 247), Identify Namespace (Figure 245), the active namespace ID
//! list (CNS 02h) and the Namespace Identification Descriptor list (CNS 03h).
//! Each is [`IDENTIFY_SIZE`] little-endian bytes; fields not written are 0.

/// The size of every Identify data structure.
pub const IDENTIFY_SIZE: usize = 4096;

/// Byte offsets (and lengths of the strings) in Identify Controller.
pub mod ctrl_off {
    /// PCI Vendor ID (u16).
    pub const VID: usize = 0;
    /// PCI Subsystem Vendor ID (u16).
    pub const SSVID: usize = 2;
    /// Serial Number (ASCII, space padded).
    pub const SN: usize = 4;
    /// Length of SN.
    pub const SN_LEN: usize = 20;
    /// Model Number (ASCII, space padded).
    pub const MN: usize = 24;
    /// Length of MN.
    pub const MN_LEN: usize = 40;
    /// Firmware Revision (ASCII, space padded).
    pub const FR: usize = 64;
    /// Length of FR.
    pub const FR_LEN: usize = 8;
    /// IEEE OUI Identifier (3 bytes, least significant byte first).
    pub const IEEE: usize = 73;
    /// Controller Multi-Path I/O and Namespace Sharing Capabilities.
    pub const CMIC: usize = 76;
    /// Maximum Data Transfer Size (2^MDTS minimum pages; 0 = no limit).
    pub const MDTS: usize = 77;
    /// Controller ID (u16).
    pub const CNTLID: usize = 78;
    /// Version (u32, as the VS register).
    pub const VER: usize = 80;
    /// Optional Asynchronous Events Supported (u32).
    pub const OAES: usize = 92;
    /// Controller Attributes (u32).
    pub const CTRATT: usize = 96;
    /// Controller Type.
    pub const CNTRLTYPE: usize = 111;
    /// Optional Admin Command Support (u16).
    pub const OACS: usize = 256;
    /// Abort Command Limit (0's based).
    pub const ACL: usize = 258;
    /// Asynchronous Event Request Limit (0's based).
    pub const AERL: usize = 259;
    /// Firmware Updates.
    pub const FRMW: usize = 260;
    /// Log Page Attributes.
    pub const LPA: usize = 261;
    /// Error Log Page Entries (0's based).
    pub const ELPE: usize = 262;
    /// Number of Power States Support (0's based).
    pub const NPSS: usize = 263;
    /// Warning Composite Temperature Threshold (u16, kelvin).
    pub const WCTEMP: usize = 266;
    /// Critical Composite Temperature Threshold (u16, kelvin).
    pub const CCTEMP: usize = 268;
    /// Keep Alive Support (u16, 100 ms units).
    pub const KAS: usize = 320;
    /// Submission Queue Entry Size (max << 4 | required).
    pub const SQES: usize = 512;
    /// Completion Queue Entry Size (max << 4 | required).
    pub const CQES: usize = 513;
    /// Maximum Outstanding Commands (u16).
    pub const MAXCMD: usize = 514;
    /// Number of Namespaces (u32): the largest valid NSID.
    pub const NN: usize = 516;
    /// Optional NVM Command Support (u16).
    pub const ONCS: usize = 520;
    /// Volatile Write Cache.
    pub const VWC: usize = 525;
    /// SGL Support (u32).
    pub const SGLS: usize = 536;
    /// NVM Subsystem NVMe Qualified Name (UTF-8, NUL terminated).
    pub const SUBNQN: usize = 768;
    /// Length of SUBNQN.
    pub const SUBNQN_LEN: usize = 256;
    /// Power State 0 Descriptor (32 bytes); Maximum Power is its first u16.
    pub const PSD0: usize = 2048;
}

/// Byte offsets in Identify Namespace.
pub mod ns_off {
    /// Namespace Size in blocks (u64).
    pub const NSZE: usize = 0;
    /// Namespace Capacity in blocks (u64).
    pub const NCAP: usize = 8;
    /// Namespace Utilization in blocks (u64).
    pub const NUSE: usize = 16;
    /// Namespace Features.
    pub const NSFEAT: usize = 24;
    /// Number of LBA Formats (0's based).
    pub const NLBAF: usize = 25;
    /// Formatted LBA Size.
    pub const FLBAS: usize = 26;
    /// Deallocate Logical Block Features.
    pub const DLFEAT: usize = 33;
    /// Namespace Optimal I/O Boundary (u16, blocks; 0 = none).
    pub const NOIOB: usize = 46;
    /// NVM Capacity in bytes (u128).
    pub const NVMCAP: usize = 48;
    /// Namespace Globally Unique Identifier (16 bytes).
    pub const NGUID: usize = 104;
    /// IEEE Extended Unique Identifier (8 bytes).
    pub const EUI64: usize = 120;
    /// LBA Format 0: MS (u16), LBADS (u8) at +2, RP (u8) at +3.
    pub const LBAF0: usize = 128;
    /// LBA Data Size (log2 of the block size) within an LBA format.
    pub const LBAF_LBADS: usize = 2;
}

/// Namespace Identifier Types (NIDT) in the descriptor list.
pub mod nidt {
    /// IEEE Extended Unique Identifier, 8 bytes.
    pub const EUI64: u8 = 1;
    /// Namespace Globally Unique Identifier, 16 bytes.
    pub const NGUID: u8 = 2;
    /// Namespace UUID, 16 bytes.
    pub const UUID: u8 = 3;
}

/// CNTRLTYPE for an I/O controller (the only kind this crate emulates).
pub const CNTRLTYPE_IO: u8 = 1;
/// DLFEAT: deallocated blocks read as zeroes (bits 2:0 = 001b) and Write
/// Zeroes may deallocate (bit 3): Linux then sets DEAC on Write Zeroes.
pub const DLFEAT_ZEROES: u8 = 0x09;
/// Maximum power of power state 0, in centiwatts (an emulated 25 W).
pub const PSD0_MAX_POWER_CW: u16 = 2500;

/// What the Identify Controller structure reports.
#[derive(Debug, Clone)]
pub struct ControllerInfo {
    /// PCI Vendor ID (the config space's).
    pub vid: u16,
    /// PCI Subsystem Vendor ID.
    pub ssvid: u16,
    /// Serial number: at most 20 printable ASCII characters.
    pub serial: String,
    /// Model number: at most 40 printable ASCII characters.
    pub model: String,
    /// Firmware revision: at most 8 printable ASCII characters.
    pub firmware: String,
    /// IEEE OUI, least significant byte first.
    pub ieee_oui: [u8; 3],
    /// Maximum Data Transfer Size, a power of two in CAP.MPSMIN pages.
    pub mdts: u8,
    /// Controller ID; unique within the subsystem.
    pub cntlid: u16,
    /// Version, as the VS register: 0x0001_0400.
    pub version: u32,
    /// Optional Asynchronous Events Supported. With none of bits 8, 9, 11
    /// or 31 set, Linux 6.12 sends no Asynchronous Event Request at all.
    pub oaes: u32,
    /// Controller Attributes (0: Linux reads bit 15, extended LBA formats).
    pub ctratt: u32,
    /// Optional Admin Command Support (bit 8: Doorbell Buffer Config).
    pub oacs: u16,
    /// Abort Command Limit, 0's based.
    pub acl: u8,
    /// Asynchronous Event Request Limit, 0's based.
    pub aerl: u8,
    /// Firmware Updates (0x03: slot 1 read-only, one slot).
    pub frmw: u8,
    /// Log Page Attributes (bit 1 makes Linux read the Commands Supported
    /// and Effects log; bit 2: extended Get Log Page, i.e. NUMDU and LPO).
    pub lpa: u8,
    /// Error Log Page Entries, 0's based (the [`crate::log_page::ErrorLog`]
    /// capacity minus one).
    pub elpe: u8,
    /// Warning Composite Temperature Threshold, kelvin.
    pub wctemp: u16,
    /// Critical Composite Temperature Threshold, kelvin.
    pub cctemp: u16,
    /// Submission Queue Entry Size: 0x66 (64 bytes).
    pub sqes: u8,
    /// Completion Queue Entry Size: 0x44 (16 bytes).
    pub cqes: u8,
    /// Maximum Outstanding Commands (fabrics only; may be 0 on PCIe).
    pub maxcmd: u16,
    /// Number of Namespaces: the largest valid NSID.
    pub nn: u32,
    /// Optional NVM Command Support (bit 2 DSM, bit 3 Write Zeroes, bit 6
    /// Timestamp: Linux then sends Set Features Timestamp at probe).
    pub oncs: u16,
    /// Volatile Write Cache (bit 0: present, so Linux sends Flush).
    pub vwc: u8,
    /// SGL Support (bits 1:0 = 01b: SGLs on I/O queues, any alignment).
    pub sgls: u32,
    /// Subsystem NQN; it must differ between controllers (Linux merges
    /// controllers with one SUBNQN into one subsystem). Linux accepts 1 to
    /// 222 bytes; longer is truncated to 222.
    pub subnqn: String,
    /// Keep Alive Support, 100 ms units (Linux/PCIe never enables it).
    pub kas: u16,
}

/// The longest SUBNQN Linux accepts (its buffer is 223 bytes with the NUL).
const SUBNQN_MAX: usize = 222;

fn put(b: &mut [u8], off: usize, bytes: &[u8]) {
    b[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Writes `s` space padded (truncated) into `len` bytes; bytes that are not
/// printable ASCII become `?`.
fn put_ascii(b: &mut [u8], off: usize, len: usize, s: &str) {
    let field = &mut b[off..off + len];
    field.fill(b' ');
    for (d, c) in field.iter_mut().zip(s.bytes()) {
        *d = if (0x20..0x7f).contains(&c) { c } else { b'?' };
    }
}

/// The Identify Controller structure (CNS 01h).
pub fn controller(info: &ControllerInfo) -> Vec<u8> {
    use ctrl_off as o;
    let mut b = vec![0u8; IDENTIFY_SIZE];
    put(&mut b, o::VID, &info.vid.to_le_bytes());
    put(&mut b, o::SSVID, &info.ssvid.to_le_bytes());
    put_ascii(&mut b, o::SN, o::SN_LEN, &info.serial);
    put_ascii(&mut b, o::MN, o::MN_LEN, &info.model);
    put_ascii(&mut b, o::FR, o::FR_LEN, &info.firmware);
    put(&mut b, o::IEEE, &info.ieee_oui);
    b[o::MDTS] = info.mdts;
    put(&mut b, o::CNTLID, &info.cntlid.to_le_bytes());
    put(&mut b, o::VER, &info.version.to_le_bytes());
    put(&mut b, o::OAES, &info.oaes.to_le_bytes());
    put(&mut b, o::CTRATT, &info.ctratt.to_le_bytes());
    b[o::CNTRLTYPE] = CNTRLTYPE_IO;
    put(&mut b, o::OACS, &info.oacs.to_le_bytes());
    b[o::ACL] = info.acl;
    b[o::AERL] = info.aerl;
    b[o::FRMW] = info.frmw;
    b[o::LPA] = info.lpa;
    b[o::ELPE] = info.elpe;
    put(&mut b, o::WCTEMP, &info.wctemp.to_le_bytes());
    put(&mut b, o::CCTEMP, &info.cctemp.to_le_bytes());
    put(&mut b, o::KAS, &info.kas.to_le_bytes());
    b[o::SQES] = info.sqes;
    b[o::CQES] = info.cqes;
    put(&mut b, o::MAXCMD, &info.maxcmd.to_le_bytes());
    put(&mut b, o::NN, &info.nn.to_le_bytes());
    put(&mut b, o::ONCS, &info.oncs.to_le_bytes());
    b[o::VWC] = info.vwc;
    put(&mut b, o::SGLS, &info.sgls.to_le_bytes());
    let mut n = info.subnqn.len().min(SUBNQN_MAX);
    while !info.subnqn.is_char_boundary(n) {
        n -= 1;
    }
    put(&mut b, o::SUBNQN, &info.subnqn.as_bytes()[..n]);
    put(&mut b, o::PSD0, &PSD0_MAX_POWER_CW.to_le_bytes());
    b
}

/// SplitMix64's finaliser: a bijection on u64 that mixes every bit.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 16 stable bytes for (`uid`, `nsid`, `tag`). The first 8 differ for any
/// two NSIDs of one controller and for one NSID of any two `uid`s.
fn derive(uid: u64, nsid: u32, tag: u64) -> [u8; 16] {
    let hi = mix64(uid ^ mix64(u64::from(nsid) ^ tag));
    let lo = mix64(hi ^ tag.rotate_left(32));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi.to_be_bytes());
    out[8..].copy_from_slice(&lo.to_be_bytes());
    out
}

const TAG_NGUID: u64 = 0x004e_4755_4944;
const TAG_EUI64: u64 = 0x0045_5549_3634;
const TAG_UUID: u64 = 0x5555_4944;

/// The namespace's NGUID, stable for (`uid`, `nsid`).
pub fn nguid(nsid: u32, uid: u64) -> [u8; 16] {
    derive(uid, nsid, TAG_NGUID)
}

/// The namespace's EUI-64, stable for (`uid`, `nsid`); a locally
/// administered unicast identifier (first byte's bits 1:0 = 10b).
pub fn eui64(nsid: u32, uid: u64) -> [u8; 8] {
    let d = derive(uid, nsid, TAG_EUI64);
    let mut e = [0u8; 8];
    e.copy_from_slice(&d[..8]);
    e[0] = (e[0] & 0xfc) | 0x02;
    e
}

/// The namespace's UUID, stable for (`uid`, `nsid`): an RFC 9562 version 8
/// (custom) UUID.
pub fn uuid(nsid: u32, uid: u64) -> [u8; 16] {
    let mut u = derive(uid, nsid, TAG_UUID);
    u[6] = (u[6] & 0x0f) | 0x80;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// Identify Namespace (CNS 00h) for a namespace of `blocks` blocks of
/// 2^`lba_shift` bytes: one LBA format without metadata, no thin
/// provisioning (NSZE = NCAP = NUSE), DLFEAT [`DLFEAT_ZEROES`], NOIOB 0,
/// NGUID and EUI-64 from [`nguid`] and [`eui64`] (left zero for the
/// broadcast NSID FFFFFFFFh, which names no one namespace).
pub fn namespace(blocks: u64, lba_shift: u8, nsid: u32, uid: u64) -> Vec<u8> {
    use ns_off as o;
    let mut b = vec![0u8; IDENTIFY_SIZE];
    put(&mut b, o::NSZE, &blocks.to_le_bytes());
    put(&mut b, o::NCAP, &blocks.to_le_bytes());
    put(&mut b, o::NUSE, &blocks.to_le_bytes());
    b[o::NSFEAT] = 0;
    b[o::NLBAF] = 0;
    b[o::FLBAS] = 0;
    b[o::DLFEAT] = DLFEAT_ZEROES;
    put(&mut b, o::NOIOB, &0u16.to_le_bytes());
    // blocks < 2^64 and the shift < 64, so the product fits in a u128.
    let cap = if lba_shift < 64 {
        u128::from(blocks) * (1u128 << lba_shift)
    } else {
        0
    };
    put(&mut b, o::NVMCAP, &cap.to_le_bytes());
    if nsid != u32::MAX {
        put(&mut b, o::NGUID, &nguid(nsid, uid));
        put(&mut b, o::EUI64, &eui64(nsid, uid));
    }
    b[o::LBAF0 + o::LBAF_LBADS] = lba_shift;
    b
}

/// The active namespace ID list (CNS 02h): the NSIDs in `nsids` greater
/// than `start`, ascending, at most 1024, zero filled. (`nsids` need not be
/// sorted; FFFFFFFFh is never listed. The controller rejects a `start` of
/// FFFFFFFEh or FFFFFFFFh itself, with Invalid Namespace or Format.)
pub fn active_ns_list(nsids: &[u32], start: u32) -> Vec<u8> {
    let mut ids: Vec<u32> = nsids
        .iter()
        .copied()
        .filter(|&n| n > start && n != u32::MAX)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut b = vec![0u8; IDENTIFY_SIZE];
    for (slot, id) in b.chunks_exact_mut(4).zip(ids) {
        slot.copy_from_slice(&id.to_le_bytes());
    }
    b
}

/// The Namespace Identification Descriptor list (CNS 03h): EUI-64
/// (type 1, 8 bytes) at byte 0, NGUID (type 2, 16 bytes) at 12 and UUID
/// (type 3, 16 bytes) at 32, each a 4-byte header (NIDT, NIDL, 2 reserved)
/// then the identifier; zero from byte 52 (a zero NIDL ends the list).
/// The EUI-64 and NGUID equal those in [`namespace`].
pub fn ns_descriptors(nsid: u32, uid: u64) -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    let mut pos = 0;
    let (e, g, u) = (eui64(nsid, uid), nguid(nsid, uid), uuid(nsid, uid));
    let descs: [(u8, &[u8]); 3] = [(nidt::EUI64, &e), (nidt::NGUID, &g), (nidt::UUID, &u)];
    for (t, id) in descs {
        b[pos] = t;
        b[pos + 1] = id.len() as u8;
        put(&mut b, pos + 4, id);
        pos += 4 + id.len();
    }
    b
}
