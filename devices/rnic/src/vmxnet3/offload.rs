//! What a vmxnet3 device does to a packet before it leaves: insert the
//! checksum the driver left to it (CSUM) or cut a large TCP packet into
//! MSS-sized segments (TSO). A v1 device cannot refuse either, and Linux
//! turns both on by default.

use super::regs::txd;

/// Most segments one TSO packet may be cut into (64 KiB at an MSS of 64).
pub const MAX_SEGMENTS: usize = 1024;

/// The one's complement sum of `data` (big-endian 16-bit words), not yet
/// folded.
fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum of `data` with `acc` added in.
pub fn checksum(data: &[u8], acc: u64) -> u16 {
    !fold(sum(data, acc))
}

/// Why a packet is dropped instead of sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The checksum start or field lies outside the frame.
    ChecksumOffset,
    /// TSO on something that is not an Ethernet IPv4 or IPv6 TCP packet,
    /// or whose headers do not fit.
    NotTcp,
    /// TSO with an MSS of 0, or one so small that the packet would make
    /// more than [`MAX_SEGMENTS`] segments.
    BadMss,
}

/// CSUM: the sum of `frame[start..]` (the field at `field` already holds
/// the pseudo-header sum) stored at `field`, as `skb_checksum_help` does.
fn insert_checksum(frame: &mut [u8], start: usize, field: usize) -> Result<(), Malformed> {
    if start > frame.len() || field.checked_add(2).is_none_or(|e| e > frame.len()) {
        return Err(Malformed::ChecksumOffset);
    }
    let c = match checksum(&frame[start..], 0) {
        0 => 0xffff,
        c => c,
    };
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Where a TCP packet's headers are.
struct Headers {
    l3: usize,
    l4: usize,
    end: usize,
    v4: bool,
}

fn tcp_headers(frame: &[u8]) -> Option<Headers> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let mut l3 = 14;
    let mut ethertype = be16(12)?;
    if ethertype == 0x8100 {
        ethertype = be16(16)?;
        l3 = 18;
    }
    let (v4, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*frame.get(l3)? & 0xf) * 4;
            (*frame.get(l3 + 9)? == 6 && ihl >= 20).then_some((true, l3 + ihl))?
        }
        0x86dd => (*frame.get(l3 + 6)? == 6).then_some((false, l3 + 40))?,
        _ => return None,
    };
    let doff = usize::from(*frame.get(l4 + 12)? >> 4) * 4;
    let end = l4 + doff;
    (doff >= 20 && end <= frame.len()).then_some(Headers { l3, l4, end, v4 })
}

/// The TCP checksum of `seg` (headers `h`), computed from scratch.
fn tcp_checksum(seg: &mut [u8], h: &Headers) {
    let tcp_len = seg.len() - h.l4;
    seg[h.l4 + 16..h.l4 + 18].fill(0);
    let mut acc = if h.v4 {
        sum(&seg[h.l3 + 12..h.l3 + 20], 0)
    } else {
        sum(&seg[h.l3 + 8..h.l3 + 40], 0)
    };
    acc += 6 + tcp_len as u64;
    let c = checksum(&seg[h.l4..], acc);
    seg[h.l4 + 16..h.l4 + 18].copy_from_slice(&c.to_be_bytes());
}

/// TSO: `frame` cut into segments of at most `mss` payload bytes, each
/// with its own IP length (and IPv4 ID and header checksum), sequence
/// number and TCP checksum; FIN and PSH only on the last, CWR only on the
/// first.
fn segment(frame: &[u8], mss: usize) -> Result<Vec<Vec<u8>>, Malformed> {
    if mss == 0 {
        return Err(Malformed::BadMss);
    }
    let h = tcp_headers(frame).ok_or(Malformed::NotTcp)?;
    let payload = &frame[h.end..];
    if payload.len().div_ceil(mss) > MAX_SEGMENTS {
        return Err(Malformed::BadMss);
    }
    let seq = u32::from_be_bytes(frame[h.l4 + 4..h.l4 + 8].try_into().unwrap_or_default());
    let id = u16::from_be_bytes([frame[h.l3 + 4], frame[h.l3 + 5]]);
    let flags = frame[h.l4 + 13];
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(mss).collect()
    };
    let n = chunks.len();
    let mut out = Vec::with_capacity(n);
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut seg = Vec::with_capacity(h.end + chunk.len());
        seg.extend_from_slice(&frame[..h.end]);
        seg.extend_from_slice(chunk);
        let ip_len = seg.len() - h.l3;
        if h.v4 {
            seg[h.l3 + 2..h.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            seg[h.l3 + 4..h.l3 + 6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
            seg[h.l3 + 10..h.l3 + 12].fill(0);
            let c = checksum(&seg[h.l3..h.l4], 0);
            seg[h.l3 + 10..h.l3 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let pl = (ip_len - 40) as u16;
            seg[h.l3 + 4..h.l3 + 6].copy_from_slice(&pl.to_be_bytes());
        }
        let s = seq.wrapping_add((i * mss) as u32);
        seg[h.l4 + 4..h.l4 + 8].copy_from_slice(&s.to_be_bytes());
        let mut f = flags;
        if i + 1 < n {
            f &= !0x09; // FIN, PSH
        }
        if i > 0 {
            f &= !0x80; // CWR
        }
        seg[h.l4 + 13] = f;
        tcp_checksum(&mut seg, &h);
        out.push(seg);
    }
    Ok(out)
}

/// The frames that leave for a packet `frame` whose SOP descriptor asked
/// for offload mode `om` with `hlen` and `msscof`.
pub fn apply(
    mut frame: Vec<u8>,
    om: u32,
    hlen: usize,
    msscof: usize,
) -> Result<Vec<Vec<u8>>, Malformed> {
    match om {
        txd::OM_CSUM => {
            insert_checksum(&mut frame, hlen, msscof)?;
            Ok(vec![frame])
        }
        txd::OM_TSO => segment(&frame, msscof),
        _ => Ok(vec![frame]),
    }
}
