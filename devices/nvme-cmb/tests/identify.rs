//! Identify structures against byte offsets from NVMe Base 1.4 Figures
//! 245/247 (and Linux's `struct nvme_id_ctrl` / `nvme_id_ns`), written out
//! here as literals rather than taken from the code under test.

use nvme_cmb::identify::{self, ControllerInfo};

fn info() -> ControllerInfo {
    ControllerInfo {
        vid: 0x1b36,
        ssvid: 0x1af4,
        serial: "SN123".into(),
        model: "p2pvm NVMe CMB".into(),
        firmware: "1.0".into(),
        ieee_oui: [0x11, 0x22, 0x33],
        mdts: 5,
        cntlid: 0x0102,
        version: 0x0001_0400,
        oaes: 0x0000_0100,
        ctratt: 0,
        oacs: 0x0100,
        acl: 3,
        aerl: 3,
        frmw: 0x03,
        lpa: 0x04,
        elpe: 63,
        wctemp: 0x0157,
        cctemp: 0x0175,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: 0x1234,
        nn: 4,
        oncs: 0x000c,
        vwc: 1,
        sgls: 0x0000_0001,
        subnqn: "nqn.2024-01.dev.p2pvm:nvme:SN123".into(),
        kas: 0,
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn controller_fields_at_spec_offsets() {
    let b = identify::controller(&info());
    assert_eq!(b.len(), 4096);
    assert_eq!(&b[0..2], &[0x36, 0x1b]); // VID
    assert_eq!(&b[2..4], &[0xf4, 0x1a]); // SSVID
    assert_eq!(&b[4..24], b"SN123               "); // SN, 20 bytes
    assert_eq!(&b[24..64], b"p2pvm NVMe CMB                          "); // MN, 40
    assert_eq!(&b[64..72], b"1.0     "); // FR, 8
    assert_eq!(&b[73..76], &[0x11, 0x22, 0x33]); // IEEE
    assert_eq!(b[76], 0); // CMIC: single port, single controller
    assert_eq!(b[77], 5); // MDTS
    assert_eq!(&b[78..80], &[0x02, 0x01]); // CNTLID
    assert_eq!(&b[80..84], &[0x00, 0x04, 0x01, 0x00]); // VER 1.4.0
    assert_eq!(le32(&b, 92), 0x100); // OAES
    assert_eq!(le32(&b, 96), 0); // CTRATT
    assert_eq!(b[111], 1); // CNTRLTYPE: I/O controller
    assert_eq!(le16(&b, 256), 0x0100); // OACS
    assert_eq!(b[258], 3); // ACL
    assert_eq!(b[259], 3); // AERL
    assert_eq!(b[260], 0x03); // FRMW
    assert_eq!(b[261], 0x04); // LPA
    assert_eq!(b[262], 63); // ELPE
    assert_eq!(b[263], 0); // NPSS: one power state
    assert_eq!(b[265], 0); // APSTA
    assert_eq!(&b[266..268], &[0x57, 0x01]); // WCTEMP
    assert_eq!(&b[268..270], &[0x75, 0x01]); // CCTEMP
    assert_eq!(b[512], 0x66); // SQES
    assert_eq!(b[513], 0x44); // CQES
    assert_eq!(&b[514..516], &[0x34, 0x12]); // MAXCMD
    assert_eq!(&b[516..520], &[4, 0, 0, 0]); // NN
    assert_eq!(&b[520..522], &[0x0c, 0x00]); // ONCS
    assert_eq!(b[525], 1); // VWC
    assert_eq!(&b[536..540], &[1, 0, 0, 0]); // SGLS
    let nqn = b"nqn.2024-01.dev.p2pvm:nvme:SN123";
    assert_eq!(&b[768..768 + nqn.len()], nqn); // SUBNQN
    assert!(b[768 + nqn.len()..1024].iter().all(|&x| x == 0));
    assert_eq!(&b[2048..2050], &[0xc4, 0x09]); // PSD0 MP = 2500 cW
                                               // Everything else written is listed above; spot-check reserved areas.
    assert!(b[100..111].iter().all(|&x| x == 0));
    assert!(b[1024..2048].iter().all(|&x| x == 0));
    assert!(b[3072..].iter().all(|&x| x == 0));
}

#[test]
fn controller_strings_truncate_pad_and_sanitise() {
    let mut i = info();
    i.serial = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".into();
    i.firmware = "v\u{e9}1".into(); // é is two non-ASCII bytes
    i.subnqn = "q".repeat(300);
    let b = identify::controller(&i);
    assert_eq!(&b[4..24], b"ABCDEFGHIJKLMNOPQRST");
    assert_eq!(b[24], b'p'); // MN untouched by SN overflow
    assert_eq!(&b[64..72], b"v??1    ");
    // Linux accepts a SUBNQN of at most 222 bytes (NUL within 223).
    assert!(b[768..768 + 222].iter().all(|&x| x == b'q'));
    assert!(b[768 + 222..1024].iter().all(|&x| x == 0));
}

#[test]
fn namespace_fields_at_spec_offsets() {
    // 1 GiB of 512-byte blocks: 2097152 = 0x20_0000 blocks.
    let b = identify::namespace(0x20_0000, 9, 1, 42);
    assert_eq!(b.len(), 4096);
    assert_eq!(&b[0..8], &[0, 0, 0x20, 0, 0, 0, 0, 0]); // NSZE
    assert_eq!(&b[8..16], &[0, 0, 0x20, 0, 0, 0, 0, 0]); // NCAP
    assert_eq!(&b[16..24], &[0, 0, 0x20, 0, 0, 0, 0, 0]); // NUSE
    assert_eq!(b[24], 0); // NSFEAT: not thin provisioned
    assert_eq!(b[25], 0); // NLBAF: one format
    assert_eq!(b[26], 0); // FLBAS: format 0, no metadata
    assert_eq!(b[33], 0x09); // DLFEAT: reads zeroes, WZ deallocates
    assert_eq!(&b[46..48], &[0, 0]); // NOIOB
                                     // NVMCAP = 1 GiB = 0x4000_0000 bytes, u128 LE.
    assert_eq!(&b[48..52], &[0, 0, 0, 0x40]);
    assert!(b[52..64].iter().all(|&x| x == 0));
    assert_eq!(&b[128..130], &[0, 0]); // LBAF0.MS
    assert_eq!(b[130], 9); // LBAF0.LBADS
    assert_eq!(b[131], 0); // LBAF0.RP
    assert!(b[132..].iter().all(|&x| x == 0)); // no more formats
                                               // 4 KiB blocks.
    let b = identify::namespace(0x100, 12, 1, 42);
    assert_eq!(le64(&b, 0), 0x100);
    assert_eq!(b[130], 12);
    assert_eq!(&b[48..52], &[0, 0, 0x10, 0]); // 0x10_0000 bytes
}

#[test]
fn namespace_identifiers_are_stable_and_unique() {
    let nguid = |nsid, uid| identify::namespace(8, 9, nsid, uid)[104..120].to_vec();
    let eui = |nsid, uid| identify::namespace(8, 9, nsid, uid)[120..128].to_vec();
    assert_eq!(nguid(1, 7), nguid(1, 7));
    assert_ne!(nguid(1, 7), nguid(2, 7));
    assert_ne!(nguid(1, 7), nguid(1, 8));
    assert_ne!(nguid(1, 7), vec![0u8; 16]);
    assert_eq!(eui(1, 7), eui(1, 7));
    assert_ne!(eui(1, 7), eui(2, 7));
    assert_ne!(eui(1, 7), eui(1, 8));
    // Locally administered, unicast.
    assert_eq!(eui(1, 7)[0] & 0x03, 0x02);
    assert_eq!(nguid(1, 7), identify::nguid(1, 7).to_vec());
    // The broadcast NSID names no namespace: no identifiers.
    let b = identify::namespace(0, 9, u32::MAX, 7);
    assert!(b[104..128].iter().all(|&x| x == 0));
}

#[test]
fn active_namespace_list() {
    let b = identify::active_ns_list(&[3, 1, 2, 7], 0);
    assert_eq!(b.len(), 4096);
    assert_eq!(
        &b[0..20],
        &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
    );
    assert!(b[16..].iter().all(|&x| x == 0));
    let b = identify::active_ns_list(&[1, 2, 3, 7], 2);
    assert_eq!(&b[0..12], &[3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
    let b = identify::active_ns_list(&[1, 2], 2);
    assert!(b.iter().all(|&x| x == 0));
    // At most 1024 entries: 1..=1024 of 1..=2000, the last at byte 4092.
    let ids: Vec<u32> = (1..=2000).collect();
    let b = identify::active_ns_list(&ids, 0);
    assert_eq!(&b[4092..4096], &[0x00, 0x04, 0, 0]);
    let b = identify::active_ns_list(&ids, 1024);
    assert_eq!(&b[0..4], &[0x01, 0x04, 0, 0]); // 1025
}

#[test]
fn descriptor_list_layout() {
    let b = identify::ns_descriptors(1, 42);
    let id = identify::namespace(8, 9, 1, 42);
    assert_eq!(b.len(), 4096);
    // EUI-64: NIDT 1, NIDL 8, 2 reserved, then the 8 bytes of Identify NS.
    assert_eq!(&b[0..4], &[1, 8, 0, 0]);
    assert_eq!(&b[4..12], &id[120..128]);
    // NGUID: NIDT 2, NIDL 16 at byte 12.
    assert_eq!(&b[12..16], &[2, 16, 0, 0]);
    assert_eq!(&b[16..32], &id[104..120]);
    // UUID: NIDT 3, NIDL 16 at byte 32; RFC 9562 version 8, variant 10b.
    assert_eq!(&b[32..36], &[3, 16, 0, 0]);
    let uuid = &b[36..52];
    assert_eq!(uuid[6] >> 4, 8);
    assert_eq!(uuid[8] >> 6, 0b10);
    assert_ne!(uuid, &id[104..120]);
    // Stable, and different for another namespace.
    assert_eq!(uuid, &identify::ns_descriptors(1, 42)[36..52]);
    assert_ne!(uuid, &identify::ns_descriptors(2, 42)[36..52]);
    // A zero header ends the list.
    assert!(b[52..].iter().all(|&x| x == 0));
}
