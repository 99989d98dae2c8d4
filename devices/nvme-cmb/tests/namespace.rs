//! Namespace backing stores: RAM and file, round trips, holes, limits.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use nvme_cmb::namespace::{BackingKind, Namespace, NamespaceConfig};
use nvme_cmb::Error;

const MIB: u64 = 1 << 20;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("nvme-cmb-ns-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ram(size: u64, lba_size: u32) -> NamespaceConfig {
    NamespaceConfig {
        size,
        lba_size,
        backing: BackingKind::Ram,
    }
}

fn file(path: PathBuf, size: u64, lba_size: u32) -> NamespaceConfig {
    NamespaceConfig {
        size,
        lba_size,
        backing: BackingKind::File(path),
    }
}

/// A recognisable pattern: byte i is (i * 7 + seed) mod 251.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed as usize) % 251) as u8)
        .collect()
}

fn round_trip(ns: &Namespace) {
    let size = ns.blocks() * u64::from(ns.lba_size());
    for (i, &(off, len)) in [
        (0u64, 512usize),
        (4096, 8192),
        (12345, 777),
        (size - 1000, 1000),
    ]
    .iter()
    .enumerate()
    {
        let data = pattern(len, i as u8);
        ns.write_at(off, &data).unwrap();
        let mut back = vec![0u8; len];
        ns.read_at(off, &mut back).unwrap();
        assert_eq!(back, data, "offset {off}");
    }
    // The first write is still intact after the others.
    let mut first = vec![0u8; 512];
    ns.read_at(0, &mut first).unwrap();
    assert_eq!(first, pattern(512, 0));
}

#[test]
fn ram_geometry_and_round_trip() {
    let ns = Namespace::open(&ram(4 * MIB, 512)).unwrap();
    assert_eq!(ns.lba_size(), 512);
    assert_eq!(ns.lba_shift(), 9);
    assert_eq!(ns.blocks(), 8192);
    round_trip(&ns);
    let ns4k = Namespace::open(&ram(4 * MIB, 4096)).unwrap();
    assert_eq!(ns4k.lba_shift(), 12);
    assert_eq!(ns4k.blocks(), 1024);
    assert!(format!("{ns4k:?}").contains("ram"));
}

/// Held by the tests that measure RSS, so they do not see each other.
static RSS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ram_zero_gives_pages_back() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::open(&ram(128 * MIB, 4096)).unwrap();
    let chunk = vec![0x11u8; MIB as usize];
    for i in 0..96 {
        ns.write_at(i * MIB, &chunk).unwrap();
    }
    let full = rss_kib();
    ns.zero(0, 96 * MIB).unwrap();
    let freed = full.saturating_sub(rss_kib());
    // 96 MiB = 98304 KiB were resident; most must be gone.
    assert!(freed > 64 * 1024, "freed only {freed} KiB");
    let mut b = [0xffu8; 16];
    ns.read_at(50 * MIB, &mut b).unwrap();
    assert_eq!(b, [0; 16]);
}

#[test]
fn ram_starts_zeroed_and_costs_nothing_until_written() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = rss_kib();
    let ns = Namespace::open(&ram(1 << 30, 512)).unwrap();
    let mut buf = vec![0xaau8; 4096];
    ns.read_at((1 << 30) - 4096, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    let grown = rss_kib().saturating_sub(before);
    // Far below the 1 GiB (1048576 KiB) mapped; other tests run alongside.
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[test]
fn file_round_trip_sparse_and_persistent() {
    let dir = TempDir::new();
    let path = dir.file("ns.img");
    let size = 64 * MIB;
    {
        let ns = Namespace::open(&file(path.clone(), size, 4096)).unwrap();
        assert_eq!(ns.blocks(), 16384);
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.len(), size);
        // Sparse: far fewer 512-byte blocks allocated than 64 MiB needs.
        assert!(md.blocks() < 1024, "st_blocks {}", md.blocks());
        round_trip(&ns);
        ns.write_at(MIB, b"persist me").unwrap();
        ns.flush().unwrap();
        assert!(format!("{ns:?}").contains("ns.img"));
    }
    let ns = Namespace::open(&file(path.clone(), size, 4096)).unwrap();
    let mut back = [0u8; 10];
    ns.read_at(MIB, &mut back).unwrap();
    assert_eq!(&back, b"persist me");
    // A shorter existing file is extended.
    drop(ns);
    let short = dir.file("short.img");
    std::fs::write(&short, [1u8; 512]).unwrap();
    let ns = Namespace::open(&file(short.clone(), MIB, 512)).unwrap();
    assert_eq!(std::fs::metadata(&short).unwrap().len(), MIB);
    let mut b = [0u8; 2];
    ns.read_at(511, &mut b).unwrap();
    assert_eq!(b, [1, 0]);
}

