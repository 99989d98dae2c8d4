//! The 40-byte GRH area a UD receive starts with (RoCE v2): for IPv4
//! GIDs (`::ffff:a.b.c.d`) 20 zero bytes then the IPv4 header, with a
//! valid header checksum; otherwise the IPv6 header. Linux's verbs core
//! reads the addresses from it to answer (`ib_init_ah_attr_from_wc`).

/// Whether `gid` is an IPv4-mapped address.
pub fn is_v4(gid: &[u8; 16]) -> bool {
    gid[..10].iter().all(|&b| b == 0) && gid[10] == 0xff && gid[11] == 0xff
}

/// The GRH area of a packet from `sgid` to `dgid` carrying `len` bytes
/// (UDP, BTH, DETH and ICRC counted in the IP length).
pub fn grh(sgid: &[u8; 16], dgid: &[u8; 16], len: usize) -> [u8; 40] {
    let mut g = [0u8; 40];
    // UDP 8, BTH 12, DETH 8, ICRC 4.
    let l4 = (8 + 12 + 8 + len + 4) as u32;
    if is_v4(sgid) && is_v4(dgid) {
        let ip = &mut g[20..40];
        let total = (20 + l4).min(0xffff) as u16;
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&sgid[12..16]);
        ip[16..20].copy_from_slice(&dgid[12..16]);
        let c = crate::vmxnet3::checksum(ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        g[0] = 0x60;
        g[4..6].copy_from_slice(&(l4.min(0xffff) as u16).to_be_bytes());
        g[6] = 17;
        g[7] = 64;
        g[8..24].copy_from_slice(sgid);
        g[24..40].copy_from_slice(dgid);
    }
    g
}
