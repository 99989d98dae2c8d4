//! Random admin and I/O command streams against controller 0 of a rig
//! (see `streams/`): valid and invalid opcodes and fields, PRPs and SGLs
//! into RAM, the CMB, a peer's and the controller's own BARs and nothing,
//! aligned and not, queues created and deleted in RAM and the CMB,
//! doorbell writes the controller must ignore, shadow doorbells, resets.
//!
//! Checked, each from the test's own bookkeeping, never the controller's:
//! no panic; every completion is that of an outstanding command (an
//! Asynchronous Event Request's included) on its SQ's CQ, and none
//! succeeds that the specification says must fail; no device access
//! outside the RAM zones the commands legitimately point at (nor past
//! RAM's end), and the canary around them intact; each namespace block
//! either untouched or covered by a command that could write it, and the
//! file-backed namespace not one byte longer.

mod streams;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use nvme_cmb::regs::{cmb, reg};
use nvme_cmb::sqe::Command;
use nvme_cmb::CmbFlags;
use proptest::collection::vec;
use proptest::prelude::*;

use streams::build::Builder;
use streams::commands::Expect;
use streams::driver::Driver;
use streams::gen::Op;
use streams::layout::{sq_slot, DATA, PAGE, SQ_SLOT};
use streams::model::{pattern, Namespace};
use streams::rig::{Rig, NS1, NS2};
use streams::steps::step;
use streams::strategy::op;

/// Namespace 2's backing file, holding its pattern; removed when dropped.
struct NsFile(PathBuf);

impl NsFile {
    fn new() -> NsFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("nvme-cmb-streams-{}-{n}.img", std::process::id());
        let path = std::env::temp_dir().join(name);
        let (size, lba) = (NS2.0, NS2.1 as usize);
        let data: Vec<u8> = (0..size / lba as u64)
            .flat_map(|b| pattern(2, b, lba))
            .collect();
        std::fs::write(&path, data).unwrap();
        NsFile(path)
    }
}

impl Drop for NsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Blocks of namespace 1 per set-up or read-back transfer: 64 KiB.
const CHUNK: u64 = 128;

/// A command with PRP1 `p1` and PRP2 `p2`.
fn with_prps(mut c: Command, p1: u64, p2: u64) -> Command {
    c.dptr[..8].copy_from_slice(&p1.to_le_bytes());
    c.dptr[8..].copy_from_slice(&p2.to_le_bytes());
    c
}

/// Moves `CHUNK` blocks of namespace 1 from `slba` to (`write`: from) the
/// first 64 KiB of the data pages.
fn chunk(d: &mut Driver<'_>, b: &mut Builder<'_>, write: bool, slba: u64) {
    let list = b.list_page();
    let pages = (1..16).flat_map(|i| (DATA.0 + i * PAGE).to_le_bytes());
    d.rig.ram.poke(list, &pages.collect::<Vec<u8>>());
    let cmd = Command {
        opcode: if write { 0x01 } else { 0x02 },
        nsid: 1,
        cdw10: slba as u32,
        cdw12: CHUNK as u32 - 1,
        ..Command::default()
    };
    let c = d.exec(1, with_prps(cmd, DATA.0, list), Expect::default());
    let c = c.expect("a completion");
    assert!(c.status.is_success(), "transfer at {slba}: {}", c.status);
}

/// One case: a rig whose CMB advertises `flags` (CMSE on with `cmse`),
/// namespace 1 given its pattern, `ops` run, then every check.
fn case(flags: u8, cmse: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let file = NsFile::new();
    let flags = CmbFlags {
        sqs: flags & 1 != 0,
        cqs: flags & 2 != 0,
        lists: flags & 4 != 0,
        rds: flags & 8 != 0,
        wds: flags & 16 != 0,
    };
    let rig = Rig::new(flags, &file.0);
    if cmse {
        rig.write(
            reg::CMBMSC,
            &(cmb::CRE | cmb::CMSE | rig.cmb()).to_le_bytes(),
        );
    }
    let ns1 = Namespace::new(1, NS1.0, NS1.1);
    let mut d = Driver::new(&rig, [ns1, Namespace::new(2, NS2.0, NS2.1)]);
    let mut b = Builder::new(&rig.ram, rig.bars);
    let blocks = NS1.0 / u64::from(NS1.1);
    // Namespace 1 gets its pattern; then a fresh controller state with
    // I/O queue pairs 1 (in RAM) and 2 (its SQ in the CMB, if allowed).
    d.enable();
    d.create_pair(1, sq_slot(1));
    for slba in (0..blocks).step_by(CHUNK as usize) {
        let data = (slba..slba + CHUNK).flat_map(|l| pattern(1, l, NS1.1 as usize));
        rig.ram.poke(DATA.0, &data.collect::<Vec<u8>>());
        chunk(&mut d, &mut b, true, slba);
    }
    let sq2 = if flags.sqs && cmse {
        rig.cmb() + 2 * SQ_SLOT
    } else {
        sq_slot(2)
    };
    d.pairs = vec![(1, sq_slot(1)), (2, sq2)];
    d.reset();

    for op in ops {
        step(&mut d, &mut b, op);
    }
    // Namespace 2's file I/O runs on the controller's pool: its
    // completions come later; then a reset, which joins the pool.
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        d.run();
    }
    d.reset();
    prop_assert!(d.failures.is_empty(), "{:#?}", d.failures);
    prop_assert!(
        rig.ram.violations().is_empty(),
        "{:#?}",
        rig.ram.violations()
    );
    prop_assert_eq!(rig.ram.canary_damage(), None, "canary damaged at");

    // Namespace 2, from its file.
    let bytes = std::fs::read(&file.0).unwrap();
    prop_assert_eq!(bytes.len() as u64, NS2.0, "the namespace's file grew");
    for (lba, block) in bytes.chunks(NS2.1 as usize).enumerate() {
        d.ns[1]
            .check(lba as u64, block)
            .map_err(TestCaseError::fail)?;
    }
    // Namespace 1, read back (the reset left a known state).
    for slba in (0..blocks).step_by(CHUNK as usize) {
        chunk(&mut d, &mut b, false, slba);
        let data = rig.ram.peek(DATA.0, (CHUNK * u64::from(NS1.1)) as usize);
        for (i, block) in data.chunks(NS1.1 as usize).enumerate() {
            d.ns[0]
                .check(slba + i as u64, block)
                .map_err(TestCaseError::fail)?;
        }
    }
    prop_assert!(
        rig.ram.violations().is_empty(),
        "{:#?}",
        rig.ram.violations()
    );
    if std::env::var_os("STREAMS_STATS").is_some() {
        // Set-up and read-back included.
        let counts = &d.counts;
        eprintln!(
            "{} ops; (admin, opcode): (completions, successes): {counts:?}",
            ops.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// See the module documentation.
    #[test]
    fn random_command_streams_stay_in_bounds(
        flags in any::<u8>(),
        cmse in any::<bool>(),
        ops in vec(op(), 1..64),
    ) {
        case(flags, cmse, &ops)?;
    }
}
