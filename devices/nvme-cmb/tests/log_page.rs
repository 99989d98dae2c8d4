//! Log pages against byte offsets from NVMe Base 1.4 Figures 195/196/198
//! (and Linux's `nvme_error_slot` / `nvme_smart_log`), as literals.

use nvme_cmb::log_page::{
    data_units, firmware_slot_page, health_page, log_id, window, ErrorEntry, ErrorLog, Health,
};

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// A 16-byte little-endian counter that must fit in its low 8 bytes.
fn counter(b: &[u8], off: usize) -> u64 {
    assert!(
        b[off + 8..off + 16].iter().all(|&x| x == 0),
        "high half at {off}"
    );
    le64(b, off)
}

fn entry(cid: u16) -> ErrorEntry {
    ErrorEntry {
        error_count: 999, // replaced by record()
        sqid: 1,
        cid,
        status_field: 0x8004, // DNR | Invalid Field in Command
        param_location: 0x0128,
        lba: 0x1122_3344_5566_7788,
        nsid: 1,
    }
}

#[test]
fn log_ids() {
    assert_eq!(
        (log_id::ERROR, log_id::HEALTH, log_id::FIRMWARE_SLOT),
        (1, 2, 3)
    );
}

#[test]
fn error_entry_layout() {
    let mut log = ErrorLog::new(4);
    log.record(entry(0xabcd));
    let p = log.page();
    assert_eq!(p.len(), 4 * 64);
    assert_eq!(&p[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]); // error count 1
    assert_eq!(&p[8..10], &[1, 0]); // SQID
    assert_eq!(&p[10..12], &[0xcd, 0xab]); // CID
                                           // Status field 4002h in bits 15:1, phase tag 0 in bit 0: 8004h.
    assert_eq!(&p[12..14], &[0x04, 0x80]);
    assert_eq!(&p[14..16], &[0x28, 0x01]); // parameter error location
    assert_eq!(
        &p[16..24],
        &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
    );
    assert_eq!(&p[24..28], &[1, 0, 0, 0]); // NSID
    assert!(p[28..].iter().all(|&x| x == 0));
}

#[test]
fn error_ring_is_newest_first_and_counts() {
    let mut log = ErrorLog::new(3);
    assert_eq!(log.count(), 0);
    assert!(log.page().iter().all(|&x| x == 0));
    for cid in 10..15 {
        log.record(entry(cid));
    }
    assert_eq!(log.count(), 5);
    let p = log.page();
    assert_eq!(p.len(), 192);
    // Newest (count 5, cid 14) first, then 4 (cid 13), then 3 (cid 12).
    for (slot, (count, cid)) in [(5u8, 14u8), (4, 13), (3, 12)].iter().enumerate() {
        let e = &p[slot * 64..slot * 64 + 64];
        assert_eq!(e[0], *count);
        assert_eq!(&e[10..12], &[*cid, 0]);
    }
    // Partly filled: unused entries are zero.
    let mut log = ErrorLog::new(4);
    log.record(entry(1));
    log.record(entry(2));
    let p = log.page();
    assert_eq!((p[0], p[64]), (2, 1));
    assert!(p[128..].iter().all(|&x| x == 0));
}

#[test]
fn error_not_tied_to_a_command() {
    let mut log = ErrorLog::new(1);
    log.record(ErrorEntry {
        sqid: 0xffff,
        cid: 0xffff,
        status_field: 0xffff,
        param_location: 0xffff,
        ..ErrorEntry::default()
    });
    assert_eq!(&log.page()[8..16], &[0xff; 8]);
}

#[test]
fn data_units_round_up() {
    assert_eq!(data_units(0), 0);
    assert_eq!(data_units(1), 1);
    assert_eq!(data_units(512), 1);
    assert_eq!(data_units(512_000), 1);
    assert_eq!(data_units(512_001), 2);
    assert_eq!(data_units(1_024_000), 2);
    assert_eq!(data_units(u64::MAX), 36_028_797_018_964); // ceil((2^64-1)/512000)
}

#[test]
fn health_fields_at_spec_offsets() {
    let h = Health {
        bytes_read: 512_001,      // 2 data units
        bytes_written: 5_120_000, // 10 data units
        host_reads: 3,
        host_writes: 4,
        busy_minutes: 5,
        power_cycles: 6,
        power_on_hours: 7,
        unsafe_shutdowns: 8,
        media_errors: 9,
        error_entries: 0x1_0000_0001,
        temperature_kelvin: 0x0141, // 321 K
        warning: 0x04,
    };
    let p = health_page(&h);
    assert_eq!(p.len(), 512);
    assert_eq!(p[0], 0x04); // critical warning
    assert_eq!(&p[1..3], &[0x41, 0x01]); // composite temperature
    assert_eq!(p[3], 100); // available spare
    assert_eq!(p[4], 10); // available spare threshold
    assert_eq!(p[5], 0); // percentage used
    assert!(p[6..32].iter().all(|&x| x == 0));
    assert_eq!(counter(&p, 32), 2); // data units read
    assert_eq!(counter(&p, 48), 10); // data units written
    assert_eq!(counter(&p, 64), 3); // host read commands
    assert_eq!(counter(&p, 80), 4); // host write commands
    assert_eq!(counter(&p, 96), 5); // controller busy time
    assert_eq!(counter(&p, 112), 6); // power cycles
    assert_eq!(counter(&p, 128), 7); // power on hours
    assert_eq!(counter(&p, 144), 8); // unsafe shutdowns
    assert_eq!(counter(&p, 160), 9); // media errors
    assert_eq!(&p[176..184], &[1, 0, 0, 0, 1, 0, 0, 0]); // error log entries
    assert!(p[192..].iter().all(|&x| x == 0)); // no extra sensors
}

#[test]
fn firmware_slot_layout() {
    let p = firmware_slot_page("1.0");
    assert_eq!(p.len(), 512);
    assert_eq!(p[0], 0x01); // AFI: slot 1 active
    assert!(p[1..8].iter().all(|&x| x == 0));
    assert_eq!(&p[8..16], b"1.0     "); // FRS1
    assert!(p[16..].iter().all(|&x| x == 0));
    assert_eq!(&firmware_slot_page("123456789")[8..16], b"12345678");
}

#[test]
fn window_copies_and_zero_fills() {
    let page: Vec<u8> = (1..=16).collect();
    assert_eq!(window(&page, 0, 4), vec![1, 2, 3, 4]);
    assert_eq!(window(&page, 12, 8), vec![13, 14, 15, 16, 0, 0, 0, 0]);
    assert_eq!(window(&page, 16, 4), vec![0; 4]);
    assert_eq!(window(&page, u64::MAX, 4), vec![0; 4]);
    assert_eq!(window(&page, 4, 0), Vec::<u8>::new());
    assert_eq!(window(&page, 0, 20)[..16], page[..]);
}