fn check_zero(ns: &Namespace) {
    let len = 3 * 4096 + 1000; // partial page, whole pages, partial page
    let off = 4096 - 300;
    let around = 8 * 4096;
    ns.write_at(0, &vec![0x5a; around]).unwrap();
    ns.zero(off, len as u64).unwrap();
    let mut back = vec![0u8; around];
    ns.read_at(0, &mut back).unwrap();
    let (lo, hi) = (off as usize, off as usize + len);
    assert!(back[..lo].iter().all(|&b| b == 0x5a), "before the range");
    assert!(back[lo..hi].iter().all(|&b| b == 0), "inside the range");
    assert!(back[hi..].iter().all(|&b| b == 0x5a), "after the range");
    ns.zero(0, 0).unwrap();
    assert!(ns.zero(ns.blocks() * u64::from(ns.lba_size()), 1).is_err());
}

#[test]
fn zero_really_zeroes() {
    check_zero(&Namespace::open(&ram(4 * MIB, 512)).unwrap());
    let dir = TempDir::new();
    let ns = Namespace::open(&file(dir.file("z.img"), 4 * MIB, 512)).unwrap();
    check_zero(&ns);
    ns.flush().unwrap();
}

#[test]
fn zero_punches_a_hole_in_a_file() {
    // Needs a filesystem that punches holes (ext4, xfs, btrfs, tmpfs).
    let dir = TempDir::new();
    let path = dir.file("hole.img");
    let ns = Namespace::open(&file(path.clone(), 8 * MIB, 512)).unwrap();
    ns.write_at(2 * MIB, &vec![0xffu8; MIB as usize]).unwrap();
    ns.flush().unwrap();
    let before = std::fs::metadata(&path).unwrap().blocks();
    assert!(before >= 2048, "st_blocks {before} after writing 1 MiB");
    ns.zero(2 * MIB, MIB).unwrap();
    let after = std::fs::metadata(&path).unwrap().blocks();
    assert!(after + 2000 <= before, "st_blocks {before} -> {after}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8 * MIB);
}

#[test]
fn ram_flush_is_a_no_op() {
    Namespace::open(&ram(MIB, 512)).unwrap().flush().unwrap();
}

#[test]
fn file_bigger_than_namespace_is_an_error() {
    let dir = TempDir::new();
    let path = dir.file("big.img");
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    match Namespace::open(&file(path.clone(), 4096, 512)) {
        Err(Error::Config(m)) => assert!(m.contains("bigger"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    // The file is left alone.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
}

#[test]
fn bad_geometry_is_an_error() {
    for (size, lba) in [
        (MIB, 1024),
        (MIB, 0),
        (MIB, 520),
        (0, 512),
        (MIB + 512, 4096),
    ] {
        assert!(
            matches!(Namespace::open(&ram(size, lba)), Err(Error::Config(_))),
            "size {size} lba {lba}"
        );
    }
}

#[test]
fn missing_directory_is_a_backing_error() {
    let dir = TempDir::new();
    let path = dir.file("no/such/dir/ns.img");
    assert!(matches!(
        Namespace::open(&file(path, MIB, 512)),
        Err(Error::Backing { .. })
    ));
}

#[test]
fn out_of_range_is_an_error() {
    let dir = TempDir::new();
    let nss = [
        Namespace::open(&ram(MIB, 512)).unwrap(),
        Namespace::open(&file(dir.file("r.img"), MIB, 512)).unwrap(),
    ];
    for ns in &nss {
        let mut buf = [0u8; 512];
        let e = ns.read_at(MIB - 511, &mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(ns.read_at(MIB, &mut buf).is_err());
        assert!(ns.read_at(u64::MAX - 10, &mut buf).is_err());
        assert!(ns.write_at(MIB - 1, &[1, 2]).is_err());
        assert!(ns.zero(u64::MAX, 2).is_err());
        // The last byte is still in range.
        ns.write_at(MIB - 1, &[9]).unwrap();
        ns.read_at(MIB - 1, &mut buf[..1]).unwrap();
        assert_eq!(buf[0], 9);
    }
}

#[test]
fn shared_between_threads() {
    let ns = std::sync::Arc::new(Namespace::open(&ram(4 * MIB, 4096)).unwrap());
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let ns = ns.clone();
            std::thread::spawn(move || {
                let off = u64::from(t) * MIB;
                ns.write_at(off, &pattern(65536, t)).unwrap();
                let mut back = vec![0u8; 65536];
                ns.read_at(off, &mut back).unwrap();
                assert_eq!(back, pattern(65536, t));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
